/**
 * @module Volume type extra specs and access lists (admin only, as in Cinder):
 * `GET|POST /types/{id}/extra_specs`, `GET|PUT|DELETE /types/{id}/extra_specs/{key}`,
 * `POST /types/{id}/action` (addProjectAccess, removeProjectAccess) and
 * `GET /types/{id}/os-volume-type-access`. Writes go to the site that made the type.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { BadRequest, Conflict, NotFound } from '../../../core/errors.ts';
import type { ServiceContext } from '../../common/module.ts';
import { isObj, optStr } from '../../common/input.ts';
import type { Obj } from '../../common/input.ts';
import { forwardIfRemote } from '../../common/owner.ts';
import type { VolumeService } from '../domain/volumes.ts';
import { stringValues } from '../domain/volumes.ts';

/** The route gate: authenticates an admin and finds the type (404 when it does not exist). */
export type TypeGate = (
  req: FastifyRequest,
  reply: FastifyReply,
) => { id: string; owner: string | undefined; t: Obj };

/** Extra specs are string to string, keys 1 to 255 characters (Cinder validates the same). */
function specsOf(v: unknown): Record<string, string> {
  if (!isObj(v)) throw new BadRequest('Malformed request body: "extra_specs" must be an object.');
  for (const [k, x] of Object.entries(v)) {
    if (!k || k.length > 255)
      throw new BadRequest('Invalid input received: extra spec keys are 1 to 255 characters.');
    if (isObj(x) || Array.isArray(x) || x === null || String(x).length > 255)
      throw new BadRequest(
        `Invalid input received: extra spec ${k} must be a string of at most 255 characters.`,
      );
  }
  return stringValues(v);
}

export function registerTypeExtras(
  app: FastifyInstance,
  ctx: ServiceContext,
  svc: VolumeService,
  base: string,
  gate: TypeGate,
): void {
  /** The gate, then forwarding to the type's site for a write: `forward` is set when it was. */
  const writable = (req: FastifyRequest, reply: FastifyReply) => {
    const g = gate(req, reply);
    return { ...g, forward: forwardIfRemote(ctx, g.owner, req, reply) };
  };
  const specs = (t: Obj) => (isObj(t.extra_specs) ? (t.extra_specs as Record<string, string>) : {});

  app.get(`${base}/:id/extra_specs`, async (req, reply) => ({ extra_specs: specs(gate(req, reply).t) }));
  app.post(`${base}/:id/extra_specs`, async (req, reply) => {
    const g = writable(req, reply);
    if (g.forward) return g.forward;
    const add = specsOf(isObj(req.body) ? req.body.extra_specs : undefined);
    svc.patchType(g.id, { extra_specs: { ...specs(g.t), ...add } });
    return { extra_specs: add };
  });
  app.get(`${base}/:id/extra_specs/:key`, async (req, reply) => {
    const { key } = req.params as { key: string };
    const all = specs(gate(req, reply).t);
    if (!Object.hasOwn(all, key))
      throw new NotFound(
        `Volume Type ${(req.params as { id: string }).id} has no extra specs with key ${key}.`,
      );
    return { [key]: all[key] };
  });
  app.put(`${base}/:id/extra_specs/:key`, async (req, reply) => {
    const { key } = req.params as { key: string };
    const g = writable(req, reply);
    if (g.forward) return g.forward;
    const one = specsOf(req.body);
    if (Object.keys(one).length !== 1 || !Object.hasOwn(one, key))
      throw new BadRequest('Request body and URI mismatch: the body must hold exactly the key of the URL.');
    svc.patchType(g.id, { extra_specs: { ...specs(g.t), ...one } });
    return one;
  });
  app.delete(`${base}/:id/extra_specs/:key`, async (req, reply) => {
    const { key } = req.params as { key: string };
    const g = writable(req, reply);
    if (g.forward) return g.forward;
    const next = { ...specs(g.t) };
    if (!Object.hasOwn(next, key))
      throw new NotFound(`Volume Type ${g.id} has no extra specs with key ${key}.`);
    delete next[key];
    svc.patchType(g.id, { extra_specs: next });
    return reply.code(202).send();
  });

  app.get(`${base}/:id/os-volume-type-access`, async (req, reply) => {
    const { id, t } = gate(req, reply);
    if (t.is_public !== false) throw new NotFound(`Access list not available for public volume types.`);
    return {
      volume_type_access: svc.typeAccess(t).map((project_id) => ({ volume_type_id: id, project_id })),
    };
  });
  app.post(`${base}/:id/action`, async (req, reply) => {
    const g = writable(req, reply);
    if (g.forward) return g.forward;
    const body = isObj(req.body) ? req.body : {};
    const [action, arg] = Object.entries(body)[0] ?? ['', undefined];
    if (Object.keys(body).length !== 1 || !['addProjectAccess', 'removeProjectAccess'].includes(action))
      throw new BadRequest(`There is no such action: ${action}`);
    const project = isObj(arg) ? optStr(arg, 'project') : undefined;
    if (!project) throw new BadRequest('Invalid input received: "project" is required.');
    if (g.t.is_public !== false)
      throw new BadRequest(
        `Invalid volume type: type access modification is not applicable to public volume type.`,
      );
    const cur = svc.typeAccess(g.t);
    if (action === 'addProjectAccess') {
      if (cur.includes(project))
        throw new Conflict(`Volume type access for ${g.id}/${project} already exists.`);
      svc.patchType(g.id, { projects: [...cur, project] });
    } else {
      if (!cur.includes(project))
        throw new NotFound(`Volume type access not found for ${g.id}/${project} combination.`);
      svc.patchType(g.id, { projects: cur.filter((p) => p !== project) });
    }
    return reply.code(202).send();
  });
}
