/**
 * @module The in-process fabric with a WAN model: per-link latency, jitter, bandwidth and loss, and
 * partitions. Time comes from the injected Clock, so under the lab's VirtualClock a 50 ms link costs no
 * real time. Every message between two sites is delayed by the link between them; a link's bandwidth is
 * a queue (a message waits for the ones before it to be sent).
 *
 * With `enforcePermissions` every site gets the least privilege of permissions.ts, as its nats-server
 * user would: a forbidden publish is dropped and counted (stats.denied), a forbidden request fails with
 * FabricError Permission, a forbidden subscribe or serve throws it. Off by default so that the lab and
 * unit tests can use ad hoc subjects; the security tests turn it on.
 */
import type { Clock } from '../../core/ports.ts';
import type { Fabric, FabricMessage, Unsubscribe } from '../fabric.ts';
import {
  DEFAULT_MAX_PAYLOAD,
  FabricError,
  FabricErrorCode,
  RemoteHandlerError,
  handlerErrorText,
  subjectMatches,
} from '../fabric.ts';
import type { SubjectPermissions } from '../permissions.ts';
import { mayPublish, maySubscribe, sitePermissions } from '../permissions.ts';

export interface LinkSpec {
  /** One-way delay, ms. */
  latencyMs: number;
  /** Uniform extra delay in [0, jitterMs). Messages on a link keep their order regardless. */
  jitterMs: number;
  /** Bytes per second; 0 means unlimited. */
  bandwidthBps: number;
  /** Probability in [0,1] that a message is lost. */
  loss: number;
}

/** Subjects whose routes are cached at most (the cache is cleared when full). */
const MAX_ROUTES = 100_000;

export const LAN: LinkSpec = { latencyMs: 0, jitterMs: 0, bandwidthBps: 0, loss: 0 };

interface Sub {
  pattern: string;
  handler: (msg: FabricMessage) => void;
}
interface Responder {
  pattern: string;
  handler: (data: Uint8Array) => Promise<Uint8Array> | Uint8Array;
}
interface LinkState {
  /** Time the link is free again (bandwidth queue) and the last delivery time (keeps FIFO order). */
  busyUntil: number;
  lastArrival: number;
  /** Messages in flight, oldest first. Each timer delivers everything up to its own message, so the order
   * holds even when real timers with equal due times fire out of order. */
  inFlight: { deliver: () => void; done: boolean }[];
}

export interface NetworkStats {
  messages: number;
  bytes: number;
  lost: number;
  /** Publishes, requests, subscriptions and services refused by permissions (enforcePermissions). */
  denied: number;
  /** Message and byte counts per subject family (the token after the site: changes, heartbeat, rpc). */
  bySubject: Record<string, { messages: number; bytes: number }>;
}

export interface MemoryNetworkOptions {
  defaultLink?: Partial<LinkSpec>;
  random?: () => number;
  /** Apply each site's least privilege (permissions.ts). Default false. */
  enforcePermissions?: boolean;
  /** Enforce a max payload (bytes) as a nats-server does: a larger publish or request throws, a
   * larger reply is lost (the requester times out). Unset: not enforced, and NATS's 1 MiB reported. */
  maxPayload?: number;
}

export class MemoryNetwork {
  readonly clock: Clock;
  private endpoints = new Map<string, MemoryFabric>();
  /** Links set explicitly, per direction (`a>b`); the others follow the default link, even if it changes. */
  private specs = new Map<string, LinkSpec>();
  private links = new Map<string, LinkState>();
  private defaultLink: LinkSpec;
  private isolations = 0;
  /** Sites grouped by partition id; two sites in different groups cannot talk. */
  private partitionOf = new Map<string, number>();
  private random: () => number;
  readonly stats: NetworkStats = { messages: 0, bytes: 0, lost: 0, denied: 0, bySubject: {} };
  readonly enforcePermissions: boolean;
  /** What every site's fabric reports as its max payload. */
  readonly maxPayload: number;
  private readonly enforcedMaxPayload: number | undefined;

