/**
 * @module Address-block leases across sites (docs/network.md, "Lease protocol"). Every site serves
 * `atoll.<site>.rpc.ipam` for the subnets it owns: a lessee asks for a block (`lease`), extends it while
 * it has addresses in it (`renew`) and gives it back when it has been empty for a while (`return`). The
 * owner writes the block row (owner = subnet owner, leased_to_site = lessee, a fresh lease_id) in its
 * own change log and answers with it; the lessee records the grant in its local `net_ip_leases` at once
 * (it does not wait for replication) and allocates from it in local transactions, even when cut off.
 * An owner with no free address left asks a lessee to give back a block it holds empty (`recall`,
 * served by the lessee): the lessee stops allocating from it and the owner takes it back under the same
 * rule as a return. Requests and replies travel in the RPC envelope of src/fabric/rpc.ts.
 */
import type { TimerHandle } from '../../core/ports.ts';
import { every, sleep } from '../../core/ports.ts';
import { CloudError, Conflict, Forbidden, NotFound, SiteUnavailable } from '../../core/errors.ts';
import type { Unsubscribe } from '../../fabric/fabric.ts';
import { defineRpc } from '../../fabric/rpc.ts';
import type { ServiceContext } from '../common/module.ts';
import type { BlockRow, Ipam, LeaseGrant, LeaseRow, SubnetForIpam } from './store/ipam.ts';
import { NeedLease, ipAllocationFailed } from './store/ipam.ts';
import { ipBlockKind, subnetKind } from './store/schema.ts';

/** 2: replies in the one RPC envelope of fabric/rpc.ts (1 was this protocol's own reply shape). */
export const IPAM_PROTOCOL_VERSION = 2;

/** A lessee's request to a subnet's owner. */
export type IpamRequest =
  | { op: 'lease'; from: string; subnet_id: string; ip?: string }
  | { op: 'renew'; from: string; block_id: string; lease_id: string }
  /** `head`: the lessee's change-log head once the block was marked returning; the owner reclaims only
   * after it applied the lessee's log that far (so it has seen every allocation the lessee made). */
  | { op: 'return'; from: string; block_id: string; lease_id: string; head: number }
  /** Sent by the owner to a lessee: give back this grant if it is empty. The lessee answers `returning`
   * with its log head once it stopped allocating from it (as for `return`), or `in-use` / `gone`. */
  | { op: 'recall'; from: string; block_id: string; lease_id: string };

export type LeaseState = 'leased' | 'returned' | 'pending' | 'gone' | 'returning' | 'in-use';

/** What the other end answers (errors travel as CloudErrors, see rpc.ts). */
export interface IpamReply {
  block?: LeaseGrant;
  state?: LeaseState;
  head?: number;
}

/** `atoll.<site>.rpc.ipam`, signed by its sender (federation/signed.ts). */
export const ipamRpc = defineRpc<IpamRequest, IpamReply>({ name: 'ipam', version: IPAM_PROTOCOL_VERSION });

/** How many empty blocks an owner with no room asks back at once. */
const RECALL_BATCH = 4;

export interface LeaseOptions {
  /** How long a grant lasts; the lessee renews it every ttl/3 while it has allocations in it. */
  ttlMs: number;
  /** See IpamOptions.leaseMarginMs. */
  marginMs: number;
  /** Ask for another block in the background when fewer free addresses than this are left. */
  lowWater: number;
  /** Return a block that has been empty this long. */
  idleMs: number;
  /** How often the keeper renews, returns and reclaims. */
  checkMs: number;
  /** How long a lease request waits for the owner's reply. */
  timeoutMs: number;
}

export function leaseOptions(
  cfg: Record<string, unknown>,
  blockSize: number,
  timeoutMs: number,
): LeaseOptions {
  const num = (k: string, d: number) => (typeof cfg[k] === 'number' ? (cfg[k] as number) : d);
  const ttlMs = num('leaseTtlMs', 24 * 3600_000);
  return {
    ttlMs,
    marginMs: num('leaseMarginMs', Math.min(Math.floor(ttlMs / 10), 60_000)),
    lowWater: num('leaseLowWater', Math.max(1, Math.floor(blockSize / 4))),
    idleMs: num('leaseIdleMs', 10 * 60_000),
    checkMs: num('leaseCheckMs', Math.min(30_000, Math.max(50, Math.floor(ttlMs / 12)))),
    timeoutMs: num('leaseTimeoutMs', timeoutMs),
  };
}

