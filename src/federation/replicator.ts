/**
 * @module Ships this site's change log to the others and applies theirs. Push for speed (each commit's
 * changes are published at once), pull for correctness (a receiver that sees a gap, or a heartbeat whose
 * log head is ahead of its cursor, asks the origin for what follows its cursor). A lost message costs
 * latency, never correctness. Liveness, by `liveness`: 'broadcast' tracks peers from heartbeats (a
 * site not heard from for `downAfterMs` is down, and writes to what it owns fail fast); 'gossip' probes
 * one peer a period instead (SWIM-like, docs/federation.md "Liveness by gossip"), so that idle cost per
 * site does not grow with the number of sites.
 */
import { createHash } from 'node:crypto';
import type { Clock, Ids, Logger, TimerHandle } from '../core/ports.ts';
import { randomIds, sleep } from '../core/ports.ts';
import { seededRandom } from '../core/random.ts';
import type { Fabric } from '../fabric/fabric.ts';
import { decodeJson, encodeJson, siteOfSubject, subjects } from '../fabric/fabric.ts';
import type { Change, ChangeLog } from './changelog.ts';
import type { ChangeChunk } from './limits.ts';
import { messageBudget, payloadFitsCap, splitChanges } from './limits.ts';

/** Protocol version of the messages below; see docs/federation.md. */
export const PROTOCOL_VERSION = 1;

/**
 * A signed run of changes: `body` is the JSON text of Change[], `sig` the origin's Ed25519 signature
 * of that text (base64url). Receivers verify before they apply anything.
 */
export interface ChangeBatch {
  v: number;
  origin: string;
  body: string;
  sig: string;
}
export interface Heartbeat {
  v: number;
  site: string;
  version: string;
  head: number;
  /** The site's public API endpoint, for the catalog. */
  endpoint: string;
  sentAt: number;
  /** This process's random instance id: a heartbeat under our own name with another one is an impostor. */
  instance?: string;
  /**
   * Gossip mode only: peers whose state the sender has just seen change (it probed them, directly and
   * through others). Sent once per change, not every period; receivers check with a ping of their own.
   */
  news?: LivenessNews[];
}

/** One peer's state change as its reporter saw it. */
export interface LivenessNews {
  site: string;
  up: boolean;
}

/**
 * Gossip mode: what a ping request and its reply carry besides the ping (docs/federation.md). `head`
 * is the sender's own log head; `heads` the heads of origins it applied changes of recently and `down`
 * the peers it believes down, both bounded: hints the receiver checks against the origin itself.
 */
export interface GossipDigest {
  head: number;
  heads: [string, number][];
  down: string[];
}

/** A ping request: empty (broadcast mode), or a digest and possibly a peer to probe for the sender. */
export interface PingRequest {
  v?: number;
  /** The sender as it says (not authenticated: its head in the digest only prompts a pull from it). */
  from?: string;
  digest?: GossipDigest;
  /** Ping this peer and say whether it answered (an indirect probe). */
  probe?: string;
}
export interface PingReply {
  site: string;
  at: number;
  instance: string;
  version?: string;
  endpoint?: string;
  digest?: GossipDigest;
  /** The answer to `probe`. */
  probed?: { site: string; ok: boolean };
}

export type Liveness = 'broadcast' | 'gossip';
export interface PullRequest {
  v: number;
  from: number;
  limit: number;
}
export interface PullReply {
  v: number;
  origin: string;
  head: number;
  body: string;
  sig: string;
}

/** Signs this site's batches and checks other sites'. */
export const SealRefusalCode = {
  /** Forged, altered, or from an evicted or never admitted origin: nothing of it applies. */
  Refused: 'refused',
  /** Not an attack: this site has not met the origin yet; pull its log from the start. */
  NotMetYet: 'not_met_yet',
} as const;
export type SealRefusalCode = (typeof SealRefusalCode)[keyof typeof SealRefusalCode];

/** Why a batch must not be applied. */
export interface SealRefusal {
  code: SealRefusalCode;
  why: string;
}

export interface ChangeSealer {
  seal(body: string): string;
  /** Why the batch must not be applied (forged, altered, unknown or evicted origin), or undefined. */
  open(origin: string, body: string, sig: string, changes: Change[]): SealRefusal | undefined;
}

/** For tests of replication alone: signs nothing, trusts everything. */
export const noSealer: ChangeSealer = { seal: () => '', open: () => undefined };

export interface Peer {
  site: string;
  version: string;
  endpoint: string;
  head: number;
  lastSeen: number;
  /** Round trip of the last pull or ping, ms. */
  rttMs: number | undefined;
}

export interface ReplicatorOptions {
  heartbeatMs: number;
  downAfterMs: number;
  pullLimit: number;
  pullTimeoutMs: number;
  version: string;
  endpoint: string;
  /**
   * Whether a sender is a site the federation knows and has not evicted. Heartbeats from any other
   * name create no peer entry (and so no metrics series): what unknown names cost stays bounded.
   */
  knows: (site: string) => boolean;
  /** The identity key (PEM) this site knows for another, if any: a `cursor` answer carries its hash. */
  identityOf?: (site: string) => string | undefined;
  /** Where this process's instance id comes from (random by default). */
  ids?: Ids;
  /** Gossip mode: the probe order and helper choice (by default seeded from this instance's id). */
  random?: () => number;
  /** How peers are known to be up: every site's heartbeats ('broadcast') or probes ('gossip'). */
  liveness: Liveness;
  /** Gossip mode: the sites of the federation (this one may be among them), read once per probe round. */
  members?: () => string[];
  /** Gossip mode: peers asked to probe one that did not answer, before it is taken as down. */
  indirectProbes: number;
}

