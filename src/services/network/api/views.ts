/**
 * @module Neutron's bodies of network resources, as GET shows them: the stored attributes plus what is
 * derived from other rows (a network's subnets, a group's rules, a floating IP's port details) and the
 * availability zone (the owner site).
 */
import type { Obj } from '../../common/input.ts';
import type { NetworkRepository, StoredRow } from '../domain/deps.ts';
import { DHCP_UNSCHEDULED } from '../domain/agents.ts';
import { renderMetering } from '../domain/metering.ts';
import { bodyOf } from '../domain/records.ts';
import type { ResourceKind } from '../store/schema.ts';

export function renderNetwork(repo: NetworkRepository, r: StoredRow): Obj {
  const { [DHCP_UNSCHEDULED]: _dhcp, ...b } = bodyOf(r);
  return { ...b, subnets: repo.subnetIdsOf(r.id), availability_zones: [r.owner] };
}

export function renderSubnet(r: StoredRow): Obj {
  return bodyOf(r);
}

export function renderPort(r: StoredRow): Obj {
  return bodyOf(r);
}

export function renderGroup(repo: NetworkRepository, r: StoredRow): Obj {
  const rules = repo.rulesOfOrdered(r.id).map((x) => bodyOf(x));
  return { ...bodyOf(r), security_group_rules: rules };
}

export function renderRule(r: StoredRow): Obj {
  return bodyOf(r);
}

export function renderRouter(r: StoredRow): Obj {
  return { ...bodyOf(r), availability_zones: [r.owner] };
}

export function renderFloatingIp(repo: NetworkRepository, r: StoredRow): Obj {
  const b = bodyOf(r);
  if (b.port_id) {
    const p = repo.row('port', String(b.port_id));
    if (p) {
      const pb = bodyOf(p);
      b.port_details = {
        name: pb.name,
        network_id: pb.network_id,
        mac_address: pb.mac_address,
        admin_state_up: pb.admin_state_up,
        status: pb.status,
        device_id: pb.device_id,
        device_owner: pb.device_owner,
      };
    }
  }
  return b;
}

/** The view of each kind, for the generic collection routes. */
export function renderer(repo: NetworkRepository, kind: ResourceKind): (r: StoredRow) => Obj {
  switch (kind) {
    case 'network':
      return (r) => renderNetwork(repo, r);
    case 'subnet':
      return renderSubnet;
    case 'port':
      return renderPort;
    case 'security_group':
      return (r) => renderGroup(repo, r);
    case 'security_group_rule':
      return renderRule;
    case 'router':
      return renderRouter;
    case 'floating_ip':
      return (r) => renderFloatingIp(repo, r);
    case 'subnet_pool':
      return renderSubnetPool;
    case 'metering_label':
    case 'metering_label_rule':
      return renderMetering;
  }
}

export function renderSubnetPool(r: StoredRow): Obj {
  return JSON.parse(r.body) as Obj;
}
