/**
 * @module Routers (https://docs.openstack.org/api-ref/network/v2/#routers-routers): an external gateway
 * (a port on an external network), interfaces (ports on the subnets it routes), extra routes. The
 * driver is told of every change once its transaction committed.
 */
import { BadRequest, Conflict, Forbidden, NotFound } from '../../../core/errors.ts';
import { optBool, optStr } from '../../common/input.ts';
import type { Obj } from '../../common/input.ts';
import type { Caller } from './access.ts';
import { asSystem, isAdmin, visible } from './access.ts';
import type { NetworkDeps, StoredRow } from './deps.ts';
import { createPort, deletePort, updatePort } from './ports.ts';
import { checkQuota } from './quotas.ts';
import { parseCidr, overlaps } from './ip.ts';
import { DeviceOwner, bodyOf, bump, save } from './records.ts';

/** A router to make, as its create request gave it (api/routers.ts parses the body). */
export interface NewRouter {
  name: string;
  description: string;
  adminStateUp: boolean;
  distributed: boolean;
  ha: boolean;
  availabilityZoneHints: string[];
  /** As given: checked against policy and its network looked up once the router exists. */
  externalGatewayInfo: Obj | undefined;
}

export interface ExtraRoute {
  destination: string;
  nexthop: string;
}

/** What an update changes; an absent field stays as it is (Neutron's PUT). */
export interface RouterChanges {
  name?: string | undefined;
  description?: string | undefined;
  adminStateUp?: boolean | undefined;
  /** An admin's only (api/routers.ts checks): a stored flag, routing is the same either way. */
  distributed?: boolean | undefined;
  routes?: ExtraRoute[] | undefined;
  /** An object sets the gateway, null clears it, undefined leaves it. */
  externalGatewayInfo?: Obj | null | undefined;
}

export function createRouter(d: NetworkDeps, caller: Caller, projectId: string, spec: NewRouter): StoredRow {
  const id = d.ids.uuid();
  const body: Obj = {
    id,
    name: spec.name,
    description: spec.description,
    project_id: projectId,
    tenant_id: projectId,
    admin_state_up: spec.adminStateUp,
    status: 'ACTIVE',
    external_gateway_info: null,
    routes: [],
    distributed: spec.distributed,
    ha: spec.ha,
    availability_zone_hints: spec.availabilityZoneHints,
    flavor_id: null,
    enable_ndp_proxy: false,
    tags: [],
  };
  return d.repo.tx(() => {
    checkQuota(d, projectId, 'router');
    save(d, 'router', { name: body.name }, body);
    if (spec.externalGatewayInfo)
      return setGateway(d, caller, d.repo.row('router', id)!, spec.externalGatewayInfo);
    notifyRouter(d, id);
    return d.repo.row('router', id)!;
  });
}

export function updateRouter(
  d: NetworkDeps,
  caller: Caller,
  r: StoredRow,
  changes: RouterChanges,
): StoredRow {
  return d.repo.tx(() => {
    const b = bump(bodyOf(r));
    if (changes.name !== undefined) b.name = changes.name;
    if (changes.description !== undefined) b.description = changes.description;
    if (changes.adminStateUp !== undefined) b.admin_state_up = changes.adminStateUp;
    if (changes.distributed !== undefined) b.distributed = changes.distributed;
    if (changes.routes !== undefined) b.routes = changes.routes;
    save(d, 'router', { name: b.name }, b);
    if (changes.externalGatewayInfo !== undefined) {
      if (changes.externalGatewayInfo)
        return setGateway(d, caller, d.repo.row('router', r.id)!, changes.externalGatewayInfo);
      return clearGateway(d, d.repo.row('router', r.id)!);
    }
    notifyRouter(d, r.id);
    return d.repo.row('router', r.id)!;
  });
}

/** The router's ports with this device owner, or all its router ports. */
export function routerPorts(d: NetworkDeps, routerId: string, owner?: string): StoredRow[] {
  return owner
    ? d.repo.portsOfDeviceOwnedBy(routerId, owner)
    : d.repo.portsOfDeviceOwnerLike(routerId, 'network:router');
}

