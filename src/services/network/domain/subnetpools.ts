/**
 * @module Subnet pool arithmetic (Neutron subnet_allocation): check a pool's prefixes and prefix
 * lengths, and pick a free prefix for a new subnet. Pure functions, no I/O. The HTTP resource,
 * store and migration are not built yet (see docs/conformance.md).
 */
import { BadRequest } from '../../../core/errors.ts';
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
  const sorted = [...prefixes].sort((a, b) => (a.base < b.base ? -1 : a.base > b.base ? 1 : a.prefix - b.prefix));
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
  if (!Array.isArray(raw) || raw.length === 0) throw new BadRequest('"prefixes" must be a non-empty list of CIDRs.');
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
    throw new BadRequest(`"prefixlen" must lie between ${pool.minPrefixlen} and ${pool.maxPrefixlen} for this pool.`);
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
  if (cidr.version !== pool.ipVersion) throw new BadRequest('The cidr is not of the pool\'s IP version.');
  if (cidr.prefix < pool.minPrefixlen || cidr.prefix > pool.maxPrefixlen)
    throw new BadRequest(`The cidr prefix length must lie between ${pool.minPrefixlen} and ${pool.maxPrefixlen}.`);
  const inside = pool.prefixes.some((p) => p.prefix <= cidr.prefix && cidr.base >= p.base && lastOf(cidr) <= lastOf(p));
  if (!inside) throw new BadRequest(`The cidr ${cidrText(cidr)} is not inside the subnet pool's prefixes.`);
}
