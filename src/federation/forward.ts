/**
 * @module Forwarding: a write that reaches a site other than the resource's owner is carried to the
 * owner as the same HTTP request (caller's token included) over the fabric, run there through the
 * owner's own API and policy, and answered in one round trip. When the owner is down (no heartbeat) or
 * does not answer in time, the caller gets a 503 naming it at once.
 *
 * Deadlines follow the link: the owner's processing budget plus two measured round trips, so a long
 * link does not time out a write that is being applied, and a silent partition fails in about the
 * budget rather than a fixed 5 s. A forward that timed out has an unknown outcome and says so. The
 * owner remembers each write it ran for a forwarded `x-openstack-request-id` (per sender and caller's
 * token) for ten minutes: a retry with the same id gets the first answer and is not applied twice.
 */
import type { Fabric } from '../fabric/fabric.ts';
import { FabricErrorCode } from '../fabric/fabric.ts';
import { RemoteCloudError, RpcErrorCode, defineRpc } from '../fabric/rpc.ts';
import type { RpcRequest } from '../fabric/rpc.ts';
import { Conflict, SiteUnavailable, TooLarge } from '../core/errors.ts';
import type { Replicator } from './replicator.ts';
import { createHash } from 'node:crypto';
import { systemClock } from '../core/ports.ts';
import type { MessageSigner, SignedFields } from './signed.ts';
import { SIGNED_WINDOW_MS } from './signed.ts';

/** How old (or early) a forwarded request may be (see signed.ts). */
export const FORWARD_WINDOW_MS = SIGNED_WINDOW_MS;
/** How long, and for how many writes, the owner keeps the answer to a forwarded request id. */
const IDEMPOTENT_MS = 10 * 60_000;
const IDEMPOTENT_MAX = 10_000;
/** Round trip assumed for a peer none was measured for yet, ms. */
const UNMEASURED_RTT_MS = 500;

/** A forwarded request as the owner receives it (`v` is the RPC's version, see rpc.ts). */
export type ForwardedRequest = RpcRequest<ForwardedCall>;
/** What the sender fills in: the caller's request, as it reached the sender. */
export interface ForwardedCall extends SignedFields {
  from: string;
  method: string;
  url: string;
  headers: Record<string, string>;
  /** base64 */
  body?: string;
}
export interface ForwardedReply {
  status: number;
  headers: Record<string, string>;
  /** base64 */
  body: string;
}

/** `atoll.<owner>.rpc.http`: the forwarded request -> the owner's HTTP answer. */
export const httpRpc = defineRpc<ForwardedCall, ForwardedReply>({ name: 'http', version: 2 });

/** Runs a request through this site's own HTTP stack (Fastify's inject). */
export type LocalHttp = (req: ForwardedRequest) => Promise<ForwardedReply>;

export const FORWARDED_BY = 'x-atoll-forwarded-by';

/** Request headers that travel with a forwarded call; everything else stays behind. */
const CARRIED = [
  'x-auth-token',
  'content-type',
  'accept',
  'openstack-api-version',
  'x-openstack-nova-api-version',
  'x-openstack-request-id',
];
/** Reply headers that come back. */
const RETURNED = [
  'content-type',
  'location',
  'openstack-api-version',
  'x-subject-token',
  'x-openstack-request-id',
  'etag',
];

export class Forwarder {
  private fabric: Fabric;
  private replicator: Replicator;
  private timeoutMs: number;
  private signer: MessageSigner | undefined;
  /** Writes run for a caller's request id: in flight or answered (idempotent retries). */
  private answers = new Map<string, { at: number; reply: Promise<ForwardedReply> }>();
  readonly stats = { forwarded: 0, served: 0, unavailable: 0, refused: 0 };

  constructor(
    fabric: Fabric,
    replicator: Replicator,
    opts: {
      timeoutMs: number;
      signer?: MessageSigner;
      isMember?: (site: string) => boolean;
      /** Milliseconds since the epoch (the site's clock; the system clock by default). */
      now?: () => number;
    },
  ) {
    this.now = opts.now ?? systemClock.now;
    this.fabric = fabric;
    this.replicator = replicator;
    this.timeoutMs = opts.timeoutMs;
    this.signer = opts.signer;
    this.isMember = opts.isMember ?? (() => true);
  }
  private now: () => number;
  /** Whether a site is one requests may be forwarded to (known, not evicted). */
  private isMember: (site: string) => boolean;

  /** Why a request must not run (unsigned, unknown or evicted sender, stale, replayed), or undefined. */
  private check(req: ForwardedRequest): string | undefined {
    return this.signer?.refusal(req);
  }

  get site(): string {
    return this.fabric.site;
  }

