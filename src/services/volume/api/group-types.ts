/**
 * @module Group types (Cinder 3.11+, admin writes): `group_types` CRUD, `group_types/default`, and
 * group specs (`GET|POST /group_types/{id}/group_specs`, `GET|PUT|DELETE .../group_specs/{key}`).
 * Groups themselves are api/groups.ts; a type some group has cannot be deleted.
 * A group type belongs to the site that made it; the default one is built in, the same everywhere.
 * The rules are domain/group-types.ts; these routes gate, forward and render.
 */
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { VolumeRoutes } from './scope.ts';
import type { AuthContext } from '../../../core/auth.ts';
import { requireAdmin } from '../../../core/auth.ts';
import { BadRequest, CloudError, NotFound } from '../../../core/errors.ts';
import { isObj, wrapped } from '../../common/input.ts';
import type { Obj } from '../../common/input.ts';
import { atLeast } from '../../common/microversion.ts';
import { forwardIfRemote } from '../../common/owner.ts';
import type { GroupType } from '../domain/group-types.ts';
import { DEFAULT_GROUP_TYPE, GroupTypes, groupSpecsOf } from '../domain/group-types.ts';

export function registerGroupTypeRoutes({ app, ctx, svc, base, enter }: VolumeRoutes): void {
  const P = `${base}/group_types`;
  const types = new GroupTypes({ repo: svc.repo, ids: ctx.ids });
  const all = () => types.all();
  /** Group types are 3.11 on; specs are admin-only, as in Cinder. */
  const gate = (req: FastifyRequest, reply: FastifyReply, write = false) => {
    const e = enter(req, reply, write);
    if (!atLeast(e.mv, '3.11'))
      throw new CloudError(404, 'The resource could not be found: group types need microversion 3.11.');
    if (write) requireAdmin(e.auth);
    return e;
  };
  const find = (auth: AuthContext, id: string) => types.find(auth, id);
  /** A stored type to change, forwarded to its site: `forward` is set when it was. */
  const writable = (req: FastifyRequest, reply: FastifyReply) => {
    const { auth } = gate(req, reply, true);
    const { id } = req.params as { id: string };
    const t = find(auth, id);
    const owner = types.ownerOf(t);
    return { t, forward: forwardIfRemote(ctx, owner, req, reply) };
  };
  const view = (t: GroupType, admin: boolean): Obj => {
    const { group_specs, ...rest } = t;
    return admin ? { ...rest, group_specs } : rest;
  };

  app.get(P, async (req, reply) => {
    const { auth } = gate(req, reply);
    const q = isObj(req.query) ? req.query : {};
    let list = all().filter((t) => auth.isAdmin || t.is_public);
    // is_public=None lists both; true or false only those (admins; others see public ones only).
    const pub = String(q.is_public ?? 'true');
    if (auth.isAdmin && pub !== 'None')
      list = list.filter((t) => t.is_public === ['true', 'True', '1'].includes(pub));
    const [key, dir] = String(q.sort ?? 'name:asc').split(':');
    const k = (key ?? 'name') as keyof GroupType;
    list.sort((a, b) => String(a[k]).localeCompare(String(b[k])) * (dir === 'desc' ? -1 : 1));
    return { group_types: list.map((t) => view(t, auth.isAdmin)) };
  });
  app.get(`${P}/default`, async (req, reply) => {
    const { auth } = gate(req, reply);
    return { group_type: view(DEFAULT_GROUP_TYPE, auth.isAdmin) };
  });
  app.get(`${P}/:id`, async (req, reply) => {
    const { auth } = gate(req, reply);
    return { group_type: view(find(auth, (req.params as { id: string }).id), auth.isAdmin) };
  });
  app.post(P, async (req, reply) => {
    gate(req, reply, true);
    const t = types.create(wrapped(req.body, 'group_type'));
    reply.code(202);
    return { group_type: view(t, true) };
  });
  app.put(`${P}/:id`, async (req, reply) => {
    const { t, forward } = writable(req, reply);
    if (forward) return forward;
    const next = types.update(t, wrapped(req.body, 'group_type'));
    return { group_type: view(next, true) };
  });
  app.delete(`${P}/:id`, async (req, reply) => {
    const { t, forward } = writable(req, reply);
    if (forward) return forward;
    types.remove(t);
    return reply.code(202).send();
  });

  app.get(`${P}/:id/group_specs`, async (req, reply) => {
    const { auth } = gate(req, reply, true);
    return { group_specs: find(auth, (req.params as { id: string }).id).group_specs };
  });
  app.post(`${P}/:id/group_specs`, async (req, reply) => {
    const { t, forward } = writable(req, reply);
    if (forward) return forward;
    const add = groupSpecsOf(isObj(req.body) ? req.body.group_specs : undefined);
    types.setSpecs(t, add);
    reply.code(202);
    return { group_specs: add };
  });
  app.get(`${P}/:id/group_specs/:key`, async (req, reply) => {
    const { auth } = gate(req, reply, true);
    const { id, key } = req.params as { id: string; key: string };
    const specs = find(auth, id).group_specs;
    if (!Object.hasOwn(specs, key)) throw new NotFound(`Group type ${id} has no group spec with key ${key}.`);
    return { [key]: specs[key] };
  });
  app.put(`${P}/:id/group_specs/:key`, async (req, reply) => {
    const { key } = req.params as { key: string };
    const { t, forward } = writable(req, reply);
    if (forward) return forward;
    const one = groupSpecsOf(req.body);
    if (Object.keys(one).length !== 1 || !Object.hasOwn(one, key))
      throw new BadRequest('Request body and URI mismatch: the body must hold exactly the key of the URL.');
    types.setSpecs(t, one);
    return one;
  });
  app.delete(`${P}/:id/group_specs/:key`, async (req, reply) => {
    const { key } = req.params as { key: string };
    const { t, forward } = writable(req, reply);
    if (forward) return forward;
    types.removeSpec(t, key);
    return reply.code(202).send();
  });
}
