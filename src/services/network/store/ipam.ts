/**
 * @module IPAM: which addresses of a subnet are handed out, and by which site. An allocation is a row
 * with UNIQUE(subnet_id, ip) written in the same transaction as its port, so no address is handed out
 * twice at one site. The subnet's owner allocates from the space of its pools that no block holds;
 * another site allocates only from blocks the owner leased to it (rows owned by the subnet's owner,
 * `leased_to_site` the lessee), recorded in its local `net_ip_leases`, so two sites never share an
 * address. Blocks are cut from free space on demand and sized to the pool, the number of sites using
 * it and what is still free (docs/network.md, "Address blocks"). With no room a site throws NeedLease:
 * a lessee then asks the owner for a block, the owner asks lessees to give back an empty one
 * (../leases.ts), and the caller tries again.
 */
import type { Db } from '../../../store/db.ts';
import type { ChangeLog } from '../../../federation/changelog.ts';
import type { Ids } from '../../../core/ports.ts';
import { BadRequest, Conflict } from '../../../core/errors.ts';
import type { Cidr, Range } from '../domain/ip.ts';
import { contains, fromKey, ipText, keyOf, lastOf, parseIp, subtract } from '../domain/ip.ts';
import { ipAllocationKind, ipBlockKind, ipLeaseKind } from './schema.ts';

export interface SubnetForIpam {
  id: string;
  owner: string;
  network_id: string;
  cidr: Cidr;
  pools: Range[];
  gateway: bigint | undefined;
}

export interface IpamOptions {
  /** The largest block leased at once (IPv4); IPv6 blocks are at most 2^16. */
  blockSize: number;
  /**
   * A lessee stops allocating from a lease this long before it expires, and an owner reclaims an
   * expired, empty block only this long after it expired (covers clock skew and in-flight changes).
   */
  leaseMarginMs: number;
}

export interface BlockRow {
  id: string;
  owner: string;
  subnet_id: string;
  first: string;
  last: string;
  leased_to_site: string | null;
  lease_expires_at: number | null;
  lease_id: string | null;
  state: string;
  created_at: number;
}

/** A lease this site holds on a block of another site's subnet (local table net_ip_leases). */
export interface LeaseRow {
  id: string;
  owner: string;
  subnet_id: string;
  lessor: string;
  first: string;
  last: string;
  lease_id: string;
  expires_at: number;
  /** active: allocatable; returning: being given back; returned: given back, kept until the owner's
   * replica shows it gone, so that a late replica of the old grant is not recorded again. */
  state: 'active' | 'returning' | 'returned';
  granted_at: number;
  idle_since: number | null;
  return_head: number | null;
}

/** What an owner grants: the block row it wrote, as carried in a lease reply. */
export type LeaseGrant = Pick<
  BlockRow,
  'id' | 'subnet_id' | 'first' | 'last' | 'lease_id' | 'lease_expires_at' | 'leased_to_site'
>;

export const ipAllocationFailed = (networkId: string) =>
  new Conflict(`No more IP addresses available on network ${networkId}.`, 'IpAddressGenerationFailure');

/**
 * This site has no room in a subnet: at a lessee, no leased block with room (or the chosen address is
 * in a slot it holds no lease of); at the owner (`recall`), no free address outside other sites' blocks
 * while some of those blocks look empty. A 409 if nobody handles it; the port paths catch it, ask the
 * owner for a block or the lessees for an empty one back (../leases.ts), and try again.
 */
export class NeedLease extends Conflict {
  readonly subnetId: string;
  readonly owner: string;
  readonly ip: string | undefined;
  readonly recall: boolean;
  constructor(s: SubnetForIpam, site: string, ip?: string) {
    super(
      ip
        ? `IP address ${ip} of subnet ${s.id} is not in a block leased to site ${site}; its owner ${s.owner} must lease it first.`
        : s.owner === site
          ? `No more IP addresses available on network ${s.network_id}: every free address of subnet ${s.id} is leased to other sites.`
          : `No address block of subnet ${s.id} leased to site ${site} has room; its owner ${s.owner} must lease one first.`,
      'IpAddressGenerationFailure',
    );
    this.subnetId = s.id;
    this.owner = s.owner;
    this.ip = ip;
    this.recall = s.owner === site;
  }
}