export const defaultReplicatorOptions: ReplicatorOptions = {
  heartbeatMs: 1000,
  downAfterMs: 3500,
  pullLimit: 500,
  pullTimeoutMs: 5000,
  version: '0.1.0',
  endpoint: '',
  knows: () => true,
  liveness: 'broadcast',
  indirectProbes: 3,
};

/** What a `cursor` request answers: how far `site` applied `origin`'s log, and the key it knows for it. */
export interface CursorReply {
  site: string;
  origin: string;
  cursor: number;
  /** sha256 (hex) of the identity key PEM `site` knows for `origin`, when it knows one. */
  identity?: string;
}

export const fingerprint = (pem: string) => createHash('sha256').update(pem).digest('hex');

/** Changes a pull reply reads first (then four times more while they all fit in one message). */
const FIRST_PULL_READ = 16;

/** Gossip mode: at most this many origins' heads and down peers in one digest. */
const DIGEST_HEADS = 16;
const DIGEST_DOWN = 16;
/** Gossip mode: an origin's head is carried in digests this long after this site last applied its changes. */
const RECENT_HEAD_MS = 30_000;
/** Gossip mode: peers a caller asked about (isUp) are probed every period, the most recent this many. */
const WANTED_PROBES = 2;
const WANTED_KEEP = 16;
/** Gossip mode: suspected peers (a probe failed, not down yet) probed every period, at most. */
const SUSPECT_PROBES = 4;
const WANTED_FOR_MS = 30_000;
/** Gossip mode: peers others said were down (or up again) probed a period, at most, and kept, at most. */
const RUMOUR_PROBES = 2;
const MAX_RUMOURS = 64;

/**
 * Pulls in flight per site, at most: the others wait in a queue (one entry per origin). A site that
 * comes back after a mass outage, or starts among many, catches up a few origins at a time instead of
 * asking every origin at once (FIELD-LESSONS: reconnect storms). Heartbeats of names not in the
 * registry start a pull only while a slot is free.
 */
const MAX_PULLS = 8;
/** Names not in the registry (hinted by digests) waiting for a pull slot, at most. */
const MAX_HINT_QUEUE = 4096;
/** Origins whose timed-out pulls are counted (for the backoff) while not in the registry, at most. */
const MAX_UNKNOWN_BACKOFFS = 64;

export class Replicator {
  readonly peers = new Map<string, Peer>();
  /** Random id of this process; heartbeats and ping replies carry it (docs/federation.md, "One process per name"). */
  readonly instance: string;
  private readonly random: () => number;
  /** When another process was last heard under this site's own name, and its instance id. */
  private impostor: { instance: string; at: number } | undefined;
  private fabric: Fabric;
  private changelog: ChangeLog;
  private clock: Clock;
  private log: Logger;
  private opts: ReplicatorOptions;
  private pulling = new Set<string>();
  /** Origins waiting for a pull slot (MAX_PULLS in flight), in the order they were asked for. */
  private pullQueue = new Set<string>();
  /** Origins whose failed pull is retried on a jittered timer (one timer per origin). */
  private retries = new Map<string, TimerHandle>();
  private stash = new Map<string, Change[][]>();
  /** Pulls from each origin that timed out in a row (they lengthen the next pull's wait). */
  private pullTimeouts = new Map<string, number>();
  private unsubs: (() => void)[] = [];
  private timer: TimerHandle | undefined;
  private stopped = false;
  /** Called after remote changes were applied (caches that depend on replicated rows listen here). */
  private appliedListeners: ((origin: string, changes: Change[]) => void)[] = [];
  /** Gossip mode: peers taken as down (probe and indirect probes failed), and since when. */
  private down = new Map<string, number>();
  /** Gossip mode: probe order of this round (shuffled members), and the position in it. */
  private round: string[] = [];
  private roundAt = 0;
  /** Gossip mode: peers asked about lately (isUp), with when; probed every period. */
  private wanted = new Map<string, number>();
  /** Gossip mode: origins whose changes were applied lately, with when (their heads go in digests). */
  private recentOrigins = new Map<string, number>();
  private probing = new Set<string>();
  /** Gossip mode: peers a probe failed to reach, since when (down after downAfterMs of failures). */
  private suspects = new Map<string, number>();
  readonly stats = {
    pushedBatches: 0,
    probes: 0,
    indirectProbes: 0,
    pushedChanges: 0,
    applied: 0,
    pulls: 0,
    rejected: 0,
    forged: 0,
    spoofedHeartbeats: 0,
    unknownSenders: 0,
    /** Changes of this site's log too large for any message, sent as stubs (limits.ts). */
    oversized: 0,
  };
  private sealer: ChangeSealer;

  constructor(
    fabric: Fabric,
    changelog: ChangeLog,
    clock: Clock,
    log: Logger,
    opts: Partial<ReplicatorOptions> = {},
    sealer: ChangeSealer = noSealer,
  ) {
    this.sealer = sealer;
    this.instance = (opts.ids ?? randomIds).uuid();
    this.random = opts.random ?? seededRandom(parseInt(this.instance.replace(/-/g, '').slice(0, 8), 16) || 1);
    this.fabric = fabric;
    this.changelog = changelog;
    this.clock = clock;
    this.log = log;
    this.opts = { ...defaultReplicatorOptions, ...opts };
  }

  get site(): string {
    return this.fabric.site;
  }

  setEndpoint(url: string): void {
    this.opts.endpoint = url;
  }

  onApplied(fn: (origin: string, changes: Change[]) => void): void {
    this.appliedListeners.push(fn);
  }

