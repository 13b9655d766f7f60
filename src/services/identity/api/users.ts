/**
 * @module Users: /v3/users, /v3/users/{id}/password (self-service change) and /v3/users/{id}/groups.
 * A user belongs to its domain's home site. Passwords are stored as scrypt hashes (cost from the site
 * config) and never returned. Disabling or deleting a user, or changing its password, revokes its tokens.
 * https://docs.openstack.org/api-ref/identity/v3/#users
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { Forbidden } from '../../../core/errors.ts';
import type { Obj } from '../../common/input.ts';
import { optBool, optStr, reqStr, wrapped } from '../../common/input.ts';
import type { IdentityContext } from '../context.ts';
import { notFound } from '../domain/common.ts';
import { changePassword, createUser, deleteUser, updateUser } from '../domain/users.ts';
import type { UserRow } from '../store/schema.ts';
import {
  callerDomain,
  domainAdminWrite,
  extraOf,
  filteredCollection,
  forwardCreateIfRemote,
  forwardIfRemote,
  param,
  parseExtra,
  requireUnchanged,
  selfLinks,
} from './common.ts';
import { isDomainReader, listableDomain } from './policy.ts';

const KNOWN = [
  'id',
  'name',
  'domain_id',
  'default_project_id',
  'description',
  'email',
  'enabled',
  'password',
  'options',
  'federated',
];

export function userView(ic: IdentityContext, u: UserRow): Obj {
  const v: Obj = {
    ...parseExtra(u.extra),
    id: u.id,
    name: u.name,
    domain_id: u.domain_id,
    enabled: !!u.enabled,
    password_expires_at: null,
    options: {},
    links: selfLinks(ic, `users/${u.id}`),
  };
  if (u.default_project_id) v.default_project_id = u.default_project_id;
  if (u.description) v.description = u.description;
  if (u.email) v.email = u.email;
  return v;
}

const password = (b: Obj) => optStr(b, 'password', { max: 4096, min: 1 });

export function registerUserRoutes(app: FastifyInstance, ic: IdentityContext): void {
  const { site, reader, repos } = ic;

  const load = (id: string): UserRow => {
    const u = reader.user(id);
    if (!u) throw notFound('user', id);
    return u;
  };

  const defaultProject = (b: Obj): string | null | undefined => {
    const v = b.default_project_id;
    if (v === null) return null;
    const id = optStr(b, 'default_project_id', { max: 64 });
    if (id !== undefined && !reader.project(id)) throw notFound('project', id);
    return id;
  };

  app.get('/identity/v3/users', async (req) => {
    const ctx = site.authenticate(req);
    const only = listableDomain(ctx);
    let rows = repos.users.all();
    if (only !== undefined) rows = rows.filter((u) => u.domain_id === only);
    return filteredCollection(ic, req, 'users', rows, ['name', 'domain_id', 'enabled', 'id'], userView);
  });

  app.get('/identity/v3/users/:user_id', async (req) => {
    const ctx = site.authenticate(req);
    const u = load(param(req, 'user_id'));
    if (ctx.userId !== u.id && !isDomainReader(ctx, u.domain_id)) throw new Forbidden();
    return { user: userView(ic, u) };
  });

  app.post('/identity/v3/users', async (req, reply) => {
    const ctx = site.authenticate(req);
    const b = wrapped(req.body, 'user');
    const domainId = optStr(b, 'domain_id', { max: 64 }) ?? callerDomain(ctx);
    const fwd = forwardCreateIfRemote(ic, ctx, domainId, req, reply);
    if (fwd) return fwd;
    const row = await createUser(ic, {
      name: reqStr(b, 'name', { max: 255 }),
      domainId,
      password: password(b),
      enabled: optBool(b, 'enabled'),
      description: optStr(b, 'description', { max: 65535 }) ?? '',
      email: optStr(b, 'email', { max: 255 }) ?? null,
      defaultProjectId: defaultProject(b) ?? null,
      extra: extraOf(b, KNOWN, undefined),
    });
    reply.code(201);
    return { user: userView(ic, row) };
  });

  const loadParam = (req: FastifyRequest) => load(param(req, 'user_id'));

  app.patch(
    '/identity/v3/users/:user_id',
    domainAdminWrite(ic, loadParam, async (u, req) => {
      const b = wrapped(req.body, 'user');
      requireUnchanged(b, 'domain_id', u.domain_id, 'The domain of a user cannot be changed.');
      requireUnchanged(b, 'id', u.id, 'The user id cannot be changed.');
      const row = await updateUser(ic, u.id, {
        name: optStr(b, 'name', { max: 255, min: 1 }),
        password: password(b),
        enabled: optBool(b, 'enabled'),
        description: optStr(b, 'description', { max: 65535 }),
        email: b.email === null ? null : optStr(b, 'email', { max: 255 }),
        defaultProjectId: defaultProject(b),
        extra: (current) => extraOf(b, KNOWN, current),
      });
      return { user: userView(ic, row) };
    }),
  );

  // Self-service change: the original password is the credential (Keystone needs no token here, so a
  // user whose password expired can still change it).
  app.post('/identity/v3/users/:user_id/password', async (req, reply) => {
    const u = load(param(req, 'user_id'));
    const fwd = forwardIfRemote(ic.site, u.owner, req, reply);
    if (fwd) return fwd;
    const b = wrapped(req.body, 'user');
    const original = reqStr(b, 'original_password', { max: 4096 });
    const next = reqStr(b, 'password', { max: 4096 });
    await changePassword(ic, u, original, next);
    return reply.code(204).send();
  });

  app.delete(
    '/identity/v3/users/:user_id',
    domainAdminWrite(ic, loadParam, async (u, _req, reply) => {
      deleteUser(ic, u.id);
      return reply.code(204).send();
    }),
  );
}