export class Ipam {
  private db: Db;
  private changelog: ChangeLog;
  private site: string;
  private now: () => number;
  private opts: IpamOptions;
  private ids: Ids;

  constructor(db: Db, changelog: ChangeLog, site: string, now: () => number, opts: IpamOptions, ids: Ids) {
    this.db = db;
    this.changelog = changelog;
    this.site = site;
    this.now = now;
    this.opts = opts;
    this.ids = ids;
  }

  private maxBlock(c: Cidr): bigint {
    return c.version === 4 ? BigInt(Math.max(1, this.opts.blockSize)) : 1n << 16n;
  }

  /**
   * The ranges of a subnet another site owns that this site may allocate from now, in address order:
   * the active leases it holds that are not about to expire.
   */
  usableBlocks(s: SubnetForIpam): { id: string; first: string; last: string }[] {
    if (s.owner === this.site) return [];
    return this.db
      .prepare(
        "SELECT * FROM net_ip_leases WHERE subnet_id = ? AND state = 'active' AND expires_at > ? ORDER BY first",
      )
      .all(s.id, this.now() + this.opts.leaseMarginMs) as LeaseRow[];
  }

  /**
   * Free addresses this site may allocate from: at the owner, those outside other sites' blocks; at a
   * lessee, those in its usable leases.
   */
  freeCount(s: SubnetForIpam): number {
    if (s.owner === this.site) return Number(sizeOf(this.freeRanges(s, 'owner')));
    let free = 0n;
    const count = this.db.prepare(
      'SELECT count(*) FROM net_ip_allocations WHERE subnet_id = ? AND ip_key >= ? AND ip_key <= ?',
    );
    for (const b of this.usableBlocks(s)) {
      const first = fromKey(b.first);
      const last = fromKey(b.last);
      const gw = s.gateway !== undefined && s.gateway >= first && s.gateway <= last ? 1n : 0n;
      free += last - first + 1n - gw - BigInt(count.pluck().get(s.id, b.first, b.last) as number);
    }
    return Number(free);
  }

  /**
   * Prefetch threshold of a lessee: ask for the next block in the background when fewer free
   * addresses than this are left, a quarter of its largest block (so tiny blocks are not prefetched:
   * on a small subnet the next site needs them more), at most `lowWater`.
   */
  lowWater(s: SubnetForIpam, lowWater: number): number {
    let largest = 0n;
    for (const b of this.usableBlocks(s)) {
      const n = fromKey(b.last) - fromKey(b.first) + 1n;
      if (n > largest) largest = n;
    }
    return Math.min(lowWater, Number(largest / 4n));
  }

  /**
   * Allocates one address of the subnet to the port (inside the caller's transaction). With `ip`,
   * that address or 409 IpAddressAlreadyAllocated; without, the lowest free address this site may use
   * (the owner: outside other sites' blocks; a lessee: in its usable leases), else NeedLease when asking
   * can help, else 409 IpAddressGenerationFailure.
   */
  allocate(s: SubnetForIpam, portId: string, ip?: string, mayUseGateway = false): string {
    if (ip !== undefined) return this.allocateChosen(s, portId, ip, mayUseGateway);
    if (s.owner === this.site) {
      const free = this.firstFreeRange(s);
      if (free) return this.insert(s, portId, free.first, this.ownBlockOf(s, free.first));
      if (this.recallable(s).length) throw new NeedLease(s, this.site);
      throw ipAllocationFailed(s.network_id);
    }
    for (const b of this.usableBlocks(s)) {
      const free = this.firstFree(s.id, fromKey(b.first), fromKey(b.last), s.gateway);
      if (free !== undefined) return this.insert(s, portId, free, b.id);
    }
    throw new NeedLease(s, this.site);
  }

