/**
 * @module VolumeForCompute: attachments made through Nova's os-volume_attachments on the server's site.
 * A volume attaches only where it lives (its availability zone), like Nova with cross_az_attach off.
 */
import { Conflict, NotFound } from '../../core/errors.ts';
import type { VolumeAttachment, VolumeForCompute } from '../common/internal.ts';
import type { VolumeService } from './domain/volumes.ts';

export function volumeForCompute(svc: VolumeService): VolumeForCompute {
  const rowsOf = (serverId: string) => svc.attachmentsOfServer(serverId);
  const toApi = (a: {
    id: string;
    volume_id: string;
    server_id: string;
    device: string;
  }): VolumeAttachment => ({
    id: a.id,
    volumeId: a.volume_id,
    serverId: a.server_id,
    device: a.device,
  });
  return {
    attach(auth, volumeId, serverId, device) {
      const v = svc.visibleVolume(auth, volumeId);
      if (!svc.owns(v.owner))
        throw new Conflict(
          `Volume ${volumeId} is in availability zone ${v.owner}; it can only be attached to servers there.`,
        );
      if (v.status !== 'available')
        throw new Conflict(
          `Invalid volume: volume ${volumeId} status must be available to attach, but it is ${v.status}.`,
        );
      const used = new Set(rowsOf(serverId).map((a) => a.device));
      let dev = device;
      if (!dev) {
        for (let c = 'b'.charCodeAt(0); c <= 'z'.charCodeAt(0); c++)
          if (!used.has(`/dev/vd${String.fromCharCode(c)}`)) {
            dev = `/dev/vd${String.fromCharCode(c)}`;
            break;
          }
      }
      if (!dev || used.has(dev)) throw new Conflict(`The supplied device path (${String(dev)}) is in use.`);
      const a = svc.attach(volumeId, serverId, dev, svc.site);
      return { id: String(a.id), volumeId, serverId, device: dev };
    },
    detach(auth, volumeId, serverId) {
      svc.visibleVolume(auth, volumeId);
      const a = rowsOf(serverId).find((x) => x.volume_id === volumeId);
      if (!a) throw new NotFound(`Volume ${volumeId} is not attached to server ${serverId}.`);
      if (!svc.owns(a.owner))
        throw new Conflict(`The attachment of volume ${volumeId} belongs to site ${a.owner}.`);
      svc.detach(a.id);
    },
    attachmentsOf(serverId) {
      return rowsOf(serverId).map(toApi);
    },
    detachAll(serverId) {
      for (const a of rowsOf(serverId)) if (svc.owns(a.owner)) svc.detach(a.id);
    },
    deleteDetached(volumeId) {
      const v = svc.volume(volumeId);
      if (v && svc.owns(v.owner)) svc.deleteVolume(v, false);
    },
  };
}
