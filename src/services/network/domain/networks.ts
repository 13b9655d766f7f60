/**
 * @module Networks (https://docs.openstack.org/api-ref/network/v2/#networks): made by any site and
 * owned by it; shared and external ones are seen by every project.
 */
import { BadRequest, Conflict, Forbidden } from '../../../core/errors.ts';
import { optBool, optInt, optStr } from '../../common/input.ts';
import type { Obj } from '../../common/input.ts';
import type { Caller } from './access.ts';
import { isAdmin } from './access.ts';
import type { NetworkDeps, StoredRow } from './deps.ts';
import { checkQuota } from './quotas.ts';
import { DeviceOwner, activeHead, bodyOf, bump, optStrListOf, save, setGiven } from './records.ts';
import { deleteFloatingIp } from './floating-ips.ts';
import { deleteSubnet } from './subnets.ts';

export function createNetwork(d: NetworkDeps, caller: Caller, projectId: string, o: Obj): StoredRow {
  const shared = optBool(o, 'shared') ?? false;
  const external = optBool(o, 'router:external') ?? false;
  if ((shared || external) && !isAdmin(caller))
    throw new Forbidden('(rule:create_network:shared) is disallowed by policy');
  const hints = optStrListOf(o, 'availability_zone_hints');
  for (const h of hints)
    if (!d.site.knows(h) && h !== d.site.name)
      throw new BadRequest(`AvailabilityZone ${h} could not be found.`, 'AvailabilityZoneNotFound');
  const mtu = optInt(o, 'mtu', 68, 9216) ?? 1500;
  const id = d.ids.uuid();
  const body: Obj = {
    ...activeHead(id, projectId, o),
    shared,
    'router:external': external,
    mtu,
    availability_zone_hints: hints,
    port_security_enabled: optBool(o, 'port_security_enabled') ?? true,
    ipv4_address_scope: null,
    ipv6_address_scope: null,
    is_default: optBool(o, 'is_default') ?? false,
    l2_adjacency: true,
    qos_policy_id: null,
    dns_domain: optStr(o, 'dns_domain') ?? '',
    'provider:network_type': optStr(o, 'provider:network_type') ?? 'local',
    'provider:physical_network': optStr(o, 'provider:physical_network') ?? null,
    'provider:segmentation_id': optInt(o, 'provider:segmentation_id') ?? null,
    tags: [],
  };
  d.repo.tx(() => {
    checkQuota(d, projectId, 'network');
    save(d, 'network', { name: body.name, shared: shared ? 1 : 0, external: external ? 1 : 0 }, body);
  });
  return d.repo.row('network', id)!;
}

export function updateNetwork(d: NetworkDeps, caller: Caller, r: StoredRow, o: Obj): StoredRow {
  const b = bump(bodyOf(r));
  setGiven(b, o, optStr, ['name', 'description', 'dns_domain']);
  setGiven(b, o, optBool, ['admin_state_up', 'port_security_enabled', 'is_default']);
  for (const k of ['shared', 'router:external'] as const) {
    const v = optBool(o, k);
    if (v === undefined) continue;
    if (!isAdmin(caller)) throw new Forbidden(`(rule:update_network:${k}) is disallowed by policy`);
    b[k] = v;
  }
  const mtu = optInt(o, 'mtu', 68, 9216);
  if (mtu !== undefined) b.mtu = mtu;
  d.repo.tx(() =>
    save(d, 'network', { name: b.name, shared: b.shared ? 1 : 0, external: b['router:external'] ? 1 : 0 }, b),
  );
  return d.repo.row('network', r.id)!;
}

export function deleteNetwork(d: NetworkDeps, r: StoredRow): void {
  d.repo.tx(() => {
    // An external network goes with its unassociated floating IPs made here (as in Neutron); any other
    // port keeps it, a floating IP another site made included (that site deletes it).
    const ports = d.repo.portsOfExcept(r.id, DeviceOwner.Dhcp).filter((p) => {
      if (p.device_owner !== DeviceOwner.FloatingIp) return true;
      const fip = d.repo.row('floating_ip', String(p.device_id));
      if (!fip || fip.owner !== d.site.name || bodyOf(fip).port_id) return true;
      deleteFloatingIp(d, fip);
      return false;
    });
    if (ports.length)
      throw new Conflict(
        `Unable to complete operation on network ${r.id}. There are one or more ports still in use on the network.`,
        'NetworkInUse',
      );
    for (const s of d.repo.subnetsOf(r.id)) {
      if (s.owner !== d.site.name)
        throw new Conflict(
          `Network ${r.id} has subnet ${s.id} owned by site ${s.owner}; delete it there first.`,
          'NetworkInUse',
        );
      deleteSubnet(d, s);
    }
    d.repo.remove('network', r.id);
  });
}
