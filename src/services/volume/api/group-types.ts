/**
 * @module Group types (Cinder 3.11+, admin writes): `group_types` CRUD, `group_types/default`, and
 * group specs (`GET|POST /group_types/{id}/group_specs`, `GET|PUT|DELETE .../group_specs/{key}`).
 * Groups themselves are not offered yet (docs/volume.md); the types are what tools create first.
 * A group type belongs to the site that made it; the default one is built in, the same everywhere.
 */
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { VolumeRoutes } from './scope.ts';
import type { AuthContext } from '../../../core/auth.ts';
import { requireAdmin } from '../../../core/auth.ts';
import { BadRequest, CloudError, Conflict, NotFound } from '../../../core/errors.ts';
import { isObj, optBool, optStr, wrapped } from '../../common/input.ts';
import type { Obj } from '../../common/input.ts';
import { atLeast } from '../../common/microversion.ts';
import { uuidFrom } from '../domain/volumes.ts';
import { stringValues } from './actions.ts';

interface GroupType {
  id: string;
  name: string;
  description: string | null;
  is_public: boolean;
  group_specs: Record<string, string>;
}

const DEFAULT_NAME = 'default_group_type';
const DEFAULT_GROUP_TYPE: GroupType = {
  id: uuidFrom('group-type', DEFAULT_NAME),
  name: DEFAULT_NAME,
  description: 'Default group type',
  is_public: true,
  group_specs: {},
};

export function registerGroupTypeRoutes({ app, ctx, svc, base, enter }: VolumeRoutes): void {
  const P = `${base}/group_types`;
  const stored = () => svc.repo.groupTypeBodies().map((b) => JSON.parse(b) as GroupType);
  const all = () => [DEFAULT_GROUP_TYPE, ...stored()];
  /** Group types are 3.11 on; specs are admin-only, as in Cinder. */
  const gate = (req: FastifyRequest, reply: FastifyReply, write = false) => {
    const e = enter(req, reply, write);
    if (!atLeast(e.mv, '3.11'))
      throw new CloudError(404, 'The resource could not be found: group types need microversion 3.11.');
    if (write) requireAdmin(e.auth);
    return e;
  };
  const find = (auth: AuthContext, id: string) => {
    const t = all().find((x) => x.id === id || x.name === id);
    if (!t || (!auth.isAdmin && !t.is_public)) throw new NotFound(`Group type ${id} could not be found.`);
    return t;
  };
  /** A stored type to change, forwarded to its site: `forward` is set when it was. */
  const writable = (req: FastifyRequest, reply: FastifyReply) => {
    const { auth } = gate(req, reply, true);
    const { id } = req.params as { id: string };
    const t = find(auth, id);
    const owner = svc.repo.groupTypeOwner(t.id);
    if (!owner) throw new BadRequest('The default group type cannot be changed.');
    return { t, forward: ctx.owns(owner) ? undefined : ctx.forwardTo(owner, req, reply) };
  };
  const put = (t: GroupType) => svc.repo.putGroupType({ id: t.id, name: t.name, body: JSON.stringify(t) });
  const view = (t: GroupType, admin: boolean): Obj => {
    const { group_specs, ...rest } = t;
    return admin ? { ...rest, group_specs } : rest;
  };
  const specsOf = (v: unknown) => {
    if (!isObj(v)) throw new BadRequest('Malformed request body: "group_specs" must be an object.');
    return stringValues(v);
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
    const o = wrapped(req.body, 'group_type');
    const name = optStr(o, 'name');
    if (!name?.trim()) throw new BadRequest('Group type name can not be empty.');
    if (all().some((t) => t.name === name)) throw new Conflict(`Group Type ${name} already exists.`);
    const t: GroupType = {
      id: ctx.ids.uuid(),
      name,
      description: optStr(o, 'description') ?? null,
      is_public: optBool(o, 'is_public') ?? true,
      group_specs: o.group_specs === undefined ? {} : specsOf(o.group_specs),
    };
    put(t);
    reply.code(202);
    return { group_type: view(t, true) };
  });
  app.put(`${P}/:id`, async (req, reply) => {
    const { t, forward } = writable(req, reply);
    if (forward) return forward;
    const o = wrapped(req.body, 'group_type');
    const name = optStr(o, 'name');
    if (name !== undefined && name !== t.name && all().some((x) => x.name === name))
      throw new Conflict(`Group Type ${name} already exists.`);
    const next: GroupType = {
      ...t,
      ...(name !== undefined ? { name } : {}),
      ...('description' in o ? { description: optStr(o, 'description') ?? null } : {}),
      ...(optBool(o, 'is_public') !== undefined ? { is_public: optBool(o, 'is_public')! } : {}),
    };
    put(next);
    return { group_type: view(next, true) };
  });
  app.delete(`${P}/:id`, async (req, reply) => {
    const { t, forward } = writable(req, reply);
    if (forward) return forward;
    svc.repo.removeGroupType(t.id);
    return reply.code(202).send();
  });

  app.get(`${P}/:id/group_specs`, async (req, reply) => {
    const { auth } = gate(req, reply, true);
    return { group_specs: find(auth, (req.params as { id: string }).id).group_specs };
  });
  app.post(`${P}/:id/group_specs`, async (req, reply) => {
    const { t, forward } = writable(req, reply);
    if (forward) return forward;
    const add = specsOf(isObj(req.body) ? req.body.group_specs : undefined);
    put({ ...t, group_specs: { ...t.group_specs, ...add } });
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
    const one = specsOf(req.body);
    if (Object.keys(one).length !== 1 || !Object.hasOwn(one, key))
      throw new BadRequest('Request body and URI mismatch: the body must hold exactly the key of the URL.');
    put({ ...t, group_specs: { ...t.group_specs, ...one } });
    return one;
  });
  app.delete(`${P}/:id/group_specs/:key`, async (req, reply) => {
    const { key } = req.params as { key: string };
    const { t, forward } = writable(req, reply);
    if (forward) return forward;
    if (!Object.hasOwn(t.group_specs, key))
      throw new NotFound(`Group type ${t.id} has no group spec with key ${key}.`);
    const next = { ...t.group_specs };
    delete next[key];
    put({ ...t, group_specs: next });
    return reply.code(202).send();
  });
}
