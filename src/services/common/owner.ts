/**
 * @module The one "forward if another site owns it" of every route: a write reaching a site other than
 * the row's owner is carried there (federation/forward.ts) and the owner's reply sent as this one's.
 * The convention: `return forwardIfRemote(site, row.owner, req, reply) ?? runHere()`, or
 * `const fwd = forwardIfRemote(...); if (fwd) return fwd;` before the local work.
 */
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { ServiceContext } from './module.ts';

/**
 * The marks of a replica whose owner is unreachable: `atoll:stale: true` and `atoll:stale_seconds` (the
 * age of the last word from the owner, -1 when never heard), added to the resource's body as the
 * compute API does for servers; nothing when the replica is current or owned here. Extension keys with
 * a prefix are what OpenStack clients ignore and show (Nova's `OS-EXT-*` are the same idea).
 */
export function staleMarks(
  site: Pick<ServiceContext, 'freshness'>,
  owner: string | null | undefined,
): Record<string, unknown> {
  if (!owner) return {};
  const f = site.freshness(owner);
  return f.stale ? { 'atoll:stale': true, 'atoll:stale_seconds': f.ageSeconds } : {};
}

/**
 * The forwarded reply (sent once it settles) when `owner` is another site; undefined when this site
 * owns it, or when there is no owner (the caller runs the request here).
 */
export function forwardIfRemote(
  site: Pick<ServiceContext, 'owns' | 'forwardTo'>,
  owner: string | null | undefined,
  req: FastifyRequest,
  reply: FastifyReply,
): Promise<FastifyReply> | undefined {
  if (!owner || site.owns(owner)) return undefined;
  return site.forwardTo(owner, req, reply);
}