export class LeaseAgent {
  private readonly ctx: ServiceContext;
  private readonly ipam: Ipam;
  private readonly subnet: (id: string) => SubnetForIpam | undefined;
  readonly opts: LeaseOptions;
  private inflight = new Map<string, { p: Promise<void> }>();
  private recalls = new Map<string, Promise<boolean>>();
  private timer: TimerHandle | undefined;
  private ticking = false;
  private stopServing: Unsubscribe | undefined;
  readonly stats = {
    requested: 0,
    granted: 0,
    renewed: 0,
    returned: 0,
    reclaimed: 0,
    recalled: 0,
    failed: 0,
  };

  constructor(
    ctx: ServiceContext,
    ipam: Ipam,
    subnet: (id: string) => SubnetForIpam | undefined,
    opts: LeaseOptions,
  ) {
    this.ctx = ctx;
    this.ipam = ipam;
    this.subnet = subnet;
    this.opts = opts;
  }

  start(): void {
    this.stopServing = ipamRpc.serve(
      this.ctx.fabric,
      (req) => {
        // The sender signs its request (a site could otherwise lease, renew or return in another's name).
        const refused = this.ctx.signer.refusal(req);
        if (refused) throw new Forbidden(`Address lease request refused: ${refused}.`);
        return this.answer(req);
      },
      {
        internal: (e) => {
          this.ctx.log.error({ err: String(e) }, 'ipam request failed');
          return new CloudError(500, `lease request failed at ${this.ctx.name}: ${String(e)}`);
        },
      },
    );
    // The owner's block row is the truth: a grant whose reply was lost arrives here, a renewal's new
    // expiry too, and a reclaimed block disappears from our leases once we stopped using it.
    this.ctx.onRemoteChange([ipBlockKind, subnetKind], (kind, id) => this.onReplica(kind, id));
    this.timer = every(this.ctx.clock, this.opts.checkMs, () => void this.tick());
  }

  stop(): void {
    this.timer?.cancel();
    this.timer = undefined;
    this.stopServing?.();
  }

  // ---- lessee ---------------------------------------------------------------------------------

  /**
   * Gets a block of the subnet from its owner (the one holding `ip` when given) and records it. Concurrent
   * asks for the same subnet share one request. 503 naming the owner when it cannot be reached; 409
   * IpAddressGenerationFailure when it has no free slot.
   */
  async acquire(subnetId: string, ip?: string): Promise<void> {
    const key = `${subnetId}|${ip ?? ''}`;
    const joined = this.inflight.get(key);
    if (!joined) return this.share(key, this.request(subnetId, ip));
    try {
      await joined.p;
    } catch (e) {
      // The request we joined was sent earlier, perhaps before a partition healed: if it failed for
      // want of an answer and the owner is up now, ask again rather than fail a request that never
      // waited itself.
      const owner = this.subnet(subnetId)?.owner;
      if (!(e instanceof SiteUnavailable) || !owner || !this.ctx.replicator.isUp(owner)) throw e;
      if (this.inflight.get(key) === joined) this.inflight.delete(key);
      return this.share(key, this.request(subnetId, ip));
    }
  }

  private share(key: string, request: Promise<void>): Promise<void> {
    const entry = { p: request.finally(() => this.inflight.get(key) === entry && this.inflight.delete(key)) };
    this.inflight.set(key, entry);
    return entry.p;
  }

  /** acquire() without waiting; failures are only logged (a port create will ask again). */
  acquireInBackground(subnetId: string, ip?: string): void {
    this.acquire(subnetId, ip).catch((e: unknown) =>
      this.ctx.log.info({ subnet: subnetId, err: String(e) }, 'background lease request failed'),
    );
  }

