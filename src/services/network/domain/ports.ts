/**
 * @module Ports (https://docs.openstack.org/api-ref/network/v2/#ports): made on the site where they are
 * used, on any site's network, with addresses from IPAM (blocks leased to this site on another site's
 * subnet), a MAC unique in the network, and the project's default security group unless told otherwise.
 */
import { BadRequest, Conflict, Forbidden, NotFound } from '../../../core/errors.ts';
import { isObj, optBool, optStr } from '../../common/input.ts';
import type { Obj } from '../../common/input.ts';
import { NeedLease, ipAllocationFailed } from '../store/ipam.ts';
import type { Caller } from './access.ts';
import { canSee, isAdmin, visible } from './access.ts';
import { setFloatingPort } from './associations.ts';
import type { NetworkDeps, StoredRow } from './deps.ts';
import { contains, parseCidr, requireIp } from './ip.ts';
import { checkQuota } from './quotas.ts';
import {
  DeviceOwner,
  bindingOf,
  bodyOf,
  bump,
  onNetworkHead,
  optStrListOf,
  save,
  setGiven,
} from './records.ts';
import { ensureDefaultGroup } from './security-groups.ts';
import { subnetForIpam } from './subnets.ts';

const MAC = /^([0-9a-fA-F]{2}:){5}[0-9a-fA-F]{2}$/;

function newMac(d: NetworkDeps, networkId: string): string {
  for (let i = 0; i < 64; i++) {
    const b = d.randomBytes(3);
    const mac = `${d.macPrefix}:${[...b].map((x) => x.toString(16).padStart(2, '0')).join(':')}`;
    if (!d.repo.macInUse(networkId, mac)) return mac;
  }
  throw new Conflict('Unable to generate a unique mac address.', 'MacAddressGenerationFailure');
}

/**
 * Creates a port and its addresses in one transaction. `fixed_ips` entries are {subnet_id?, ip_address?};
 * without them the port gets one address from the first IPv4 subnet with room and one from the first
 * IPv6 subnet with room (Neutron's default).
 */
export function createPort(d: NetworkDeps, caller: Caller, projectId: string, net: StoredRow, o: Obj): Obj {
  if (!canSee(d, caller, 'network', net))
    throw new NotFound(`Network ${net.id} could not be found.`, 'NetworkNotFound');
  const nb = bodyOf(net);
  if (!isAdmin(caller) && net.project_id !== projectId && nb.shared !== true)
    throw new Forbidden(`(rule:create_port) is disallowed by policy on network ${net.id}`);
  const id = d.ids.uuid();
  const deviceOwner = optStr(o, 'device_owner') ?? '';
  const deviceId = optStr(o, 'device_id') ?? '';
  const host = optStr(o, 'binding:host_id') ?? '';
  const portSecurity = optBool(o, 'port_security_enabled') ?? nb.port_security_enabled !== false;
  const macIn = optStr(o, 'mac_address');
  if (macIn !== undefined && !MAC.test(macIn))
    throw new BadRequest(
      `Invalid input for mac_address. Reason: '${macIn}' is not a valid MAC address.`,
      'InvalidInput',
    );
  return d.repo.tx(() => {
    checkQuota(d, projectId, 'port');
    let mac = macIn?.toLowerCase();
    if (mac && d.repo.macInUse(net.id, mac))
      throw new Conflict(
        `Unable to complete operation for network ${net.id}. The mac address ${mac} is in use.`,
        'MacAddressInUse',
      );
    mac ??= newMac(d, net.id);
    const fixedIps = allocateFixedIps(d, net, id, o.fixed_ips, deviceOwner);
    let groups: string[] = [];
    if (o.security_groups !== undefined && o.security_groups !== null) {
      groups = optStrListOf(o, 'security_groups');
      for (const g of groups) visible(d, caller, 'security_group', g, 'security group');
    } else if (portSecurity && !deviceOwner.startsWith('network:')) {
      const dg = ensureDefaultGroup(d, projectId);
      if (dg) groups = [dg];
    }
    if (!portSecurity && groups.length && o.security_groups !== undefined)
      throw new BadRequest(
        'Port has port security disabled and security groups given.',
        'PortSecurityAndIPRequiredForSecurityGroups',
      );
    if (!portSecurity) groups = [];
    const body: Obj = {
      ...onNetworkHead(id, projectId, net.id, o),
      mac_address: mac,
      admin_state_up: optBool(o, 'admin_state_up') ?? true,
      status: deviceId ? 'ACTIVE' : 'DOWN',
      device_id: deviceId,
      device_owner: deviceOwner,
      fixed_ips: fixedIps,
      allowed_address_pairs: Array.isArray(o.allowed_address_pairs) ? o.allowed_address_pairs : [],
      extra_dhcp_opts: Array.isArray(o.extra_dhcp_opts) ? o.extra_dhcp_opts : [],
      security_groups: groups,
      port_security_enabled: portSecurity,
      'binding:host_id': host,
      'binding:vnic_type': optStr(o, 'binding:vnic_type') ?? 'normal',
      'binding:vif_type': host ? 'ovs' : 'unbound',
      'binding:vif_details': host ? { port_filter: true } : {},
      'binding:profile': isObj(o['binding:profile']) ? o['binding:profile'] : {},
      dns_name: optStr(o, 'dns_name') ?? '',
      dns_assignment: [],
      ip_allocation: 'immediate',
      propagate_uplink_status: false,
      qos_policy_id: null,
      qos_network_policy_id: null,
      resource_request: null,
      tags: [],
    };
    savePort(d, body);
    if (host) d.driver.portBound(bindingOf(body));
    // The stored body: it carries the standard attributes save() stamps (created_at, updated_at,
    // revision_number), which Neutron's create answer has too.
    const saved = d.repo.row('port', String(body.id));
    return saved ? bodyOf(saved) : body;
  });
}

