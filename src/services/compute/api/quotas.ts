/**
 * @module Quotas and limits (os-quota-sets, /limits): routes and views. The rules (defaults, the
 * over-quota 403, metadata limits) are in domain/quotas.ts. Usage counts every replica of the
 * project's servers, so a project's limit holds across sites up to replication lag (an escrow of quota
 * per site would make it exact; see docs/compute.md).
 */
import type { FastifyInstance } from 'fastify';
import { canRead, requireAdmin, requireReader } from '../../../core/auth.ts';
import { BadRequest, NotFound } from '../../../core/errors.ts';
import { isObj, query, wrapped } from '../../common/input.ts';
import type { Obj } from '../../common/input.ts';
import { forwardToHome, unknownProject } from '../../common/home.ts';
import { forwardIfRemote } from '../../common/owner.ts';
import { DEFAULT_QUOTAS, checkMetadata as checkMetadataOf, limitsFor, safeText } from '../domain/quotas.ts';
import type { ComputeService } from '../service.ts';
import { computeQuotaKind } from '../store/schema.ts';
import { atLeast } from './microversion.ts';

const LEGACY = { fixed_ips: -1, floating_ips: -1, security_groups: -1, security_group_rules: -1 };

export function limitsOf(svc: ComputeService, projectId: string): Record<string, number> {
  return limitsFor(svc.repo, projectId);
}

/** Server metadata as Nova validates it (domain/quotas.ts). */
export function checkMetadata(svc: ComputeService, projectId: string, md: unknown): Record<string, string> {
  return checkMetadataOf(svc.repo, projectId, md);
}

export function registerQuotaRoutes(app: FastifyInstance, svc: ComputeService): void {
  const { ctx } = svc;
  const P = '/compute/v2.1';
  const view = (req: Parameters<typeof atLeast>[0], id: string, limits: Record<string, number>) => {
    const out: Obj = { id, ...limits };
    if (!atLeast(req, '2.36')) Object.assign(out, LEGACY);
    if (atLeast(req, '2.57'))
      for (const k of ['injected_files', 'injected_file_content_bytes', 'injected_file_path_bytes'])
        delete out[k];
    return out;
  };

  app.get<{ Params: { id: string } }>(`${P}/os-quota-sets/:id`, async (req) => {
    const auth = ctx.authenticate(req);
    if (!canRead(auth, req.params.id)) requireAdmin(auth);
    return { quota_set: view(req, req.params.id, limitsOf(svc, req.params.id)) };
  });
  app.get<{ Params: { id: string } }>(`${P}/os-quota-sets/:id/defaults`, async (req) => {
    ctx.authenticate(req);
    return { quota_set: view(req, req.params.id, DEFAULT_QUOTAS) };
  });
  app.get<{ Params: { id: string } }>(`${P}/os-quota-sets/:id/detail`, async (req) => {
    const auth = ctx.authenticate(req);
    if (!canRead(auth, req.params.id)) requireAdmin(auth);
    const limits = limitsOf(svc, req.params.id);
    const used = svc.repo.usage(req.params.id);
    const inUse: Record<string, number> = { instances: used.instances, cores: used.cores, ram: used.ram };
    const detail: Obj = { id: req.params.id };
    for (const [k, v] of Object.entries(view(req, req.params.id, limits)))
      if (k !== 'id') detail[k] = { limit: v, in_use: inUse[k] ?? 0, reserved: 0 };
    return { quota_set: detail };
  });
  app.put<{ Params: { id: string } }>(`${P}/os-quota-sets/:id`, async (req, reply) => {
    const auth = ctx.authenticate(req);
    requireAdmin(auth);
    const row = svc.repo.quota(req.params.id);
    const fwd = forwardIfRemote(ctx, row?.owner, req, reply);
    if (fwd) return fwd;
    const home = row
      ? undefined
      : forwardToHome(
          ctx,
          computeQuotaKind,
          { id: req.params.id },
          req,
          reply,
          unknownProject(req.params.id),
        );
    if (home) return home;
    const b = wrapped(req.body, 'quota_set');
    const cur = row ? (JSON.parse(row.limits) as Record<string, number>) : {};
    for (const [k, v] of Object.entries(b)) {
      if (k === 'force' || k in LEGACY) continue;
      if (!(k in DEFAULT_QUOTAS))
        throw new BadRequest(`Additional properties are not allowed ('${k}' was unexpected)`);
      const n = typeof v === 'string' ? Number(v) : v;
      if (typeof n !== 'number' || !Number.isInteger(n) || n < -1)
        throw new BadRequest(`Invalid input for field/attribute ${k}. Value: ${safeText(v)}.`);
      cur[k] = n;
    }
    ctx.store.tx(() =>
      ctx.changelog.put(computeQuotaKind, { id: req.params.id, limits: JSON.stringify(cur) }),
    );
    const out = view(req, req.params.id, { ...DEFAULT_QUOTAS, ...cur });
    delete out.id;
    return { quota_set: out };
  });
  app.delete<{ Params: { id: string } }>(`${P}/os-quota-sets/:id`, async (req, reply) => {
    const auth = ctx.authenticate(req);
    requireAdmin(auth);
    const row = svc.repo.quota(req.params.id);
    if (!row) return reply.code(202).send();
    const fwd = forwardIfRemote(ctx, row.owner, req, reply);
    if (fwd) return fwd;
    ctx.store.tx(() => ctx.changelog.remove(computeQuotaKind, req.params.id));
    return reply.code(202).send();
  });

  app.get(`${P}/limits`, async (req) => {
    const auth = ctx.authenticate(req);
    const q = query(req.query);
    let project = requireReader(auth);
    if (q.tenant_id && q.tenant_id !== project) {
      requireAdmin(auth);
      project = q.tenant_id;
    }
    const l = limitsOf(svc, project);
    const used = svc.repo.usage(project);
    const groups = svc.repo.serverGroupCount(project);
    const absolute: Obj = {
      maxTotalInstances: l.instances,
      maxTotalCores: l.cores,
      maxTotalRAMSize: l.ram,
      maxTotalKeypairs: l.key_pairs,
      maxServerMeta: l.metadata_items,
      maxServerGroups: l.server_groups,
      maxServerGroupMembers: l.server_group_members,
      totalInstancesUsed: used.instances,
      totalCoresUsed: used.cores,
      totalRAMUsed: used.ram,
      totalServerGroupsUsed: groups,
    };
    if (!atLeast(req, '2.39')) absolute.maxImageMeta = l.metadata_items;
    if (!atLeast(req, '2.57')) {
      absolute.maxPersonality = l.injected_files;
      absolute.maxPersonalitySize = l.injected_file_content_bytes;
    }
    if (!atLeast(req, '2.36'))
      Object.assign(absolute, {
        maxSecurityGroups: -1,
        maxSecurityGroupRules: -1,
        maxTotalFloatingIps: -1,
        totalSecurityGroupsUsed: 0,
        totalFloatingIpsUsed: 0,
      });
    return { limits: { rate: [], absolute } };
  });
  void isObj;
  void NotFound;
}