  /** Prefetch: asks for one more block of each foreign subnet of the network that runs low. */
  topUp(networkId: string): void {
    const subnets = this.ctx.store.db
      .prepare('SELECT id FROM net_subnets WHERE network_id = ? AND owner != ?')
      .pluck()
      .all(networkId, this.ctx.name) as string[];
    for (const id of subnets) {
      const s = this.subnet(id);
      if (!s || !this.ctx.replicator.isUp(s.owner)) continue;
      // Only subnets this site already allocates in: a network used once does not lease everything.
      if (!this.ipam.leases().some((l) => l.subnet_id === id)) continue;
      if (this.ipam.freeCount(s) < this.ipam.lowWater(s, this.opts.lowWater)) this.acquireInBackground(id);
    }
  }

  /**
   * Runs `fn` (a local transaction that allocates) and, while it fails for lack of a lease, asks the
   * owner for one and runs it again. Each retry follows a grant, so this ends: the owner either grants
   * (a block of free addresses) or answers exhausted/unreachable, which is thrown.
   */
  async withLeases<T>(fn: () => T, networkId?: string): Promise<T> {
    for (let attempt = 0; ; attempt++) {
      try {
        const out = fn();
        if (networkId) this.topUp(networkId);
        return out;
      } catch (e) {
        if (!(e instanceof NeedLease) || attempt >= 8) throw e;
        await this.acquire(e.subnetId, e.ip);
      }
    }
  }

  private async call(owner: string, req: IpamRequest, timeoutMs = this.opts.timeoutMs): Promise<IpamReply> {
    if (!this.ctx.replicator.isUp(owner))
      throw new SiteUnavailable(owner, `it leases the address blocks ${this.ctx.name} needs`);
    return ipamRpc.call(this.ctx.fabric, owner, req, {
      timeoutMs,
      seal: (m) => this.ctx.signer.sign(m),
      unreachable: (why) => {
        this.stats.failed++;
        return `lease request ${why}`;
      },
    });
  }

  private async request(subnetId: string, ip?: string): Promise<void> {
    const s = this.subnet(subnetId);
    if (!s) throw new NotFound(`Subnet ${subnetId} could not be found.`, 'SubnetNotFound');
    if (s.owner === this.ctx.name) {
      // The owner itself has no room: ask lessees for blocks they hold empty.
      if (!(await this.recall(s))) throw ipAllocationFailed(s.network_id);
      return;
    }
    this.stats.requested++;
    const reply = await this.call(s.owner, {
      op: 'lease',
      from: this.ctx.name,
      subnet_id: subnetId,
      ...(ip !== undefined ? { ip } : {}),
    });
    if (!reply.block) throw ipAllocationFailed(s.network_id);
    const block = reply.block;
    this.ctx.store.tx(() => this.ipam.recordLease(block, s.owner));
    this.stats.granted++;
  }

  private onReplica(kind: string, id: string): void {
    try {
      this.ctx.store.tx(() => {
        if (kind === subnetKind.kind) {
          if (!this.subnet(id))
            for (const l of this.ipam.leases()) if (l.subnet_id === id) this.ipam.dropLease(l.id);
          return;
        }
        const b = this.ipam.block(id);
        const l = this.ipam.lease(id);
        if (b && b.leased_to_site === this.ctx.name) {
          // recordLease does not revive a grant we gave back (kept as 'returned').
          this.ipam.recordLease(b, b.owner);
        } else if (l && (l.state !== 'active' || l.expires_at <= this.ctx.clock.now())) {
          // Gone, or leased elsewhere: the owner reclaims only what we returned or let expire, and we
          // allocate from neither; an active lease it still holds is a newer grant (left alone).
          this.ipam.dropLease(id);
        }
      });
    } catch (e) {
      this.ctx.log.warn({ block: id, err: String(e) }, 'lease replica not recorded');
    }
  }

