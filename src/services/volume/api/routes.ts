/**
 * @module Block Storage API v3 routes (Cinder), under /volume/v3/{project_id}. Microversions come in
 * the OpenStack-API-Version header ("volume 3.x", 3.0 to 3.60) and go back in it. A volume create
 * naming another site's availability zone is forwarded there; writes to another site's rows go to it.
 * https://docs.openstack.org/api-ref/block-storage/v3/
 */
import type { VolumeRoutes } from './scope.ts';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { AuthContext } from '../../../core/auth.ts';
import { requireAdmin, requireMember, requireReader } from '../../../core/auth.ts';
import { BadRequest, CloudError, NotFound } from '../../../core/errors.ts';
import type { ServiceContext } from '../../common/module.ts';
import { isObj, optStr, wrapped } from '../../common/input.ts';
import { MicroversionRange, atLeast } from '../../common/microversion.ts';
import { paginate, sortTerms } from '../../common/paging.ts';
import type { Obj } from '../../common/input.ts';
import { forwardToHome, unknownProject } from '../../common/home.ts';
import { forwardIfRemote } from '../../common/owner.ts';
import { volumeQuotaKind } from '../store/schema.ts';
import { snapshotAction, volumeAction } from './actions.ts';
import { registerBackupRoutes } from './backups.ts';
import { registerGroupRoutes } from './groups.ts';
import type { ActionContext } from './actions.ts';
import { ImageApi } from '../../common/internal.ts';
import type { Microversion } from '../../common/microversion.ts';
import { registerEncryptionRoutes } from './encryption.ts';
import { registerGroupTypeRoutes } from './group-types.ts';
import { registerMessageRoutes } from './messages.ts';
import { registerQuotaClassRoutes } from './quota-classes.ts';
import { registerMetadataRoutes } from './metadata.ts';
import { registerQosRoutes } from './qos.ts';
import { registerServiceRoutes } from './service-routes.ts';
import { registerTransferRoutes } from './transfers.ts';
import { registerTypeExtras } from './type-extras.ts';
import { snapshotView, typeView, volumeView } from './views.ts';
import type { VolumeBackups } from '../domain/backups.ts';
import type { VolRow, VolumeService } from '../domain/volumes.ts';
import { staleMarks } from '../../common/owner.ts';

const MIN_MV_TEXT = '3.0';
const MAX_MV_TEXT = '3.60';
/** Cinder's range; a version that is not "3.x" serves 3.0, as this API always has. */
const MICROVERSIONS = new MicroversionRange({
  service: 'volume',
  min: MIN_MV_TEXT,
  max: MAX_MV_TEXT,
  invalid: 'ignore',
});

/** What a list can be sorted by (Cinder's sortable volume and snapshot columns). */
const SORT_KEYS = new Set([
  'id',
  'name',
  'description',
  'status',
  'size',
  'created_at',
  'updated_at',
  'availability_zone',
  'bootable',
  'volume_type',
  'volume_id',
  'user_id',
  'project_id',
]);

