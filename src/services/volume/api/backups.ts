/**
 * @module Volume backups (Cinder's backups API): create (full or incremental, from a snapshot, `force`
 * for an in-use volume), list, detail, show, update (3.9), delete, restore, `export_record` and
 * `import_record` (admin), and the `os-reset_status` / `os-force_delete` actions (admin). Backup
 * metadata from 3.43, `os-backup-project-attr:project_id` (3.18) and `user_id` (3.56) for admins. A
 * backup lives on its volume's site, where its bytes are: writes are forwarded there. The rules are
 * domain/backups.ts; these routes gate, forward and render.
 * https://docs.openstack.org/api-ref/block-storage/v3/#backups-backups
 */
import type { FastifyRequest } from 'fastify';
import { requireAdmin } from '../../../core/auth.ts';
import { BadRequest, CloudError } from '../../../core/errors.ts';
import { isObj, optStr, wrapped } from '../../common/input.ts';
import type { Obj } from '../../common/input.ts';
import type { Microversion } from '../../common/microversion.ts';
import { atLeast } from '../../common/microversion.ts';
import { forwardIfRemote, staleMarks } from '../../common/owner.ts';
import type { VolumeBackups } from '../domain/backups.ts';
import { BACKUP_RESET_STATUSES, VolumeBackups as Backups } from '../domain/backups.ts';
import type { BackupRow } from '../store/backups.ts';
import type { ListingRoutes } from './scope.ts';

/** Cinder's backup detail fields (api/views/backups.py); later ones are added by microversion below. */
const DETAIL_FIELDS = [
  'id',
  'status',
  'size',
  'object_count',
  'availability_zone',
  'container',
  'created_at',
  'updated_at',
  'name',
  'description',
  'fail_reason',
  'volume_id',
  'is_incremental',
  'snapshot_id',
  'data_timestamp',
] as const;

