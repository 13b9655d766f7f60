/**
 * @module OS-TRUST: /v3/OS-TRUST/trusts and a trust's roles. The trustor makes a trust with a token of
 * its own (not an application credential's); a trustee holding a trust-scoped token may redelegate
 * it when the trust allows. The trustor, the trustee and a cloud admin read a trust; the trustor or a
 * cloud admin deletes it. Trust-scoped tokens are issued by auth (`scope: {"OS-TRUST:trust": {id}}`).
 * A trust belongs to its trustor's home site; creates and deletes made elsewhere are forwarded.
 * https://docs.openstack.org/api-ref/identity/v3-ext/#os-trust-api
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { AuthContext } from '../../../core/auth.ts';
import { BadRequest, Forbidden } from '../../../core/errors.ts';
import type { Obj } from '../../common/input.ts';
import { isObj, keystoneTime, optBool, optInt, optStr, reqStr, wrapped } from '../../common/input.ts';
import type { IdentityContext } from '../context.ts';
import { notFound } from '../domain/common.ts';
import { trustRoot } from '../domain/tokens.ts';
import { createTrust, deleteTrust } from '../domain/trusts.ts';
import type { TrustRow } from '../store/schema.ts';
import { parseTime } from './app-creds.ts';
import { collection, forwardIfRemote, param, q, v3Url } from './common.ts';
import { isCloudAdmin } from './policy.ts';

export function registerTrustRoutes(app: FastifyInstance, ic: IdentityContext): void {
  const { site, reader, repos } = ic;
  const base = '/identity/v3/OS-TRUST/trusts';
  const roleView = (r: { id: string; name: string }): Obj => ({
    id: r.id,
    name: r.name,
    domain_id: null,
    links: { self: v3Url(ic, `roles/${r.id}`) },
  });
  const rolesOf = (t: TrustRow) => JSON.parse(t.roles) as { id: string; name: string }[];
  const view = (t: TrustRow): Obj => ({
    id: t.id,
    trustor_user_id: t.trustor_user_id,
    trustee_user_id: t.trustee_user_id,
    project_id: t.project_id,
    impersonation: !!t.impersonation,
    expires_at: t.expires_at === null ? null : keystoneTime(t.expires_at),
    remaining_uses: t.remaining_uses,
    allow_redelegation: !!t.allow_redelegation,
    redelegation_count: t.redelegation_count,
    redelegated_trust_id: t.redelegated_trust_id,
    roles: rolesOf(t).map(roleView),
    roles_links: { self: v3Url(ic, `OS-TRUST/trusts/${t.id}/roles`), previous: null, next: null },
    links: { self: v3Url(ic, `OS-TRUST/trusts/${t.id}`) },
  });
  /** The trust, when the caller is its trustor, its trustee or a cloud admin (404 otherwise). */
  const load = (req: FastifyRequest, forDelete = false): { ctx: AuthContext; t: TrustRow } => {
    const ctx = site.authenticate(req);
    const id = param(req, 'trust_id');
    const t = repos.trusts.get(id);
    if (!t) throw notFound('trust', id);
    const party = ctx.userId === t.trustor_user_id || (!forDelete && ctx.userId === t.trustee_user_id);
    if (!party && !isCloudAdmin(ctx)) throw new Forbidden();
    return { ctx, t };
  };
  /** A role given by id or by name (a global role); 404 when unknown. */
  const roleRef = (v: unknown): { id: string; name: string } => {
    if (!isObj(v)) throw new BadRequest('Each role must be an object with an id or a name.');
    const r =
      typeof v.id === 'string'
        ? reader.role(v.id)
        : typeof v.name === 'string'
          ? reader.roleByName(v.name)
          : undefined;
    if (!r) throw notFound('role', String(v.id ?? v.name));
    return { id: r.id, name: r.name };
  };

  app.post(base, async (req, reply) => {
    const ctx = site.authenticate(req);
    if (ctx.applicationCredentialId)
      throw new Forbidden('An application credential token cannot manage trusts.');
    const b = wrapped(req.body, 'trust');
    const trustorId = reqStr(b, 'trustor_user_id', { max: 64 });
    const trusteeId = reqStr(b, 'trustee_user_id', { max: 64 });
    if (typeof b.impersonation !== 'boolean')
      throw new BadRequest('"impersonation" is required (a boolean).');
    const parent = ctx.trustId ? repos.trusts.get(ctx.trustId) : undefined;
    if (ctx.trustId && !parent) throw new Forbidden();
    // The trustor is the caller; when redelegating, the trustee of the trust the token carries.
    const caller = parent ? parent.trustee_user_id : ctx.userId;
    if (trustorId !== caller) throw new Forbidden('The trustor must be the user of the token.');
    const trustor = reader.user(trustorId);
    if (!trustor) throw notFound('user', trustorId);
    if (!reader.user(trusteeId)) throw notFound('user', trusteeId);
    const projectId = optStr(b, 'project_id', { max: 64 });
    if (!projectId) throw new BadRequest('Atoll requires a project for a trust ("project_id").');
    if (!reader.project(projectId)) throw notFound('project', projectId);
    if (!Array.isArray(b.roles) || b.roles.length > 100) throw new BadRequest('"roles" must be a list.');
    const roles = b.roles.map(roleRef);
    const expiresIn = optStr(b, 'expires_at', { max: 64 });
    const expiresAt = expiresIn === undefined ? null : parseTime(expiresIn);
    const remainingUses = optInt(b, 'remaining_uses', 1, 1_000_000) ?? null;
    const rootTrustor = parent ? trustRoot(reader, parent.id).trustor_user_id : trustorId;
    const direct = reader.roles(rootTrustor, { projectId });
    const held = reader.withImplied(direct);
    const fwd = forwardIfRemote(site, trustor.owner, req, reply);
    if (fwd) return fwd;
    const row = createTrust(ic, {
      trustorUserId: trustorId,
      trusteeUserId: trusteeId,
      projectId,
      impersonation: b.impersonation,
      roles,
      expiresAt,
      remainingUses,
      allowRedelegation: optBool(b, 'allow_redelegation') ?? false,
      redelegationCount: optInt(b, 'redelegation_count', 0, 1000),
      parent,
      held,
    });
    reply.code(201);
    return { trust: view(row) };
  });

  app.get(base, async (req) => {
    const ctx = site.authenticate(req);
    const qs = q(req);
    const own = qs.trustor_user_id === ctx.userId || qs.trustee_user_id === ctx.userId;
    if (!isCloudAdmin(ctx) && !own) throw new Forbidden();
    let rows = repos.trusts.all();
    if (qs.trustor_user_id !== undefined) rows = rows.filter((t) => t.trustor_user_id === qs.trustor_user_id);
    if (qs.trustee_user_id !== undefined) rows = rows.filter((t) => t.trustee_user_id === qs.trustee_user_id);
    const now = ic.now();
    rows = rows.filter((t) => t.expires_at === null || t.expires_at > now);
    return collection(ic, req, 'trusts', rows.map(view));
  });
  app.get(`${base}/:trust_id`, async (req) => ({ trust: view(load(req).t) }));
  app.delete(`${base}/:trust_id`, async (req, reply) => {
    const { t } = load(req, true);
    const fwd = forwardIfRemote(site, t.owner, req, reply);
    if (fwd) return fwd;
    deleteTrust(ic, t.id);
    return reply.code(204).send();
  });
  app.get(`${base}/:trust_id/roles`, async (req) => {
    const { t } = load(req);
    return collection(ic, req, 'roles', rolesOf(t).map(roleView));
  });
  const oneRole = (req: FastifyRequest) => {
    const { t } = load(req);
    const rid = param(req, 'role_id');
    const r = rolesOf(t).find((x) => x.id === rid);
    if (!r) throw notFound('role', rid);
    return r;
  };
  app.get(`${base}/:trust_id/roles/:role_id`, { exposeHeadRoute: false }, async (req) => ({
    role: roleView(oneRole(req)),
  }));
  app.head(`${base}/:trust_id/roles/:role_id`, async (req, reply) => {
    oneRole(req);
    return reply.code(200).send();
  });
}