function setGateway(d: NetworkDeps, caller: Caller, r: StoredRow, g: Obj): StoredRow {
  // Neutron's create/update_router:external_gateway_info:external_fixed_ips is admin only.
  if (g.external_fixed_ips !== undefined && !isAdmin(caller))
    throw new Forbidden(
      '(rule:update_router:external_gateway_info:external_fixed_ips) is disallowed by policy',
    );
  const netId = optStr(g, 'network_id');
  if (!netId)
    throw new BadRequest('Invalid input for external_gateway_info: network_id is required.', 'InvalidInput');
  const net = visible(d, caller, 'network', netId);
  if (!bodyOf(net)['router:external'])
    throw new BadRequest(`Network ${netId} is not a valid external network.`, 'BadRequest');
  clearGateway(d, r, false);
  const port = createPort(d, asSystem("the router's gateway port"), '', net, {
    device_owner: DeviceOwner.RouterGateway,
    device_id: r.id,
    ...(Array.isArray(g.external_fixed_ips) ? { fixed_ips: g.external_fixed_ips } : {}),
  });
  const b = bump(bodyOf(d.repo.row('router', r.id)!));
  b.external_gateway_info = {
    network_id: netId,
    enable_snat: optBool(g, 'enable_snat') ?? true,
    external_fixed_ips: port.fixed_ips,
  };
  save(d, 'router', { name: b.name }, b);
  notifyRouter(d, r.id);
  return d.repo.row('router', r.id)!;
}

function clearGateway(d: NetworkDeps, r: StoredRow, persist = true): StoredRow {
  const gw = routerPorts(d, r.id, DeviceOwner.RouterGateway);
  if (gw.length) {
    const routerFips = d.repo.all('floating_ip').filter((f) => bodyOf(f).router_id === r.id);
    if (routerFips.length)
      throw new Conflict(
        `Gateway cannot be updated for router ${r.id}, since a gateway to external network is required by one or more floating IPs.`,
        'RouterExternalGatewayInUseByFloatingIp',
      );
  }
  for (const p of gw) deletePort(d, p);
  if (persist) {
    const b = bump(bodyOf(r));
    b.external_gateway_info = null;
    save(d, 'router', { name: b.name }, b);
    notifyRouter(d, r.id);
  }
  return d.repo.row('router', r.id)!;
}

export function addInterface(d: NetworkDeps, caller: Caller, r: StoredRow, o: Obj): Obj {
  const subnetId = optStr(o, 'subnet_id');
  const portId = optStr(o, 'port_id');
  if (!!subnetId === !!portId)
    throw new BadRequest('Either subnet_id or port_id must be specified.', 'BadRequest');
  return d.repo.tx(() => {
    const attached = routerPorts(d, r.id, DeviceOwner.RouterInterface).flatMap((p) =>
      (bodyOf(p).fixed_ips as { subnet_id: string }[]).map((f) => f.subnet_id),
    );
    let port: Obj;
    if (subnetId) {
      const s = visible(d, caller, 'subnet', subnetId);
      const sb = bodyOf(s);
      if (attached.includes(subnetId))
        throw new BadRequest(`Router already has a port on subnet ${subnetId}.`, 'BadRequest');
      if (!sb.gateway_ip)
        throw new BadRequest(`Bad router request: Subnet ${subnetId} has no gateway IP.`, 'BadRequest');
      checkNoOverlap(d, attached, [subnetId]);
      const net = d.repo.row('network', String(s.network_id))!;
      const inUse = d.repo.portAt(subnetId, String(sb.gateway_ip));
      port = createPort(d, asSystem('a router interface port'), r.project_id, net, {
        device_owner: DeviceOwner.RouterInterface,
        device_id: r.id,
        fixed_ips: [inUse ? { subnet_id: subnetId } : { subnet_id: subnetId, ip_address: sb.gateway_ip }],
      });
    } else {
      const p = visible(d, caller, 'port', portId!);
      const pb = bodyOf(p);
      if (pb.device_id)
        throw new Conflict(
          `Port ${portId} is in use by ${String(pb.device_owner)} ${String(pb.device_id)}.`,
          'PortInUse',
        );
      if (p.owner !== d.site.name)
        throw new Conflict(`Port ${portId} belongs to site ${p.owner}; attach it from there.`, 'PortInUse');
      const fixed = pb.fixed_ips as { subnet_id: string }[];
      if (!fixed.length)
        throw new BadRequest(
          `Bad router request: Router port must have at least one fixed IP.`,
          'BadRequest',
        );
      if (fixed.some((f) => attached.includes(f.subnet_id)))
        throw new BadRequest(`Router already has a port on subnet ${fixed[0]!.subnet_id}.`, 'BadRequest');
      checkNoOverlap(
        d,
        attached,
        fixed.map((f) => f.subnet_id),
      );
      port = updatePort(d, asSystem('a port becoming a router interface'), p, {
        device_owner: DeviceOwner.RouterInterface,
        device_id: r.id,
      });
    }
    notifyRouter(d, r.id);
    return interfaceInfo(r, port, port.fixed_ips as { subnet_id: string }[]);
  });
}

