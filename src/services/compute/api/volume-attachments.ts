/**
 * @module Nova's os-volume_attachments: attach and detach Cinder volumes to servers, through the
 * volume service's in-process contract (VolumeForCompute). A server and the volumes attached to it live
 * on the same site (their availability zone); a call that reaches another site is forwarded to the
 * server's owner. https://docs.openstack.org/api-ref/compute/#servers-with-volume-attachments-servers-os-volume-attachments
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { AuthContext } from '../../../core/auth.ts';
import { canRead, canWrite, requireAdmin } from '../../../core/auth.ts';
import { BadRequest, CloudError, Forbidden, NotFound } from '../../../core/errors.ts';
import { optStr, reqStr, wrapped } from '../../common/input.ts';
import type { VolumeAttachment } from '../../common/internal.ts';
import { forwardIfRemote } from '../../common/owner.ts';
import type { ComputeService } from '../service.ts';
import type { ServerRow } from '../store/schema.ts';
import { serviceCaller } from './proxy.ts';

const P = '/compute/v2.1';

const view = (a: VolumeAttachment) => ({
  id: a.volumeId,
  volumeId: a.volumeId,
  serverId: a.serverId,
  device: a.device,
});

/** Nova answers an attach of a volume that is not available (attached already, busy) 400, not 409. */
function attachOr400(fn: () => VolumeAttachment): VolumeAttachment {
  try {
    return fn();
  } catch (e) {
    if (e instanceof CloudError && e.status === 409) throw new BadRequest(e.message);
    throw e;
  }
}

export function registerVolumeAttachmentRoutes(app: FastifyInstance, svc: ComputeService): void {
  const { ctx, repo } = svc;
  const call = serviceCaller(app);
  type R = FastifyRequest<{ Params: { id: string; vid?: string } }>;

  /** The server if the caller may see it (404 otherwise, as Nova) and, for a write, change it (403). */
  const server = (auth: AuthContext, id: string, write: boolean): ServerRow => {
    const s = repo.server(id);
    if (!s || !canRead(auth, s.project_id)) throw new NotFound(`Instance ${id} could not be found.`);
    if (write && !canWrite(auth, s.project_id)) throw new Forbidden();
    return s;
  };
  const volumes = () => {
    const v = svc.volume;
    if (!v) throw new CloudError(503, 'The volume service is not available on this site.');
    return v;
  };

  app.get(`${P}/servers/:id/os-volume_attachments`, async (req: R) => {
    const auth = ctx.authenticate(req);
    const s = server(auth, req.params.id, false);
    return { volumeAttachments: volumes().attachmentsOf(s.id).map(view) };
  });

  app.get(`${P}/servers/:id/os-volume_attachments/:vid`, async (req: R) => {
    const auth = ctx.authenticate(req);
    const s = server(auth, req.params.id, false);
    const a = volumes()
      .attachmentsOf(s.id)
      .find((x) => x.volumeId === req.params.vid);
    if (!a) throw new NotFound(`volume_id not found: ${String(req.params.vid)}`);
    return { volumeAttachment: view(a) };
  });

  app.post(`${P}/servers/:id/os-volume_attachments`, async (req: R, reply) => {
    const auth = ctx.authenticate(req);
    const s = server(auth, req.params.id, true);
    const fwd = forwardIfRemote(ctx, s.owner, req, reply);
    if (fwd) return fwd;
    const body = wrapped(req.body, 'volumeAttachment');
    const volumeId = reqStr(body, 'volumeId', { max: 64 });
    const device = optStr(body, 'device', { max: 64, pattern: /^\/dev\/[a-z0-9]+$/ });
    if (s.vm_state === 'error' || s.vm_state === 'rescued' || s.task_state === 'deleting')
      throw new CloudError(
        409,
        `Cannot 'attach_volume' instance ${s.id} while it is in vm_state ${s.vm_state}`,
      );
    const a = attachOr400(() => volumes().attach(auth, volumeId, s.id, device));
    svc.attachToGuest(s, volumeId, auth, svc.startAction(s, 'attach_volume', auth, req.id));
    return { volumeAttachment: view(a) };
  });

  // Swap (Nova's swap_volume, admin only): the new volume takes the old one's device. The fake driver
  // has no guest to copy bytes in; the QEMU driver is not asked (a swap of a running guest is not done).
  app.put(`${P}/servers/:id/os-volume_attachments/:vid`, async (req: R, reply) => {
    const auth = ctx.authenticate(req);
    requireAdmin(auth);
    const s = server(auth, req.params.id, true);
    const fwd = forwardIfRemote(ctx, s.owner, req, reply);
    if (fwd) return fwd;
    const body = wrapped(req.body, 'volumeAttachment');
    const newId = reqStr(body, 'volumeId', { max: 64 });
    const old = volumes()
      .attachmentsOf(s.id)
      .find((x) => x.volumeId === req.params.vid);
    if (!old) throw new NotFound(`volume_id not found: ${String(req.params.vid)}`);
    if (newId === old.volumeId) return reply.code(202).send();
    try {
      await call(req, 'GET', `/volume/v3/${String(auth.projectId)}/volumes/${encodeURIComponent(newId)}`);
    } catch (e) {
      if (e instanceof CloudError && e.status === 404)
        throw new BadRequest(`Volume ${newId} could not be found.`);
      throw e;
    }
    if (svc.opts.driver !== 'fake' && s.vm_state === 'active')
      throw new CloudError(409, `Cannot 'swap_volume' instance ${s.id} while its guest runs on this driver.`);
    const actionId = svc.startAction(s, 'swap_volume', auth, req.id);
    // The old volume lets go of the device first; a new volume refused gets the old one back.
    volumes().detach(auth, old.volumeId, s.id);
    try {
      attachOr400(() => volumes().attach(auth, newId, s.id, old.device));
    } catch (e) {
      volumes().attach(auth, old.volumeId, s.id, old.device);
      svc.finishAction(actionId, (e as Error).message);
      throw e;
    }
    svc.finishAction(actionId);
    return reply.code(202).send();
  });

  app.delete(`${P}/servers/:id/os-volume_attachments/:vid`, async (req: R, reply) => {
    const auth = ctx.authenticate(req);
    const s = server(auth, req.params.id, true);
    const fwd = forwardIfRemote(ctx, s.owner, req, reply);
    if (fwd) return fwd;
    const vid = req.params.vid;
    if (!vid) throw new BadRequest('volume id is required');
    if (s.vm_state === 'rescued')
      throw new CloudError(409, `Cannot 'detach_volume' instance ${s.id} while it is in vm_state rescued`);
    svc.detachFromGuest(volumes(), s, vid, auth, req.id);
    return reply.code(202).send();
  });
}