  /** Serves forwarded requests; `refuse` answers those whose sender is not proven (a 403 fault). */
  serve(local: LocalHttp, refuse: (req: ForwardedRequest, why: string) => ForwardedReply): () => void {
    return httpRpc.serve(this.fabric, async (req) => {
      const why = this.check(req);
      if (why) {
        this.stats.refused++;
        return refuse(req, why);
      }
      this.stats.served++;
      return this.once(req, local);
    });
  }

  /** Runs a forwarded write once per caller request id; a retry gets the first answer (or waits for it). */
  private once(req: ForwardedRequest, local: LocalHttp): Promise<ForwardedReply> {
    const rid = req.headers['x-openstack-request-id'];
    if (
      req.method === 'GET' ||
      req.method === 'HEAD' ||
      typeof rid !== 'string' ||
      !/^req-[0-9a-f-]{36}$/.test(rid)
    )
      return local(req);
    const key = createHash('sha256')
      .update(`${req.from}\n${req.headers['x-auth-token'] ?? ''}\n${req.method} ${req.url}\n${rid}`)
      .digest('base64url');
    const now = this.now();
    const hit = this.answers.get(key);
    if (hit && now - hit.at < IDEMPOTENT_MS) return hit.reply;
    for (const [k, a] of this.answers)
      if (now - a.at >= IDEMPOTENT_MS || this.answers.size >= IDEMPOTENT_MAX) this.answers.delete(k);
      else break; // insertion order: the rest are younger
    const reply = local(req);
    this.answers.set(key, { at: now, reply });
    // A failure to run (not an HTTP answer) is not remembered: a retry runs again.
    reply.catch(() => this.answers.delete(key));
    return reply;
  }

  /** The owner's processing budget plus two round trips as last measured (issue 13, item 6). */
  deadlineFor(owner: string): number {
    const rtt = this.replicator.peers.get(owner)?.rttMs ?? UNMEASURED_RTT_MS;
    return this.timeoutMs + 2 * rtt;
  }

  async forward(
    owner: string,
    req: {
      method: string;
      url: string;
      headers: Record<string, string | string[] | undefined>;
      body?: Buffer | string;
    },
  ): Promise<ForwardedReply> {
    if (req.headers[FORWARDED_BY])
      throw new Conflict(
        `request was forwarded here by ${String(req.headers[FORWARDED_BY])} but ${owner} owns it`,
      );
    if (!this.isMember(owner))
      throw new Conflict(
        `Site ${owner} was evicted from the federation (or never joined it): what it owns is orphaned and cannot be changed.`,
      );
    this.replicator.needs(owner);
    if (!this.replicator.isUp(owner) && !this.replicator.notHeardYet(owner)) {
      this.stats.unavailable++;
      throw new SiteUnavailable(owner, 'no heartbeat received recently (partitioned or down)');
    }
    const headers: Record<string, string> = { [FORWARDED_BY]: this.site };
    for (const h of CARRIED) {
      const v = req.headers[h];
      if (typeof v === 'string') headers[h] = v;
    }
    const fwd: ForwardedCall = { from: this.site, method: req.method, url: req.url, headers };
    if (req.body !== undefined && req.body !== null)
      fwd.body = Buffer.from(typeof req.body === 'string' ? req.body : req.body).toString('base64');
    const deadline = this.deadlineFor(owner);
    try {
      return await httpRpc.call(this.fabric, owner, fwd, {
        timeoutMs: deadline,
        seal: (m) => this.signer?.sign(m),
        // Base64 makes a body a third larger: one near the API's body limit fits in no fabric message.
        tooLarge: (bytes, limit) =>
          new TooLarge(
            `The request is too large to forward to ${owner}, the site that owns the resource (${bytes} bytes, over the fabric's limit of ${limit}): send it to ${owner} directly.`,
          ),
        sent: () => this.stats.forwarded++,
        unreachable: (why) => {
          this.stats.unavailable++;
          return why === FabricErrorCode.Timeout && req.method !== 'GET' && req.method !== 'HEAD'
            ? `no answer within ${deadline} ms, so the outcome is unknown: the write may have been applied there. ` +
                'Check before retrying, or retry with the same X-OpenStack-Request-ID, which the owner applies once.'
            : why;
        },
      });
    } catch (e) {
      // The owner failed to run it (no HTTP answer, nothing remembered): as unreachable, a retry runs again.
      if (e instanceof RemoteCloudError && e.code === RpcErrorCode.Internal) {
        this.stats.unavailable++;
        throw new SiteUnavailable(owner, e.message);
      }
      throw e;
    }
  }
}

export function pickReturnedHeaders(h: Record<string, unknown>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const k of RETURNED) {
    const v = h[k];
    if (typeof v === 'string') out[k] = v;
    else if (typeof v === 'number') out[k] = String(v);
  }
  return out;
}