function savePort(d: NetworkDeps, b: Obj): void {
  save(
    d,
    'port',
    {
      network_id: b.network_id,
      name: b.name,
      mac_address: b.mac_address,
      device_id: b.device_id,
      device_owner: b.device_owner,
    },
    b,
  );
}

function allocateFixedIps(
  d: NetworkDeps,
  net: StoredRow,
  portId: string,
  req: unknown,
  deviceOwner: string,
): { subnet_id: string; ip_address: string }[] {
  const subnets = d.repo.subnetsOfOrdered(net.id);
  const mayUseGateway =
    deviceOwner === DeviceOwner.RouterInterface || deviceOwner === DeviceOwner.RouterGateway;
  const out: { subnet_id: string; ip_address: string }[] = [];
  if (req !== undefined && req !== null) {
    if (!Array.isArray(req))
      throw new BadRequest('Invalid input for fixed_ips. Reason: must be a list.', 'InvalidInput');
    for (const f of req) {
      if (!isObj(f)) throw new BadRequest('Invalid input for fixed_ips.', 'InvalidInput');
      const ipText0 = typeof f.ip_address === 'string' ? f.ip_address : undefined;
      let s: StoredRow | undefined;
      if (typeof f.subnet_id === 'string') {
        s = subnets.find((x) => x.id === f.subnet_id);
        if (!s) {
          if (!d.repo.row('subnet', f.subnet_id))
            throw new NotFound(`Subnet ${f.subnet_id} could not be found.`, 'SubnetNotFound');
          throw new BadRequest(
            `Invalid input for operation: Failed to create port on network ${net.id}, because fixed_ips included invalid subnet ${f.subnet_id}.`,
            'InvalidInput',
          );
        }
      } else if (ipText0 !== undefined) {
        const ip = requireIp(ipText0, 'fixed_ips.ip_address');
        s = subnets.find((x) => contains(parseCidr(String(x.cidr), false)!, ip));
        if (!s)
          throw new BadRequest(
            `IP address ${ipText0} is not a valid IP for any of the subnets on the specified network.`,
            'InvalidIpForNetwork',
          );
      } else if (typeof f.subnet === 'string') {
        throw new BadRequest('Invalid input for fixed_ips: use subnet_id.', 'InvalidInput');
      } else
        throw new BadRequest(
          'Invalid input for fixed_ips: each entry needs subnet_id or ip_address.',
          'InvalidInput',
        );
      out.push({
        subnet_id: s.id,
        ip_address: d.ipam.allocate(subnetForIpam(s), portId, ipText0, mayUseGateway),
      });
    }
    return out;
  }
  for (const version of [4, 6]) {
    const family = subnets.filter((s) => s.ip_version === version);
    if (!family.length) continue;
    let got = false;
    // A subnet another site owns where we hold no block with room: remembered, and thrown if no
    // subnet of the family has room, so the caller asks its owner for a lease and tries again.
    let needLease: NeedLease | undefined;
    for (const s of family) {
      try {
        out.push({ subnet_id: s.id, ip_address: d.ipam.allocate(subnetForIpam(s), portId) });
        got = true;
        break;
      } catch (e) {
        if (e instanceof NeedLease) needLease ??= e;
        else if ((e as { detailType?: string }).detailType !== 'IpAddressGenerationFailure') throw e;
      }
    }
    if (!got) throw needLease ?? ipAllocationFailed(net.id);
  }
  return out;
}