export function registerBackupRoutes(
  { app, ctx, svc, base, enter, listOf, listedProject }: ListingRoutes,
  backups: VolumeBackups,
): void {
  const P = `${base}/backups`;
  const idOf = (req: FastifyRequest) => (req.params as { id: string }).id;
  const links = (r: BackupRow) => [
    { rel: 'self', href: `${ctx.publicUrl()}/volume/v3/${r.project_id}/backups/${r.id}` },
    { rel: 'bookmark', href: `${ctx.publicUrl()}/volume/${r.project_id}/backups/${r.id}` },
  ];
  const summary = (r: BackupRow): Obj => ({ id: r.id, name: backups.body(r).name ?? null, links: links(r) });
  const detail = (r: BackupRow, mv: Microversion, admin: boolean): Obj => {
    const b = backups.body(r);
    const out: Obj = {};
    for (const k of DETAIL_FIELDS) out[k] = b[k] ?? null;
    out.status = r.status;
    out.links = links(r);
    out.has_dependent_backups = backups.hasDependents(r.id);
    if (atLeast(mv, '3.43')) out.metadata = isObj(b.metadata) ? b.metadata : {};
    // Cinder's backup_project_attribute policy: admins only.
    if (admin && atLeast(mv, '3.18')) out['os-backup-project-attr:project_id'] = r.project_id;
    if (admin && atLeast(mv, '3.56')) out.user_id = b.user_id ?? null;
    return { ...out, ...staleMarks(ctx, r.owner) };
  };

  const list = (req: FastifyRequest, reply: Parameters<typeof enter>[1], full: boolean) => {
    const { auth, mv, project } = enter(req, reply);
    const rows = backups.list(listedProject(auth, req));
    const details = rows.map((r) => detail(r, mv, auth.isAdmin));
    const items = full ? details : rows.map(summary);
    return listOf(req, 'backups', items, details, `/volume/v3/${project}/backups${full ? '/detail' : ''}`);
  };
  app.get(P, async (req, reply) => list(req, reply, false));
  app.get(`${P}/detail`, async (req, reply) => list(req, reply, true));
  app.get(`${P}/:id`, async (req, reply) => {
    const { auth, mv } = enter(req, reply);
    return { backup: detail(backups.visible(auth, idOf(req)), mv, auth.isAdmin) };
  });
  app.post(P, async (req, reply) => {
    const { auth, mv } = enter(req, reply, true);
    const o = wrapped(req.body, 'backup');
    const volumeId = optStr(o, 'volume_id');
    if (!volumeId) throw new BadRequest('Invalid input received: volume_id is required.');
    const vol = svc.visibleVolume(auth, volumeId);
    const fwd = forwardIfRemote(ctx, vol.owner, req, reply);
    if (fwd) return fwd;
    const b = backups.create(auth, vol, o, atLeast(mv, '3.43'));
    reply.code(202);
    const r = backups.get(String(b.id));
    return { backup: r ? summary(r) : { id: b.id, name: b.name ?? null, links: [] } };
  });
  app.put(`${P}/:id`, async (req, reply) => {
    const { auth, mv } = enter(req, reply, true);
    if (!atLeast(mv, '3.9'))
      throw new CloudError(404, 'The resource could not be found: updating a backup needs microversion 3.9.');
    const r = backups.visible(auth, idOf(req));
    const fwd = forwardIfRemote(ctx, r.owner, req, reply);
    if (fwd) return fwd;
    backups.update(r, wrapped(req.body, 'backup'), atLeast(mv, '3.43'));
    return { backup: summary(backups.get(r.id)!) };
  });
  app.delete(`${P}/:id`, async (req, reply) => {
    const { auth } = enter(req, reply, true);
    const r = backups.visible(auth, idOf(req));
    const fwd = forwardIfRemote(ctx, r.owner, req, reply);
    if (fwd) return fwd;
    backups.remove(r);
    return reply.code(202).send();
  });
  app.post(`${P}/:id/restore`, async (req, reply) => {
    const { auth, project } = enter(req, reply, true);
    const r = backups.visible(auth, idOf(req));
    const fwd = forwardIfRemote(ctx, r.owner, req, reply);
    if (fwd) return fwd;
    const body = isObj(req.body) ? req.body : {};
    const o = isObj(body.restore) ? body.restore : {};
    const restore = await backups.restore(auth, project, r, o);
    reply.code(202);
    return { restore };
  });
  app.post(`${P}/:id/action`, async (req, reply) => {
    const { auth } = enter(req, reply, true);
    const r = backups.visible(auth, idOf(req));
    const fwd = forwardIfRemote(ctx, r.owner, req, reply);
    if (fwd) return fwd;
    const body = isObj(req.body) ? req.body : {};
    const [action, arg] = Object.entries(body)[0] ?? [];
    if (Object.keys(body).length !== 1 || !['os-reset_status', 'os-force_delete'].includes(String(action)))
      throw new BadRequest(`There is no such action: ${String(action)}`);
    requireAdmin(auth);
    if (action === 'os-force_delete') backups.remove(r, true);
    else {
      const status = optStr(isObj(arg) ? arg : {}, 'status');
      if (!status || !(BACKUP_RESET_STATUSES as readonly string[]).includes(status))
        throw new BadRequest(`Invalid input received: invalid status ${String(status)}.`);
      backups.patch(r, { status });
    }
    return reply.code(202).send();
  });
  app.get(`${P}/:id/export_record`, async (req, reply) => {
    const { auth } = enter(req, reply);
    requireAdmin(auth);
    const r = backups.visible(auth, idOf(req));
    const fwd = forwardIfRemote(ctx, r.owner, req, reply);
    if (fwd) return fwd;
    return { 'backup-record': backups.exportRecord(r) };
  });
  app.post(`${P}/import_record`, async (req, reply) => {
    const { auth, project } = enter(req, reply, true);
    requireAdmin(auth);
    const o = wrapped(req.body, 'backup-record');
    const service = optStr(o, 'backup_service');
    const url = optStr(o, 'backup_url', { max: 1024 * 1024 });
    if (!service || !url)
      throw new BadRequest('Invalid input received: backup_service and backup_url are required.');
    const rec = Backups.decodeRecord(url);
    // The record names the site whose store holds the bytes: the import runs there.
    const site = typeof rec.site === 'string' ? rec.site : ctx.name;
    if (site !== ctx.name) {
      if (!ctx.registry.get(site)) throw new BadRequest(`Invalid backup: site ${site} is not a member.`);
      return ctx.forwardTo(site, req, reply);
    }
    const b = backups.importRecord(auth, project, service, rec);
    reply.code(201);
    return { backup: summary(backups.get(String(b.id))!) };
  });
}