  start(): void {
    this.startedAt = this.clock.now();
    if (!payloadFitsCap(this.fabric.maxPayload))
      this.log.error(
        { maxPayload: this.fabric.maxPayload },
        'the fabric max_payload is too small for the largest replicated row: such rows will be skipped (use at least 1 MiB)',
      );
    this.changelog.onAppend((changes) => this.push(changes));
    this.unsubs.push(
      this.fabric.subscribe(subjects.allChanges, (m) => {
        const origin = siteOfSubject(m.subject);
        if (!origin || origin === this.site) return;
        this.guard(() => this.receive(origin, decodeJson<ChangeBatch>(m.data)));
      }),
      this.fabric.subscribe(subjects.allHeartbeats, (m) => {
        const origin = siteOfSubject(m.subject);
        if (!origin) return;
        if (origin === this.site) return this.guard(() => this.ownName(decodeJson<Heartbeat>(m.data)));
        this.guard(() => this.heard(origin, decodeJson<Heartbeat>(m.data)));
      }),
      this.fabric.serve(subjects.rpc(this.site, 'changes'), (data) => {
        const req = decodeJson<PullRequest>(data);
        const limit = Math.max(1, Math.min(Number(req.limit) || 1, this.opts.pullLimit));
        // The first message's worth: the puller asks again from where this reply ends.
        const body = this.replyChunk(Number(req.from) || 0, limit)?.body ?? '[]';
        const reply: PullReply = {
          v: PROTOCOL_VERSION,
          origin: this.site,
          head: this.changelog.head(),
          body,
          sig: this.sealer.seal(body),
        };
        return encodeJson(reply);
      }),
      this.fabric.serve(subjects.rpc(this.site, 'ping'), async (data) => {
        const reply: PingReply = { site: this.site, at: this.clock.now(), instance: this.instance };
        if (this.opts.liveness !== 'gossip') return encodeJson(reply);
        let req: PingRequest = {};
        try {
          req = decodeJson<PingRequest>(data);
        } catch {
          // An empty ping (`atoll sites`, broadcast-mode peers) is still answered.
        }
        // The request's sender is not authenticated (anyone may call a site's ping): its digest only
        // prompts pulls, which the origins answer and sign themselves.
        if (req.digest) this.guard(() => this.hints(req.digest!, req.from));
        reply.version = this.opts.version;
        reply.endpoint = this.opts.endpoint;
        reply.digest = this.digest();
        if (typeof req.probe === 'string' && req.probe !== this.site && this.opts.knows(req.probe))
          reply.probed = { site: req.probe, ok: await this.direct(req.probe) };
        return encodeJson(reply);
      }),
      // How far this site has applied another origin's log (a leaving site waits for its peers).
      // (A restarted site also asks it of itself, to tell whether it is the site the others know.)
      this.fabric.serve(subjects.rpc(this.site, 'cursor'), (data) => {
        const { origin } = decodeJson<{ origin: string }>(data);
        const pem = this.opts.identityOf?.(String(origin));
        const reply: CursorReply = {
          site: this.site,
          origin: String(origin),
          cursor: this.changelog.cursor(String(origin)),
          ...(pem ? { identity: fingerprint(pem) } : {}),
        };
        return encodeJson(reply);
      }),
    );
    if (this.opts.liveness === 'gossip') {
      // Every member is presumed up until a probe says otherwise; a few first probes fetch the others'
      // lists of down peers and heads. One heartbeat says this site is (back) up.
      for (const m of this.opts.members?.() ?? []) if (m !== this.site) this.peer(m);
      this.announce();
      this.gossip();
    } else this.beat();
  }

  private guard(fn: () => void): void {
    try {
      fn();
    } catch (e) {
      this.log.warn({ err: String(e) }, 'bad federation message ignored');
    }
  }

  /** Each peer's state as last logged, so that every change (down, up again) is said once. */
  private saidUp = new Map<string, boolean>();

  private logPeerChanges(): void {
    for (const [name, p] of this.peers) {
      const up = this.isUp(name);
      const was = this.saidUp.get(name);
      if (was === up) continue;
      this.saidUp.set(name, up);
      if (up && was === undefined) this.log.info({ peer: name }, 'peer is up');
      else if (up) this.log.warn({ peer: name }, 'peer is up again');
      else
        this.log.warn(
          { peer: name, lastSeenMsAgo: p.lastSeen ? this.clock.now() - p.lastSeen : null },
          this.opts.liveness === 'gossip'
            ? 'peer is down: it answered no probe, direct or through others (down, or the link is cut)'
            : `peer is down: no heartbeat for over ${this.opts.downAfterMs} ms (down, or the link is cut)`,
        );
    }
  }

  private beat(): void {
    if (this.stopped) return;
    this.logPeerChanges();
    this.publishHeartbeat();
    this.timer = this.clock.setTimeout(() => this.beat(), this.opts.heartbeatMs);
  }

  /** This site's heartbeat (its head, endpoint and instance), with liveness news in gossip mode. */
  private publishHeartbeat(news?: LivenessNews[]): void {
    const hb: Heartbeat = {
      v: PROTOCOL_VERSION,
      site: this.site,
      version: this.opts.version,
      head: this.changelog.head(),
      endpoint: this.opts.endpoint,
      sentAt: this.clock.now(),
      instance: this.instance,
      ...(news ? { news } : {}),
    };
    this.fabric.publish(subjects.heartbeat(this.site), encodeJson(hb));
  }

  /** Peers added or changed state since the last log of changes (gossip mode logs only then). */
  private livenessChanged = true;

  private setDown(site: string): void {
    this.down.set(site, this.clock.now());
    this.livenessChanged = true;
  }

