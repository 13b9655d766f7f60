/**
 * @module Security groups and their rules
 * (https://docs.openstack.org/api-ref/network/v2/#security-groups-security-groups). Every project has
 * a "default" group, made once by the project's home site under an id derived from the project.
 */
import { BadRequest, Conflict } from '../../../core/errors.ts';
import { optBool, optStr } from '../../common/input.ts';
import type { Obj } from '../../common/input.ts';
import type { Caller } from './access.ts';
import { isAdmin, visible } from './access.ts';
import type { NetworkDeps, StoredRow } from './deps.ts';
import { cidrText, parseCidr } from './ip.ts';
import { checkQuota } from './quotas.ts';
import { bodyOf, bump, save, uuidFrom } from './records.ts';

/** The project's "default" group: made at the project's home site, once (its id is derived from the project). */
export function ensureDefaultGroup(d: NetworkDeps, projectId: string): string | undefined {
  const id = uuidFrom('default-security-group', projectId);
  if (d.repo.row('security_group', id)) return id;
  const home = d.repo.projectHome(projectId);
  if (home !== undefined && home !== d.site.name) return undefined;
  d.repo.tx(() => insertGroup(d, id, projectId, 'default', 'Default security group', true));
  return id;
}

function insertGroup(
  d: NetworkDeps,
  id: string,
  projectId: string,
  name: string,
  description: string,
  isDefault: boolean,
  stateful = true,
): void {
  save(
    d,
    'security_group',
    { name },
    {
      id,
      name,
      description,
      project_id: projectId,
      tenant_id: projectId,
      stateful,
      shared: false,
      tags: [],
    },
  );
  for (const ethertype of ['IPv4', 'IPv6']) {
    insertRule(d, projectId, { security_group_id: id, direction: 'egress', ethertype });
    if (isDefault)
      insertRule(d, projectId, {
        security_group_id: id,
        direction: 'ingress',
        ethertype,
        remote_group_id: id,
      });
  }
}

export function createGroup(d: NetworkDeps, projectId: string, o: Obj): StoredRow {
  const name = optStr(o, 'name') ?? '';
  if (name === 'default')
    throw new Conflict('Default security group already exists.', 'SecurityGroupDefaultAlreadyExists');
  const id = d.ids.uuid();
  d.repo.tx(() => {
    checkQuota(d, projectId, 'security_group');
    insertGroup(
      d,
      id,
      projectId,
      name,
      optStr(o, 'description') ?? '',
      false,
      optBool(o, 'stateful') ?? true,
    );
  });
  return d.repo.row('security_group', id)!;
}

export function updateGroup(d: NetworkDeps, r: StoredRow, o: Obj): StoredRow {
  const b = bump(bodyOf(r));
  const name = optStr(o, 'name');
  if (name !== undefined) {
    if (b.name === 'default' && name !== 'default')
      throw new Conflict(
        'Cannot update the default security group name.',
        'SecurityGroupCannotUpdateDefault',
      );
    // Renaming another group to "default" would make a second one (Neutron: 409).
    if (b.name !== 'default' && name === 'default')
      throw new Conflict('Default security group already exists.', 'SecurityGroupDefaultAlreadyExists');
    b.name = name;
  }
  const desc = optStr(o, 'description');
  if (desc !== undefined) b.description = desc;
  d.repo.tx(() => save(d, 'security_group', { name: b.name }, b));
  return d.repo.row('security_group', r.id)!;
}

export function deleteGroup(d: NetworkDeps, caller: Caller, r: StoredRow): void {
  const b = bodyOf(r);
  if (b.name === 'default' && !isAdmin(caller))
    throw new Conflict(
      'Insufficient rights for removing default security group.',
      'SecurityGroupCannotRemoveDefault',
    );
  d.repo.tx(() => {
    const inUse = d.repo
      .portsMentioning(r.id)
      .some((p) => (bodyOf(p).security_groups as string[]).includes(r.id));
    if (inUse) throw new Conflict(`Security Group ${r.id} in use.`, 'SecurityGroupInUse');
    for (const rule of d.repo.rulesOf(r.id)) d.repo.remove('security_group_rule', rule.id);
    d.repo.remove('security_group', r.id);
  });
}