  /** One pass of the keeper: renew what is used, return what is idle, reclaim what is safely free. */
  async tick(): Promise<void> {
    if (this.ticking) return;
    this.ticking = true;
    try {
      const now = this.ctx.clock.now();
      const work: Promise<unknown>[] = [];
      for (const l of this.ipam.leases()) {
        if (l.state === 'returned') {
          this.forgetReturned(l);
          continue;
        }
        if (!this.ctx.replicator.isUp(l.lessor)) continue;
        if (l.state === 'returning') {
          work.push(this.giveBack(l));
          continue;
        }
        const used = this.ipam.allocationsIn(l) > 0;
        if (used) {
          if (l.idle_since !== null) this.ctx.store.tx(() => this.ipam.updateLease(l, { idle_since: null }));
          if (l.expires_at - now < (this.opts.ttlMs * 2) / 3) work.push(this.renew(l));
        } else if (l.idle_since === null) {
          this.ctx.store.tx(() => this.ipam.updateLease(l, { idle_since: now }));
        } else if (now - l.idle_since >= this.opts.idleMs || l.expires_at <= now) {
          work.push(this.giveBack(l));
        }
      }
      this.reclaimExpired(now);
      await Promise.allSettled(work);
    } catch (e) {
      this.ctx.log.warn({ err: String(e) }, 'lease keeper pass failed');
    } finally {
      this.ticking = false;
    }
  }

  private async renew(l: LeaseRow): Promise<void> {
    const reply = await this.call(l.lessor, {
      op: 'renew',
      from: this.ctx.name,
      block_id: l.id,
      lease_id: l.lease_id,
    });
    this.ctx.store.tx(() => {
      if (reply.block) {
        this.ipam.recordLease(reply.block, l.lessor);
        this.stats.renewed++;
      } else if (reply.state === 'gone') {
        // Only possible if we let it expire and the owner saw it empty: we stopped allocating from it
        // at expiry, so nothing is lost by forgetting it. Anything else would be a bug: say so.
        const cur = this.ipam.lease(l.id);
        if (cur && this.ipam.allocationsIn(cur) > 0)
          this.ctx.log.error({ block: l.id, lessor: l.lessor }, 'a lease in use was reclaimed by its owner');
        if (cur?.lease_id === l.lease_id) this.ipam.retireLease(cur);
      }
    });
  }

  /**
   * A grant we gave back is kept as 'returned' (never allocated from) until the owner's replica shows
   * its block gone or granted anew: an older replica of the block arriving after the owner's answer
   * must not make it usable again.
   */
  private forgetReturned(l: LeaseRow): void {
    const b = this.ipam.block(l.id);
    if (!b || b.lease_id !== l.lease_id || b.leased_to_site !== this.ctx.name)
      this.ctx.store.tx(() => {
        const cur = this.ipam.lease(l.id);
        if (cur?.state === 'returned' && cur.lease_id === l.lease_id) this.ipam.dropLease(l.id);
      });
  }

  /** Marks the lease returning (no allocation from it any more) and asks the owner to take it back. */
  private async giveBack(l0: LeaseRow): Promise<void> {
    const l = this.ctx.store.tx(() => this.stopUsing(l0.id, l0.lease_id));
    if (!l) return;
    const reply = await this.call(l.lessor, {
      op: 'return',
      from: this.ctx.name,
      block_id: l.id,
      lease_id: l.lease_id,
      head: l.return_head ?? this.ctx.changelog.head(),
    });
    if (reply.state === 'returned' || reply.state === 'gone')
      this.ctx.store.tx(() => {
        const cur = this.ipam.lease(l.id);
        if (cur && cur.lease_id === l.lease_id) this.ipam.retireLease(cur);
        this.stats.returned++;
      });
  }

  /**
   * Marks the grant `returning` (inside the caller's transaction) if it is ours and empty, so nothing
   * is allocated from it any more, and notes our log head then: once the owner applied our log that far
   * it has seen every allocation we made in it. Undefined if it is not ours or has allocations.
   */
  private stopUsing(id: string, leaseId: string): LeaseRow | undefined {
    const cur = this.ipam.lease(id);
    if (!cur || cur.lease_id !== leaseId || cur.state === 'returned') return undefined;
    if (cur.state === 'returning') return cur;
    if (this.ipam.allocationsIn(cur) > 0) return undefined;
    this.ipam.updateLease(cur, { state: 'returning', return_head: this.ctx.changelog.head() });
    return this.ipam.lease(id);
  }

  // ---- owner --------------------------------------------------------------------------------