  private allocateChosen(s: SubnetForIpam, portId: string, text: string, mayUseGateway: boolean): string {
    const ip = parseIp(text);
    if (!ip || !contains(s.cidr, ip))
      throw new BadRequest(
        `IP address ${text} is not a valid IP for the specified subnet.`,
        'InvalidIpForSubnet',
      );
    if (s.cidr.version === 4 && s.cidr.prefix < 31 && (ip.n === s.cidr.base || ip.n === lastOf(s.cidr)))
      throw new BadRequest(
        `IP address ${text} is not a valid IP for the specified subnet.`,
        'InvalidIpForSubnet',
      );
    const canonical = ipText(ip.version, ip.n);
    if (ip.n === s.gateway && !mayUseGateway)
      throw new Conflict(
        `IP address ${canonical} already allocated in subnet ${s.id}: it is the subnet's gateway.`,
        'IpAddressAlreadyAllocated',
      );
    this.ensureFree(s.id, canonical);
    const key = keyOf(ip.n);
    const block = this.db
      .prepare('SELECT * FROM net_ip_blocks WHERE subnet_id = ? AND first <= ? AND last >= ?')
      .get(s.id, key, key) as BlockRow | undefined;
    if (s.owner !== this.site) {
      // A lessee: the address must lie in one of its usable leases. A block the replica shows leased
      // to another site is refused (409 naming it: the port would belong to that site, not this one);
      // a free pool slot, or a lease of ours that is about to expire, is asked for (NeedLease).
      const mine = this.usableBlocks(s).find((b) => b.first <= key && b.last >= key);
      if (mine) return this.insert(s, portId, ip.n, mine.id);
      if (block && block.leased_to_site !== this.site)
        throw new Conflict(
          `IP address ${canonical} of subnet ${s.id} is in a block leased to site ${String(block.leased_to_site)}; create the port there.`,
          'IpAddressAlreadyAllocated',
        );
      const held = this.db
        .prepare(
          "SELECT 1 FROM net_ip_leases WHERE subnet_id = ? AND first <= ? AND last >= ? AND state = 'returning'",
        )
        .get(s.id, key, key);
      if (held)
        throw new Conflict(
          `IP address ${canonical} of subnet ${s.id} is in a block site ${this.site} is returning to ${s.owner}; retry shortly.`,
          'IpAddressGenerationFailure',
        );
      if (!s.pools.some((p) => ip.n >= p.first && ip.n <= p.last))
        throw new Conflict(
          `IP address ${canonical} of subnet ${s.id} is outside its allocation pools; only the subnet's owner ${s.owner} assigns it.`,
          'IpAddressAlreadyAllocated',
        );
      throw new NeedLease(s, this.site, canonical);
    }
    if (block) {
      if (block.leased_to_site !== this.site)
        throw new Conflict(
          `IP address ${canonical} of subnet ${s.id} is in a block leased to site ${String(block.leased_to_site)}; create the port there.`,
          'IpAddressAlreadyAllocated',
        );
      return this.insert(s, portId, ip.n, block.id);
    }
    return this.insert(s, portId, ip.n, null);
  }

  private ensureFree(subnetId: string, canonical: string): void {
    if (
      this.db
        .prepare('SELECT 1 FROM net_ip_allocations WHERE subnet_id = ? AND ip = ?')
        .get(subnetId, canonical)
    )
      throw new Conflict(
        `Unable to complete operation for network. The IP address ${canonical} is in use.`,
        'IpAddressAlreadyAllocated',
      );
  }

