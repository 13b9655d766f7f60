/**
 * @module Cinder's quota classes (`os-quota-class-sets/{class}`, admin): the `default` class is what
 * every project's quotas start from (os-quota-sets and their `/defaults`), with one
 * volumes_/snapshots_/gigabytes_<type> limit per volume type. A class is one cloud-wide row that
 * only the membership authority writes (its origin rule), so two sites never hold two sets of
 * defaults; an update sent anywhere is forwarded there (503 naming it when it is unreachable), and
 * every site reads its replica.
 * https://docs.openstack.org/api-ref/block-storage/v3/#quota-class-set-extension-os-quota-class-sets
 */
import type { FastifyReply, FastifyRequest } from 'fastify';
import { requireAdmin } from '../../../core/auth.ts';
import { CloudError } from '../../../core/errors.ts';
import { wrapped } from '../../common/input.ts';
import { forwardIfRemote } from '../../common/owner.ts';
import type { VolumeRoutes } from './scope.ts';

export function registerQuotaClassRoutes({ app, ctx, svc, base, enter }: VolumeRoutes): void {
  const admin = (req: FastifyRequest, reply: FastifyReply, write = false) => {
    const e = enter(req, reply, write);
    requireAdmin(e.auth);
    return e;
  };
  app.get(`${base}/os-quota-class-sets/:cls`, async (req, reply) => {
    admin(req, reply);
    const { cls } = req.params as { cls: string };
    return { quota_class_set: { id: cls, ...svc.classQuotas(cls) } };
  });
  app.put(`${base}/os-quota-class-sets/:cls`, async (req, reply) => {
    admin(req, reply, true);
    const authority = ctx.registry.authority();
    if (!authority)
      throw new CloudError(503, 'The membership authority, which keeps quota classes, is not known yet.');
    const fwd = forwardIfRemote(ctx, authority, req, reply);
    if (fwd) return fwd;
    const { cls } = req.params as { cls: string };
    svc.setClassQuotas(cls, svc.quotaChanges(wrapped(req.body, 'quota_class_set')));
    return { quota_class_set: svc.classQuotas(cls) };
  });
}