  private clearDown(site: string): boolean {
    const was = this.down.delete(site);
    if (was) this.livenessChanged = true;
    return was;
  }

  /** News waiting for the next period: at most one news heartbeat a period, whatever happened. */
  private pendingNews = new Map<string, boolean>();

  private tell(n: LivenessNews): void {
    this.pendingNews.set(n.site, n.up);
  }

  /** Gossip mode: one heartbeat, at start, to refute a suspicion, or to carry news; never periodic. */
  private announce(news?: LivenessNews[]): void {
    if (this.stopped) return;
    this.publishHeartbeat(news);
  }

  /** Gossip mode, each period: probe the next member of the round and the peers asked about lately. */
  private gossip(): void {
    if (this.stopped) return;
    // Walking every peer each period would cost O(N) per site: only when something changed.
    if (this.livenessChanged || this.peers.size !== this.saidUp.size) {
      this.livenessChanged = false;
      this.logPeerChanges();
    }
    const now = this.clock.now();
    const targets = new Set<string>();
    const next = this.nextInRound();
    if (next) targets.add(next);
    const wanted = [...this.wanted].filter(([, at]) => now - at <= WANTED_FOR_MS).sort((a, b) => b[1] - a[1]);
    for (const [site] of wanted.slice(0, WANTED_PROBES)) targets.add(site);
    for (const site of [...this.suspects.keys()].slice(-SUSPECT_PROBES)) targets.add(site);
    // Then what others said (newest first): probed by this site's own probe, which alone decides.
    for (const [site, at] of this.rumours) if (now - at > this.opts.downAfterMs) this.rumours.delete(site);
    for (const [site] of [...this.rumours].reverse().slice(0, RUMOUR_PROBES)) {
      this.rumours.delete(site);
      targets.add(site);
    }
    for (const t of targets) void this.probe(t);
    if (this.pendingNews.size > 0) {
      const news = [...this.pendingNews].slice(0, DIGEST_DOWN).map(([site, up]) => ({ site, up }));
      for (const n of news) this.pendingNews.delete(n.site);
      this.announce(news);
    }
    // A site that knows no peer yet (a joiner whose registry lists only itself) says hello each period
    // until one answers; that is once per joiner, not per period per site.
    if (this.peers.size === 0) this.announce();
    for (const [o, at] of this.recentOrigins) if (now - at > RECENT_HEAD_MS) this.recentOrigins.delete(o);
    this.timer = this.clock.setTimeout(() => this.gossip(), this.opts.heartbeatMs);
  }

  /** The next member to probe: each round visits every member once, in a new random order. */
  private nextInRound(): string | undefined {
    if (this.roundAt >= this.round.length) {
      const members = new Set([...(this.opts.members?.() ?? []), ...this.peers.keys()]);
      members.delete(this.site);
      this.round = [...members].filter((m) => this.opts.knows(m));
      for (let i = this.round.length - 1; i > 0; i--) {
        const j = Math.floor(this.random() * (i + 1));
        [this.round[i], this.round[j]] = [this.round[j]!, this.round[i]!];
      }
      this.roundAt = 0;
    }
    return this.round[this.roundAt++];
  }

  /** How long a probe waits: a few round trips once measured, at most most of a period. */
  private probeTimeout(site: string): number {
    const rtt = this.peers.get(site)?.rttMs;
    const half = Math.max(20, Math.floor(this.opts.heartbeatMs / 2));
    return rtt === undefined ? half : Math.min(half, Math.max(20, 4 * rtt + 20));
  }

  /** One direct ping with this site's digest; the reply (only `site` can serve its subject) is authentic. */
  private async direct(site: string): Promise<boolean> {
    const t0 = this.clock.now();
    const req: PingRequest = { v: PROTOCOL_VERSION, from: this.site, digest: this.digest() };
    try {
      const data = await this.fabric.request(
        subjects.rpc(site, 'ping'),
        encodeJson(req),
        this.probeTimeout(site),
      );
      const r = decodeJson<PingReply>(data);
      if (r.site !== site) return false;
      this.alive(site, r, this.clock.now() - t0);
      return true;
    } catch {
      return false;
    }
  }

  /** SWIM's probe: direct, then through `indirectProbes` others; a peer none reaches is down. */
  private async probe(site: string): Promise<void> {
    if (this.probing.has(site) || this.stopped) return;
    this.probing.add(site);
    try {
      this.stats.probes++;
      const t0 = this.clock.now();
      if (await this.direct(site)) return;
      const helpers = this.helpers(site, this.opts.indirectProbes);
      this.stats.indirectProbes += helpers.length;
      const answers = await Promise.all(
        helpers.map(async (h) => {
          try {
            const data = await this.fabric.request(
              subjects.rpc(h, 'ping'),
              encodeJson({ v: PROTOCOL_VERSION, probe: site } satisfies PingRequest),
              2 * this.probeTimeout(h) + this.probeTimeout(site),
            );
            const r = decodeJson<PingReply>(data);
            return r.site === h && r.probed?.site === site && r.probed.ok === true;
          } catch {
            return false;
          }
        }),
      );
      if (this.stopped) return;
      // A probe that took far longer than its timeouts allow says this site was starved (a busy event
      // loop fires the timeouts late, before the replies are read): no conclusion (Lifeguard's rule).
      const budget = 3 * this.probeTimeout(site) + 2 * this.opts.heartbeatMs;
      if (!answers.some(Boolean) && this.clock.now() - t0 > 2 * budget) return;
      if (answers.some(Boolean)) {
        // Reachable through another site only: up (its writes can still be forwarded by the fabric).
        const p = this.peer(site);
        p.lastSeen = this.clock.now();
        this.suspects.delete(site);
        if (this.clearDown(site)) this.tell({ site, up: true });
        return;
      }
      // Suspected from the first failed probe and probed every period; down once no probe has reached
      // it for downAfterMs (the same patience as broadcast mode's), so one slow reply is no outage.
      const since = this.suspects.get(site) ?? t0;
      this.suspects.set(site, since);
      if (!this.down.has(site) && this.clock.now() - since >= this.opts.downAfterMs) {
        this.setDown(site);
        this.tell({ site, up: false });
      }
    } finally {
      this.probing.delete(site);
    }
  }

