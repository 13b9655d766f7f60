/**
 * @module Helpers every network command shares: reading a row's Neutron body, writing it back with
 * Neutron's standard attributes (timestamps, revision_number), PUT's "set what is given", and the
 * small vocabularies (device owners, ids the body must carry).
 */
import { createHash } from 'node:crypto';
import { BadRequest } from '../../../core/errors.ts';
import { novaTime, optBool, optStr } from '../../common/input.ts';
import type { Obj } from '../../common/input.ts';
import type { ResourceKind } from '../store/schema.ts';
import type { NetworkDeps, StoredRow } from './deps.ts';
import type { PortBinding } from './driver.ts';

export const DeviceOwner = {
  RouterInterface: 'network:router_interface',
  RouterGateway: 'network:router_gateway',
  FloatingIp: 'network:floatingip',
  Dhcp: 'network:dhcp',
} as const;

export function bodyOf(r: StoredRow): Obj {
  return JSON.parse(r.body) as Obj;
}

/** Writes a resource: `cols` are its filter columns, `body` its attributes (stamped here). */
export function save(d: NetworkDeps, kind: ResourceKind, cols: Obj, body: Obj): void {
  const now = d.clock.now();
  const created = typeof body.created_at === 'string' ? Date.parse(body.created_at) : now;
  const rev = typeof body.revision_number === 'number' ? body.revision_number : 0;
  const full: Obj = {
    ...body,
    created_at: novaTime(created),
    updated_at: novaTime(now),
    revision_number: rev,
  };
  d.repo.save(kind, {
    id: String(body.id),
    ...cols,
    project_id: String(body.project_id ?? ''),
    body: full,
    created_at: created,
    updated_at: now,
  });
}

/** Writes a changed body back to an existing row, its filter columns as they are. */
export function saveBody(d: NetworkDeps, kind: ResourceKind, r: StoredRow, body: Obj): void {
  const { body: _body, created_at: _created, updated_at: _updated, ...cols } = r;
  save(d, kind, cols, body);
}

/** The body with its revision_number one up (every update). */
export function bump(body: Obj): Obj {
  return {
    ...body,
    revision_number: (typeof body.revision_number === 'number' ? body.revision_number : 0) + 1,
  };
}

/** An id the body must carry; Neutron calls a missing one an invalid UUID (InvalidInput, 400). */
export function requiredRef(o: Obj, field: string): string {
  const v = optStr(o, field);
  if (!v)
    throw new BadRequest(`Invalid input for ${field}. Reason: 'None' is not a valid UUID.`, 'InvalidInput');
  return v;
}

/** A new project resource's first fields, in Neutron's order; `networkId` for one on a network. */
function projectHead(id: string, projectId: string, o: Obj, networkId?: string): Obj {
  return {
    id,
    name: optStr(o, 'name') ?? '',
    description: optStr(o, 'description') ?? '',
    ...(networkId === undefined ? {} : { network_id: networkId }),
    project_id: projectId,
    tenant_id: projectId,
  };
}

/** The first fields of a new network or router (an administratively up, ACTIVE project resource). */
export function activeHead(id: string, projectId: string, o: Obj): Obj {
  return {
    ...projectHead(id, projectId, o),
    admin_state_up: optBool(o, 'admin_state_up') ?? true,
    status: 'ACTIVE',
  };
}

/** The first fields of a new port or subnet: a project's resource on a network. */
export function onNetworkHead(id: string, projectId: string, networkId: string, o: Obj): Obj {
  return projectHead(id, projectId, o, networkId);
}

/** An update sets the fields the body gives, read by `read`, and keeps the rest (Neutron's PUT). */
export function setGiven(
  b: Obj,
  o: Obj,
  read: (o: Obj, k: string) => unknown,
  fields: readonly string[],
): void {
  for (const k of fields) {
    const v = read(o, k);
    if (v !== undefined) b[k] = v;
  }
}

export function optStrListOf(o: Obj, field: string): string[] {
  const v = o[field];
  if (v === undefined || v === null) return [];
  if (!Array.isArray(v) || !v.every((x) => typeof x === 'string'))
    throw new BadRequest(`Invalid input for ${field}: must be a list of strings.`, 'InvalidInput');
  return v as string[];
}

/** A stable UUID from parts (for rows every site must agree on, like a project's default group). */
export function uuidFrom(...parts: string[]): string {
  const h = createHash('sha256').update(parts.join('\0')).digest('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-4${h.slice(13, 16)}-a${h.slice(17, 20)}-${h.slice(20, 32)}`;
}

/** What the driver is told of a bound port. */
export function bindingOf(b: Obj): PortBinding {
  return {
    portId: String(b.id),
    networkId: String(b.network_id),
    macAddress: String(b.mac_address),
    fixedIps: (b.fixed_ips as { subnet_id: string; ip_address: string }[]).map((f) => ({
      subnetId: f.subnet_id,
      ipAddress: f.ip_address,
    })),
    deviceId: String(b.device_id),
    deviceOwner: String(b.device_owner),
    hostId: String(b['binding:host_id']),
  };
}
