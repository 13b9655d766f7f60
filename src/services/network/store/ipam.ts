/**
 * @module IPAM: which addresses of a subnet are handed out, and by which site. A subnet's allocation
 * pools are cut into blocks aligned on the block size; each block is a row owned by the subnet's owner
 * and leased to exactly one site, which alone allocates from it. An allocation is a row with
 * UNIQUE(subnet_id, ip) written in the same transaction as its port, so no address is handed out twice
 * at one site, and the lease keeps two sites out of each other's blocks (docs/network.md, "Address
 * blocks and leases"). The subnet's owner leases blocks to itself, carving them on demand, and grants
 * blocks to other sites (grant/renew/reclaim below, driven by ../leases.ts); another site allocates only
 * from the leases it recorded in its local `net_ip_leases`, and says so with NeedLease when it has no
 * room, so the caller can ask the owner for a block and try again.
 */
import type { Db } from '../../../store/db.ts';
import type { ChangeLog } from '../../../federation/changelog.ts';
import { randomUUID } from 'node:crypto';
import { BadRequest, Conflict } from '../../../core/errors.ts';
import type { Cidr, Range } from '../domain/ip.ts';
import { contains, fromKey, ipText, keyOf, lastOf, parseIp } from '../domain/ip.ts';
import { NetKind } from './schema.ts';

export interface SubnetForIpam {
  id: string;
  owner: string;
  network_id: string;
  cidr: Cidr;
  pools: Range[];
  gateway: bigint | undefined;
}

export interface IpamOptions {
  /** Addresses per block (IPv4); IPv6 blocks are 2^16. */
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
  state: 'active' | 'returning';
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
 * This site has no leased block with room in a subnet another site owns (or the chosen address is in a
 * slot it holds no lease of). A 409 if nobody handles it; the port paths catch it, ask the owner for a
 * block (../leases.ts) and try again.
 */
export class NeedLease extends Conflict {
  readonly subnetId: string;
  readonly owner: string;
  readonly ip: string | undefined;
  constructor(s: SubnetForIpam, site: string, ip?: string) {
    super(
      ip
        ? `IP address ${ip} of subnet ${s.id} is not in a block leased to site ${site}; its owner ${s.owner} must lease it first.`
        : `No address block of subnet ${s.id} leased to site ${site} has room; its owner ${s.owner} must lease one first.`,
      'IpAddressGenerationFailure',
    );
    this.subnetId = s.id;
    this.owner = s.owner;
    this.ip = ip;
  }
}

export class Ipam {
  private db: Db;
  private changelog: ChangeLog;
  private site: string;
  private now: () => number;
  private opts: IpamOptions;

  constructor(db: Db, changelog: ChangeLog, site: string, now: () => number, opts: IpamOptions) {
    this.db = db;
    this.changelog = changelog;
    this.site = site;
    this.now = now;
    this.opts = opts;
  }

  private blockSize(c: Cidr): bigint {
    return c.version === 4 ? BigInt(Math.max(1, this.opts.blockSize)) : 1n << 16n;
  }

  /**
   * The ranges of a subnet this site may allocate from now, in address order: at the owner, the blocks
   * it leased to itself; elsewhere, the active leases it holds that are not about to expire.
   */
  usableBlocks(s: SubnetForIpam): { id: string; first: string; last: string }[] {
    if (s.owner === this.site)
      return this.db
        .prepare('SELECT * FROM net_ip_blocks WHERE subnet_id = ? AND leased_to_site = ? ORDER BY first')
        .all(s.id, this.site) as BlockRow[];
    return this.db
      .prepare(
        "SELECT * FROM net_ip_leases WHERE subnet_id = ? AND state = 'active' AND expires_at > ? ORDER BY first",
      )
      .all(s.id, this.now() + this.opts.leaseMarginMs) as LeaseRow[];
  }

