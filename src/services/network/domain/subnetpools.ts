/**
 * @module Subnet pool arithmetic (Neutron subnet_allocation): check a pool's prefixes and prefix
 * lengths, and pick a free prefix for a new subnet. Pure functions, no I/O.
 * Also the pool resource's create, update and delete.
 */
import { BadRequest, Conflict, Forbidden } from '../../../core/errors.ts';
import { optBool, optStr } from '../../common/input.ts';
import type { Obj } from '../../common/input.ts';
import type { Caller } from './access.ts';
import { isAdmin } from './access.ts';
import type { NetworkDeps, StoredRow } from './deps.ts';
import { bodyOf, bump, save, setGiven } from './records.ts';
import { type Cidr, type IpVersion, cidrText, lastOf, overlaps, parseCidr, size } from './ip.ts';

const BITS = { 4: 32, 6: 128 } as const;

export interface PoolShape {
  ipVersion: IpVersion;
  prefixes: Cidr[];
  minPrefixlen: number;
  maxPrefixlen: number;
  defaultPrefixlen: number;
}

export interface PoolInput {
  prefixes: unknown;
  min_prefixlen?: unknown;
  max_prefixlen?: unknown;
  default_prefixlen?: unknown;
}

function prefixLen(v: unknown, field: string, bits: number): number | undefined {
  if (v === undefined || v === null) return undefined;
  const n = typeof v === 'string' && /^\d{1,3}$/.test(v) ? Number(v) : v;
  if (typeof n !== 'number' || !Number.isInteger(n) || n < 0 || n > bits)
    throw new BadRequest(`"${field}" must be an integer from 0 to ${bits}.`);
  return n;
}

/** Merge prefixes that overlap or touch so the pool is a set of disjoint blocks, sorted. */
export function compact(prefixes: Cidr[]): Cidr[] {
  const sorted = [...prefixes].sort((a, b) =>
    a.base < b.base ? -1 : a.base > b.base ? 1 : a.prefix - b.prefix,
  );
  const out: Cidr[] = [];
  for (const c of sorted) {
    const last = out[out.length - 1];
    if (last && overlaps(last, c)) {
      if (c.prefix < last.prefix) out[out.length - 1] = c;
      continue;
    }
    out.push(c);
  }
  return out;
}

/** Validate a create body's prefix fields; 400 on bad or mixed-family prefixes or inconsistent lengths. */
export function poolShape(input: PoolInput): PoolShape {
  const raw = input.prefixes;
  if (!Array.isArray(raw) || raw.length === 0)
    throw new BadRequest('"prefixes" must be a non-empty list of CIDRs.');
  const prefixes: Cidr[] = [];
  for (const p of raw) {
    const c = typeof p === 'string' ? parseCidr(p, false) : undefined;
    if (!c) throw new BadRequest(`Invalid prefix ${JSON.stringify(p)} in "prefixes".`);
    prefixes.push({ ...c, base: c.base & ~(size(c) - 1n) });
  }
  const ipVersion = prefixes[0]!.version;
  if (prefixes.some((c) => c.version !== ipVersion)) throw new BadRequest('"prefixes" mixes IPv4 and IPv6.');
  const bits = BITS[ipVersion];
  const minPrefixlen = prefixLen(input.min_prefixlen, 'min_prefixlen', bits) ?? (ipVersion === 4 ? 8 : 64);
  const maxPrefixlen = prefixLen(input.max_prefixlen, 'max_prefixlen', bits) ?? bits;
  const defaultPrefixlen = prefixLen(input.default_prefixlen, 'default_prefixlen', bits) ?? minPrefixlen;
  if (minPrefixlen > maxPrefixlen) throw new BadRequest('"min_prefixlen" is greater than "max_prefixlen".');
  if (defaultPrefixlen < minPrefixlen || defaultPrefixlen > maxPrefixlen)
    throw new BadRequest('"default_prefixlen" must lie between "min_prefixlen" and "max_prefixlen".');
  // Like Neutron, a min_prefixlen wider than every prefix is accepted; allocate() then finds no block.
  return { ipVersion, prefixes: compact(prefixes), minPrefixlen, maxPrefixlen, defaultPrefixlen };
}

/** Pick the lowest free block of `prefixlen` inside the pool that overlaps none of `used`. */
export function allocate(pool: PoolShape, used: Cidr[], prefixlen = pool.defaultPrefixlen): Cidr | undefined {
  if (prefixlen < pool.minPrefixlen || prefixlen > pool.maxPrefixlen)
    throw new BadRequest(
      `"prefixlen" must lie between ${pool.minPrefixlen} and ${pool.maxPrefixlen} for this pool.`,
    );
  const taken = compact(used.filter((u) => u.version === pool.ipVersion));
  for (const p of pool.prefixes) {
    if (p.prefix > prefixlen) continue;
    const step = size({ version: pool.ipVersion, base: 0n, prefix: prefixlen });
    let base = p.base;
    const end = lastOf(p);
    while (base <= end) {
      const cand: Cidr = { version: pool.ipVersion, base, prefix: prefixlen };
      const clash = taken.find((t) => overlaps(t, cand));
      if (!clash) return cand;
      // skip past the clashing block, aligned up to the candidate size
      const next = lastOf(clash) + 1n;
      base = next > base ? ((next + step - 1n) / step) * step : base + step;
    }
  }
  return undefined;
}

