/**
 * @module IP address arithmetic for IPAM: parse and print IPv4/IPv6 (RFC 5952 canonical text), CIDRs,
 * allocation pools. Addresses are bigints so one code path serves both families. No I/O.
 */
import { BadRequest } from '../../../core/errors.ts';

export type IpVersion = 4 | 6;
export interface Ip {
  version: IpVersion;
  n: bigint;
}
export interface Cidr {
  version: IpVersion;
  /** network address */
  base: bigint;
  prefix: number;
}

const BITS = { 4: 32, 6: 128 } as const;

export function parseIp(s: string): Ip | undefined {
  if (/^\d{1,3}(\.\d{1,3}){3}$/.test(s)) {
    const parts = s.split('.').map(Number);
    if (parts.some((p) => p > 255)) return undefined;
    return { version: 4, n: parts.reduce((a, p) => (a << 8n) | BigInt(p), 0n) };
  }
  if (!s.includes(':') || !/^[0-9a-fA-F:.]+$/.test(s)) return undefined;
  let text = s;
  // an embedded IPv4 tail (::ffff:1.2.3.4)
  const v4 = /(\d{1,3}(\.\d{1,3}){3})$/.exec(text);
  if (v4) {
    const ip4 = parseIp(v4[1]!);
    if (!ip4) return undefined;
    const hi = Number(ip4.n >> 16n).toString(16);
    const lo = Number(ip4.n & 0xffffn).toString(16);
    text = text.slice(0, v4.index) + `${hi}:${lo}`;
  }
  const halves = text.split('::');
  if (halves.length > 2) return undefined;
  const head = halves[0] ? halves[0].split(':') : [];
  const tail = halves.length === 2 && halves[1] ? halves[1].split(':') : [];
  const missing = 8 - head.length - tail.length;
  if (halves.length === 1 ? missing !== 0 : missing < 1) return undefined;
  const groups = [...head, ...Array<string>(halves.length === 2 ? missing : 0).fill('0'), ...tail];
  let n = 0n;
  for (const g of groups) {
    if (!/^[0-9a-fA-F]{1,4}$/.test(g)) return undefined;
    n = (n << 16n) | BigInt(parseInt(g, 16));
  }
  return { version: 6, n };
}

export function formatIp(ip: Ip): string {
  if (ip.version === 4) return [24n, 16n, 8n, 0n].map((s) => String(Number((ip.n >> s) & 0xffn))).join('.');
  const g: number[] = [];
  for (let i = 7; i >= 0; i--) g.push(Number((ip.n >> BigInt(i * 16)) & 0xffffn));
  // RFC 5952: compress the longest run (>= 2) of zero groups, the first one on a tie.
  let best = -1;
  let bestLen = 1;
  for (let i = 0; i < 8;) {
    if (g[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && g[j] === 0) j++;
    if (j - i > bestLen) {
      best = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = g.map((x) => x.toString(16));
  if (best < 0) return hex.join(':');
  return `${hex.slice(0, best).join(':')}::${hex.slice(best + bestLen).join(':')}`;
}

export const ipText = (version: IpVersion, n: bigint) => formatIp({ version, n });

/** Parses a CIDR; `strict` refuses host bits (Neutron's subnet cidr rule). */
export function parseCidr(s: string, strict = true): Cidr | undefined {
  const m = /^([^/]+)\/(\d{1,3})$/.exec(s);
  if (!m) return undefined;
  const ip = parseIp(m[1]!);
  const prefix = Number(m[2]);
  if (!ip || prefix > BITS[ip.version]) return undefined;
  const base = ip.n & mask(ip.version, prefix);
  if (strict && base !== ip.n) return undefined;
  return { version: ip.version, base, prefix };
}

export function mask(version: IpVersion, prefix: number): bigint {
  const bits = BigInt(BITS[version]);
  const all = (1n << bits) - 1n;
  return (all >> BigInt(prefix)) ^ all;
}

export function cidrText(c: Cidr): string {
  return `${ipText(c.version, c.base)}/${c.prefix}`;
}

export function lastOf(c: Cidr): bigint {
  return c.base + size(c) - 1n;
}

export function size(c: Cidr): bigint {
  return 1n << BigInt(BITS[c.version] - c.prefix);
}

export function contains(c: Cidr, ip: Ip): boolean {
  return ip.version === c.version && ip.n >= c.base && ip.n <= lastOf(c);
}

export function overlaps(a: Cidr, b: Cidr): boolean {
  return a.version === b.version && a.base <= lastOf(b) && b.base <= lastOf(a);
}

export interface Range {
  first: bigint;
  last: bigint;
}

/** The default gateway: the first host address (Neutron's default). */
export function defaultGateway(c: Cidr): bigint | undefined {
  if (size(c) < 2n) return undefined;
  return c.base + 1n;
}

/**
 * Neutron's default allocation pools: every usable address of the CIDR except the gateway. IPv4 drops
 * the network and broadcast addresses (not for /31 and /32); IPv6 drops the subnet-router anycast address.
 */
export function defaultPools(c: Cidr, gateway: bigint | undefined): Range[] {
  let first = c.base;
  let last = lastOf(c);
  if (c.version === 4 && c.prefix < 31) {
    first += 1n;
    last -= 1n;
  } else if (c.version === 6 && c.prefix < 127) first += 1n;
  return subtract({ first, last }, gateway);
}

/** The range without one address (zero, one or two ranges). */
export function subtract(r: Range, x: bigint | undefined): Range[] {
  if (x === undefined || x < r.first || x > r.last) return r.first <= r.last ? [r] : [];
  const out: Range[] = [];
  if (x > r.first) out.push({ first: r.first, last: x - 1n });
  if (x < r.last) out.push({ first: x + 1n, last: r.last });
  return out;
}

/** Validates an address field of a request against a family, or 400. */
export function requireIp(s: unknown, field: string, version?: IpVersion): Ip {
  const ip = typeof s === 'string' ? parseIp(s) : undefined;
  if (!ip || (version && ip.version !== version))
    throw new BadRequest(`Invalid input for ${field}. Reason: '${String(s)}' is not a valid IP address.`);
  return ip;
}

/** Fixed-width hex of an address, so text order equals numeric order in SQL. */
export function ipKey(ip: Ip): string {
  return ip.n.toString(16).padStart(32, '0');
}
export function keyOf(n: bigint): string {
  return n.toString(16).padStart(32, '0');
}
export function fromKey(s: string): bigint {
  return BigInt(`0x${s}`);
}
