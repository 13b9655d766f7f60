/**
 * @module The one "forward if another site owns it" of every route: a write reaching a site other than
 * the row's owner is carried there (federation/forward.ts) and the owner's reply sent as this one's.
 * The convention: `return forwardIfRemote(site, row.owner, req, reply) ?? runHere()`, or
 * `const fwd = forwardIfRemote(...); if (fwd) return fwd;` before the local work.
 */
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { ServiceContext } from './module.ts';

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
