/**
 * @module Implied roles (Keystone's role inference rules): PUT/GET/HEAD/DELETE
 * /v3/roles/{prior}/implies/{implied}, GET /v3/roles/{prior}/implies and GET /v3/role_inferences. A
 * grant of the prior role also grants the implied one, transitively, in tokens and in effective role
 * assignment listings. Only a cloud admin writes rules, at the admin project's owner (the origin rule
 * of `implied_role`). As in Keystone, no rule may imply `admin` (`[assignment]
 * prohibited_implied_role`), so no grant becomes a cloud admin by inference, and a global role may not
 * imply a domain-specific one.
 * https://docs.openstack.org/api-ref/identity/v3/#roles (implied roles)
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { Role } from '../../../core/auth.ts';
import { Forbidden, NotFound } from '../../../core/errors.ts';
import type { Obj } from '../../common/input.ts';
import type { IdentityContext } from '../context.ts';
import type { ImpliedRoleRow, RoleRow } from '../store/schema.ts';
import { adminProjectOwner, notFound, param, selfLinks, v3Url } from './common.ts';
import { forwardIfRemote } from '../../common/owner.ts';
import { requireCloudAdmin } from './policy.ts';

const ruleId = (prior: string, implied: string) => `${prior}:${implied}`;

export function registerImpliedRoleRoutes(app: FastifyInstance, ic: IdentityContext): void {
  const { site, reader } = ic;
  const db = site.store.db;
  const rule = db.prepare('SELECT * FROM implied_roles WHERE id = ?');
  const rulesOf = db.prepare('SELECT * FROM implied_roles WHERE prior_role_id = ? ORDER BY implied_role_id');
  const allRules = db.prepare('SELECT * FROM implied_roles ORDER BY prior_role_id, implied_role_id');

  const role = (id: string): RoleRow => {
    const r = reader.role(id);
    if (!r) throw notFound('role', id);
    return r;
  };
  const ref = (r: RoleRow): Obj => ({ id: r.id, name: r.name, links: selfLinks(ic, `roles/${r.id}`) });
  const pair = (req: FastifyRequest) => {
    requireCloudAdmin(site.authenticate(req));
    return { prior: role(param(req, 'prior_role_id')), implied: role(param(req, 'implied_role_id')) };
  };
  const inference = (prior: RoleRow, implied: RoleRow) => ({
    role_inference: { prior_role: ref(prior), implies: ref(implied) },
    links: { self: v3Url(ic, `roles/${prior.id}/implies/${implied.id}`) },
  });
  const impliedOf = (priorId: string): Obj[] =>
    (rulesOf.all(priorId) as ImpliedRoleRow[]).flatMap((r) => {
      const i = reader.role(r.implied_role_id);
      return i ? [ref(i)] : [];
    });

  const path = '/identity/v3/roles/:prior_role_id/implies/:implied_role_id';
  app.put(path, async (req, reply) => {
    const { prior, implied } = pair(req);
    if (implied.name === Role.Admin && implied.domain_id === null)
      throw new Forbidden(`${implied.name} may not be an implied role.`);
    if (prior.domain_id === null && implied.domain_id !== null)
      throw new Forbidden('A global role cannot imply a domain-specific role.');
    if (prior.id === implied.id) throw new Forbidden('A role cannot imply itself.');
    const fwd = forwardIfRemote(ic.site, adminProjectOwner(ic), req, reply);
    if (fwd) return fwd;
    const id = ruleId(prior.id, implied.id);
    if (!rule.get(id))
      site.changelog.put('implied_role', { id, prior_role_id: prior.id, implied_role_id: implied.id });
    reply.code(201);
    return inference(prior, implied);
  });
  const found = (req: FastifyRequest) => {
    const { prior, implied } = pair(req);
    if (!rule.get(ruleId(prior.id, implied.id))) throw new NotFound('Could not find implied role.');
    return { prior, implied };
  };
  app.get(path, { exposeHeadRoute: false }, async (req) => {
    const { prior, implied } = found(req);
    return inference(prior, implied);
  });
  app.head(path, async (req, reply) => {
    found(req);
    return reply.code(204).send();
  });
  app.delete(path, async (req, reply) => {
    const { prior, implied } = pair(req);
    const id = ruleId(prior.id, implied.id);
    if (!rule.get(id)) throw new NotFound('Could not find implied role.');
    const fwd = forwardIfRemote(ic.site, adminProjectOwner(ic), req, reply);
    if (fwd) return fwd;
    site.changelog.remove('implied_role', id);
    return reply.code(204).send();
  });
  app.get('/identity/v3/roles/:prior_role_id/implies', async (req) => {
    requireCloudAdmin(site.authenticate(req));
    const prior = role(param(req, 'prior_role_id'));
    return {
      role_inference: { prior_role: ref(prior), implies: impliedOf(prior.id) },
      links: { self: v3Url(ic, `roles/${prior.id}/implies`) },
    };
  });
  app.get('/identity/v3/role_inferences', async (req) => {
    requireCloudAdmin(site.authenticate(req));
    const priors = [...new Set((allRules.all() as ImpliedRoleRow[]).map((r) => r.prior_role_id))];
    const role_inferences = priors.flatMap((id) => {
      const p = reader.role(id);
      return p ? [{ prior_role: ref(p), implies: impliedOf(id) }] : [];
    });
    return { role_inferences, links: { self: v3Url(ic, 'role_inferences') } };
  });
}

/** Removes, at the admin project's owner, the rules naming a deleted role (elsewhere they replicate). */
export function removeRulesOf(ic: IdentityContext, roleId: string): void {
  const rows = ic.site.store.db
    .prepare('SELECT id, owner FROM implied_roles WHERE prior_role_id = ? OR implied_role_id = ?')
    .all(roleId, roleId) as { id: string; owner: string }[];
  for (const r of rows) if (ic.site.owns(r.owner)) ic.site.changelog.remove('implied_role', r.id);
}