/** Neutron's answer to add_router_interface and remove_router_interface: the router, port and subnets. */
function interfaceInfo(r: StoredRow, port: Obj, ips: { subnet_id: string }[]): Obj {
  return {
    id: r.id,
    tenant_id: r.project_id,
    project_id: r.project_id,
    port_id: port.id,
    network_id: port.network_id,
    subnet_id: ips[0]?.subnet_id,
    subnet_ids: ips.map((f) => f.subnet_id),
  };
}

export function removeInterface(d: NetworkDeps, caller: Caller, r: StoredRow, o: Obj): Obj {
  const subnetId = optStr(o, 'subnet_id');
  const portId = optStr(o, 'port_id');
  if (!subnetId && !portId)
    throw new BadRequest('Either subnet_id or port_id must be specified.', 'BadRequest');
  return d.repo.tx(() => {
    const ports = routerPorts(d, r.id, DeviceOwner.RouterInterface).filter(
      (p) =>
        (!portId || p.id === portId) &&
        (!subnetId || (bodyOf(p).fixed_ips as { subnet_id: string }[]).some((f) => f.subnet_id === subnetId)),
    );
    const p = ports[0];
    if (!p)
      throw new NotFound(
        portId
          ? `Router ${r.id} does not have an interface with id ${portId}`
          : `Router ${r.id} has no interface on subnet ${subnetId}`,
        'RouterInterfaceNotFoundForSubnet',
      );
    const pb = bodyOf(p);
    const ips = pb.fixed_ips as { subnet_id: string }[];
    const fipsUsing = d.repo.all('floating_ip').filter((f) => {
      const fb = bodyOf(f);
      if (fb.router_id !== r.id || !fb.port_id) return false;
      const target = d.repo.row('port', String(fb.port_id));
      return (
        !!target &&
        (bodyOf(target).fixed_ips as { subnet_id: string }[]).some((x) =>
          ips.some((i) => i.subnet_id === x.subnet_id),
        )
      );
    });
    if (fipsUsing.length)
      throw new Conflict(
        `Router interface for subnet ${ips[0]?.subnet_id} on router ${r.id} cannot be deleted, as it is required by one or more floating IPs.`,
        'RouterInterfaceInUseByFloatingIP',
      );
    deletePort(d, p);
    notifyRouter(d, r.id);
    return interfaceInfo(r, p, ips);
  });
}

export function deleteRouter(d: NetworkDeps, r: StoredRow): void {
  d.repo.tx(() => {
    if (routerPorts(d, r.id, DeviceOwner.RouterInterface).length)
      throw new Conflict(`Router ${r.id} still has ports`, 'RouterInUse');
    clearGateway(d, r, false);
    d.repo.remove('router', r.id);
  });
  d.driver.routerDeleted(r.id);
}

function notifyRouter(d: NetworkDeps, id: string): void {
  const r = d.repo.row('router', id);
  if (!r) return;
  const b = bodyOf(r);
  const subnets = routerPorts(d, id, DeviceOwner.RouterInterface).flatMap((p) =>
    (bodyOf(p).fixed_ips as { subnet_id: string }[]).map((f) => f.subnet_id),
  );
  const gw = b.external_gateway_info as { network_id?: string } | null;
  d.repo.onCommit(() =>
    d.driver.routerUpdated({
      routerId: id,
      adminStateUp: b.admin_state_up !== false,
      interfaceSubnetIds: subnets,
      externalNetworkId: gw?.network_id,
    }),
  );
}

/** A router routes between its subnets: a new interface's CIDR must not overlap an attached one's. */
function checkNoOverlap(d: NetworkDeps, attachedIds: string[], newIds: string[]): void {
  const cidrOf = (id: string) => {
    const s = d.repo.row('subnet', id);
    const text = s ? bodyOf(s).cidr : undefined;
    return typeof text === 'string' ? parseCidr(text, false) : undefined;
  };
  for (const n of newIds) {
    const nc = cidrOf(n);
    if (!nc) continue;
    for (const a of attachedIds) {
      const ac = cidrOf(a);
      if (ac && ac.version === nc.version && overlaps(ac, nc))
        throw new BadRequest(
          `Bad router request: Cidr ${String(bodyOf(d.repo.row('subnet', n)!).cidr)} of subnet ${n} overlaps with cidr ${String(bodyOf(d.repo.row('subnet', a)!).cidr)} of subnet ${a}.`,
          'BadRequest',
        );
    }
  }
}
