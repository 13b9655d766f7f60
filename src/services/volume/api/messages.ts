/**
 * @module Cinder's user messages API (microversion 3.3): `GET /messages`, `GET /messages/{id}`,
 * `DELETE /messages/{id}` (204). Below 3.3 the resource does not exist (404, as Cinder answers). A
 * message belongs to the site where its event happened; a delete elsewhere is forwarded there.
 * https://docs.openstack.org/api-ref/block-storage/v3/#messages-messages
 */
import type { FastifyReply, FastifyRequest } from 'fastify';
import { NotFound } from '../../../core/errors.ts';
import { atLeast } from '../../common/microversion.ts';
import { forwardIfRemote } from '../../common/owner.ts';
import type { VolumeRoutes } from './scope.ts';

export function registerMessageRoutes({ app, ctx, svc, base, enter }: VolumeRoutes): void {
  const gate = (req: FastifyRequest, reply: FastifyReply, write = false) => {
    const e = enter(req, reply, write);
    if (!atLeast(e.mv, '3.3')) throw new NotFound('The resource could not be found: messages need 3.3.');
    return e;
  };
  app.get(`${base}/messages`, async (req, reply) => {
    const { auth } = gate(req, reply);
    return { messages: svc.messages.list(auth).map((m) => svc.messages.view(m, ctx.publicUrl())) };
  });
  app.get(`${base}/messages/:id`, async (req, reply) => {
    const { auth } = gate(req, reply);
    const m = svc.messages.visible(auth, (req.params as { id: string }).id);
    return { message: svc.messages.view(m, ctx.publicUrl()) };
  });
  app.delete(`${base}/messages/:id`, async (req, reply) => {
    const { auth } = gate(req, reply, true);
    const m = svc.messages.visible(auth, (req.params as { id: string }).id);
    const fwd = forwardIfRemote(ctx, m.owner, req, reply);
    if (fwd) return fwd;
    svc.messages.remove(m.id);
    return reply.code(204).send();
  });
}