/** A requested cidr must sit inside one pool prefix and respect the pool's prefix lengths. */
export function checkInside(pool: PoolShape, cidr: Cidr): void {
  if (cidr.version !== pool.ipVersion) throw new BadRequest("The cidr is not of the pool's IP version.");
  if (cidr.prefix < pool.minPrefixlen || cidr.prefix > pool.maxPrefixlen)
    throw new BadRequest(
      `The cidr prefix length must lie between ${pool.minPrefixlen} and ${pool.maxPrefixlen}.`,
    );
  const inside = pool.prefixes.some(
    (p) => p.prefix <= cidr.prefix && cidr.base >= p.base && lastOf(cidr) <= lastOf(p),
  );
  if (!inside) throw new BadRequest(`The cidr ${cidrText(cidr)} is not inside the subnet pool's prefixes.`);
}

/** The shape of a stored pool's body. */
export function shapeOf(b: Obj): PoolShape {
  return poolShape({
    prefixes: b.prefixes,
    min_prefixlen: b.min_prefixlen,
    max_prefixlen: b.max_prefixlen,
    default_prefixlen: b.default_prefixlen,
  });
}

function lengths(s: PoolShape): Obj {
  return {
    ip_version: s.ipVersion,
    prefixes: s.prefixes.map(cidrText),
    min_prefixlen: String(s.minPrefixlen),
    max_prefixlen: String(s.maxPrefixlen),
    default_prefixlen: String(s.defaultPrefixlen),
  };
}

export function createSubnetPool(d: NetworkDeps, caller: Caller, projectId: string, o: Obj): StoredRow {
  const shared = optBool(o, 'shared') ?? false;
  const isDefault = optBool(o, 'is_default') ?? false;
  if ((shared || isDefault) && !isAdmin(caller))
    throw new Forbidden('(rule:create_subnetpool:shared) is disallowed by policy');
  if (o.address_scope_id !== undefined && o.address_scope_id !== null)
    throw new BadRequest('Address scopes are not supported.', 'InvalidInput');
  const shape = poolShape({ ...o, prefixes: o.prefixes });
  const id = d.ids.uuid();
  const body: Obj = {
    id,
    name: optStr(o, 'name') ?? '',
    description: optStr(o, 'description') ?? '',
    project_id: projectId,
    tenant_id: projectId,
    ...lengths(shape),
    shared,
    is_default: isDefault,
    address_scope_id: null,
    default_quota: null,
    tags: [],
  };
  d.repo.tx(() => save(d, 'subnet_pool', { name: body.name, shared: shared ? 1 : 0 }, body));
  return d.repo.row('subnet_pool', id)!;
}

export function updateSubnetPool(d: NetworkDeps, caller: Caller, r: StoredRow, o: Obj): StoredRow {
  const b = bump(bodyOf(r));
  setGiven(b, o, optStr, ['name', 'description']);
  const isDefault = optBool(o, 'is_default');
  if (isDefault !== undefined) {
    if (!isAdmin(caller)) throw new Forbidden('(rule:update_subnetpool:is_default) is disallowed by policy');
    b.is_default = isDefault;
  }
  if (o.shared !== undefined)
    throw new BadRequest('"shared" cannot be changed on a subnet pool.', 'InvalidInput');
  const old = shapeOf(b);
  const merged = {
    prefixes: o.prefixes ?? b.prefixes,
    min_prefixlen: o.min_prefixlen ?? b.min_prefixlen,
    max_prefixlen: o.max_prefixlen ?? b.max_prefixlen,
    default_prefixlen: o.default_prefixlen ?? b.default_prefixlen,
  };
  const next = poolShape(merged);
  if (next.ipVersion !== old.ipVersion) throw new BadRequest('A subnet pool cannot change IP version.');
  // Prefixes may only grow: every old block must stay inside the new ones (Neutron).
  for (const p of old.prefixes) checkInside({ ...next, minPrefixlen: 0, maxPrefixlen: 128 }, p);
  Object.assign(b, lengths(next));
  d.repo.tx(() => save(d, 'subnet_pool', { name: b.name, shared: b.shared ? 1 : 0 }, b));
  return d.repo.row('subnet_pool', r.id)!;
}

export function deleteSubnetPool(d: NetworkDeps, r: StoredRow): void {
  d.repo.tx(() => {
    const inUse = d.repo.all('subnet').some((s) => bodyOf(s).subnetpool_id === r.id);
    if (inUse) throw new Conflict(`Subnet pool ${r.id} is in use by one or more subnets.`, 'SubnetPoolInUse');
    d.repo.remove('subnet_pool', r.id);
  });
}
