/**
 * @module Block Storage actions: `POST /volumes/{id}/action` and `POST /snapshots/{id}/action`, one
 * handler per action name (Cinder's volume_actions, admin_actions and volume_image_metadata
 * extensions). The caller has checked the row is visible and forwarded to its owner; each handler
 * checks its own policy (admin-only actions) and answers with Cinder's status code.
 */
import type { AuthContext } from '../../../core/auth.ts';
import { requireAdmin } from '../../../core/auth.ts';
import { BadRequest, NotFound } from '../../../core/errors.ts';
import { isObj, optInt, optStr } from '../../common/input.ts';
import type { Obj } from '../../common/input.ts';
import type { VolRow, VolumeService } from '../domain/volumes.ts';
import { boolArg, stringValues } from '../domain/volumes.ts';
import { uploadToImage } from '../domain/upload.ts';
import type { ImageForVolumes } from '../../common/internal.ts';
import type { Microversion } from '../../common/microversion.ts';

export interface ActionResult {
  code: number;
  body?: Obj;
}
/** What some actions need beyond the row: the microversion, the image service, the type's view. */
export interface ActionContext {
  mv: Microversion;
  images: () => ImageForVolumes;
  typeView: (t: Obj) => Obj;
}
type Handler = (
  svc: VolumeService,
  auth: AuthContext,
  r: VolRow,
  arg: Obj,
  ctx: ActionContext,
) => ActionResult;

/** Statuses os-reset_status accepts (Cinder's volume statuses). */
const VOLUME_STATUSES = [
  'available',
  'in-use',
  'error',
  'creating',
  'deleting',
  'error_deleting',
  'maintenance',
  'attaching',
  'detaching',
  'reserved',
  'extending',
  'error_extending',
  'retyping',
  'downloading',
  'uploading',
  'backing-up',
  'restoring-backup',
  'error_restoring',
  'error_managing',
];
const SNAPSHOT_STATUSES = [
  'available',
  'creating',
  'deleting',
  'error',
  'error_deleting',
  'unmanaging',
  'backing-up',
  'restoring',
];

const accepted: ActionResult = { code: 202 };

function statusArg(a: Obj, allowed: readonly string[]): string {
  const s = optStr(a, 'status');
  if (!s || !allowed.includes(s))
    throw new BadRequest(`Invalid input received: invalid status ${String(s)}.`);
  return s;
}

function imageMetadata(svc: VolumeService, r: VolRow): Obj {
  const m = svc.body(r).volume_image_metadata;
  return isObj(m) ? m : {};
}

const VOLUME_ACTIONS: Record<string, Handler> = {
  'os-extend': (svc, _auth, r, a) => {
    const n = optInt(a, 'new_size', 1, 1_000_000);
    if (n === undefined) throw new BadRequest('Invalid input received: new_size is required.');
    svc.extend(r, n);
    return accepted;
  },
  'os-reset_status': (svc, auth, r, a) => {
    requireAdmin(auth);
    const patch: Obj = { status: statusArg(a, VOLUME_STATUSES) };
    const attach = optStr(a, 'attach_status');
    if (attach !== undefined) {
      if (!['attached', 'detached'].includes(attach))
        throw new BadRequest(`Invalid input received: invalid attach_status ${attach}.`);
      patch.attach_status = attach;
    }
    const migration = optStr(a, 'migration_status');
    if (migration !== undefined) patch.migration_status = migration === 'none' ? null : migration;
    svc.patchVolume(r, patch);
    return accepted;
  },
  'os-set_bootable': (svc, _auth, r, a) => {
    svc.setBootable(r, boolArg(a.bootable, 'bootable'));
    return { code: 200 };
  },
  'os-update_readonly_flag': (svc, _auth, r, a) => {
    const ro = boolArg(a.readonly, 'readonly');
    // Cinder keeps it as admin metadata and shows it in the volume's metadata as "True"/"False".
    svc.patchVolume(r, { metadata: { ...(svc.body(r).metadata as Obj), readonly: ro ? 'True' : 'False' } });
    return accepted;
  },
  'os-reserve': (svc, _auth, r) => {
    svc.moveStatus(r, 'reserve', 'available', 'attaching');
    return accepted;
  },
  'os-unreserve': (svc, _auth, r) => {
    if (r.status === 'attaching')
      svc.setStatus(r, svc.attachmentsOfVolume(r.id).length ? 'in-use' : 'available');
    return accepted;
  },
  'os-begin_detaching': (svc, _auth, r) => {
    svc.moveStatus(r, 'begin detaching', 'in-use', 'detaching');
    return accepted;
  },
  'os-roll_detaching': (svc, _auth, r) => {
    if (r.status === 'detaching') svc.setStatus(r, 'in-use');
    return accepted;
  },
  'os-attach': (svc, _auth, r, a) => {
    const server = optStr(a, 'instance_uuid');
    const host = optStr(a, 'host_name');
    if (!server && !host) throw new BadRequest('Invalid request to attach volume to an invalid target.');
    const device = optStr(a, 'mountpoint') ?? '';
    if (!['available', 'attaching'].includes(r.status) && !(r.status === 'in-use' && svc.body(r).multiattach))
      throw new BadRequest(`Invalid volume: Volume ${r.id} status must be available or attaching to attach.`);
    svc.attach(r.id, server ?? '', device, host ?? svc.site);
    return accepted;
  },
  'os-detach': (svc, _auth, r, a) => detachAll(svc, r, optStr(a, 'attachment_id')),
  'os-force_detach': (svc, auth, r, a) => {
    requireAdmin(auth);
    return detachAll(svc, r, optStr(a, 'attachment_id'));
  },
  'os-force_delete': (svc, auth, r) => {
    requireAdmin(auth);
    svc.forceDelete(r);
    return accepted;
  },
  'os-retype': (svc, _auth, r, a) => {
    const t = optStr(a, 'new_type');
    if (!t) throw new BadRequest('Invalid input received: new_type is required.');
    svc.retype(r, t);
    return accepted;
  },
  'os-set_image_metadata': (svc, _auth, r, a) => {
    if (!isObj(a.metadata)) throw new BadRequest('Malformed request body: metadata is required.');
    const m = { ...imageMetadata(svc, r), ...stringValues(a.metadata) };
    svc.patchVolume(r, { volume_image_metadata: m });
    return { code: 200, body: { metadata: m } };
  },
  'os-unset_image_metadata': (svc, _auth, r, a) => {
    const key = optStr(a, 'key');
    const m = imageMetadata(svc, r);
    if (!key || !(key in m))
      throw new NotFound(`Glance metadata for volume ${r.id} with key ${String(key)} could not be found.`);
    delete m[key];
    svc.patchVolume(r, { volume_image_metadata: m });
    return { code: 200 };
  },
  'os-show_image_metadata': (svc, _auth, r) => ({ code: 200, body: { metadata: imageMetadata(svc, r) } }),
  'os-volume_upload_image': (svc, auth, r, a, ctx) => ({
    code: 202,
    body: uploadToImage(svc, ctx.images(), auth, r, a, ctx.mv, ctx.typeView),
  }),
};