  /** Up to `k` random peers believed up, other than `site`. */
  private helpers(site: string, k: number): string[] {
    const up = [...this.peers.keys()].filter((p) => p !== site && !this.down.has(p));
    const out: string[] = [];
    while (out.length < k && up.length > 0) out.push(up.splice(Math.floor(this.random() * up.length), 1)[0]!);
    return out;
  }

  /** An authentic answer from `site`: it is up; its own head and its digest's hints are used. */
  private alive(site: string, r: PingReply, rttMs: number): void {
    if (!this.opts.knows(site)) return;
    this.suspects.delete(site);
    this.rumours.delete(site);
    const p = this.peer(site);
    p.lastSeen = this.clock.now();
    p.rttMs = rttMs;
    if (r.version !== undefined) p.version = String(r.version);
    if (r.endpoint !== undefined) p.endpoint = String(r.endpoint);
    if (this.clearDown(site)) this.tell({ site, up: true });
    if (r.digest) {
      const head = Number(r.digest.head) || 0;
      const cursor = this.changelog.cursor(site);
      if (head < cursor)
        // As for a heartbeat (heard): a lost data directory or an old backup under its name.
        return void this.forged(
          site,
          `its log went back from seq ${cursor} to ${head} (lost data directory or old backup)`,
        );
      p.head = Math.max(p.head, head);
      if (p.head > this.changelog.cursor(site)) this.pull(site);
      this.hints(r.digest);
    }
  }

  /** What this site tells the peer it pings (or that pings it). */
  private digest(): GossipDigest {
    // Half the heads are of the origins changed lately, half taken in turn from every peer this site
    // knows (anti-entropy: a joiner, or a receiver that lost an old origin's last push, hears of every
    // origin within about N / 8 probes, whatever is changing).
    const recent = [...this.recentOrigins]
      .sort((a, b) => b[1] - a[1])
      .slice(0, DIGEST_HEADS / 2)
      .map(([o]) => o);
    if (this.knownNames.length !== this.peers.size) this.knownNames = [...this.peers.keys()];
    const known = this.knownNames;
    const names = new Set(recent);
    for (let i = 0; i < Math.min(known.length, DIGEST_HEADS / 2); i++)
      names.add(known[((this.rotation++ % known.length) + known.length) % known.length]!);
    const heads: [string, number][] = [...names].map((o) => [o, this.changelog.cursor(o)]);
    const down = [...this.down]
      .sort((a, b) => b[1] - a[1])
      .slice(0, DIGEST_DOWN)
      .map(([s]) => s);
    return { head: this.changelog.head(), heads, down };
  }

  /**
   * Hints from a digest: an origin whose head is ahead of this site's cursor is pulled (from the origin,
   * which signs its reply); a peer said to be down that this site believes up is probed now.
   */
  private hints(d: GossipDigest, from?: unknown): void {
    const heads = Array.isArray(d.heads) ? d.heads.slice(0, DIGEST_HEADS) : [];
    // The sender's own head, and the heads it carries: a site not met yet is pulled too (its log starts
    // with its registry row), a few at a time; the others wait in a bounded queue (a joiner hears of
    // every site at once and must not drop all but a few).
    if (typeof from === 'string') this.hintPull(from, Number(d.head) || 0);
    for (const h of heads) if (Array.isArray(h)) this.hintPull(String(h[0]), Number(h[1]) || 0);
    const down = Array.isArray(d.down) ? d.down.slice(0, DIGEST_DOWN) : [];
    for (const s of down) this.suspected(String(s));
  }

  private rotation = 0;
  private knownNames: string[] = [];
  private refutedAt = -Infinity;

  private hintPull(origin: string, head: number): void {
    if (origin === this.site || head <= this.changelog.cursor(origin)) return;
    this.pull(origin);
  }

  /** Starts queued pulls while fewer than MAX_PULLS are in flight, oldest first. */
  private drainPulls(): void {
    for (const o of this.pullQueue) {
      if (this.pulling.size >= MAX_PULLS || this.stopped) return;
      this.pullQueue.delete(o);
      this.startPull(o);
    }
  }

  /**
   * Another site says `site` is down (news, or a digest's down list): a rumour, never believed. It only
   * moves `site` up this site's own probe rotation (RUMOUR_PROBES a period); what that probe finds is
   * what counts, with the same patience as any probe (a suspect is down after downAfterMs of failed
   * probes). So a lie, or a burst of news when many sites start, costs each receiver at most a probe
   * it would have sent anyway a little later, not one ping per report.
   */
  private suspected(site: string): void {
    if (site === this.site) {
      // Refuted by saying so on this site's own subject, at most once a period (a digest is not
      // authenticated: a caller must not make this site broadcast at will).
      if (this.clock.now() - this.refutedAt < this.opts.heartbeatMs) return;
      this.refutedAt = this.clock.now();
      return this.announce();
    }
    if (!this.opts.knows(site) || this.down.has(site) || this.suspects.has(site)) return;
    // Heard from it within the last period: the rumour is older than what this site knows.
    const seen = this.peers.get(site)?.lastSeen ?? 0;
    if (this.clock.now() - seen < this.opts.heartbeatMs) return;
    this.rumour(site);
  }

