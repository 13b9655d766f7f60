/**
 * @module Roles: /v3/roles. A role belongs to the site that created it (bootstrap's admin, member and
 * reader belong to the first site); writes go there. Global roles have domain_id null; a domain-specific
 * role names its domain. Deleting a role removes the assignments of it that this site owns; any others
 * stop granting it at once, because effective roles are read through the roles table.
 * https://docs.openstack.org/api-ref/identity/v3/#roles
 */
import type { FastifyInstance } from 'fastify';
import { Forbidden } from '../../../core/errors.ts';
import type { Obj } from '../../common/input.ts';
import { optStr, reqStr, wrapped } from '../../common/input.ts';
import type { IdentityContext } from '../context.ts';
import { notFound } from '../domain/common.ts';
import { createRole, deleteRole, updateRole } from '../domain/roles.ts';
import type { RoleRow } from '../store/schema.ts';
import { collection, forwardIfRemote, param, q, requireUnchanged, selfLinks } from './common.ts';
import { isCloudAdmin, requireCloudAdmin } from './policy.ts';

export function roleView(ic: IdentityContext, r: RoleRow): Obj {
  return {
    id: r.id,
    name: r.name,
    domain_id: r.domain_id,
    description: r.description,
    options: {},
    links: selfLinks(ic, `roles/${r.id}`),
  };
}

export function registerRoleRoutes(app: FastifyInstance, ic: IdentityContext): void {
  const { site, reader, repos } = ic;

  const load = (id: string): RoleRow => {
    const r = reader.role(id);
    if (!r) throw notFound('role', id);
    return r;
  };

  /** Reading roles: cloud admins, and anyone holding a domain-scoped token (domain admins need it). */
  const canRead = (ctx: ReturnType<typeof site.authenticate>) => isCloudAdmin(ctx) || !!ctx.domainId;

  app.get('/identity/v3/roles', async (req) => {
    const ctx = site.authenticate(req);
    if (!canRead(ctx)) throw new Forbidden();
    const qs = q(req);
    let rows = repos.roles.all();
    // Keystone: without domain_id only global roles are listed.
    rows = rows.filter((r) =>
      qs.domain_id === undefined ? r.domain_id === null : r.domain_id === qs.domain_id,
    );
    if (qs.name !== undefined) rows = rows.filter((r) => r.name === qs.name);
    return collection(
      ic,
      req,
      'roles',
      rows.map((r) => roleView(ic, r)),
    );
  });

  app.get('/identity/v3/roles/:role_id', async (req) => {
    const ctx = site.authenticate(req);
    if (!canRead(ctx)) throw new Forbidden();
    return { role: roleView(ic, load(param(req, 'role_id'))) };
  });

  app.post('/identity/v3/roles', async (req, reply) => {
    requireCloudAdmin(site.authenticate(req));
    const b = wrapped(req.body, 'role');
    const name = reqStr(b, 'name', { max: 255 });
    const description = optStr(b, 'description', { max: 255 }) ?? '';
    const domainId = optStr(b, 'domain_id', { max: 64 }) ?? null;
    if (domainId !== null && !reader.domain(domainId)) throw notFound('domain', domainId);
    const row = createRole(ic, { name, description, domainId });
    reply.code(201);
    return { role: roleView(ic, row) };
  });

  app.patch('/identity/v3/roles/:role_id', async (req, reply) => {
    requireCloudAdmin(site.authenticate(req));
    const r = load(param(req, 'role_id'));
    const fwd = forwardIfRemote(ic.site, r.owner, req, reply);
    if (fwd) return fwd;
    const b = wrapped(req.body, 'role');
    requireUnchanged(b, 'domain_id', r.domain_id, 'The domain of a role cannot be changed.');
    const name = optStr(b, 'name', { max: 255, min: 1 });
    const description = optStr(b, 'description', { max: 255 });
    const row = updateRole(ic, r, { name, description });
    return { role: roleView(ic, row) };
  });

  app.delete('/identity/v3/roles/:role_id', async (req, reply) => {
    requireCloudAdmin(site.authenticate(req));
    const r = load(param(req, 'role_id'));
    const fwd = forwardIfRemote(ic.site, r.owner, req, reply);
    if (fwd) return fwd;
    deleteRole(ic, r.id);
    return reply.code(204).send();
  });
}
