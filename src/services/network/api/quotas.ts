/**
 * @module Routes of network quotas (https://docs.openstack.org/api-ref/network/v2/#quotas-extension-quotas).
 * A project's quota row is owned by the site that first set it, else by the project's home site: a
 * change elsewhere is forwarded there.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { AuthContext } from '../../../core/auth.ts';
import { requireAdmin } from '../../../core/auth.ts';
import { BadRequest, NotFound } from '../../../core/errors.ts';
import type { ServiceContext } from '../../common/module.ts';
import { wrapped } from '../../common/input.ts';
import { forwardToHome, unknownProject } from '../../common/home.ts';
import { forwardIfRemote } from '../../common/owner.ts';
import { DEFAULT_QUOTAS, quotas, resetQuotas, setQuotas, usage } from '../domain/quotas.ts';
import type { NetworkService } from '../service.ts';
import { netQuotaKind } from '../store/schema.ts';
import { V2 } from './resource.ts';

/** Limits as given in a PUT body: known keys, integers >= -1 (a numeric string is accepted). */
function parseLimits(o: Record<string, unknown>): Record<string, number> {
  const changes: Record<string, number> = {};
  for (const [k, v] of Object.entries(o)) {
    if (!(k in DEFAULT_QUOTAS)) throw new BadRequest(`Unrecognized attribute(s) '${k}'`, 'InvalidInput');
    const n = typeof v === 'string' && /^-?\d+$/.test(v) ? Number(v) : v;
    if (typeof n !== 'number' || !Number.isInteger(n) || n < -1)
      throw new BadRequest(`Invalid input for ${k}: must be an integer >= -1.`, 'InvalidInput');
    changes[k] = n;
  }
  return changes;
}

export function registerQuotaRoutes(app: FastifyInstance, ctx: ServiceContext, svc: NetworkService): void {
  const d = svc.deps;
  const quotaBody = (q: Record<string, number>) => ({ ...q });
  app.get(`${V2}/quotas`, async (req) => {
    requireAdmin(ctx.authenticate(req));
    const rows = svc.repo.quotaProjects();
    return { quotas: rows.map((p) => ({ ...quotas(d, p), project_id: p, tenant_id: p })) };
  });
  const quotaTarget = (auth: AuthContext, project: string) => {
    if (!auth.isAdmin && auth.projectId !== project)
      throw new NotFound(`Quota for project ${project} could not be found.`);
  };
  app.get(`${V2}/quotas/:project/default`, async (req) => {
    const auth = ctx.authenticate(req);
    quotaTarget(auth, (req.params as { project: string }).project);
    return { quota: { ...DEFAULT_QUOTAS } };
  });
  // Tempest's client asks for `details.json` (Neutron's old format suffix): both are answered.
  const details = async (req: FastifyRequest) => {
    const auth = ctx.authenticate(req);
    const { project } = req.params as { project: string };
    quotaTarget(auth, project);
    const q = quotas(d, project);
    const u = usage(d, project);
    return {
      quota: Object.fromEntries(
        Object.entries(q).map(([k, limit]) => [k, { limit, used: u[k as keyof typeof u] ?? 0, reserved: 0 }]),
      ),
    };
  };
  app.get(`${V2}/quotas/:project/details`, details);
  app.get(`${V2}/quotas/:project/details.json`, details);
  app.get(`${V2}/quotas/:project`, async (req) => {
    const auth = ctx.authenticate(req);
    const { project } = req.params as { project: string };
    quotaTarget(auth, project);
    return { quota: quotaBody(quotas(d, project)) };
  });
  /** A quota write: admins only, at the site holding the project's quotas (forwarded there). */
  const quotaWrite = (req: FastifyRequest, reply: FastifyReply) => {
    requireAdmin(ctx.authenticate(req));
    const { project } = req.params as { project: string };
    const owner = svc.repo.quotaOwner(project);
    return { project, owner, fwd: forwardIfRemote(ctx, owner, req, reply) };
  };
  app.put(`${V2}/quotas/:project`, async (req, reply) => {
    const { project, owner, fwd } = quotaWrite(req, reply);
    if (fwd) return fwd;
    const home = owner
      ? undefined
      : forwardToHome(ctx, netQuotaKind, { id: project }, req, reply, unknownProject(project));
    if (home) return home;
    const changes = parseLimits(wrapped(req.body, 'quota'));
    return { quota: setQuotas(d, project, changes) };
  });
  app.delete(`${V2}/quotas/:project`, async (req, reply) => {
    const { project, fwd } = quotaWrite(req, reply);
    if (fwd) return fwd;
    resetQuotas(d, project);
    return reply.code(204).send();
  });
}
