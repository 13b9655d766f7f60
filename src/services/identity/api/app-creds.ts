/**
 * @module Application credentials: /v3/users/{u}/application_credentials. Only the user creates their
 * own, with a project-scoped token, for that project and a subset of their roles on it. The secret is
 * generated when absent, returned once, and stored hashed. A credential belongs to its user's domain's
 * home site. Authentication with them is in auth.ts. Access rules (/v3/users/{u}/access_rules) are the
 * user's, made with a credential that names them and shared by the credentials naming the same rule;
 * a token from a credential with rules may only make the requests they match (core/auth.ts).
 * https://docs.openstack.org/api-ref/identity/v3/#application-credentials
 */
import type { FastifyInstance } from 'fastify';
import { randomBytes } from 'node:crypto';
import { BadRequest, Forbidden } from '../../../core/errors.ts';
import type { Obj } from '../../common/input.ts';
import { optBool, optStr, reqStr, wrapped } from '../../common/input.ts';
import type { IdentityContext } from '../context.ts';
import { accessRuleIds, createAppCred, deleteAccessRule, deleteAppCred } from '../domain/app-creds.ts';
import { notFound } from '../domain/common.ts';
import type { AccessRuleRow, AppCredRow } from '../store/schema.ts';
import { collection, forwardIfRemote, param, q, selfLinks } from './common.ts';
import { isCloudAdmin, requireNotRestrictedAppCred } from './policy.ts';

export function appCredView(ic: IdentityContext, a: AppCredRow): Obj {
  return {
    id: a.id,
    name: a.name,
    description: a.description,
    user_id: a.user_id,
    project_id: a.project_id,
    roles: (JSON.parse(a.roles) as { id: string; name: string }[]).map((r) => ({ ...r, domain_id: null })),
    unrestricted: !!a.unrestricted,
    expires_at: a.expires_at === null ? null : microTime(a.expires_at),
    access_rules: accessRuleIds(a)
      .map((id) => ic.repos.accessRules.get(id))
      .filter((r): r is AccessRuleRow => r !== undefined)
      .map(ruleBody),
    system: null,
    links: selfLinks(ic, `users/${a.user_id}/application_credentials/${a.id}`),
  };
}

/** An access rule as a credential shows it (Keystone: no links there). */
const ruleBody = (r: AccessRuleRow): Obj => ({
  id: r.id,
  service: r.service,
  method: r.method,
  path: r.path,
});

/**
 * Keystone and keystoneclient send ISO 8601 with up to microseconds, often without a zone (UTC, as
 * Keystone reads it; JavaScript would read local time). Kept to the microsecond, as fractional ms, so
 * the answer repeats what was sent.
 */
export function parseTime(v: string): number {
  const m = /^(\d{4}-\d\d-\d\dT\d\d:\d\d(?::\d\d)?)(?:\.(\d{1,6}))?(Z|[+-]\d\d:?\d\d)?$/i.exec(v.trim());
  const t = m ? Date.parse(`${m[1]}${m[3] ?? 'Z'}`) : NaN;
  if (!m || Number.isNaN(t)) throw new BadRequest('"expires_at" must be an ISO 8601 time.');
  return t + Number(`0.${(m[2] ?? '').padEnd(6, '0')}`) * 1000;
}

/** Keystone's form for an application credential's expiry: microseconds, no zone (it is UTC). */
function microTime(ms: number): string {
  const seconds = Math.floor(ms / 1000);
  const micros = Math.min(999_999, Math.round((ms - seconds * 1000) * 1000));
  return `${new Date(seconds * 1000).toISOString().slice(0, 19)}.${String(micros).padStart(6, '0')}`;
}

