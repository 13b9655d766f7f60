/**
 * @module Floating IPs (https://docs.openstack.org/api-ref/network/v2/#floating-ips-floatingips): an
 * address of an external network, held by a port of the service's own, associated with a port's fixed
 * IPv4 address through a router that has a gateway on that network and an interface on the subnet.
 */
import { BadRequest, Conflict, Forbidden, NotFound } from '../../../core/errors.ts';
import { optStr } from '../../common/input.ts';
import type { Obj } from '../../common/input.ts';
import type { Caller } from './access.ts';
import { asSystem, isAdmin, visible } from './access.ts';
import { setFloatingPort } from './associations.ts';
import type { NetworkDeps, StoredRow } from './deps.ts';
import { createPort, deletePort } from './ports.ts';
import { checkQuota } from './quotas.ts';
import { DeviceOwner, bodyOf, bump, requiredRef, save } from './records.ts';
import { routerPorts } from './routers.ts';

export function createFloatingIp(d: NetworkDeps, caller: Caller, projectId: string, o: Obj): StoredRow {
  const netId = requiredRef(o, 'floating_network_id');
  const net = visible(d, caller, 'network', netId);
  if (!bodyOf(net)['router:external'])
    throw new BadRequest(
      `Bad floatingip request: Network ${netId} is not a valid external network.`,
      'BadRequest',
    );
  const id = d.ids.uuid();
  return d.repo.tx(() => {
    checkQuota(d, projectId, 'floatingip');
    const subnetId = optStr(o, 'subnet_id');
    const want = optStr(o, 'floating_ip_address');
    if (want && !isAdmin(caller))
      throw new Forbidden('(rule:create_floatingip:floating_ip_address) is disallowed by policy');
    const v4 = d.repo.v4SubnetsOrdered(netId);
    if (!v4.length)
      throw new BadRequest(
        `Bad floatingip request: Network ${netId} does not contain any IPv4 subnet.`,
        'BadRequest',
      );
    const fixed = want
      ? [{ ip_address: want, ...(subnetId ? { subnet_id: subnetId } : {}) }]
      : subnetId
        ? [{ subnet_id: subnetId }]
        : undefined;
    const port = createPort(d, asSystem("the floating IP's port"), '', net, {
      device_owner: DeviceOwner.FloatingIp,
      device_id: id,
      ...(fixed ? { fixed_ips: fixed } : {}),
    });
    const addr = (port.fixed_ips as { ip_address: string }[])[0]!.ip_address;
    const body: Obj = {
      id,
      floating_ip_address: addr,
      floating_network_id: netId,
      project_id: projectId,
      tenant_id: projectId,
      router_id: null,
      port_id: null,
      fixed_ip_address: null,
      status: 'DOWN',
      description: optStr(o, 'description') ?? '',
      dns_domain: '',
      dns_name: '',
      port_details: null,
      port_forwardings: [],
      qos_policy_id: null,
      qos_network_policy_id: null,
      tags: [],
    };
    save(d, 'floating_ip', { floating_network_id: netId, floating_ip_address: addr, port_id: null }, body);
    const row = d.repo.row('floating_ip', id)!;
    if (o.port_id) return associate(d, caller, row, optStr(o, 'port_id')!, optStr(o, 'fixed_ip_address'));
    return row;
  });
}

export function updateFloatingIp(d: NetworkDeps, caller: Caller, r: StoredRow, o: Obj): StoredRow {
  return d.repo.tx(() => {
    if (o.description !== undefined) {
      const b = bump(bodyOf(r));
      b.description = optStr(o, 'description') ?? '';
      save(
        d,
        'floating_ip',
        {
          floating_network_id: r.floating_network_id,
          floating_ip_address: r.floating_ip_address,
          port_id: b.port_id,
        },
        b,
      );
    }
    const cur = d.repo.row('floating_ip', r.id)!;
    if (!('port_id' in o)) return cur;
    if (o.port_id === null) return setFloatingPort(d, cur, null);
    return associate(d, caller, cur, String(o.port_id), optStr(o, 'fixed_ip_address'));
  });
}

function associate(
  d: NetworkDeps,
  caller: Caller,
  fip: StoredRow,
  portId: string,
  fixedIp?: string,
): StoredRow {
  const port = visible(d, caller, 'port', portId);
  const pb = bodyOf(port);
  const ips = (pb.fixed_ips as { subnet_id: string; ip_address: string }[]).filter(
    (f) => !f.ip_address.includes(':'),
  );
  const chosen = fixedIp ? ips.find((f) => f.ip_address === fixedIp) : ips[0];
  if (!chosen)
    throw new BadRequest(
      `Bad floatingip request: Port ${portId} does not have fixed ip ${fixedIp ?? '(any IPv4)'}.`,
      'BadRequest',
    );
  const fb = bodyOf(fip);
  const taken = d.repo
    .floatingIpsOnPortExcept(portId, fb.floating_network_id, fip.id)
    .some((f) => bodyOf(f).fixed_ip_address === chosen.ip_address);
  if (taken)
    throw new Conflict(
      `Cannot associate floating IP ${String(fb.floating_ip_address)} with port ${portId} using fixed IP ${chosen.ip_address}, as that fixed IP already has a floating IP on external network ${String(fb.floating_network_id)}.`,
      'FloatingIPPortAlreadyAssociated',
    );
  const router = routerFor(d, String(fb.floating_network_id), chosen.subnet_id);
  if (!router)
    throw new NotFound(
      `External network ${String(fb.floating_network_id)} is not reachable from subnet ${chosen.subnet_id}. Therefore, cannot associate Port ${portId} with a Floating IP.`,
      'ExternalGatewayForFloatingIPNotFound',
    );
  return setFloatingPort(d, fip, { portId, fixedIp: chosen.ip_address, routerId: router });
}

/** A router with a gateway on the external network and an interface on the subnet. */
function routerFor(d: NetworkDeps, externalNetId: string, subnetId: string): string | undefined {
  for (const r of d.repo.all('router')) {
    const gw = bodyOf(r).external_gateway_info as { network_id?: string } | null;
    if (gw?.network_id !== externalNetId) continue;
    const has = routerPorts(d, r.id, DeviceOwner.RouterInterface).some((p) =>
      (bodyOf(p).fixed_ips as { subnet_id: string }[]).some((f) => f.subnet_id === subnetId),
    );
    if (has) return r.id;
  }
  return undefined;
}

export function deleteFloatingIp(d: NetworkDeps, r: StoredRow): void {
  d.repo.tx(() => {
    for (const p of d.repo.portsOfDeviceOwnedBy(r.id, DeviceOwner.FloatingIp)) deletePort(d, p);
    d.repo.remove('floating_ip', r.id);
  });
}