  /** Gossip mode: a heartbeat's news, from the member that sent it. */
  private news(news: LivenessNews[]): void {
    for (const n of news.slice(0, DIGEST_DOWN)) {
      const site = String(n?.site);
      if (n?.up === false) this.suspected(site);
      // Said to be up again while this site believes it down: probe it soon (the probe decides).
      else if (site !== this.site && this.down.has(site)) this.rumour(site);
    }
  }

  /**
   * Sites others named (down, or up again), with when, to probe in the next periods: the oldest is
   * dropped when full, any is dropped once this site hears from it or after downAfterMs (stale news).
   */
  private rumours = new Map<string, number>();

  private rumour(site: string): void {
    this.rumours.delete(site);
    this.rumours.set(site, this.clock.now());
    if (this.rumours.size > MAX_RUMOURS) this.rumours.delete(this.rumours.keys().next().value!);
  }

  /** Each commit's changes, in as many batches as it takes to keep each under the fabric's max payload. */
  private push(changes: Change[]): void {
    if (this.stopped) return;
    for (const { body, changes: run } of this.chunks(changes)) {
      const batch: ChangeBatch = {
        v: PROTOCOL_VERSION,
        origin: this.site,
        body,
        sig: this.sealer.seal(body),
      };
      this.stats.pushedBatches++;
      this.stats.pushedChanges += run.length;
      this.fabric.publish(subjects.changes(this.site), encodeJson(batch));
    }
  }

  /**
   * This site's changes split into message-sized runs (limits.ts). A change that fits in no message
   * (an over-large row an older version logged) goes as a stub that receivers reject, so their cursors
   * move past it instead of every push and pull after it failing for good; it is logged and counted.
   */
  private chunks(changes: readonly Change[]): ChangeChunk[] {
    const { chunks, oversized } = splitChanges(changes, messageBudget(this.fabric.maxPayload));
    this.skipped(oversized);
    return chunks;
  }

  /**
   * What one pull reply carries: the first message's worth of the changes after `from`. It reads a few
   * changes first and more only while they all fit, so that a log of large rows is not parsed `limit`
   * rows at a time to send a handful of them.
   */
  private replyChunk(from: number, limit: number): ChangeChunk | undefined {
    for (let n = Math.min(limit, FIRST_PULL_READ); ; n = Math.min(limit, 4 * n)) {
      const changes = this.changelog.since(from, n);
      const { chunks, oversized } = splitChanges(changes, messageBudget(this.fabric.maxPayload));
      if (chunks.length <= 1 && changes.length === n && n < limit) continue;
      const first = chunks[0];
      const last = first?.changes[first.changes.length - 1]?.seq ?? from;
      this.skipped(oversized.filter((c) => c.seq <= last));
      return first;
    }
  }

  private skipped(oversized: readonly Change[]): void {
    for (const c of oversized) {
      this.stats.oversized++;
      this.log.error(
        { kind: c.kind, id: String(c.id).slice(0, 255), seq: c.seq, maxPayload: this.fabric.maxPayload },
        'change too large for any fabric message: replicas keep the row as it was (atoll_changes_oversized_total)',
      );
    }
  }

  private peer(site: string): Peer {
    let p = this.peers.get(site);
    if (!p) {
      p = { site, version: '?', endpoint: '', head: 0, lastSeen: 0, rttMs: undefined };
      this.peers.set(site, p);
    }
    return p;
  }

  /**
   * A heartbeat on our own subject from another instance: a second process runs under this name (a
   * fabric without per-site credentials, or a copied data directory). Its subscriptions share our rpc
   * subjects, so forwarded writes would land in either process; this one logs it loudly and refuses
   * forwarded writes while the other is heard (nameConflict), rather than let them split.
   */
  private ownName(hb: Heartbeat): void {
    const other = String(hb.instance ?? '');
    if (other === this.instance) return;
    if (this.impostor?.instance !== other)
      this.log.error(
        { site: this.site, instance: this.instance, other },
        `another process is running as site ${this.site}: refusing forwarded writes until it stops`,
      );
    this.impostor = { instance: other, at: this.clock.now() };
  }

  /** The instance id of another process heard under this site's name within downAfterMs, if any. */
  nameConflict(): string | undefined {
    const i = this.impostor;
    return i && this.clock.now() - i.at <= this.opts.downAfterMs ? i.instance : undefined;
  }

  /**
   * The sender is the subject's site, which only that site may publish on (fabric permissions), never
   * the body's claim: a body naming another site is a spoof and is dropped.
   */
  private heard(origin: string, hb: Heartbeat): void {
    if (hb.site !== origin) {
      this.stats.spoofedHeartbeats++;
      this.log.warn({ origin, claimed: String(hb.site) }, 'heartbeat names another site; ignored');
      return;
    }
    if (!this.opts.knows(origin)) {
      // Not (yet) in the registry: no peer entry and no metrics series. A pull still fetches a joining
      // site's first rows (its signed registry row), a few at a time, whatever the number of names.
      this.stats.unknownSenders++;
      if (this.pulling.size < MAX_PULLS && (Number(hb.head) || 0) > this.changelog.cursor(origin))
        this.pull(origin);
      return;
    }
    const cursor = this.changelog.cursor(origin);
    if ((Number(hb.head) || 0) < cursor)
      // Its log is shorter than what this site applied of it: a lost disk or an old backup under its
      // name. What it writes now reuses seqs already applied here, so nothing of it can apply.
      return void this.forged(
        origin,
        `its log went back from seq ${cursor} to ${Number(hb.head) || 0} (lost data directory or old backup)`,
      );
    const p = this.peer(origin);
    p.version = String(hb.version);
    p.endpoint = String(hb.endpoint ?? '');
    p.head = Math.max(p.head, Number(hb.head) || 0);
    p.lastSeen = this.clock.now();
    if (p.head > this.changelog.cursor(origin)) this.pull(origin);
    if (this.opts.liveness === 'gossip') {
      // A heartbeat on its own subject is the site itself: up (at start, or refuting a suspicion).
      this.clearDown(origin);
      if (Array.isArray(hb.news)) this.news(hb.news);
    }
  }