export function registerAppCredRoutes(app: FastifyInstance, ic: IdentityContext): void {
  const { site, reader, repos } = ic;
  const base = '/identity/v3/users/:user_id/application_credentials';

  /** The user in the path, with the caller allowed on their credentials (self, or cloud admin to read/delete). */
  const subject = (req: Parameters<typeof param>[0], adminToo: boolean) => {
    const ctx = site.authenticate(req);
    const uid = param(req, 'user_id');
    if (ctx.userId !== uid && !(adminToo && isCloudAdmin(ctx))) throw new Forbidden();
    const u = reader.user(uid);
    if (!u) throw notFound('user', uid);
    const owner = ic.domainOwner(u.domain_id);
    if (!owner) throw notFound('domain', u.domain_id);
    return { ctx, u, owner };
  };
  const load = (userId: string, id: string): AppCredRow => {
    const a = reader.appCred(id);
    if (!a || a.user_id !== userId) throw notFound('application credential', id);
    return a;
  };
  const unrestrictedToken = (appCredId: string | undefined) =>
    appCredId ? !!reader.appCred(appCredId)?.unrestricted : true;

  app.get(base, async (req) => {
    const { u } = subject(req, true);
    const qs = q(req);
    let rows = repos.appCreds.ofUser(u.id);
    if (qs.name !== undefined) rows = rows.filter((a) => a.name === qs.name);
    return collection(
      ic,
      req,
      'application_credentials',
      rows.map((a) => appCredView(ic, a)),
    );
  });

  app.get(`${base}/:id`, async (req) => {
    const { u } = subject(req, true);
    return { application_credential: appCredView(ic, load(u.id, param(req, 'id'))) };
  });

  app.post(base, async (req, reply) => {
    const { ctx, u, owner } = subject(req, false);
    requireNotRestrictedAppCred(ctx, unrestrictedToken(ctx.applicationCredentialId));
    if (!ctx.projectId) throw new BadRequest('An application credential needs a project-scoped token.');
    const fwd = forwardIfRemote(ic.site, owner, req, reply);
    if (fwd) return fwd;
    const b = wrapped(req.body, 'application_credential');
    const name = reqStr(b, 'name', { max: 255 });
    const description = optStr(b, 'description', { max: 255 }) ?? '';
    const secret = optStr(b, 'secret', { max: 4096, min: 1 }) ?? randomBytes(64).toString('base64url');
    const unrestricted = optBool(b, 'unrestricted') ?? false;
    const expiresIn = optStr(b, 'expires_at', { max: 64 });
    const expiresAt = expiresIn === undefined ? null : parseTime(expiresIn);
    const row = await createAppCred(ic, {
      userId: u.id,
      projectId: ctx.projectId,
      held: ctx,
      name,
      description,
      secret,
      unrestricted,
      expiresAt,
      accessRules: b.access_rules,
      roles: b.roles,
    });
    reply.code(201);
    return { application_credential: { ...appCredView(ic, row), secret } };
  });

  app.delete(`${base}/:id`, async (req, reply) => {
    const { ctx, u, owner } = subject(req, true);
    requireNotRestrictedAppCred(ctx, unrestrictedToken(ctx.applicationCredentialId));
    const a = load(u.id, param(req, 'id'));
    const fwd = forwardIfRemote(ic.site, a.owner ?? owner, req, reply);
    if (fwd) return fwd;
    deleteAppCred(ic, a.id);
    return reply.code(204).send();
  });

  const rulesBase = '/identity/v3/users/:user_id/access_rules';
  const loadRule = (userId: string, id: string): AccessRuleRow => {
    const r = repos.accessRules.get(id);
    if (!r || r.user_id !== userId) throw notFound('access rule', id);
    return r;
  };
  const ruleView = (r: AccessRuleRow): Obj => ({
    ...ruleBody(r),
    links: selfLinks(ic, `users/${r.user_id}/access_rules/${r.id}`),
  });
  app.get(rulesBase, async (req) => {
    const { u } = subject(req, true);
    const qs = q(req);
    let rows = repos.accessRules.ofUser(u.id);
    for (const k of ['service', 'method', 'path'] as const)
      if (qs[k] !== undefined) rows = rows.filter((r) => r[k] === qs[k]);
    return collection(ic, req, 'access_rules', rows.map(ruleView));
  });
  app.get(`${rulesBase}/:id`, async (req) => {
    const { u } = subject(req, true);
    return { access_rule: ruleView(loadRule(u.id, param(req, 'id'))) };
  });
  app.delete(`${rulesBase}/:id`, async (req, reply) => {
    const { ctx, u, owner } = subject(req, true);
    requireNotRestrictedAppCred(ctx, unrestrictedToken(ctx.applicationCredentialId));
    const r = loadRule(u.id, param(req, 'id'));
    const fwd = forwardIfRemote(ic.site, r.owner ?? owner, req, reply);
    if (fwd) return fwd;
    deleteAccessRule(ic, r);
    return reply.code(204).send();
  });
}