  private insert(s: SubnetForIpam, portId: string, n: bigint, blockId: string | null): string {
    const ip = ipText(s.cidr.version, n);
    this.ensureFree(s.id, ip);
    try {
      this.changelog.put(ipAllocationKind, {
        id: allocationId(s.id, ip, this.site),
        subnet_id: s.id,
        network_id: s.network_id,
        ip,
        ip_key: keyOf(n),
        port_id: portId,
        block_id: blockId,
      });
    } catch (e) {
      if (String((e as { code?: unknown }).code).startsWith('SQLITE_CONSTRAINT'))
        throw new Conflict(
          `IP address ${ip} already allocated in subnet ${s.id}.`,
          'IpAddressAlreadyAllocated',
        );
      throw e;
    }
    return ip;
  }

  /** The lowest address in [first, last] with no allocation (and not the gateway). */
  private firstFree(
    subnetId: string,
    first: bigint,
    last: bigint,
    gateway: bigint | undefined,
  ): bigint | undefined {
    const used = this.db
      .prepare(
        'SELECT ip_key FROM net_ip_allocations WHERE subnet_id = ? AND ip_key >= ? AND ip_key <= ? ORDER BY ip_key',
      )
      .pluck()
      .all(subnetId, keyOf(first), keyOf(last)) as string[];
    let next = first;
    for (const k of used) {
      const n = fromKey(k);
      if (next === gateway) next++;
      if (n > next) break;
      if (n === next) next++;
    }
    if (next === gateway) next++;
    return next <= last ? next : undefined;
  }

  /**
   * The free ranges of the subnet's pools in address order: no allocation, not the gateway, in no
   * block. `owner`: the owner's view, where only blocks leased to other sites count (its own blocks,
   * left from before it allocated outside blocks, are its space); `all`: every block counts (what may
   * be leased). Lazy, so the owner's allocation reads only up to its first free address.
   */
  private *freeRanges(s: SubnetForIpam, view: 'owner' | 'all'): Generator<Range> {
    const taken = this.db.prepare(
      `SELECT first, last FROM net_ip_blocks
         WHERE subnet_id = ? AND last >= ? AND first <= ? AND (? = 'all' OR leased_to_site IS NOT ?)
       UNION ALL
       SELECT ip_key, ip_key FROM net_ip_allocations WHERE subnet_id = ? AND ip_key >= ? AND ip_key <= ?
       ORDER BY 1`,
    );
    for (const pool of s.pools) {
      const lo = keyOf(pool.first);
      const hi = keyOf(pool.last);
      let next = pool.first;
      const rows = taken.iterate(s.id, lo, hi, view, this.site, s.id, lo, hi) as Iterable<{
        first: string;
        last: string;
      }>;
      for (const row of rows) {
        const first = fromKey(row.first);
        const last = fromKey(row.last);
        if (first > next) yield* subtract({ first: next, last: first - 1n }, s.gateway);
        if (last >= next) next = last + 1n;
        if (next > pool.last) break;
      }
      if (next <= pool.last) yield* subtract({ first: next, last: pool.last }, s.gateway);
    }
  }

  /** The first free range of the owner's view (the iteration is closed before anything is written). */
  private firstFreeRange(s: SubnetForIpam): Range | undefined {
    for (const r of this.freeRanges(s, 'owner')) return r;
    return undefined;
  }

  /** The owner's own (legacy) block holding n, for the allocation's block_id; null when none. */
  private ownBlockOf(s: SubnetForIpam, n: bigint): string | null {
    const key = keyOf(n);
    const id = this.db
      .prepare(
        'SELECT id FROM net_ip_blocks WHERE subnet_id = ? AND first <= ? AND last >= ? AND leased_to_site = ?',
      )
      .pluck()
      .get(s.id, key, key, this.site) as string | undefined;
    return id ?? null;
  }