export function updatePort(d: NetworkDeps, caller: Caller, r: StoredRow, o: Obj): Obj {
  return d.repo.tx(() => {
    const before = bodyOf(r);
    const b = bump(before);
    setGiven(b, o, optStr, [
      'name',
      'description',
      'device_id',
      'device_owner',
      'binding:host_id',
      'binding:vnic_type',
      'dns_name',
    ]);
    setGiven(b, o, optBool, ['admin_state_up', 'port_security_enabled']);
    if (isObj(o['binding:profile'])) b['binding:profile'] = o['binding:profile'];
    if (Array.isArray(o.allowed_address_pairs)) b.allowed_address_pairs = o.allowed_address_pairs;
    if (Array.isArray(o.extra_dhcp_opts))
      b.extra_dhcp_opts = mergeDhcpOpts(b.extra_dhcp_opts, o.extra_dhcp_opts);
    if (o.security_groups !== undefined) {
      const groups = o.security_groups === null ? [] : optStrListOf(o, 'security_groups');
      for (const g of groups) visible(d, caller, 'security_group', g, 'security group');
      b.security_groups = groups;
    }
    if (b.port_security_enabled === false && Array.isArray(b.security_groups) && b.security_groups.length) {
      if (o.security_groups !== undefined && (o.security_groups as unknown[] | null)?.length)
        throw new Conflict(
          'Port has security groups; remove them to disable port security.',
          'PortSecurityPortHasSecurityGroup',
        );
      b.security_groups = [];
    }
    if (o.mac_address !== undefined && o.mac_address !== before.mac_address)
      throw new BadRequest('Changing the MAC address of a port is not supported.', 'InvalidInput');
    if (o.fixed_ips !== undefined) {
      const net = d.repo.row('network', String(r.network_id))!;
      const wanted = Array.isArray(o.fixed_ips) ? (o.fixed_ips as Obj[]) : [];
      const current = before.fixed_ips as { subnet_id: string; ip_address: string }[];
      const keep = current.filter((c) => wanted.some((w) => isObj(w) && w.ip_address === c.ip_address));
      for (const c of current) if (!keep.includes(c)) d.ipam.release(c.subnet_id, c.ip_address);
      const fresh = wanted.filter((w) => !(isObj(w) && keep.some((k) => k.ip_address === w.ip_address)));
      b.fixed_ips = [...keep, ...allocateFixedIps(d, net, r.id, fresh, String(b.device_owner))];
    }
    b.status = b.device_id ? 'ACTIVE' : 'DOWN';
    b['binding:vif_type'] = b['binding:host_id'] ? 'ovs' : 'unbound';
    savePort(d, b);
    if (b['binding:host_id']) d.driver.portBound(bindingOf(b));
    else if (before['binding:host_id']) d.driver.portUnbound(r.id);
    return b;
  });
}

/** Deletes a port this site owns, its addresses and its floating IP associations. */
export function deletePort(d: NetworkDeps, r: StoredRow): void {
  d.repo.tx(() => {
    d.ipam.releasePort(r.id);
    for (const f of d.repo.floatingIpsOfPort(r.id, d.site.name)) setFloatingPort(d, f, null);
    d.repo.remove('port', r.id);
  });
  d.driver.portUnbound(r.id);
}

/**
 * An update's extra_dhcp_opts, as Neutron applies them: each option replaces the one of the same
 * name and IP version, or is added; one whose opt_value is null removes it.
 */
function mergeDhcpOpts(current: unknown, given: unknown[]): Obj[] {
  const out = (Array.isArray(current) ? current : []).filter(isObj).map((x) => ({ ...x }));
  const key = (x: Obj) => `${String(x.opt_name)}/${String(x.ip_version ?? 4)}`;
  for (const g of given) {
    if (!isObj(g) || typeof g.opt_name !== 'string')
      throw new BadRequest('Invalid input for extra_dhcp_opts.', 'InvalidInput');
    const i = out.findIndex((x) => key(x) === key(g));
    if (g.opt_value === null) {
      if (i >= 0) out.splice(i, 1);
    } else if (i >= 0) out[i] = { ...out[i], ...g };
    else out.push({ ...g });
  }
  return out;
}