  /** Parses and verifies a signed batch; undefined (and logged) when it must not be applied. */
  private unseal(origin: string, m: { body?: unknown; sig?: unknown }): Change[] | undefined {
    if (typeof m.body !== 'string' || typeof m.sig !== 'string') return this.forged(origin, 'unsigned batch');
    let changes: Change[];
    try {
      changes = JSON.parse(m.body) as Change[];
    } catch {
      return this.forged(origin, 'batch body is not JSON');
    }
    if (!Array.isArray(changes)) return this.forged(origin, 'batch body is not a list');
    const refusal = this.sealer.open(origin, m.body, m.sig, changes);
    if (refusal?.code === SealRefusalCode.NotMetYet) {
      // Not an attack: this site has not met the origin yet; its log starts with its registry row.
      this.log.debug({ origin, why: refusal.why }, 'batch from a site not met yet');
      queueMicrotask(() => this.pull(origin));
      return undefined;
    }
    return refusal ? this.forged(origin, refusal.why) : changes;
  }

  /** Origins and reasons already logged: an evicted site that keeps pushing is one line, not one a second. */
  private refusedLogged = new Set<string>();

  /** Why another site's batches were last refused, and when: `atoll sites` shows it as a conflict. */
  private refusals = new Map<string, { why: string; at: number }>();

  /** Why this site refused `origin`'s changes within the last few heartbeats, if it did. */
  refusal(origin: string): string | undefined {
    const r = this.refusals.get(origin);
    return r && this.clock.now() - r.at <= 3 * this.opts.downAfterMs ? r.why : undefined;
  }

  private forged(origin: string, why: string): undefined {
    this.stats.forged++;
    if (this.refusals.has(origin) || this.refusals.size < 1000)
      this.refusals.set(origin, { why, at: this.clock.now() });
    const key = `${origin}\n${why}`;
    if (this.refusedLogged.has(key) || this.refusedLogged.size > 1000)
      this.log.debug({ origin, why }, 'rejected change batch: nothing applied');
    else {
      this.refusedLogged.add(key);
      this.log.warn(
        { origin, why },
        'rejected change batch: nothing applied (said once per origin and reason)',
      );
    }
    return undefined;
  }

  private receive(origin: string, batch: ChangeBatch): void {
    if (batch.origin !== origin)
      return void this.forged(origin, `batch names origin ${String(batch.origin)}`);
    const changes = this.unseal(origin, batch);
    if (!changes) return;
    const p = this.peer(origin);
    p.lastSeen = this.clock.now();
    const last = changes[changes.length - 1];
    if (last) p.head = Math.max(p.head, last.seq);
    if (this.pulling.has(origin)) {
      // Kept for when the pull in flight returns (it may have been served before these were made).
      const kept = this.stash.get(origin) ?? [];
      if (kept.length < 100) kept.push(changes);
      this.stash.set(origin, kept);
      return;
    }
    const res = this.apply(origin, changes);
    if (res.gapFrom !== undefined) this.pull(origin);
  }

  private apply(origin: string, changes: Change[]) {
    const res = this.changelog.applyRemote(origin, changes);
    this.stats.applied += res.applied;
    this.stats.rejected += res.rejected;
    if (res.applied > 0) {
      if (this.opts.liveness === 'gossip') {
        this.recentOrigins.delete(origin);
        this.recentOrigins.set(origin, this.clock.now());
      }
      for (const l of this.appliedListeners) l(origin, changes);
    }
    return res;
  }

  /**
   * Pulls everything after our cursor from `origin`: one request in flight per origin, at most
   * MAX_PULLS in all; the others wait their turn (a name not in the registry only while the queue
   * is short).
   */
  pull(origin: string): void {
    if (this.pulling.has(origin) || this.pullQueue.has(origin) || this.stopped) return;
    if (this.pulling.size < MAX_PULLS) return this.startPull(origin);
    if (this.opts.knows(origin) || this.pullQueue.size < MAX_HINT_QUEUE) this.pullQueue.add(origin);
  }

  private startPull(origin: string): void {
    this.pulling.add(origin);
    const started = this.clock.now();
    const from = this.changelog.cursor(origin);
    this.stats.pulls++;
    const req: PullRequest = { v: PROTOCOL_VERSION, from, limit: this.opts.pullLimit };
    this.fabric.request(subjects.rpc(origin, 'changes'), encodeJson(req), this.pullTimeout(origin)).then(
      (data) => {
        this.pulling.delete(origin);
        this.guard(() => this.pulled(origin, started, decodeJson<PullReply>(data)));
        this.drainPulls();
      },
      (err: unknown) => {
        this.pulling.delete(origin);
        this.stash.delete(origin);
        // A name not in the registry yet backs off too (a site first met over a link slower than the
        // guess would otherwise never be heard), for a bounded number of such names.
        if (
          this.opts.knows(origin) ||
          this.pullTimeouts.has(origin) ||
          this.pullTimeouts.size < MAX_UNKNOWN_BACKOFFS
        )
          this.pullTimeouts.set(origin, (this.pullTimeouts.get(origin) ?? 0) + 1);
        this.log.debug({ origin, err: String(err) }, 'pull failed; retried later');
        this.retryLater(origin);
        this.drainPulls();
      },
    );
  }

