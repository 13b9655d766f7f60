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
import { NotFound } from '../../../core/errors.ts';
import type { Obj } from '../../common/input.ts';
import type { IdentityContext } from '../context.ts';
import { notFound } from '../domain/common.ts';
import {
  checkInference,
  createRule,
  deleteRule,
  hasRule,
  impliedBy,
  priorRoles,
} from '../domain/implied-roles.ts';
import type { RoleRow } from '../store/schema.ts';
import { adminProjectOwner, forwardIfRemote, param, selfLinks, v3Url } from './common.ts';
import { requireCloudAdmin } from './policy.ts';

export function registerImpliedRoleRoutes(app: FastifyInstance, ic: IdentityContext): void {
  const { site, reader } = ic;

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
  const impliedOf = (priorId: string): Obj[] => impliedBy(ic, priorId).map(ref);

  const path = '/identity/v3/roles/:prior_role_id/implies/:implied_role_id';
  app.put(path, async (req, reply) => {
    const { prior, implied } = pair(req);
    checkInference(prior, implied);
    const fwd = forwardIfRemote(ic.site, adminProjectOwner(ic), req, reply);
    if (fwd) return fwd;
    createRule(ic, prior, implied);
    reply.code(201);
    return inference(prior, implied);
  });
  const found = (req: FastifyRequest) => {
    const { prior, implied } = pair(req);
    if (!hasRule(ic, prior.id, implied.id)) throw new NotFound('Could not find implied role.');
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
    if (!hasRule(ic, prior.id, implied.id)) throw new NotFound('Could not find implied role.');
    const fwd = forwardIfRemote(ic.site, adminProjectOwner(ic), req, reply);
    if (fwd) return fwd;
    deleteRule(ic, prior.id, implied.id);
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
    const role_inferences = priorRoles(ic).map((p) => ({ prior_role: ref(p), implies: impliedOf(p.id) }));
    return { role_inferences, links: { self: v3Url(ic, 'role_inferences') } };
  });
}