  constructor(clock: Clock, opts: MemoryNetworkOptions = {}) {
    this.clock = clock;
    this.enforcePermissions = opts.enforcePermissions ?? false;
    this.maxPayload = opts.maxPayload ?? DEFAULT_MAX_PAYLOAD;
    this.enforcedMaxPayload = opts.maxPayload;
    this.defaultLink = { ...LAN, ...opts.defaultLink };
    this.random = opts.random ?? Math.random;
  }

  /** Whether a message of this size is over the enforced max payload. */
  overMaxPayload(bytes: number): boolean {
    return this.enforcedMaxPayload !== undefined && bytes > this.enforcedMaxPayload;
  }

  connect(site: string): MemoryFabric {
    if (this.endpoints.has(site)) throw new Error(`site ${site} is already connected`);
    const f = new MemoryFabric(this, site, this.enforcePermissions ? sitePermissions(site) : undefined);
    this.endpoints.set(site, f);
    this.routesChanged();
    return f;
  }

  /** Sets the link both ways between a and b. */
  setLink(a: string, b: string, spec: Partial<LinkSpec>): void {
    for (const key of [`${a}>${b}`, `${b}>${a}`]) {
      this.specs.set(key, { ...(this.specs.get(key) ?? this.defaultLink), ...spec });
    }
  }
  setDefaultLink(spec: Partial<LinkSpec>): void {
    this.defaultLink = { ...this.defaultLink, ...spec };
  }
  linkSpec(a: string, b: string): LinkSpec {
    return this.specs.get(`${a}>${b}`) ?? this.defaultLink;
  }

  /** Splits the sites into groups that cannot reach each other; sites not named form one more group. */
  partition(...groups: string[][]): void {
    this.partitionOf.clear();
    groups.forEach((g, i) => g.forEach((s) => this.partitionOf.set(s, i + 1)));
  }
  /** Cuts one site off from every other. */
  isolate(site: string): void {
    // A fresh group each time (the map's size can repeat, e.g. when a site is isolated twice).
    this.partitionOf.set(site, -1 - this.isolations++);
  }
  heal(): void {
    this.partitionOf.clear();
  }
  reachable(a: string, b: string): boolean {
    return a === b || (this.partitionOf.get(a) ?? 0) === (this.partitionOf.get(b) ?? 0);
  }

  /** @internal Schedules a delivery from `from` to `to`; returns false when the message is dropped. */
  send(from: string, to: string, subject: string, size: number, deliver: () => void): boolean {
    this.stats.messages++;
    this.stats.bytes += size;
    const family = subject.startsWith('_reply.') ? 'reply' : (subject.split('.')[2] ?? subject);
    const fam = (this.stats.bySubject[family] ??= { messages: 0, bytes: 0 });
    fam.messages++;
    fam.bytes += size;
    if (!this.reachable(from, to)) {
      this.stats.lost++;
      return false;
    }
    if (from === to) {
      queueMicrotask(deliver);
      return true;
    }
    const key = `${from}>${to}`;
    let link = this.links.get(key);
    if (!link) {
      link = { busyUntil: 0, lastArrival: 0, inFlight: [] };
      this.links.set(key, link);
    }
    const spec = this.linkSpec(from, to);
    if (spec.loss > 0 && this.random() < spec.loss) {
      this.stats.lost++;
      return false;
    }
    const now = this.clock.now();
    const start = Math.max(now, link.busyUntil);
    const txMs = spec.bandwidthBps > 0 ? (size * 1000) / spec.bandwidthBps : 0;
    link.busyUntil = start + txMs;
    const jitter = spec.jitterMs > 0 ? this.random() * spec.jitterMs : 0;
    const arrival = Math.max(start + txMs + spec.latencyMs + jitter, link.lastArrival);
    link.lastArrival = arrival;
    const delay = arrival - now;
    const item = { deliver, done: false };
    const queue = link.inFlight;
    queue.push(item);
    const flush = () => {
      while (!item.done) {
        const next = queue.shift();
        if (!next) break;
        next.done = true;
        try {
          next.deliver();
        } catch {
          // A receiver's fault must not stall the link.
        }
      }
    };
    if (delay <= 0) queueMicrotask(flush);
    else this.clock.setTimeout(flush, delay);
    return true;
  }

