/**
 * @module IPAM: which addresses of a subnet are handed out, and by which site. A subnet's allocation
 * pools are cut into blocks aligned on the block size; each block is a row owned by the subnet's owner
 * and leased to exactly one site, which alone allocates from it. An allocation is a row with
 * UNIQUE(subnet_id, ip) written in the same transaction as its port, so no address is handed out twice
 * at one site, and the lease keeps two sites out of each other's blocks (docs/network.md, "Address
 * blocks and leases"). Today the subnet's owner leases blocks to itself, carving them on demand.
 */
import type { Db } from '../../../store/db.ts';
import type { ChangeLog } from '../../../federation/changelog.ts';
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
}

interface BlockRow {
  id: string;
  owner: string;
  subnet_id: string;
  first: string;
  last: string;
  leased_to_site: string | null;
}

export const ipAllocationFailed = (networkId: string) =>
  new Conflict(`No more IP addresses available on network ${networkId}.`, 'IpAddressGenerationFailure');

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

  /** Blocks of a subnet leased to this site, in address order. */
  myBlocks(subnetId: string): BlockRow[] {
    return this.db
      .prepare('SELECT * FROM net_ip_blocks WHERE subnet_id = ? AND leased_to_site = ? ORDER BY first')
      .all(subnetId, this.site) as BlockRow[];
  }

  /** Whether this site can allocate in the subnet without asking its owner for a lease. */
  canAllocateIn(s: SubnetForIpam): boolean {
    return s.owner === this.site || this.myBlocks(s.id).length > 0;
  }

  /**
   * Allocates one address of the subnet to the port (inside the caller's transaction). With `ip`,
   * that address or 409 IpAddressAlreadyAllocated; without, the lowest free address of this site's
   * blocks, carving a new block when they are full (owner only), or 409 IpAddressGenerationFailure.
   */
  allocate(s: SubnetForIpam, portId: string, ip?: string, mayUseGateway = false): string {
    if (ip !== undefined) return this.allocateChosen(s, portId, ip, mayUseGateway);
    for (const b of this.myBlocks(s.id)) {
      const free = this.firstFree(s.id, fromKey(b.first), fromKey(b.last), s.gateway);
      if (free !== undefined) return this.insert(s, portId, free, b.id);
    }
    if (s.owner !== this.site) throw ipAllocationFailed(s.network_id);
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
    if (block) {
      if (block.leased_to_site !== this.site)
        throw new Conflict(
          `IP address ${canonical} of subnet ${s.id} is in a block leased to site ${String(block.leased_to_site)}; create the port there.`,
          'IpAddressAlreadyAllocated',
        );
      return this.insert(s, portId, ip.n, block.id);
    }
    if (s.owner !== this.site)
      throw new Conflict(
        `IP address ${canonical} of subnet ${s.id} is not in a block leased to site ${this.site}; create the port at the subnet's owner ${s.owner}.`,
        'IpAddressAlreadyAllocated',
      );
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
    const exists = this.db.prepare('SELECT 1 FROM net_ip_blocks WHERE id = ?');
    for (const pool of s.pools) {
      for (let n = pool.first; n <= pool.last;) {
        const slot = this.slotOf(s, pool, n);
        if (!exists.get(this.blockId(s, slot.first))) return this.carve(s, slot, to, expiresAt);
        n = slot.last + 1n;
        if (bs <= 0n) break;
      }
    }
    return undefined;
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