  /**
   * Serves one request; a lease request the owner cannot grant for want of free space is granted after
   * all if another lessee gives back a block it holds empty.
   */
  private async answer(req: IpamRequest): Promise<IpamReply> {
    try {
      return this.serve(req);
    } catch (e) {
      if (
        req.op !== 'lease' ||
        req.ip !== undefined ||
        (e as CloudError).detailType !== 'IpAddressGenerationFailure'
      )
        throw e;
      const s = this.subnet(String(req.subnet_id));
      if (!s || s.owner !== this.ctx.name || !(await this.recall(s, String(req.from)))) throw e;
      return this.serve(req);
    }
  }

  /**
   * The owner has no free address in the subnet: asks the lessees of blocks its replica shows empty
   * (a few at a time, newest first, reachable ones only) to give them back, and takes back each one
   * whose lessee stopped allocating from it, once it has applied the lessee's log up to then. True if
   * at least one came back. Concurrent calls for the same subnet share one round.
   */
  recall(s: SubnetForIpam, except?: string): Promise<boolean> {
    const key = `recall|${s.id}|${except ?? ''}`;
    let p = this.recalls.get(key);
    if (!p) {
      p = this.recallRound(s, except).finally(() => this.recalls.delete(key));
      this.recalls.set(key, p);
    }
    return p;
  }

  private async recallRound(s: SubnetForIpam, except?: string): Promise<boolean> {
    const blocks = this.ipam
      .recallable(s, except)
      .filter((b) => this.ctx.replicator.isUp(String(b.leased_to_site)))
      .slice(0, RECALL_BATCH);
    // Half the lease timeout in all, so that a lessee whose lease request waits on this round still
    // gets its answer in time.
    const deadline = this.ctx.clock.now() + Math.floor(this.opts.timeoutMs / 2);
    const back = await Promise.all(blocks.map((b) => this.recallOne(b, deadline)));
    return back.some(Boolean);
  }

  private async recallOne(b: BlockRow, deadline: number): Promise<boolean> {
    const lessee = String(b.leased_to_site);
    let reply: IpamReply;
    try {
      const req = {
        op: 'recall' as const,
        from: this.ctx.name,
        block_id: b.id,
        lease_id: String(b.lease_id),
      };
      reply = await this.call(lessee, req, Math.max(1, deadline - this.ctx.clock.now()));
    } catch (e) {
      this.ctx.log.info({ block: b.id, lessee, err: String(e) }, 'recall of an empty block failed');
      return false;
    }
    // Only 'returning' lets us take it back: 'gone' may be a grant whose reply the lessee has not
    // recorded yet (it would record it from our replica), so it is left to expire.
    if (reply.state !== 'returning' || typeof reply.head !== 'number') return false;
    if (!(await this.caughtUp(lessee, reply.head, deadline))) return false;
    const head = reply.head;
    try {
      const state = this.ctx.store.tx(() => this.takeBack(b.id, String(b.lease_id), lessee, head));
      if (state === 'returned') this.stats.recalled++;
      return state === 'returned';
    } catch (e) {
      // Allocations in it after all (takeBack refuses): it stays leased; the lessee's return settles it.
      this.ctx.log.warn({ block: b.id, lessee, err: String(e) }, 'recalled block not taken back');
      return false;
    }
  }

  /** Waits (pulling) until we applied `site`'s log up to `head`; false once the deadline passed. */
  private async caughtUp(site: string, head: number, deadline: number): Promise<boolean> {
    while (this.ctx.changelog.cursor(site) < head) {
      if (this.ctx.clock.now() > deadline || !this.ctx.replicator.isUp(site)) return false;
      this.ctx.replicator.pull(site);
      await sleep(this.ctx.clock, 10);
    }
    return true;
  }

  /**
   * Frees a block its lessee stopped using (inside the caller's transaction): only the grant named by
   * `leaseId`, only once we have applied the lessee's log up to `head` (the moment it stopped allocating
   * from it), and only if we see no allocation in it: then no address of it can be in use anywhere.
   */
  private takeBack(id: string, leaseId: string, from: string, head: number): 'returned' | 'pending' | 'gone' {
    const b = this.ipam.block(id);
    if (!b || b.leased_to_site !== from || b.lease_id !== leaseId) return 'gone';
    if (this.ctx.changelog.cursor(from) < head) return 'pending';
    if (this.ipam.allocationsIn(b) > 0)
      throw new Conflict(`Block ${b.id} still has addresses allocated by ${from}.`);
    this.ipam.reclaim(b.id);
    this.stats.reclaimed++;
    return 'returned';
  }