  /**
   * Blocks of the subnet leased to other sites (but `except`) that the owner's replica shows empty,
   * newest first: the ones the owner may ask their lessees to give back when it has no room.
   */
  recallable(s: SubnetForIpam, except?: string): BlockRow[] {
    return this.db
      .prepare(
        `SELECT * FROM net_ip_blocks b
           WHERE subnet_id = ? AND leased_to_site IS NOT NULL AND leased_to_site != ? AND leased_to_site != ?
             AND NOT EXISTS (SELECT 1 FROM net_ip_allocations a
                              WHERE a.subnet_id = b.subnet_id AND a.ip_key >= b.first AND a.ip_key <= b.last)
           ORDER BY created_at DESC, id`,
      )
      .all(s.id, this.site, except ?? this.site) as BlockRow[];
  }

  /** The sites using the subnet: its owner, `to`, and every site holding a block or an address of it. */
  private sitesUsing(s: SubnetForIpam, to: string): number {
    const sites = this.db
      .prepare(
        `SELECT leased_to_site FROM net_ip_blocks WHERE subnet_id = ? AND leased_to_site IS NOT NULL
         UNION SELECT owner FROM net_ip_allocations WHERE subnet_id = ?`,
      )
      .pluck()
      .all(s.id, s.id) as string[];
    return new Set([...sites, s.owner, to]).size;
  }

  /**
   * How many addresses to lease to `to` now: a quarter of the pool's fair share per site (at least 2)
   * for its first block, doubled for each block it already holds (it came back because they are
   * full), at most the configured block size, and never more than half of the free space's fair share
   * (at least 1), so the last sites, the owner included, still find room.
   */
  private sizeFor(s: SubnetForIpam, to: string, free: bigint): bigint {
    const sites = BigInt(this.sitesUsing(s, to));
    const held = this.db
      .prepare('SELECT count(*) FROM net_ip_blocks WHERE subnet_id = ? AND leased_to_site = ?')
      .pluck()
      .get(s.id, to) as number;
    let size = sizeOf(s.pools) / (4n * sites);
    if (size < 2n) size = 2n;
    size <<= BigInt(Math.min(held, 32));
    const max = this.maxBlock(s.cidr);
    if (size > max) size = max;
    let cap = free / (2n * sites);
    if (cap < 1n) cap = 1n;
    return size < cap ? size : cap;
  }

  private blockId(s: SubnetForIpam, first: bigint): string {
    return `${s.id}:${keyOf(first)}`;
  }

  private carve(s: SubnetForIpam, r: Range, leasedTo: string, expiresAt: number | null): BlockRow {
    const row = {
      id: this.blockId(s, r.first),
      subnet_id: s.id,
      first: keyOf(r.first),
      last: keyOf(r.last),
      leased_to_site: leasedTo,
      lease_expires_at: expiresAt,
      lease_id: this.ids.uuid(),
      state: 'leased',
      created_at: this.now(),
    };
    return this.changelog.put(ipBlockKind, row);
  }

  // ---- the owner's side of leases (inside the caller's transaction) ---------------------------