  /**
   * Routes per subject: the subscribers and responders matching it, computed once and kept until any
   * endpoint subscribes, serves, unsubscribes or leaves (matching every site's patterns on every
   * message cost O(N) per message: most of a 1,000-site process's CPU).
   */
  private routes = new Map<string, { subscribers: MemoryFabric[]; responders: MemoryFabric[] }>();

  /** @internal Any endpoint's subscriptions or services changed: every cached route may be wrong. */
  routesChanged(): void {
    this.routes.clear();
  }

  private route(subject: string): { subscribers: MemoryFabric[]; responders: MemoryFabric[] } {
    let r = this.routes.get(subject);
    if (!r) {
      r = { subscribers: [], responders: [] };
      for (const f of this.endpoints.values()) {
        if (f.hasSubscriber(subject)) r.subscribers.push(f);
        if (f.responds(subject)) r.responders.push(f);
      }
      // Subjects are bounded by the sites' own (a few per site); the cap only guards odd callers.
      if (this.routes.size >= MAX_ROUTES) this.routes.clear();
      this.routes.set(subject, r);
    }
    return r;
  }

  /** @internal */
  endpointsMatching(subject: string): readonly MemoryFabric[] {
    return this.route(subject).subscribers;
  }
  /** @internal */
  responderFor(subject: string, from: string): MemoryFabric | undefined {
    let fallback: MemoryFabric | undefined;
    for (const f of this.route(subject).responders) {
      if (this.reachable(from, f.site)) return f;
      fallback = f;
    }
    return fallback;
  }
  /** @internal */
  disconnect(site: string): void {
    this.endpoints.delete(site);
    this.routesChanged();
  }
}

export class MemoryFabric implements Fabric {
  readonly site: string;
  private net: MemoryNetwork;
  private subs: Sub[] = [];
  private responders: Responder[] = [];
  private closed = false;
  /** The site's permissions when the network enforces them. */
  readonly permissions: SubjectPermissions | undefined;
  /** Rejecters of this site's requests still waiting for a reply; close() fails them with Closed. */
  private pending = new Set<(err: Error) => void>();

  constructor(net: MemoryNetwork, site: string, permissions?: SubjectPermissions) {
    this.net = net;
    this.site = site;
    this.permissions = permissions;
  }

  private canPublish(subject: string): boolean {
    if (!this.permissions || mayPublish(this.permissions, subject)) return true;
    this.net.stats.denied++;
    return false;
  }

  private checkSubscribe(subject: string): void {
    if (this.permissions && !maySubscribe(this.permissions, subject)) {
      this.net.stats.denied++;
      throw new FabricError(
        FabricErrorCode.Permission,
        `site ${this.site} may not subscribe to ${JSON.stringify(subject)}`,
      );
    }
  }

  get maxPayload(): number {
    return this.net.maxPayload;
  }

  /** As nats.js does for a message over the server's max_payload. */
  private checkPayload(subject: string, data: Uint8Array): void {
    if (this.net.overMaxPayload(data.byteLength))
      throw new Error(
        `MAX_PAYLOAD_EXCEEDED: ${data.byteLength} bytes on ${subject}, over ${this.net.maxPayload}`,
      );
  }

  hasSubscriber(subject: string): boolean {
    return this.subs.some((s) => subjectMatches(s.pattern, subject));
  }
  responds(subject: string): boolean {
    return this.responders.some((r) => subjectMatches(r.pattern, subject));
  }