  private serve(req: IpamRequest): IpamReply {
    const from = String(req.from);
    if (this.ctx.registry.isEvicted(from)) throw new Forbidden(`Site ${from} was evicted.`);
    if (from === this.ctx.name) throw new Conflict('a site does not lease to itself over the fabric');
    const now = this.ctx.clock.now();
    const ok = (block: BlockRow | undefined, state: LeaseState): IpamReply => ({
      state,
      ...(block ? { block: grantOf(block) } : {}),
    });
    return this.ctx.store.tx(() => {
      switch (req.op) {
        case 'lease': {
          const s = this.subnet(String(req.subnet_id));
          if (!s) throw new NotFound(`Subnet ${String(req.subnet_id)} could not be found.`, 'SubnetNotFound');
          if (s.owner !== this.ctx.name)
            throw new Conflict(`Subnet ${s.id} is owned by ${s.owner}; ask it for a lease.`);
          const b = this.ipam.grant(s, from, now + this.opts.ttlMs, req.ip);
          if (!b) throw ipAllocationFailed(s.network_id);
          return ok(b, 'leased');
        }
        case 'renew': {
          const b = this.ipam.block(String(req.block_id));
          if (!b || b.leased_to_site !== from || b.lease_id !== req.lease_id) return ok(undefined, 'gone');
          return ok(this.ipam.extend(b, now + this.opts.ttlMs), 'leased');
        }
        case 'return':
          return ok(
            undefined,
            this.takeBack(String(req.block_id), String(req.lease_id), from, Number(req.head)),
          );
        case 'recall': {
          // We are the lessee here: give the grant back if it is empty (and from its lessor).
          const l = this.ipam.lease(String(req.block_id));
          if (!l || l.lessor !== from || l.lease_id !== req.lease_id) return ok(undefined, 'gone');
          const back = this.stopUsing(l.id, l.lease_id);
          if (!back) return ok(undefined, l.state === 'returned' ? 'gone' : 'in-use');
          return { ...ok(undefined, 'returning'), head: back.return_head ?? this.ctx.changelog.head() };
        }
        default:
          throw new CloudError(400, `unknown ipam operation ${String((req as { op: unknown }).op)}`);
      }
    });
  }

  /**
   * Reclaims blocks whose lease expired (by more than the margin) and that are empty, but only when
   * the lessee was heard from after the expiry and we applied its log up to the head it then announced:
   * the lessee stops allocating from a lease `margin` before it expires, so we have then seen every
   * allocation it ever made in the block. A cut-off lessee's block is never reclaimed.
   */
  private reclaimExpired(now: number): void {
    for (const b of this.ipam.blocksLeasedOut()) {
      if (b.lease_expires_at === null || now < b.lease_expires_at + this.opts.marginMs) continue;
      const lessee = String(b.leased_to_site);
      const evicted = this.ctx.registry.isEvicted(lessee);
      const peer = this.ctx.replicator.peers.get(lessee);
      const caughtUp =
        !!peer &&
        this.ctx.replicator.isUp(lessee) &&
        peer.lastSeen >= b.lease_expires_at + this.opts.marginMs &&
        this.ctx.changelog.cursor(lessee) >= peer.head;
      if (!evicted && !caughtUp) continue;
      this.ctx.store.tx(() => {
        const cur = this.ipam.block(b.id);
        if (!cur || cur.lease_id !== b.lease_id || this.ipam.allocationsIn(cur) > 0) return;
        this.ipam.reclaim(b.id);
        this.stats.reclaimed++;
      });
    }
  }
}

function grantOf(b: BlockRow): LeaseGrant {
  return {
    id: b.id,
    subnet_id: b.subnet_id,
    first: b.first,
    last: b.last,
    lease_id: b.lease_id,
    lease_expires_at: b.lease_expires_at,
    leased_to_site: b.leased_to_site,
  };
}
