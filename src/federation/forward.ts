/**
 * @module Forwarding: a write that reaches a site other than the resource's owner is carried to the
 * owner as the same HTTP request (caller's token included) over the fabric, run there through the
 * owner's own API and policy, and answered in one round trip. When the owner is down (no heartbeat) or
 * does not answer in time, the caller gets a 503 naming it at once.
 */
import type { Fabric } from '../fabric/fabric.ts';
import { FabricError, decodeJson, encodeJson, subjects } from '../fabric/fabric.ts';
import { Conflict, SiteUnavailable } from '../core/errors.ts';
import type { Replicator } from './replicator.ts';

export interface ForwardedRequest {
  v: number;
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
  readonly stats = { forwarded: 0, served: 0, unavailable: 0 };

  constructor(fabric: Fabric, replicator: Replicator, opts: { timeoutMs: number }) {
    this.fabric = fabric;
    this.replicator = replicator;
    this.timeoutMs = opts.timeoutMs;
  }

  get site(): string {
    return this.fabric.site;
  }

  serve(local: LocalHttp): () => void {
    return this.fabric.serve(subjects.rpc(this.site, 'http'), async (data) => {
      this.stats.served++;
      const req = decodeJson<ForwardedRequest>(data);
      return encodeJson(await local(req));
    });
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
    if (!this.replicator.isUp(owner)) {
      this.stats.unavailable++;
      throw new SiteUnavailable(owner, 'no heartbeat received recently (partitioned or down)');
    }
    const headers: Record<string, string> = { [FORWARDED_BY]: this.site };
    for (const h of CARRIED) {
      const v = req.headers[h];
      if (typeof v === 'string') headers[h] = v;
    }
    const fwd: ForwardedRequest = { v: 1, from: this.site, method: req.method, url: req.url, headers };
    if (req.body !== undefined && req.body !== null)
      fwd.body = Buffer.from(typeof req.body === 'string' ? req.body : req.body).toString('base64');
    this.stats.forwarded++;
    try {
      return decodeJson<ForwardedReply>(
        await this.fabric.request(subjects.rpc(owner, 'http'), encodeJson(fwd), this.timeoutMs),
      );
    } catch (e) {
      this.stats.unavailable++;
      const why = e instanceof FabricError ? e.code : String(e);
      throw new SiteUnavailable(owner, why);
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
