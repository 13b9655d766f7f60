/**
 * @module QoS specs (Cinder's qos-specs, admin only): create with a consumer (front-end, back-end or
 * both) and key/value specs, list, show, set and unset keys, delete (400 while associated unless
 * force), and associate with volume types (a type carries one qos_specs_id). Atoll's drivers do not
 * throttle; the specs are kept and shown for the tools that manage them. A spec belongs to the site
 * that made it; associating writes the type, so it runs where the type lives.
 */
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { VolumeRoutes } from './scope.ts';
import { requireAdmin } from '../../../core/auth.ts';
import { BadRequest, Conflict, NotFound } from '../../../core/errors.ts';
import { isObj, wrapped } from '../../common/input.ts';
import { stringValues } from '../domain/volumes.ts';

interface Qos {
  id: string;
  name: string;
  consumer: string;
  specs: Record<string, string>;
}
const CONSUMERS = ['front-end', 'back-end', 'both'];

export function registerQosRoutes({ app, ctx, svc, base, enter }: VolumeRoutes): void {
  const P = `${base}/qos-specs`;
  const all = () => svc.repo.qosBodies().map((b) => JSON.parse(b) as Qos);
  const gate = (req: FastifyRequest, reply: FastifyReply, write = false) => {
    const e = enter(req, reply, write);
    requireAdmin(e.auth);
    const id = (req.params as { id?: string }).id;
    if (id === undefined) return { ...e, q: undefined, owner: undefined };
    const row = svc.repo.qos(id);
    if (!row) throw new NotFound(`QoS spec ${id} could not be found.`);
    return { ...e, q: JSON.parse(row.body) as Qos, owner: row.owner };
  };
  const put = (q: Qos) => svc.repo.putQos({ id: q.id, name: q.name, body: JSON.stringify(q) });
  const links = (q: Qos, project: string) => [
    { rel: 'self', href: `${ctx.publicUrl()}/volume/v3/${project}/qos-specs/${q.id}` },
    { rel: 'bookmark', href: `${ctx.publicUrl()}/volume/${project}/qos-specs/${q.id}` },
  ];
  const associated = (id: string) => svc.types().filter((t) => t.qos_specs_id === id);
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
    return { qos_specs: all() };
  });
  app.get(`${P}/:id`, async (req, reply) => {
    const { q, project } = gate(req, reply);
    return { qos_specs: q, links: links(q!, project) };
  });
  app.post(P, async (req, reply) => {
    const { project } = gate(req, reply, true);
    const o = wrapped(req.body, 'qos_specs');
    const { name, consumer, ...specs } = o;
    if (typeof name !== 'string' || !name.trim())
      throw new BadRequest('Invalid input received: name is required.');
    const c = consumer === undefined ? 'back-end' : String(consumer);
    if (!CONSUMERS.includes(c))
      throw new BadRequest(`Invalid input received: consumer ${c} is not one of ${CONSUMERS.join(', ')}.`);
    if (all().some((x) => x.name === name)) throw new Conflict(`QoS Specs ${name} already exists.`);
    const q: Qos = { id: ctx.ids.uuid(), name, consumer: c, specs: stringValues(specs) };
    put(q);
    return { qos_specs: q, links: links(q, project) };
  });
  /** Writes go to the spec's site. */
  const write = (req: FastifyRequest, reply: FastifyReply) => {
    const g = gate(req, reply, true);
    return { ...g, forward: g.owner && !ctx.owns(g.owner) ? ctx.forwardTo(g.owner, req, reply) : undefined };
  };
  app.put(`${P}/:id`, async (req, reply) => {
    const { q, forward } = write(req, reply);
    if (forward) return forward;
    const set = wrapped(req.body, 'qos_specs');
    const { consumer, ...specs } = set;
    const next: Qos = { ...q!, specs: { ...q!.specs, ...stringValues(specs) } };
    if (consumer !== undefined) {
      if (!CONSUMERS.includes(String(consumer)))
        throw new BadRequest(`Invalid input received: consumer ${String(consumer)}.`);
      next.consumer = String(consumer);
    }
    put(next);
    return { qos_specs: stringValues(set) };
  });
  app.put(`${P}/:id/delete_keys`, async (req, reply) => {
    const { q, forward } = write(req, reply);
    if (forward) return forward;
    const keys = isObj(req.body) && Array.isArray(req.body.keys) ? req.body.keys.map(String) : undefined;
    if (!keys) throw new BadRequest('Invalid input received: keys must be a list.');
    const missing = keys.find((k) => !Object.hasOwn(q!.specs, k));
    if (missing) throw new NotFound(`QoS spec ${q!.id} has no key ${missing}.`);
    put({ ...q!, specs: Object.fromEntries(Object.entries(q!.specs).filter(([k]) => !keys.includes(k))) });
    return reply.code(202).send();
  });
  app.delete(`${P}/:id`, async (req, reply) => {
    const { q, forward } = write(req, reply);
    if (forward) return forward;
    const force = ['true', 'True', '1'].includes(String((isObj(req.query) ? req.query : {}).force ?? ''));
    const types = associated(q!.id);
    if (types.length && !force) throw new BadRequest(`QoS Specs ${q!.id} is still associated with entities.`);
    svc.repo.tx(() => {
      for (const t of types) svc.patchType(String(t.id), { qos_specs_id: null });
      svc.repo.removeQos(q!.id);
    });
    return reply.code(202).send();
  });

  app.get(`${P}/:id/associations`, async (req, reply) => {
    const { q } = gate(req, reply);
    return {
      qos_associations: associated(q!.id).map((t) => ({
        association_type: 'volume_type',
        id: t.id,
        name: t.name,
      })),
    };
  });
  app.get(`${P}/:id/associate`, async (req, reply) => {
    const { q } = gate(req, reply, true);
    const { t, owner } = typeArg(req);
    if (!ctx.owns(owner)) return ctx.forwardTo(owner, req, reply);
    if (t.qos_specs_id && t.qos_specs_id !== q!.id)
      throw new BadRequest(`Volume type ${String(t.id)} is already associated with another qos specs.`);
    svc.patchType(String(t.id), { qos_specs_id: q!.id });
    return reply.code(202).send();
  });
  app.get(`${P}/:id/disassociate`, async (req, reply) => {
    const { q } = gate(req, reply, true);
    const { t, owner } = typeArg(req);
    if (!ctx.owns(owner)) return ctx.forwardTo(owner, req, reply);
    if (t.qos_specs_id === q!.id) svc.patchType(String(t.id), { qos_specs_id: null });
    return reply.code(202).send();
  });
  app.get(`${P}/:id/disassociate_all`, async (req, reply) => {
    const { q } = gate(req, reply, true);
    const types = associated(q!.id);
    const elsewhere = types.find((t) => !ctx.owns(String(svc.typeOwner(String(t.id)))));
    if (elsewhere)
      throw new Conflict(`Volume type ${String(elsewhere.id)} lives at another site: disassociate it there.`);
    svc.repo.tx(() => {
      for (const t of types) svc.patchType(String(t.id), { qos_specs_id: null });
    });
    return reply.code(202).send();
  });
}
