/**
 * @module Groups and membership: /v3/groups, /v3/groups/{g}/users[/{u}], /v3/users/{u}/groups. A group
 * and its memberships belong to the group's domain's home site. Roles given to a group apply to its
 * members at token validation, so removing a member takes their group roles away at once.
 * https://docs.openstack.org/api-ref/identity/v3/#groups
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { Forbidden } from '../../../core/errors.ts';
import type { Obj } from '../../common/input.ts';
import { optStr, reqStr, wrapped } from '../../common/input.ts';
import type { IdentityContext } from '../context.ts';
import { notFound } from '../domain/common.ts';
import {
  addMember,
  createGroup,
  deleteGroup,
  membershipId,
  removeMember,
  updateGroup,
} from '../domain/groups.ts';
import type { GroupRow, UserRow } from '../store/schema.ts';
import {
  callerDomain,
  collection,
  domainAdminWrite,
  domainOwnerOrThrow,
  filteredCollection,
  forwardCreateIfRemote,
  forwardIfRemote,
  param,
  requireUnchanged,
  selfLinks,
} from './common.ts';
import { isDomainReader, listableDomain, requireDomainAdmin } from './policy.ts';
import { userView } from './users.ts';

export function groupView(ic: IdentityContext, g: GroupRow): Obj {
  return {
    id: g.id,
    name: g.name,
    domain_id: g.domain_id,
    description: g.description,
    links: selfLinks(ic, `groups/${g.id}`),
  };
}

export function registerGroupRoutes(app: FastifyInstance, ic: IdentityContext): void {
  const { site, reader, repos } = ic;

  const load = (id: string): GroupRow => {
    const g = repos.groups.get(id);
    if (!g) throw notFound('group', id);
    return g;
  };
  const loadUser = (id: string): UserRow => {
    const u = reader.user(id);
    if (!u) throw notFound('user', id);
    return u;
  };

  app.get('/identity/v3/groups', async (req) => {
    const ctx = site.authenticate(req);
    const only = listableDomain(ctx);
    let rows = repos.groups.all();
    if (only !== undefined) rows = rows.filter((g) => g.domain_id === only);
    return filteredCollection(ic, req, 'groups', rows, ['name', 'domain_id', 'id'], groupView);
  });

  app.get('/identity/v3/groups/:group_id', async (req) => {
    const ctx = site.authenticate(req);
    const g = load(param(req, 'group_id'));
    if (!isDomainReader(ctx, g.domain_id)) throw new Forbidden();
    return { group: groupView(ic, g) };
  });

  app.get('/identity/v3/users/:user_id/groups', async (req) => {
    const ctx = site.authenticate(req);
    const u = loadUser(param(req, 'user_id'));
    if (ctx.userId !== u.id && !isDomainReader(ctx, u.domain_id)) throw new Forbidden();
    const rows = repos.groups.ofUser(u.id);
    return collection(
      ic,
      req,
      'groups',
      rows.map((g) => groupView(ic, g)),
    );
  });

  app.get('/identity/v3/groups/:group_id/users', async (req) => {
    const ctx = site.authenticate(req);
    const g = load(param(req, 'group_id'));
    if (!isDomainReader(ctx, g.domain_id)) throw new Forbidden();
    const rows = repos.groups.members(g.id);
    return filteredCollection(ic, req, 'users', rows, ['name', 'domain_id', 'enabled'], userView);
  });

  app.post('/identity/v3/groups', async (req, reply) => {
    const ctx = site.authenticate(req);
    const b = wrapped(req.body, 'group');
    const domainId = optStr(b, 'domain_id', { max: 64 }) ?? callerDomain(ctx);
    const fwd = forwardCreateIfRemote(ic, ctx, domainId, req, reply);
    if (fwd) return fwd;
    const row = createGroup(ic, {
      name: reqStr(b, 'name', { max: 64 }),
      domainId,
      description: optStr(b, 'description', { max: 65535 }) ?? '',
    });
    reply.code(201);
    return { group: groupView(ic, row) };
  });

  const loadParam = (req: FastifyRequest) => load(param(req, 'group_id'));

  app.patch(
    '/identity/v3/groups/:group_id',
    domainAdminWrite(ic, loadParam, async (g, req) => {
      const b = wrapped(req.body, 'group');
      requireUnchanged(b, 'domain_id', g.domain_id, 'The domain of a group cannot be changed.');
      const row = updateGroup(ic, g, {
        name: optStr(b, 'name', { max: 64, min: 1 }),
        description: optStr(b, 'description', { max: 65535 }),
      });
      return { group: groupView(ic, row) };
    }),
  );

  app.delete(
    '/identity/v3/groups/:group_id',
    domainAdminWrite(ic, loadParam, async (g, _req, reply) => {
      deleteGroup(ic, g.id);
      return reply.code(204).send();
    }),
  );

  // Membership: PUT adds, GET/HEAD checks (204 or 404), DELETE removes.
  const membership = (req: Parameters<typeof param>[0]) => {
    const ctx = site.authenticate(req);
    const g = load(param(req, 'group_id'));
    const u = loadUser(param(req, 'user_id'));
    return { ctx, g, u, id: membershipId(g.id, u.id) };
  };

  app.put('/identity/v3/groups/:group_id/users/:user_id', async (req, reply) => {
    const { ctx, g, u } = membership(req);
    requireDomainAdmin(ctx, g.domain_id);
    // Keystone's add_user_to_group: a domain admin adds only its own domain's users.
    requireDomainAdmin(ctx, u.domain_id);
    domainOwnerOrThrow(ic, g.domain_id);
    const fwd = forwardIfRemote(ic.site, g.owner, req, reply);
    if (fwd) return fwd;
    addMember(ic, g.id, u.id);
    return reply.code(204).send();
  });

  app.get('/identity/v3/groups/:group_id/users/:user_id', async (req, reply) => {
    const { ctx, g, u, id } = membership(req);
    if (!isDomainReader(ctx, g.domain_id) && ctx.userId !== u.id) throw new Forbidden();
    if (!repos.groups.hasMembership(id)) throw notFound('membership', `user ${u.id} in group ${g.id}`);
    return reply.code(204).send();
  });

  app.delete('/identity/v3/groups/:group_id/users/:user_id', async (req, reply) => {
    const { ctx, g, u } = membership(req);
    requireDomainAdmin(ctx, g.domain_id);
    const fwd = forwardIfRemote(ic.site, g.owner, req, reply);
    if (fwd) return fwd;
    removeMember(ic, g.id, u.id);
    return reply.code(204).send();
  });
}