  /**
   * A failed pull of a member whose head is still ahead is tried again after a jittered wait (one to
   * two pull timeouts), so that sites that all lost an origin at once do not all ask it again at once;
   * a heartbeat, probe or push in the meantime may pull it sooner.
   */
  private retryLater(origin: string): void {
    if (this.stopped || this.retries.has(origin) || !this.opts.knows(origin)) return;
    const wait = this.pullTimeout(origin) * (1 + this.random());
    this.retries.set(
      origin,
      this.clock.setTimeout(() => {
        this.retries.delete(origin);
        if (this.lag(origin) > 0) this.pull(origin);
      }, wait),
    );
  }

  private pulled(origin: string, started: number, reply: PullReply): void {
    this.pullTimeouts.delete(origin);
    const changes = this.unseal(origin, reply);
    if (!changes) return;
    // Gossip mode: a site met for the first time gets one probe, so that it learns this site too (the
    // probe's digest names the sender and its head: the new site pulls this one's log in turn).
    const met = this.opts.liveness === 'gossip' && !this.peers.has(origin);
    const p = this.peer(origin);
    if (met) queueMicrotask(() => void this.direct(origin));
    p.rttMs = this.clock.now() - started;
    p.head = Math.max(p.head, Number(reply.head) || 0);
    p.lastSeen = this.clock.now();
    let res = this.apply(origin, changes);
    for (const kept of this.stash.get(origin) ?? []) res = this.apply(origin, kept);
    this.stash.delete(origin);
    if (res.cursor < p.head && (changes.length > 0 || res.gapFrom !== undefined)) this.pull(origin);
  }

  /**
   * A lost pull must not stall catch-up: wait about four round trips (two heartbeats before the first
   * one is measured), never more than pullTimeoutMs.
   */
  private pullTimeout(origin: string): number {
    const rtt = this.peers.get(origin)?.rttMs;
    const guess = rtt === undefined ? 2 * this.opts.heartbeatMs : 4 * rtt + this.opts.heartbeatMs;
    // Each pull that timed out in a row doubles the wait, so a link slower than the guess (no round
    // trip measured yet, or a WAN that got slower) still gets a pull through.
    const backoff = 2 ** Math.min(this.pullTimeouts.get(origin) ?? 0, 6);
    return Math.min(this.opts.pullTimeoutMs, Math.max(this.opts.heartbeatMs, guess) * backoff);
  }

  isUp(site: string): boolean {
    if (site === this.site) return true;
    const p = this.peers.get(site);
    if (this.opts.liveness === 'gossip') return !!p && !this.down.has(site);
    return !!p && this.clock.now() - p.lastSeen <= this.opts.downAfterMs;
  }

  /**
   * Says that this site needs `site` (it is about to forward a write to it): in gossip mode such a peer
   * is probed every period for a while, so that its going down is noticed within about two periods.
   */
  needs(site: string): void {
    if (this.opts.liveness !== 'gossip' || site === this.site) return;
    this.wanted.delete(site);
    this.wanted.set(site, this.clock.now());
    if (this.wanted.size > WANTED_KEEP) this.wanted.delete(this.wanted.keys().next().value!);
  }

  /**
   * True while this site has run for less than `downAfterMs` and not heard `site` yet: it cannot tell
   * whether the peer is down, so a forwarded write is tried (with its deadline) rather than refused.
   * (A restarted site used to answer 503 for every peer during its first second.)
   */
  notHeardYet(site: string): boolean {
    return (
      this.startedAt !== undefined &&
      this.clock.now() - this.startedAt < this.opts.downAfterMs &&
      !this.peers.get(site)?.lastSeen
    );
  }
  private startedAt: number | undefined;

  /** Changes of `origin` this site has not applied yet, as far as it knows. */
  lag(origin: string): number {
    const p = this.peers.get(origin);
    return p ? Math.max(0, p.head - this.changelog.cursor(origin)) : 0;
  }

  /**
   * Waits until every peer that is up has applied this site's log up to its current head, or until
   * `timeoutMs`; returns the peers that had not.
   */
  async waitPeersCaughtUp(timeoutMs: number): Promise<string[]> {
    const head = this.changelog.head();
    const end = this.clock.now() + timeoutMs;
    let behind = [...this.peers.keys()].filter((p) => this.isUp(p));
    while (behind.length > 0 && this.clock.now() < end) {
      const answers = await Promise.all(
        behind.map(async (p) => {
          try {
            const r = decodeJson<{ cursor: number }>(
              await this.fabric.request(subjects.rpc(p, 'cursor'), encodeJson({ origin: this.site }), 1000),
            );
            return r.cursor >= head ? undefined : p;
          } catch {
            return p;
          }
        }),
      );
      behind = answers.filter((p): p is string => p !== undefined);
      if (behind.length > 0) await sleep(this.clock, 100);
    }
    return behind;
  }

  async ping(site: string, timeoutMs = 2000): Promise<number> {
    const t0 = this.clock.now();
    await this.fabric.request(subjects.rpc(site, 'ping'), encodeJson({}), timeoutMs);
    const rtt = this.clock.now() - t0;
    this.peer(site).rttMs = rtt;
    return rtt;
  }

  stop(): void {
    this.stopped = true;
    this.timer?.cancel();
    for (const t of this.retries.values()) t.cancel();
    this.retries.clear();
    this.pullQueue.clear();
    for (const u of this.unsubs) u();
    this.unsubs = [];
  }
}
