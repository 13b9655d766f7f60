/**
 * @module The route side of `home` uniqueness (src/federation/unique.ts): a create in a namespace with
 * a home site runs there, so the home's own check decides; from anywhere else it is forwarded (a 503
 * names the home when it is unreachable).
 */
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { CloudError } from '../../core/errors.ts';
import { BadRequest } from '../../core/errors.ts';
import type { KindRef } from '../../federation/changelog.ts';
import type { ServiceContext } from './module.ts';
import { forwardIfRemote } from './owner.ts';

/**
 * Forwards the create of a `kind` row to its namespace's home site and returns that reply, or returns
 * undefined when this site is the home. Throws `unknown()` when this site does not know the namespace
 * (creating here would let two sites create the same name).
 */
export function forwardToHome(
  ctx: ServiceContext,
  kind: KindRef,
  row: Record<string, unknown>,
  req: FastifyRequest,
  reply: FastifyReply,
  unknown: () => CloudError,
): Promise<FastifyReply> | undefined {
  const home = ctx.changelog.homeOf(kind, row);
  if (home === undefined) throw unknown();
  return forwardIfRemote(ctx, home, req, reply);
}

/** Nova's answer for a quota set of a project the cloud does not know (Cinder and Neutron alike here). */
export const unknownProject = (id: string) => () =>
  new BadRequest(`Project ID ${id} is not a valid project.`);
