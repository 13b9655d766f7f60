/**
 * @module Users: /v3/users, /v3/users/{id}/password (self-service change) and /v3/users/{id}/groups.
 * A user belongs to its domain's home site. Passwords are stored as scrypt hashes (cost from the site
 * config) and never returned. Disabling or deleting a user, or changing its password, revokes its tokens.
 * https://docs.openstack.org/api-ref/identity/v3/#users
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { BadRequest, Conflict, Forbidden, Unauthorized } from '../../../core/errors.ts';
import type { Obj } from '../../common/input.ts';
import { optBool, optStr, reqStr, wrapped } from '../../common/input.ts';
import type { IdentityContext } from '../context.ts';
import { hashSecret } from '../domain/passwords.ts';
import type { UserRow } from '../store/schema.ts';
import { revokeUserTokens } from './auth.ts';
import {
  bool01,
  callerDomain,
  checkRename,
  domainAdminWrite,
  extraOf,
  filteredCollection,
  forwardCreateIfRemote,
  notFound,
  param,
  parseExtra,
  removeOwned,
  requireUnchanged,
  selfLinks,
} from './common.ts';
import { forwardIfRemote } from '../../common/owner.ts';
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
  const { site, reader } = ic;
  const db = site.store.db;
  const cost = () => site.config.passwordHashCost;

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
    let rows = db.prepare('SELECT * FROM users ORDER BY name').all() as UserRow[];
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
    const name = reqStr(b, 'name', { max: 255 });
    const pw = password(b);
    const enabled = optBool(b, 'enabled');
    const description = optStr(b, 'description', { max: 65535 }) ?? '';
    const email = optStr(b, 'email', { max: 255 }) ?? null;
    const dp = defaultProject(b) ?? null;
    const hash = pw === undefined ? null : await hashSecret(pw, cost());
    const row = site.store.tx(() => {
      if (reader.userByName(domainId, name))
        throw new Conflict(
          `Conflict occurred attempting to store user - Duplicate entry found with name ${name} at domain ID ${domainId}.`,
        );
      return site.changelog.put('user', {
        id: ic.newId(),
        name,
        domain_id: domainId,
        default_project_id: dp,
        description,
        email,
        enabled: bool01(enabled, 1),
        password_hash: hash,
        password_expires_at: null,
        extra: extraOf(b, KNOWN, undefined),
        created_at: site.clock.now(),
      }) as unknown as UserRow;
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
      const name = optStr(b, 'name', { max: 255, min: 1 });
      const pw = password(b);
      const enabled = optBool(b, 'enabled');
      const description = optStr(b, 'description', { max: 65535 });
      const email = b.email === null ? null : optStr(b, 'email', { max: 255 });
      const dp = defaultProject(b);
      const hash = pw === undefined ? undefined : await hashSecret(pw, cost());
      const row = site.store.tx(() => {
        const cur = load(u.id);
        checkRename(name, cur, (n) => reader.userByName(cur.domain_id, n));
        const updated = site.changelog.put('user', {
          ...cur,
          name: name ?? cur.name,
          enabled: bool01(enabled, cur.enabled),
          description: description ?? cur.description,
          email: email === undefined ? cur.email : email,
          default_project_id: dp === undefined ? cur.default_project_id : dp,
          password_hash: hash ?? cur.password_hash,
          extra: extraOf(b, KNOWN, cur.extra),
        }) as unknown as UserRow;
        if (hash !== undefined || (cur.enabled && !updated.enabled)) revokeUserTokens(ic, cur.id);
        return updated;
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
    if (!(await ic.passwords.verify(original, u.password_hash)))
      throw new Unauthorized('The request you have made requires authentication.');
    if (!u.enabled) throw new Unauthorized('The account is disabled for user: ' + u.id);
    if (original === next) throw new BadRequest('The new password must differ from the original one.');
    const hash = await hashSecret(next, cost());
    site.store.tx(() => {
      const cur = load(u.id);
      site.changelog.put('user', { ...cur, password_hash: hash });
      revokeUserTokens(ic, cur.id);
    });
    return reply.code(204).send();
  });

  app.delete(
    '/identity/v3/users/:user_id',
    domainAdminWrite(ic, loadParam, async (u, _req, reply) => {
      site.store.tx(() => {
        removeOwned(ic, 'role_assignment', 'SELECT id, owner FROM role_assignments WHERE actor_id = ?', u.id);
        removeOwned(ic, 'group_member', 'SELECT id, owner FROM group_members WHERE user_id = ?', u.id);
        removeOwned(
          ic,
          'application_credential',
          'SELECT id, owner FROM application_credentials WHERE user_id = ?',
          u.id,
        );
        site.changelog.remove('user', u.id);
        revokeUserTokens(ic, u.id);
      });
      return reply.code(204).send();
    }),
  );
}