  publish(subject: string, data: Uint8Array): void {
    if (this.closed || !this.canPublish(subject)) return;
    this.checkPayload(subject, data);
    for (const fabric of this.net.endpointsMatching(subject)) {
      this.net.send(this.site, fabric.site, subject, data.byteLength, () => fabric.deliver(subject, data));
    }
  }

  private deliver(subject: string, data: Uint8Array): void {
    if (this.closed) return;
    for (const s of this.subs) {
      if (subjectMatches(s.pattern, subject)) {
        try {
          s.handler({ subject, data });
        } catch {
          // A subscriber's fault must not break delivery to the others.
        }
      }
    }
  }

  subscribe(subject: string, handler: (msg: FabricMessage) => void): Unsubscribe {
    this.checkSubscribe(subject);
    const sub = { pattern: subject, handler };
    this.subs.push(sub);
    this.net.routesChanged();
    return () => {
      this.subs = this.subs.filter((s) => s !== sub);
      this.net.routesChanged();
    };
  }

  serve(subject: string, handler: (data: Uint8Array) => Promise<Uint8Array> | Uint8Array): Unsubscribe {
    this.checkSubscribe(subject);
    const r = { pattern: subject, handler };
    this.responders.push(r);
    this.net.routesChanged();
    return () => {
      this.responders = this.responders.filter((x) => x !== r);
      this.net.routesChanged();
    };
  }

  private respond(subject: string, data: Uint8Array): Promise<Uint8Array> {
    const r = this.responders.find((x) => subjectMatches(x.pattern, subject));
    if (!r) return Promise.reject(new FabricError(FabricErrorCode.NoResponders, subject));
    return Promise.resolve().then(() => r.handler(data));
  }

  request(subject: string, data: Uint8Array, timeoutMs: number): Promise<Uint8Array> {
    if (this.closed) return Promise.reject(new FabricError(FabricErrorCode.Closed, 'fabric closed'));
    // The reply needs no permission: on NATS it travels under allow_responses to the requester's inbox.
    if (!this.canPublish(subject))
      return Promise.reject(
        new FabricError(FabricErrorCode.Permission, `site ${this.site} may not publish on ${subject}`),
      );
    try {
      this.checkPayload(subject, data);
    } catch (e) {
      return Promise.reject(e as Error);
    }
    const target = this.net.responderFor(subject, this.site);
    if (!target) return Promise.reject(new FabricError(FabricErrorCode.NoResponders, subject));
    return new Promise((resolve, reject) => {
      let done = false;
      const timer = this.net.clock.setTimeout(() => {
        if (done) return;
        done = true;
        this.pending.delete(onClose);
        reject(
          new FabricError(FabricErrorCode.Timeout, `request on ${subject} timed out after ${timeoutMs} ms`),
        );
      }, timeoutMs);
      const finish = (fn: () => void) => {
        if (done) return;
        done = true;
        timer.cancel();
        this.pending.delete(onClose);
        fn();
      };
      const onClose = (err: Error) => finish(() => reject(err));
      this.pending.add(onClose);
      this.net.send(this.site, target.site, subject, data.byteLength, () => {
        target.respond(subject, data).then(
          (reply) => {
            // The responder's server refuses a reply over max_payload: the requester hears nothing.
            if (this.net.overMaxPayload(reply.byteLength)) return;
            this.net.send(target.site, this.site, `_reply.${subject}`, reply.byteLength, () =>
              finish(() => resolve(reply)),
            );
          },
          // As over NATS: the caller gets the responder's message as data, not its error object.
          (err: unknown) =>
            this.net.send(target.site, this.site, `_reply.${subject}`, 64, () =>
              finish(() => reject(new RemoteHandlerError(subject, 500, handlerErrorText(err)))),
            ),
        );
      });
    });
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const fail of [...this.pending]) fail(new FabricError(FabricErrorCode.Closed, 'fabric closed'));
    this.subs = [];
    this.responders = [];
    this.net.disconnect(this.site);
  }
}