  /**
   * Grants `to` a block of the subnet, cut from space no block or allocation holds: with `ip`, the
   * block holding it (or, if `to` already holds that block, the same block with its lease extended),
   * else the top of the highest free range with room for a whole block (the owner allocates from the
   * bottom, so the two meet last). Undefined when nothing is free; a Conflict naming the lessee when
   * `ip` is in another site's block.
   */
  grant(s: SubnetForIpam, to: string, expiresAt: number, ip?: string): BlockRow | undefined {
    if (s.owner !== this.site) throw new Conflict(`Subnet ${s.id} is owned by ${s.owner}, not ${this.site}.`);
    const gaps = [...this.freeRanges(s, 'all')];
    const size = gaps.length ? this.sizeFor(s, to, sizeOf(gaps)) : 0n;
    if (ip === undefined) {
      const roomy = gaps.filter((g) => g.last - g.first + 1n >= size);
      const g = roomy.length
        ? roomy[roomy.length - 1]
        : gaps.reduce<Range | undefined>(
            (a, x) => (a && a.last - a.first >= x.last - x.first ? a : x),
            undefined,
          );
      if (!g) return undefined;
      const first = g.last - size + 1n > g.first ? g.last - size + 1n : g.first;
      return this.carve(s, { first, last: g.last }, to, expiresAt);
    }
    const n = parseIp(ip);
    if (!n || !contains(s.cidr, n))
      throw new BadRequest(`IP address ${ip} is not a valid IP for subnet ${s.id}.`, 'InvalidIpForSubnet');
    const key = keyOf(n.n);
    const block = this.db
      .prepare('SELECT * FROM net_ip_blocks WHERE subnet_id = ? AND first <= ? AND last >= ?')
      .get(s.id, key, key) as BlockRow | undefined;
    if (block) {
      if (block.leased_to_site !== to)
        throw new Conflict(
          `IP address ${ip} of subnet ${s.id} is in a block leased to site ${String(block.leased_to_site)}; create the port there.`,
          'IpAddressAlreadyAllocated',
        );
      return this.extend(block, expiresAt);
    }
    if (!s.pools.some((p) => n.n >= p.first && n.n <= p.last))
      throw new Conflict(
        `IP address ${ip} of subnet ${s.id} is outside its allocation pools; only the subnet's owner ${s.owner} assigns it.`,
        'IpAddressAlreadyAllocated',
      );
    const g = gaps.find((x) => x.first <= n.n && n.n <= x.last);
    if (!g) throw new Conflict(`IP address ${ip} of subnet ${s.id} is in use.`, 'IpAddressAlreadyAllocated');
    // The block of `size` aligned on the subnet that holds ip, clipped to the free range.
    const start = s.cidr.base + ((n.n - s.cidr.base) / size) * size;
    return this.carve(
      s,
      {
        first: start > g.first ? start : g.first,
        last: start + size - 1n < g.last ? start + size - 1n : g.last,
      },
      to,
      expiresAt,
    );
  }

  /** Moves a block's expiry (renewal). Only the grant named by `leaseId` is renewed. */
  extend(block: BlockRow, expiresAt: number): BlockRow {
    const next = { ...block, lease_expires_at: Math.max(expiresAt, block.lease_expires_at ?? 0) };
    return this.changelog.put(ipBlockKind, next);
  }

  block(id: string): BlockRow | undefined {
    return this.db.prepare('SELECT * FROM net_ip_blocks WHERE id = ?').get(id) as BlockRow | undefined;
  }

  /** How many allocations (any site's, as replicated here) lie in the block. */
  allocationsIn(b: { subnet_id: string; first: string; last: string }): number {
    return this.db
      .prepare('SELECT count(*) FROM net_ip_allocations WHERE subnet_id = ? AND ip_key >= ? AND ip_key <= ?')
      .pluck()
      .get(b.subnet_id, b.first, b.last) as number;
  }

  /** Frees a block's slot (the owner, once it is returned or safely expired). */
  reclaim(id: string): void {
    this.changelog.remove(ipBlockKind, id);
  }

  /** Blocks of this site's subnets leased to other sites. */
  blocksLeasedOut(): BlockRow[] {
    return this.db
      .prepare(
        'SELECT * FROM net_ip_blocks WHERE owner = ? AND leased_to_site IS NOT NULL AND leased_to_site != ? ORDER BY id',
      )
      .all(this.site, this.site) as BlockRow[];
  }

  // ---- the lessee's side (net_ip_leases) -----------------------------------------------------------

  leases(): LeaseRow[] {
    return this.db.prepare('SELECT * FROM net_ip_leases ORDER BY subnet_id, first').all() as LeaseRow[];
  }

  lease(id: string): LeaseRow | undefined {
    return this.db.prepare('SELECT * FROM net_ip_leases WHERE id = ?').get(id) as LeaseRow | undefined;
  }