export function registerVolumeRoutes(
  app: FastifyInstance,
  ctx: ServiceContext,
  svc: VolumeService,
  backups: VolumeBackups,
): void {
  /** A replica whose owner is unreachable is shown as last replicated, marked stale (owner.ts). */
  const stale = (o: Obj, r: { owner: string }): Obj => ({ ...o, ...staleMarks(ctx, r.owner) });
  const version = () => ({
    id: 'v3.0',
    status: 'CURRENT',
    version: MAX_MV_TEXT,
    min_version: MIN_MV_TEXT,
    updated: '2023-01-01T00:00:00Z',
    links: [{ rel: 'self', href: `${ctx.publicUrl()}/volume/v3/` }],
    'media-types': [{ base: 'application/json', type: 'application/vnd.openstack.volume+json;version=3' }],
  });
  app.get('/volume', async (_req, reply) => {
    reply.code(300);
    return { versions: [version()] };
  });
  app.get('/volume/v3', async () => ({ versions: [version()] }));

  const P = '/volume/v3/:project';
  const MAX_PAGE = 1000;
  /** sort=key:dir,... or sort_key/sort_dir; display_name is the name; an unknown key is a 400. */
  const sortOf = (q: Record<string, string>): string[][] => {
    const spec = sortTerms(q) ?? [['created_at', 'desc']];
    return spec.map(([k, d]) => {
      const key = k === 'display_name' ? 'name' : String(k);
      if (!SORT_KEYS.has(key)) throw new BadRequest(`Invalid input received: Invalid sort key ${key}.`);
      const dir = (d ?? 'desc').toLowerCase();
      if (dir !== 'asc' && dir !== 'desc')
        throw new BadRequest(`Invalid input received: Invalid sort dir ${dir}.`);
      return [key, dir];
    });
  };
  /** Authenticates, checks the URL's project against the token, and reads the microversion. */
  const enter = (req: FastifyRequest, reply: FastifyReply, write = false) => {
    const auth = ctx.authenticate(req);
    const mv = MICROVERSIONS.negotiate(req, reply);
    const { project } = req.params as { project: string };
    if (write) requireMember(auth);
    else requireReader(auth);
    // The URL's project is the token's, admin or not (an admin reaches other projects through
    // all_tenants and project_id filters, as in Cinder): /volume/v3/x/volumes must not succeed.
    if (auth.projectId !== project)
      throw new CloudError(403, `Policy doesn't allow access to project ${project}.`);
    return { auth, mv, project };
  };
  app.get(P, async (req, reply) => {
    enter(req, reply);
    return { versions: [version()] };
  });

  const scope: VolumeRoutes = { app, ctx, svc, base: P, enter };
  registerServiceRoutes(scope);
  registerTransferRoutes(scope);
  registerQosRoutes(scope);
  registerGroupTypeRoutes(scope);
  registerQuotaClassRoutes(scope);
  registerMessageRoutes(scope);

  // ---- paging and filters (Cinder: sort=key:dir, marker/limit, <collection>_links) ----
  const listOf = (
    req: FastifyRequest,
    collection: string,
    items: Obj[],
    filterable: Obj[],
    path: string,
  ): Obj => {
    const q = Object.fromEntries(
      Object.entries(isObj(req.query) ? req.query : {}).map(([k, v]) => [
        k,
        Array.isArray(v) ? String(v[v.length - 1]) : String(v),
      ]),
    );
    const skip = new Set([
      'limit',
      'marker',
      'sort',
      'sort_key',
      'sort_dir',
      'all_tenants',
      'with_count',
      'offset',
      'project_id',
    ]);
    let idx = filterable.map((_, i) => i);
    for (const [k, v] of Object.entries(q)) {
      if (skip.has(k)) continue;
      if (k === 'metadata') {
        let want: Obj = {};
        try {
          want = JSON.parse(v.replace(/'/g, '"')) as Obj;
        } catch {
          throw new BadRequest(`Invalid filter metadata=${v}.`);
        }
        idx = idx.filter((i) =>
          Object.entries(want).every(([mk, mv]) => (filterable[i]!.metadata as Obj)?.[mk] === mv),
        );
        continue;
      }
      const key = k === 'display_name' ? 'name' : k.endsWith('~') ? k.slice(0, -1) : k;
      const fuzzy = k.endsWith('~');
      idx = idx.filter((i) => {
        const x = filterable[i]![key];
        if (x === undefined) return true;
        return fuzzy ? String(x).includes(v) : String(x) === v;
      });
    }
    const sortSpec = sortOf(q);
    idx.sort((a, b) => {
      for (const [k, d] of [...sortSpec, ['id', 'desc']]) {
        const x = String(filterable[a]![k!] ?? '');
        const y = String(filterable[b]![k!] ?? '');
        if (x !== y) return (x < y ? -1 : 1) * (d === 'asc' ? 1 : -1);
      }
      return 0;
    });
    // Cinder caps a page at osapi_max_limit (1000) and links to the next one after every full page.
    const pg = paginate(idx, q, (j) => String(filterable[j]!.id), {
      maxLimit: MAX_PAGE,
      offset: true,
      badNumber: (field) =>
        new BadRequest(`"${field}" must be an integer from 0 to ${Number.MAX_SAFE_INTEGER}.`),
      next: 'after-full-page',
    });
    const body: Obj = { [collection]: pg.items.map((i) => items[i]) };
    if (pg.nextMarker !== undefined) {
      const params = new URLSearchParams({ ...q, marker: pg.nextMarker });
      body[`${collection}_links`] = [{ rel: 'next', href: `${ctx.publicUrl()}${path}?${params.toString()}` }];
    }
    if (q.with_count === 'true') body.count = idx.length;
    return body;
  };

  /** The project a list shows: the caller's or an admin's project_id; undefined for all_tenants. */
  const listedProject = (auth: AuthContext, req: FastifyRequest): string | undefined => {
    const q = isObj(req.query) ? req.query : {};
    const named = auth.isAdmin && typeof q.project_id === 'string' ? q.project_id : undefined;
    const all = auth.isAdmin && !named && ['1', 'true', 'True'].includes(String(q.all_tenants ?? ''));
    return all ? undefined : (named ?? auth.projectId ?? '');
  };
  const visibleRows = (auth: AuthContext, what: 'volumes' | 'snapshots', req: FastifyRequest): VolRow[] =>
    svc.repo.list(what, listedProject(auth, req));
  const groups = registerGroupRoutes({ ...scope, listOf, listedProject });
  registerBackupRoutes({ ...scope, listOf, listedProject }, backups);

  // ---- volumes ----
  const summary = (r: VolRow, project: string) => ({
    id: r.id,
    name: (svc.body(r).name as string | null) ?? null,
    links: [{ rel: 'self', href: `${ctx.publicUrl()}/volume/v3/${project}/volumes/${r.id}` }],
  });
  app.get(`${P}/volumes`, async (req, reply) => {
    const { auth, mv, project } = enter(req, reply);
    // "volumes/" is a show with an empty id (the router folds the slash away): Cinder answers 404.
    if (req.url.split('?')[0]!.endsWith('/')) throw new NotFound('Volume  could not be found.');
    const rows = visibleRows(auth, 'volumes', req);
    const full = rows.map((r) => stale(volumeView(svc, ctx.publicUrl(), r, mv, true, auth.isAdmin), r));
    return listOf(
      req,
      'volumes',
      rows.map((r) => summary(r, project)),
      full,
      `/volume/v3/${project}/volumes`,
    );
  });
  app.get(`${P}/volumes/detail`, async (req, reply) => {
    const { auth, mv, project } = enter(req, reply);
    const full = visibleRows(auth, 'volumes', req).map((r) =>
      stale(volumeView(svc, ctx.publicUrl(), r, mv, true, auth.isAdmin), r),
    );
    return listOf(req, 'volumes', full, full, `/volume/v3/${project}/volumes/detail`);
  });
  app.get(`${P}/volumes/:id`, async (req, reply) => {
    const { auth, mv } = enter(req, reply);
    const { id } = req.params as { id: string };
    const r = svc.visibleVolume(auth, id);
    return { volume: stale(volumeView(svc, ctx.publicUrl(), r, mv, true, auth.isAdmin), r) };
  });
  app.post(`${P}/volumes`, async (req, reply) => {
    const { auth, mv, project } = enter(req, reply, true);
    const o = wrapped(req.body, 'volume');
    // A volume in a group lives on the group's site (3.13+).
    const group = atLeast(mv, '3.13') ? groups.joining(auth, o) : undefined;
    const az = optStr(o, 'availability_zone') ?? group?.owner;
    if (group && group.owner !== az)
      throw new BadRequest(
        `Invalid input received: group ${group.id} is in availability zone ${group.owner}.`,
      );
    if (az && az !== ctx.name) {
      if (!ctx.registry.get(az)) throw new BadRequest(`Availability zone '${az}' is invalid.`);
      return ctx.forwardTo(az, req, reply);
    }
    const b = await svc.createVolume(auth, project, o, { groupId: group?.id });
    reply.code(202);
    return { volume: volumeView(svc, ctx.publicUrl(), svc.volume(String(b.id))!, mv, false, auth.isAdmin) };
  });
  const ownedVolume = (auth: AuthContext, id: string) => svc.visibleVolume(auth, id);
  app.put(`${P}/volumes/:id`, async (req, reply) => {
    const { auth, mv } = enter(req, reply, true);
    const r = ownedVolume(auth, (req.params as { id: string }).id);
    const fwd = forwardIfRemote(ctx, r.owner, req, reply);
    if (fwd) return fwd;
    svc.updateVolume(r, wrapped(req.body, 'volume'));
    return { volume: volumeView(svc, ctx.publicUrl(), svc.volume(r.id)!, mv, false, auth.isAdmin) };
  });
  app.delete(`${P}/volumes/:id`, async (req, reply) => {
    const { auth } = enter(req, reply, true);
    const r = ownedVolume(auth, (req.params as { id: string }).id);
    const fwd = forwardIfRemote(ctx, r.owner, req, reply);
    if (fwd) return fwd;
    const q = isObj(req.query) ? req.query : {};
    svc.deleteVolume(r, String(q.cascade ?? '').toLowerCase() === 'true');
    return reply.code(202).send();
  });
  const actionContext = (mv: Microversion, admin: boolean): ActionContext => ({
    mv,
    images: () => ctx.use(ImageApi),
    typeView: (t) => typeView(t, 'show', admin),
  });
  app.post(`${P}/volumes/:id/action`, async (req, reply) => {
    const { auth, mv } = enter(req, reply, true);
    const r = ownedVolume(auth, (req.params as { id: string }).id);
    const fwd = forwardIfRemote(ctx, r.owner, req, reply);
    if (fwd) return fwd;
    const res = volumeAction(svc, auth, r, req.body, actionContext(mv, auth.isAdmin));
    return reply.code(res.code).send(res.body);
  });
  registerMetadataRoutes(app, ctx, {
    base: `${P}/volumes`,
    what: 'Volume',
    enter,
    find: (auth, id) => svc.visibleVolume(auth, id),
    metadataOf: (r) => ({ ...(svc.body(r).metadata as Obj) }),
    setMetadata: (r, metadata) => void svc.updateVolume(r, { metadata }),
  });
  registerMetadataRoutes(app, ctx, {
    base: `${P}/snapshots`,
    what: 'Snapshot',
    enter,
    find: (auth, id) => svc.visibleSnapshot(auth, id),
    metadataOf: (r) => ({ ...(svc.body(r).metadata as Obj) }),
    setMetadata: (r, metadata) => void svc.updateSnapshot(r, { metadata }),
  });

  // ---- types ----
  app.get(`${P}/types`, async (req, reply) => {
    const { auth } = enter(req, reply);
    const types = svc.types().filter((t) => svc.mayUseType(auth, t));
    return { volume_types: types.map((t) => typeView(t, 'show', auth.isAdmin)) };
  });
  app.get(`${P}/types/default`, async (req, reply) => {
    const { auth } = enter(req, reply);
    return { volume_type: typeView(svc.defaultType(), 'show', auth.isAdmin) };
  });
  app.get(`${P}/types/:id`, async (req, reply) => {
    const { auth } = enter(req, reply);
    const { id } = req.params as { id: string };
    const t = svc.type(id);
    if (!t || !svc.mayUseType(auth, t)) throw new NotFound(`Volume type ${id} could not be found.`);
    return { volume_type: typeView(t, 'show', auth.isAdmin) };
  });
  app.post(`${P}/types`, async (req, reply) => {
    const { auth } = enter(req, reply, true);
    requireAdmin(auth);
    return { volume_type: typeView(svc.createType(wrapped(req.body, 'volume_type')), 'create', true) };
  });
  const typeWrite = (req: FastifyRequest, reply: FastifyReply) => {
    const { auth } = enter(req, reply, true);
    requireAdmin(auth);
    const { id } = req.params as { id: string };
    const t = svc.type(id);
    if (!t) throw new NotFound(`Volume type ${id} could not be found.`);
    return { id: String(t.id), owner: svc.typeOwner(String(t.id)), t };
  };
  app.put(`${P}/types/:id`, async (req, reply) => {
    const { id, owner } = typeWrite(req, reply);
    const fwd = forwardIfRemote(ctx, owner, req, reply);
    if (fwd) return fwd;
    return { volume_type: typeView(svc.updateType(id, wrapped(req.body, 'volume_type')), 'update', true) };
  });
  app.delete(`${P}/types/:id`, async (req, reply) => {
    const { id, owner } = typeWrite(req, reply);
    const fwd = forwardIfRemote(ctx, owner, req, reply);
    if (fwd) return fwd;
    svc.deleteType(id);
    return reply.code(202).send();
  });
  registerTypeExtras(app, ctx, svc, `${P}/types`, typeWrite);
  registerEncryptionRoutes(app, ctx, svc, `${P}/types`, typeWrite);

  // ---- snapshots ----
  const snapshotList = (req: FastifyRequest, reply: FastifyReply, detail: boolean) => {
    const { auth, mv, project } = enter(req, reply);
    const rows = visibleRows(auth, 'snapshots', req);
    const full = rows.map((r) => stale(snapshotView(svc, r, mv, true), r));
    const items = detail ? full : rows.map((r) => stale(snapshotView(svc, r, mv, false), r));
    const path = `/volume/v3/${project}/snapshots${detail ? '/detail' : ''}`;
    return listOf(req, 'snapshots', items, full, path);
  };
  app.get(`${P}/snapshots`, async (req, reply) => snapshotList(req, reply, false));
  app.get(`${P}/snapshots/detail`, async (req, reply) => snapshotList(req, reply, true));
  app.get(`${P}/snapshots/:id`, async (req, reply) => {
    const { auth, mv } = enter(req, reply);
    return {
      snapshot: ((r) => stale(snapshotView(svc, r, mv, true), r))(
        svc.visibleSnapshot(auth, (req.params as { id: string }).id),
      ),
    };
  });
  app.post(`${P}/snapshots`, async (req, reply) => {
    const { auth, mv } = enter(req, reply, true);
    const o = wrapped(req.body, 'snapshot');
    // A null volume_id names no volume: 404, as in Cinder; a missing one is a bad request.
    if (o.volume_id === null) throw new NotFound('Volume None could not be found.');
    const volId = optStr(o, 'volume_id');
    if (!volId) throw new BadRequest('Invalid input received: volume_id is required.');
    const vol = svc.visibleVolume(auth, volId);
    const fwd = forwardIfRemote(ctx, vol.owner, req, reply);
    if (fwd) return fwd;
    const b = await svc.createSnapshot(auth, vol, o);
    reply.code(202);
    return { snapshot: snapshotView(svc, svc.snapshot(String(b.id))!, mv, false) };
  });
  app.put(`${P}/snapshots/:id`, async (req, reply) => {
    const { auth, mv } = enter(req, reply, true);
    const r = svc.visibleSnapshot(auth, (req.params as { id: string }).id);
    const fwd = forwardIfRemote(ctx, r.owner, req, reply);
    if (fwd) return fwd;
    svc.updateSnapshot(r, wrapped(req.body, 'snapshot'));
    return { snapshot: snapshotView(svc, svc.snapshot(r.id)!, mv, false) };
  });
  app.post(`${P}/snapshots/:id/action`, async (req, reply) => {
    const { auth, mv } = enter(req, reply, true);
    const r = svc.visibleSnapshot(auth, (req.params as { id: string }).id);
    const fwd = forwardIfRemote(ctx, r.owner, req, reply);
    if (fwd) return fwd;
    const res = snapshotAction(svc, auth, r, req.body, actionContext(mv, auth.isAdmin));
    return reply.code(res.code).send(res.body);
  });
  app.delete(`${P}/snapshots/:id`, async (req, reply) => {
    const { auth } = enter(req, reply, true);
    const r = svc.visibleSnapshot(auth, (req.params as { id: string }).id);
    const fwd = forwardIfRemote(ctx, r.owner, req, reply);
    if (fwd) return fwd;
    svc.deleteSnapshot(r);
    return reply.code(202).send();
  });

  // ---- quotas (os-quota-sets) ----
  const quotaTarget = (auth: AuthContext, target: string) => {
    if (!auth.isAdmin && auth.projectId !== target)
      throw new CloudError(403, `Policy doesn't allow access to quotas of project ${target}.`);
  };
  app.get(`${P}/os-quota-sets/:target/defaults`, async (req, reply) => {
    const { auth } = enter(req, reply);
    const { target } = req.params as { target: string };
    quotaTarget(auth, target);
    return { quota_set: { id: target, ...svc.classQuotas('default') } };
  });
  app.get(`${P}/os-quota-sets/:target`, async (req, reply) => {
    const { auth } = enter(req, reply);
    const { target } = req.params as { target: string };
    quotaTarget(auth, target);
    const q = svc.quotas(target);
    const usage = isObj(req.query) && ['true', 'True', '1'].includes(String(req.query.usage ?? ''));
    if (!usage) return { quota_set: { id: target, ...q } };
    const u = svc.usage(target);
    return {
      quota_set: {
        id: target,
        ...Object.fromEntries(
          Object.entries(q).map(([k, limit]) => [k, { limit, in_use: u[k] ?? 0, reserved: 0, allocated: 0 }]),
        ),
      },
    };
  });
  /** The site holding a project's quota row, if one was written: quota writes go there. */
  const quotaOwner = (target: string) => svc.repo.quotaOwner(target);
  app.put(`${P}/os-quota-sets/:target`, async (req, reply) => {
    const { auth } = enter(req, reply, true);
    requireAdmin(auth);
    const { target } = req.params as { target: string };
    const owner = quotaOwner(target);
    const fwd = forwardIfRemote(ctx, owner, req, reply);
    if (fwd) return fwd;
    const home = owner
      ? undefined
      : forwardToHome(ctx, volumeQuotaKind, { id: target }, req, reply, unknownProject(target));
    if (home) return home;
    svc.setQuotas(target, svc.quotaChanges(wrapped(req.body, 'quota_set')));
    return { quota_set: svc.quotas(target) };
  });
  app.delete(`${P}/os-quota-sets/:target`, async (req, reply) => {
    const { auth } = enter(req, reply, true);
    requireAdmin(auth);
    const { target } = req.params as { target: string };
    const owner = quotaOwner(target);
    const fwd = forwardIfRemote(ctx, owner, req, reply);
    if (fwd) return fwd;
    svc.resetQuotas(target);
    return reply.code(200).send();
  });

  app.get(`${P}/os-availability-zone`, async (req, reply) => {
    enter(req, reply);
    return {
      availabilityZoneInfo: ctx.registry.list().map((s) => ({
        zoneName: s.id,
        zoneState: { available: s.id === ctx.name || ctx.replicator.isUp(s.id) },
      })),
    };
  });
  app.get(`${P}/limits`, async (req, reply) => {
    const { project } = enter(req, reply);
    const q = svc.quotas(project);
    const u = svc.usage(project);
    return {
      limits: {
        rate: [],
        absolute: {
          maxTotalVolumes: q.volumes,
          maxTotalSnapshots: q.snapshots,
          maxTotalVolumeGigabytes: q.gigabytes,
          maxTotalBackups: q.backups,
          maxTotalBackupGigabytes: q.backup_gigabytes,
          totalVolumesUsed: u.volumes,
          totalSnapshotsUsed: u.snapshots,
          totalGigabytesUsed: u.gigabytes,
          totalBackupsUsed: 0,
          totalBackupGigabytesUsed: 0,
        },
      },
    };
  });
}
