/**
 * @module QoS specs (Cinder's qos-specs, admin only): create with a consumer (front-end, back-end or
 * both) and key/value specs, list, show, set and unset keys, delete (400 while associated unless
 * force), and associate with volume types (a type carries one qos_specs_id). Atoll's drivers do not
 * throttle; the specs are kept and shown for the tools that manage them. A spec belongs to the site
 * that made it; associating writes the type, so it runs where the type lives. The rules are
 * domain/qos.ts; these routes gate, forward and render.
 */
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { VolumeRoutes } from './scope.ts';
import { requireAdmin } from '../../../core/auth.ts';
import { BadRequest, NotFound } from '../../../core/errors.ts';
import { isObj, wrapped } from '../../common/input.ts';
import { forwardIfRemote } from '../../common/owner.ts';
import type { Qos } from '../domain/qos.ts';
import { QosSpecs } from '../domain/qos.ts';

export function registerQosRoutes({ app, ctx, svc, base, enter }: VolumeRoutes): void {
  const P = `${base}/qos-specs`;
  const specs = new QosSpecs({ repo: svc.repo, volumes: svc, ids: ctx.ids });
  const gate = (req: FastifyRequest, reply: FastifyReply, write = false) => {
    const e = enter(req, reply, write);
    requireAdmin(e.auth);
    const id = (req.params as { id?: string }).id;
    if (id === undefined) return { ...e, q: undefined, owner: undefined };
    return { ...e, ...specs.find(id) };
  };
  const links = (q: Qos, project: string) => [
    { rel: 'self', href: `${ctx.publicUrl()}/volume/v3/${project}/qos-specs/${q.id}` },
    { rel: 'bookmark', href: `${ctx.publicUrl()}/volume/${project}/qos-specs/${q.id}` },
  ];
  /** The type to (dis)associate, from ?vol_type_id=; its changes are written where it lives. */
  const typeArg = (req: FastifyRequest) => {
    const q = isObj(req.query) ? req.query : {};
    const id = typeof q.vol_type_id === 'string' ? q.vol_type_id : '';
    const t = svc.type(id);
    if (!t) throw new NotFound(`Volume type ${id} could not be found.`);
    const owner = svc.typeOwner(String(t.id));
    if (!owner) throw new BadRequest('The default volume type cannot be associated with QoS specs.');
    return { t, owner };
  };

  app.get(P, async (req, reply) => {
    gate(req, reply);
    return { qos_specs: specs.all() };
  });
  app.get(`${P}/:id`, async (req, reply) => {
    const { q, project } = gate(req, reply);
    return { qos_specs: q, links: links(q!, project) };
  });
  app.post(P, async (req, reply) => {
    const { project } = gate(req, reply, true);
    const q = specs.create(wrapped(req.body, 'qos_specs'));
    return { qos_specs: q, links: links(q, project) };
  });
  /** Writes go to the spec's site. */
  const write = (req: FastifyRequest, reply: FastifyReply) => {
    const g = gate(req, reply, true);
    return { ...g, forward: forwardIfRemote(ctx, g.owner, req, reply) };
  };
  app.put(`${P}/:id`, async (req, reply) => {
    const { q, forward } = write(req, reply);
    if (forward) return forward;
    return { qos_specs: specs.set(q!, wrapped(req.body, 'qos_specs')) };
  });
  app.put(`${P}/:id/delete_keys`, async (req, reply) => {
    const { q, forward } = write(req, reply);
    if (forward) return forward;
    const keys = isObj(req.body) && Array.isArray(req.body.keys) ? req.body.keys.map(String) : undefined;
    if (!keys) throw new BadRequest('Invalid input received: keys must be a list.');
    specs.unset(q!, keys);
    return reply.code(202).send();
  });
  app.delete(`${P}/:id`, async (req, reply) => {
    const { q, forward } = write(req, reply);
    if (forward) return forward;
    const force = ['true', 'True', '1'].includes(String((isObj(req.query) ? req.query : {}).force ?? ''));
    specs.delete(q!, force);
    return reply.code(202).send();
  });

  app.get(`${P}/:id/associations`, async (req, reply) => {
    const { q } = gate(req, reply);
    return {
      qos_associations: specs.associated(q!.id).map((t) => ({
        association_type: 'volume_type',
        id: t.id,
        name: t.name,
      })),
    };
  });
  app.get(`${P}/:id/associate`, async (req, reply) => {
    const { q } = gate(req, reply, true);
    const { t, owner } = typeArg(req);
    const fwd = forwardIfRemote(ctx, owner, req, reply);
    if (fwd) return fwd;
    specs.associate(q!, t);
    return reply.code(202).send();
  });
  app.get(`${P}/:id/disassociate`, async (req, reply) => {
    const { q } = gate(req, reply, true);
    const { t, owner } = typeArg(req);
    const fwd = forwardIfRemote(ctx, owner, req, reply);
    if (fwd) return fwd;
    specs.disassociate(q!, t);
    return reply.code(202).send();
  });
  app.get(`${P}/:id/disassociate_all`, async (req, reply) => {
    const { q } = gate(req, reply, true);
    specs.disassociateAll(q!, (owner) => ctx.owns(owner));
    return reply.code(202).send();
  });
}