function insertRule(d: NetworkDeps, projectId: string, o: Obj): Obj {
  const direction = optStr(o, 'direction');
  if (direction !== 'ingress' && direction !== 'egress')
    throw new BadRequest(
      `Invalid input for direction. Reason: '${String(direction)}' is not in ['ingress', 'egress'].`,
      'InvalidInput',
    );
  const ethertype = optStr(o, 'ethertype') ?? 'IPv4';
  if (ethertype !== 'IPv4' && ethertype !== 'IPv6')
    throw new BadRequest(`Invalid input for ethertype: ${ethertype}.`, 'InvalidInput');
  let protocol: string | null =
    o.protocol === undefined || o.protocol === null ? null : String(o.protocol).toLowerCase();
  if (protocol === 'any') protocol = null;
  const known = [
    'tcp',
    'udp',
    'icmp',
    'icmpv6',
    'ipv6-icmp',
    'sctp',
    'gre',
    'esp',
    'ah',
    'vrrp',
    'igmp',
    'ipip',
    'dccp',
    'ospf',
    'pgm',
    'rsvp',
    'udplite',
    'egp',
    'ipv6-encap',
    'ipv6-frag',
    'ipv6-nonxt',
    'ipv6-opts',
    'ipv6-route',
  ];
  if (protocol !== null && !known.includes(protocol) && !(/^\d+$/.test(protocol) && Number(protocol) <= 255))
    throw new BadRequest(
      `Security group rule protocol ${protocol} not supported.`,
      'SecurityGroupRuleInvalidProtocol',
    );
  const min = portValue(o.port_range_min);
  const max = portValue(o.port_range_max);
  if ((min !== null || max !== null) && protocol === null)
    throw new BadRequest(
      'Must also specify protocol if port range is given.',
      'SecurityGroupProtocolRequiredWithPorts',
    );
  checkPortRange(protocol, min, max);
  let prefix = optStr(o, 'remote_ip_prefix') ?? null;
  if (prefix !== null) {
    const c = parseCidr(
      prefix.includes('/') ? prefix : `${prefix}/${prefix.includes(':') ? 128 : 32}`,
      false,
    );
    if (!c) throw new BadRequest(`Invalid input for remote_ip_prefix: '${prefix}'.`, 'InvalidInput');
    if ((c.version === 4) !== (ethertype === 'IPv4'))
      throw new BadRequest(
        `Conflicting value ethertype ${ethertype} for CIDR ${prefix}`,
        'SecurityGroupRuleParameterConflict',
      );
    prefix = cidrText(c);
  }
  const remoteGroup = optStr(o, 'remote_group_id') ?? null;
  if (remoteGroup && prefix)
    throw new BadRequest(
      'Only remote_ip_prefix or remote_group_id may be provided.',
      'SecurityGroupRemoteGroupAndRemoteIpPrefix',
    );
  const groupId = String(o.security_group_id);
  const rule: Obj = {
    security_group_id: groupId,
    direction,
    ethertype,
    protocol,
    port_range_min: min,
    port_range_max: max,
    remote_ip_prefix: prefix,
    remote_group_id: remoteGroup,
    remote_address_group_id: null,
    normalized_cidr: prefix,
    description: optStr(o, 'description') ?? '',
    project_id: projectId,
    tenant_id: projectId,
    belongs_to_default_sg: false,
  };
  const same = (x: Obj) =>
    [
      'direction',
      'ethertype',
      'protocol',
      'port_range_min',
      'port_range_max',
      'remote_ip_prefix',
      'remote_group_id',
    ].every((k) => x[k] === rule[k]);
  const dup = d.repo.rulesOf(groupId).find((x) => same(bodyOf(x)));
  if (dup)
    throw new Conflict(
      `Security group rule already exists. Rule id is ${dup.id}.`,
      'SecurityGroupRuleExists',
    );
  const id = d.ids.uuid();
  const body = { id, ...rule };
  save(d, 'security_group_rule', { security_group_id: groupId }, body);
  return body;
}

export function createRule(d: NetworkDeps, caller: Caller, group: StoredRow, o: Obj): Obj {
  // Neutron looks the remote group up as the caller: another project's group is a 404.
  const remote = optStr(o, 'remote_group_id');
  if (remote) visible(d, caller, 'security_group', remote, 'security group');
  return d.repo.tx(() => {
    checkQuota(d, group.project_id, 'security_group_rule');
    const b = insertRule(d, group.project_id, { ...o, security_group_id: group.id });
    return bodyOf(d.repo.row('security_group_rule', String(b.id))!);
  });
}

export function deleteRule(d: NetworkDeps, r: StoredRow): void {
  d.repo.tx(() => d.repo.remove('security_group_rule', r.id));
}

/** A port bound as Neutron converts it: null, or an integer 0-65535 (else "Invalid value for port"). */
function portValue(v: unknown): number | null {
  if (v === undefined || v === null) return null;
  const n = typeof v === 'string' && /^-?\d+$/.test(v.trim()) ? Number(v) : v;
  if (typeof n !== 'number' || !Number.isInteger(n) || n < 0 || n > 65535)
    throw new BadRequest(`Invalid value for port ${String(v)}`, 'InvalidInput');
  return n;
}

const PORT_PROTOCOLS = ['tcp', 'udp', 'dccp', 'sctp', 'udplite', '6', '17', '33', '132', '136'];
const ICMP_PROTOCOLS = ['icmp', 'icmpv6', 'ipv6-icmp', '1', '58'];

/** Neutron's port range rules: ports for TCP-like protocols, ICMP type and code for ICMP. */
function checkPortRange(protocol: string | null, min: number | null, max: number | null): void {
  if (min === null && max === null) return;
  if (protocol !== null && PORT_PROTOCOLS.includes(protocol)) {
    if (min === 0 || max === 0) throw new BadRequest('Invalid value for port 0', 'InvalidPortValue');
    if (min === null || max === null || min > max)
      throw new BadRequest(
        'For TCP/UDP protocols, port_range_min must be <= port_range_max',
        'SecurityGroupInvalidPortRange',
      );
  } else if (protocol !== null && ICMP_PROTOCOLS.includes(protocol)) {
    for (const [v, field, attr] of [
      [min, 'type', 'port_range_min'],
      [max, 'code', 'port_range_max'],
    ] as const)
      if (v !== null && v > 255)
        throw new BadRequest(
          `Invalid value for ICMP ${field} (${attr}) ${v}. It must be 0 to 255.`,
          'SecurityGroupInvalidIcmpValue',
        );
    if (min === null)
      throw new BadRequest(
        `ICMP code (port-range-max) ${max} is provided but ICMP type (port-range-min) is missing.`,
        'SecurityGroupMissingIcmpType',
      );
  }
}
