/**
 * @module Keystone's policies API (/v3/policies): opaque policy documents (`blob`, with a MIME `type`)
 * that a cloud admin stores for services to fetch. As in Keystone, nothing enforces them; the policy
 * Atoll enforces is in policy.ts. A policy belongs to the site that made it (changes are forwarded).
 * https://docs.openstack.org/api-ref/identity/v3/#policies
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { Obj } from '../../common/input.ts';
import { optStr, reqStr, wrapped } from '../../common/input.ts';
import type { IdentityContext } from '../context.ts';
import { notFound } from '../domain/common.ts';
import { createPolicy, deletePolicy, updatePolicy } from '../domain/policies.ts';
import type { PolicyRow } from '../store/schema.ts';
import { extraOf, filteredCollection, forwardIfRemote, param, parseExtra, selfLinks } from './common.ts';
import { requireCloudAdmin } from './policy.ts';

const KNOWN = ['id', 'type', 'blob'];
/** Policy documents are small (Keystone keeps them in a TEXT column; the row cap applies too). */
const MAX_BLOB = 65_535;

export function registerPolicyRoutes(app: FastifyInstance, ic: IdentityContext): void {
  const { site, repos } = ic;
  const view = (p: PolicyRow): Obj => ({
    ...parseExtra(p.extra),
    id: p.id,
    type: p.type,
    blob: p.blob,
    links: selfLinks(ic, `policies/${p.id}`),
  });
  const load = (req: FastifyRequest): PolicyRow => {
    requireCloudAdmin(site.authenticate(req));
    const id = param(req, 'policy_id');
    const p = repos.policies.get(id);
    if (!p) throw notFound('policy', id);
    return p;
  };

  app.get('/identity/v3/policies', async (req) => {
    requireCloudAdmin(site.authenticate(req));
    const rows = repos.policies.all();
    return filteredCollection(ic, req, 'policies', rows, ['type'], (_ic, p) => view(p));
  });
  app.get('/identity/v3/policies/:policy_id', async (req) => ({ policy: view(load(req)) }));
  app.post('/identity/v3/policies', async (req, reply) => {
    requireCloudAdmin(site.authenticate(req));
    const b = wrapped(req.body, 'policy');
    const row = createPolicy(ic, {
      type: reqStr(b, 'type', { max: 255 }),
      blob: reqStr(b, 'blob', { max: MAX_BLOB }),
      extra: extraOf(b, KNOWN, undefined),
    });
    reply.code(201);
    return { policy: view(row) };
  });
  app.patch('/identity/v3/policies/:policy_id', async (req, reply) => {
    const p = load(req);
    const fwd = forwardIfRemote(ic.site, p.owner, req, reply);
    if (fwd) return fwd;
    const b = wrapped(req.body, 'policy');
    const row = updatePolicy(ic, p, {
      type: optStr(b, 'type', { max: 255, min: 1 }),
      blob: optStr(b, 'blob', { max: MAX_BLOB }),
      extra: extraOf(b, KNOWN, p.extra),
    });
    return { policy: view(row) };
  });
  app.delete('/identity/v3/policies/:policy_id', async (req, reply) => {
    const p = load(req);
    const fwd = forwardIfRemote(ic.site, p.owner, req, reply);
    if (fwd) return fwd;
    deletePolicy(ic, p.id);
    return reply.code(204).send();
  });
}