  /** Free addresses in the blocks this site may allocate from (the low-water check for prefetch). */
  freeCount(s: SubnetForIpam): number {
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
   * Allocates one address of the subnet to the port (inside the caller's transaction). With `ip`,
   * that address or 409 IpAddressAlreadyAllocated; without, the lowest free address of this site's
   * blocks, carving a new block when they are full (owner only), or 409 IpAddressGenerationFailure.
   */
  allocate(s: SubnetForIpam, portId: string, ip?: string, mayUseGateway = false): string {
    if (ip !== undefined) return this.allocateChosen(s, portId, ip, mayUseGateway);
    for (const b of this.usableBlocks(s)) {
      const free = this.firstFree(s.id, fromKey(b.first), fromKey(b.last), s.gateway);
      if (free !== undefined) return this.insert(s, portId, free, b.id);
    }
    if (s.owner !== this.site) throw new NeedLease(s, this.site);
    for (;;) {
      const b = this.carveNext(s);
      if (!b) throw ipAllocationFailed(s.network_id);
      const free = this.firstFree(s.id, fromKey(b.first), fromKey(b.last), s.gateway);
      if (free !== undefined) return this.insert(s, portId, free, b.id);
    }
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
    const inPool = s.pools.some((p) => ip.n >= p.first && ip.n <= p.last);
    const carved = inPool ? this.carveContaining(s, ip.n) : undefined;
    return this.insert(s, portId, ip.n, carved?.id ?? null);
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
      this.changelog.put(NetKind.IpAllocation, {
        id: `${s.id}/${ip}`,
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

  /** The block slot (aligned on the block size, clipped to the pool) that holds n. */
  private slotOf(s: SubnetForIpam, pool: Range, n: bigint): Range {
    const bs = this.blockSize(s.cidr);
    const start = s.cidr.base + ((n - s.cidr.base) / bs) * bs;
    return {
      first: start > pool.first ? start : pool.first,
      last: start + bs - 1n < pool.last ? start + bs - 1n : pool.last,
    };
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
      lease_id: randomUUID(),
      state: 'leased',
      created_at: this.now(),
    };
    return this.changelog.put(NetKind.IpBlock, row) as unknown as BlockRow;
  }

  private carveContaining(s: SubnetForIpam, n: bigint): BlockRow {
    const pool = s.pools.find((p) => n >= p.first && n <= p.last)!;
    const slot = this.slotOf(s, pool, n);
    return this.carve(s, slot, this.site, null);
  }

  /** The next free slot of the pools as a new block leased to `to` (this site unless a lease is granted). */
  carveNext(s: SubnetForIpam, to = this.site, expiresAt: number | null = null): BlockRow | undefined {
    if (s.owner !== this.site) return undefined;
    const bs = this.blockSize(s.cidr);
    for (const pool of s.pools) {
      for (let n = pool.first; n <= pool.last;) {
        const slot = this.slotOf(s, pool, n);
        if (this.slotIsFree(s, slot)) return this.carve(s, slot, to, expiresAt);
        n = slot.last + 1n;
        if (bs <= 0n) break;
      }
    }
    return undefined;
  }

  /**
   * No block overlaps the slot and no allocation lies in it. The second test is a safety net: a slot
   * is only free again after its lessee returned it empty, but an allocation replicated late must
   * never be shadowed by a new lease.
   */
  private slotIsFree(s: SubnetForIpam, slot: Range): boolean {
    const first = keyOf(slot.first);
    const last = keyOf(slot.last);
    if (
      this.db
        .prepare('SELECT 1 FROM net_ip_blocks WHERE subnet_id = ? AND first <= ? AND last >= ? LIMIT 1')
        .get(s.id, last, first)
    )
      return false;
    return !this.db
      .prepare('SELECT 1 FROM net_ip_allocations WHERE subnet_id = ? AND ip_key >= ? AND ip_key <= ? LIMIT 1')
      .get(s.id, first, last);
  }

  // ---- the owner's side of leases (inside the caller's transaction) ---------------------------

  /**
   * Grants `to` a block of the subnet: the slot holding `ip` (or, if `to` already holds that block, the
   * same block with its lease extended), else the next free slot. Undefined when no slot is free; a
   * Conflict naming the lessee when the slot holding `ip` is leased to another site.
   */
  grant(s: SubnetForIpam, to: string, expiresAt: number, ip?: string): BlockRow | undefined {
    if (s.owner !== this.site) throw new Conflict(`Subnet ${s.id} is owned by ${s.owner}, not ${this.site}.`);
    if (ip === undefined) return this.carveNext(s, to, expiresAt);
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
    const pool = s.pools.find((p) => n.n >= p.first && n.n <= p.last);
    if (!pool)
      throw new Conflict(
        `IP address ${ip} of subnet ${s.id} is outside its allocation pools; only the subnet's owner ${s.owner} assigns it.`,
        'IpAddressAlreadyAllocated',
      );
    const slot = this.slotOf(s, pool, n.n);
    if (!this.slotIsFree(s, slot))
      throw new Conflict(`IP address ${ip} of subnet ${s.id} is in use.`, 'IpAddressAlreadyAllocated');
    return this.carve(s, slot, to, expiresAt);
  }

  /** Moves a block's expiry (renewal). Only the grant named by `leaseId` is renewed. */
  extend(block: BlockRow, expiresAt: number): BlockRow {
    const next = { ...block, lease_expires_at: Math.max(expiresAt, block.lease_expires_at ?? 0) };
    return this.changelog.put(
      NetKind.IpBlock,
      next as unknown as Record<string, unknown> & { id: string },
    ) as unknown as BlockRow;
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
    this.changelog.remove(NetKind.IpBlock, id);
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
        this.changelog.put(NetKind.IpLease, { ...cur, expires_at: g.lease_expires_at });
      return;
    }
    if (cur && cur.state === 'returning') return;
    this.changelog.put(NetKind.IpLease, {
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
    this.changelog.put(NetKind.IpLease, { ...l, ...changes });
  }

  dropLease(id: string): void {
    this.changelog.remove(NetKind.IpLease, id);
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
    for (const id of ids) this.changelog.remove(NetKind.IpAllocation, id);
  }

  /** Frees one address of a port. */
  release(subnetId: string, ip: string): void {
    this.changelog.remove(NetKind.IpAllocation, `${subnetId}/${ip}`);
  }

  /** Drops the subnet's blocks (its owner, when the subnet is deleted). */
  dropSubnet(subnetId: string): void {
    for (const id of this.db
      .prepare('SELECT id FROM net_ip_leases WHERE subnet_id = ?')
      .pluck()
      .all(subnetId) as string[])
      this.changelog.remove(NetKind.IpLease, id);
    const ids = this.db
      .prepare('SELECT id FROM net_ip_blocks WHERE subnet_id = ?')
      .pluck()
      .all(subnetId) as string[];
    for (const id of ids) this.changelog.remove(NetKind.IpBlock, id);
  }

  inUse(subnetId: string): boolean {
    return !!this.db.prepare('SELECT 1 FROM net_ip_allocations WHERE subnet_id = ? LIMIT 1').get(subnetId);
  }
}