function detachAll(svc: VolumeService, r: VolRow, attachmentId: string | undefined): ActionResult {
  const all = svc.attachmentsOfVolume(r.id);
  const chosen = attachmentId ? all.filter((x) => x.id === attachmentId) : all;
  if (attachmentId && !chosen.length)
    throw new NotFound(`Volume attachment ${attachmentId} could not be found.`);
  for (const x of chosen) svc.detach(String(x.id));
  if (!all.length && r.status !== 'available') svc.setStatus(r, 'available');
  return accepted;
}

const SNAPSHOT_ACTIONS: Record<string, Handler> = {
  'os-reset_status': (svc, auth, r, a) => {
    requireAdmin(auth);
    svc.patchSnapshot(r, { status: statusArg(a, SNAPSHOT_STATUSES) });
    return accepted;
  },
  // What a volume driver reports while it copies a snapshot (Cinder: only from creating or deleting).
  'os-update_snapshot_status': (svc, _auth, r, a) => {
    const s = statusArg(a, ['available', 'error', 'error_deleting', 'creating', 'deleting']);
    if (r.status !== 'creating' && r.status !== 'deleting')
      throw new BadRequest(
        `Invalid snapshot: snapshot ${r.id} status must be creating or deleting to update it.`,
      );
    const progress = optStr(a, 'progress');
    svc.patchSnapshot(r, { status: s, ...(progress !== undefined ? { progress } : {}) });
    return accepted;
  },
  'os-force_delete': (svc, auth, r) => {
    requireAdmin(auth);
    svc.deleteSnapshot(r, { force: true });
    return accepted;
  },
};

/** The one action of an action body ({"os-extend": {...}}), 400 for none, several or an unknown one. */
function dispatch(
  table: Record<string, Handler>,
  svc: VolumeService,
  auth: AuthContext,
  r: VolRow,
  body: unknown,
  ctx: ActionContext,
): ActionResult {
  if (!isObj(body) || Object.keys(body).length !== 1) throw new BadRequest('There is no such action.');
  const [action, arg] = Object.entries(body)[0]!;
  const h = Object.hasOwn(table, action) ? table[action] : undefined;
  if (!h) throw new BadRequest(`There is no such action: ${action}`);
  return h(svc, auth, r, isObj(arg) ? arg : {}, ctx);
}

export function volumeAction(
  svc: VolumeService,
  auth: AuthContext,
  r: VolRow,
  body: unknown,
  ctx: ActionContext,
): ActionResult {
  return dispatch(VOLUME_ACTIONS, svc, auth, r, body, ctx);
}
export function snapshotAction(
  svc: VolumeService,
  auth: AuthContext,
  r: VolRow,
  body: unknown,
  ctx: ActionContext,
): ActionResult {
  return dispatch(SNAPSHOT_ACTIONS, svc, auth, r, body, ctx);
}