  /**
   * Records a grant from the owner (its reply, or its replicated block row). A newer grant of the same
   * slot replaces an older one; a grant being returned is left alone; an expiry only moves forward.
   */
  recordLease(g: LeaseGrant, lessor: string): void {
    if (g.leased_to_site !== this.site || !g.lease_id || g.lease_expires_at === null) return;
    const cur = this.lease(g.id);
    if (cur && cur.lease_id === g.lease_id) {
      if (cur.state === 'active' && g.lease_expires_at > cur.expires_at)
        this.changelog.put(ipLeaseKind, { ...cur, expires_at: g.lease_expires_at });
      return;
    }
    if (cur && cur.state === 'returning') return;
    this.changelog.put(ipLeaseKind, {
      id: g.id,
      subnet_id: g.subnet_id,
      lessor,
      first: g.first,
      last: g.last,
      lease_id: g.lease_id,
      expires_at: g.lease_expires_at,
      state: 'active',
      granted_at: this.now(),
      idle_since: null,
      return_head: null,
    });
  }

  updateLease(l: LeaseRow, changes: Partial<LeaseRow>): void {
    this.changelog.put(ipLeaseKind, { ...l, ...changes });
  }

  /** Keeps a grant the owner took back as 'returned' (see LeaseRow.state). */
  retireLease(l: LeaseRow): void {
    this.changelog.put(ipLeaseKind, { ...l, state: 'returned' });
  }

  dropLease(id: string): void {
    this.changelog.remove(ipLeaseKind, id);
  }

  /** Counts addresses in use and available in the subnet's pools (GET /network-ip-availabilities). */
  usage(s: SubnetForIpam): { used: number; total: bigint } {
    const used = (
      this.db.prepare('SELECT count(*) AS c FROM net_ip_allocations WHERE subnet_id = ?').get(s.id) as {
        c: number;
      }
    ).c;
    const total = s.pools.reduce((a, p) => a + p.last - p.first + 1n, 0n);
    return { used, total };
  }

  /** Frees every address of a port (its allocation rows are owned by the port's site). */
  releasePort(portId: string): void {
    const ids = this.db
      .prepare('SELECT id FROM net_ip_allocations WHERE port_id = ?')
      .pluck()
      .all(portId) as string[];
    for (const id of ids) this.changelog.remove(ipAllocationKind, id);
  }

  /** Frees one address of a port (this site's allocation row of it). */
  release(subnetId: string, ip: string): void {
    const id = this.db
      .prepare('SELECT id FROM net_ip_allocations WHERE subnet_id = ? AND ip = ? AND owner = ?')
      .pluck()
      .get(subnetId, ip, this.site) as string | undefined;
    if (id) this.changelog.remove(ipAllocationKind, id);
  }

  /** Drops the subnet's blocks (its owner, when the subnet is deleted). */
  dropSubnet(subnetId: string): void {
    for (const id of this.db
      .prepare('SELECT id FROM net_ip_leases WHERE subnet_id = ?')
      .pluck()
      .all(subnetId) as string[])
      this.changelog.remove(ipLeaseKind, id);
    const ids = this.db
      .prepare('SELECT id FROM net_ip_blocks WHERE subnet_id = ?')
      .pluck()
      .all(subnetId) as string[];
    for (const id of ids) this.changelog.remove(ipBlockKind, id);
  }

  inUse(subnetId: string): boolean {
    return !!this.db.prepare('SELECT 1 FROM net_ip_allocations WHERE subnet_id = ? LIMIT 1').get(subnetId);
  }
}

/** How many addresses the ranges hold. */
function sizeOf(ranges: Iterable<Range>): bigint {
  let n = 0n;
  for (const r of ranges) n += r.last - r.first + 1n;
  return n;
}

/**
 * The id of an allocation row: per site, since an address that moved from one site to another has a
 * row of each origin at a replica until the old one's delete arrives (schema.ts, migration 004).
 */
export function allocationId(subnetId: string, ip: string, site: string): string {
  return `${subnetId}/${ip}@${site}`;
}
