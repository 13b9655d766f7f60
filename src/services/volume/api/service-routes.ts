/**
 * @module What Cinder tells clients about itself, mapped onto sites: each site runs one
 * `cinder-scheduler` (host = the site) and one `cinder-volume` with one pool (host = site@driver,
 * pool = site@driver#driver). Serves `extensions`, `volumes/summary`, `os-services`, `os-hosts`,
 * `scheduler-stats/get_pools` and `capabilities/{host}`. Clients discover zones and backends through these before they
 * create anything (Tempest, Horizon, the SDK's volume listing).
 */
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { VolumeRoutes } from './scope.ts';
import { requireAdmin } from '../../../core/auth.ts';
import { BadRequest, NotFound } from '../../../core/errors.ts';
import { isObj, novaTime } from '../../common/input.ts';
import type { Obj } from '../../common/input.ts';
import { atLeast } from '../../common/microversion.ts';
import { backendCapabilities } from '../domain/scheduler.ts';

/** The extensions Atoll's Block Storage API implements, under Cinder's names and aliases. */
const EXTENSIONS: readonly (readonly [name: string, alias: string, description: string])[] = [
  ['AdminActions', 'os-admin-actions', 'Enable admin actions.'],
  ['AvailabilityZones', 'os-availability-zone', 'Describe Availability Zones.'],
  ['Capabilities', 'capabilities', 'Capabilities support.'],
  ['ExtendedSnapshotAttributes', 'os-extended-snapshot-attributes', 'Extended SnapshotAttributes support.'],
  ['Hosts', 'os-hosts', 'Admin-only host administration.'],
  ['QuotaClasses', 'os-quota-class-sets', 'Quota classes management support.'],
  ['Quotas', 'os-quota-sets', 'Quota management support.'],
  ['SchedulerStats', 'scheduler-stats', 'Scheduler stats support.'],
  ['Services', 'os-services', 'Services support.'],
  ['TypesExtraSpecs', 'os-types-extra-specs', 'Type extra specs support.'],
  ['TypesManage', 'os-types-manage', 'Types manage support.'],
  ['VolumeActions', 'os-volume-actions', 'Enable volume actions.'],
  ['VolumeHostAttribute', 'os-vol-host-attr', 'Expose host as an attribute of a volume.'],
  ['VolumeImageMetadata', 'os-vol-image-meta', 'Show image metadata associated with the volume.'],
  [
    'VolumeMigStatusAttribute',
    'os-vol-mig-status-attr',
    'Expose migration_status as an attribute of a volume.',
  ],
  [
    'VolumeTenantAttribute',
    'os-vol-tenant-attr',
    'Expose the internal project_id as an attribute of a volume.',
  ],
  ['VolumeTypeAccess', 'os-volume-type-access', 'Volume type access support.'],
];
const EXTENSIONS_UPDATED = '2023-01-01T00:00:00+00:00';

interface ServiceRow {
  binary: 'cinder-scheduler' | 'cinder-volume';
  host: string;
  zone: string;
  up: boolean;
}

export function registerServiceRoutes({ app, ctx, svc, base, enter }: VolumeRoutes): void {
  const admin = (req: FastifyRequest, reply: FastifyReply) => {
    const e = enter(req, reply);
    requireAdmin(e.auth);
    return e;
  };
  const sites = () =>
    ctx.registry.list().map((s) => ({ id: s.id, up: s.id === ctx.name || ctx.replicator.isUp(s.id) }));
  const services = (): ServiceRow[] =>
    sites().flatMap((s) => [
      { binary: 'cinder-scheduler' as const, host: s.id, zone: s.id, up: s.up },
      { binary: 'cinder-volume' as const, host: `${s.id}@${svc.driver.name}`, zone: s.id, up: s.up },
    ]);
  /** Cinder matches a host filter against the host and against a backend's "host@backend". */
  const onHost = (host: string, h: string) => host === h || host.startsWith(`${h}@`);
  const now = () => novaTime(ctx.clock.now());

  app.get(`${base}/extensions`, async (req, reply) => {
    enter(req, reply);
    return {
      extensions: EXTENSIONS.map(([name, alias, description]) => ({
        name,
        alias,
        description,
        updated: EXTENSIONS_UPDATED,
        links: [],
      })),
    };
  });

  app.get(`${base}/volumes/summary`, async (req, reply) => {
    const { auth, mv, project } = enter(req, reply);
    const q = isObj(req.query) ? req.query : {};
    const all = auth.isAdmin && ['1', 'true', 'True'].includes(String(q.all_tenants ?? ''));
    const rows = svc.repo.list('volumes', all ? undefined : project);
    const summary: Obj = { total_size: rows.reduce((n, r) => n + r.size, 0), total_count: rows.length };
    if (atLeast(mv, '3.36')) {
      // Cinder 3.36: every metadata key with the values it takes across the volumes.
      const md: Record<string, string[]> = {};
      for (const r of rows)
        for (const [k, v] of Object.entries((JSON.parse(r.body) as Obj).metadata ?? {}))
          if (!(md[k] ??= []).includes(String(v))) md[k].push(String(v));
      summary.metadata = md;
    }
    return { 'volume-summary': summary };
  });

  app.get(`${base}/os-services`, async (req, reply) => {
    admin(req, reply);
    const q = isObj(req.query) ? req.query : {};
    const list = services().filter(
      (s) =>
        (typeof q.host !== 'string' || onHost(s.host, q.host)) &&
        (typeof q.binary !== 'string' || s.binary === q.binary),
    );
    return {
      services: list.map((s) => ({
        binary: s.binary,
        host: s.host,
        zone: s.zone,
        status: 'enabled',
        state: s.up ? 'up' : 'down',
        updated_at: now(),
        disabled_reason: null,
        ...(s.binary === 'cinder-volume'
          ? { frozen: false, replication_status: 'disabled', active_backend_id: null }
          : {}),
      })),
    };
  });

  // Enabling, disabling, freezing a site's volume service is not something a site can do to itself
  // here: an unknown host is Cinder's 404 (400 for freeze/thaw), a known one a 400 saying so.
  app.put(`${base}/os-services/:action`, async (req, reply) => {
    admin(req, reply);
    const { action } = req.params as { action: string };
    const o = isObj(req.body) ? req.body : {};
    const host = typeof o.host === 'string' ? o.host : '';
    const known = services().some(
      (s) => onHost(s.host, host) && (typeof o.binary !== 'string' || s.binary === o.binary),
    );
    switch (action) {
      case 'enable':
      case 'disable':
        if (!known) throw new NotFound(`Service ${String(o.binary)} on host ${host} could not be found.`);
        break;
      case 'disable-log-reason':
        if (typeof o.disabled_reason !== 'string' || !o.disabled_reason.trim())
          throw new BadRequest('Invalid input received: disabled_reason is required.');
        if (!known) throw new NotFound(`Service ${String(o.binary)} on host ${host} could not be found.`);
        break;
      case 'freeze':
      case 'thaw':
        if (!known) throw new BadRequest(`Invalid input received: host ${host} is not a volume host.`);
        break;
      default:
        throw new NotFound(`Unknown action ${action}.`);
    }
    throw new BadRequest(
      `Atoll does not ${action} a site's volume service through the API (docs/volume.md).`,
    );
  });

  app.get(`${base}/os-hosts`, async (req, reply) => {
    admin(req, reply);
    return {
      hosts: services().map((s) => ({
        service: s.binary,
        host_name: s.host,
        zone: s.zone,
        'service-status': s.up ? 'available' : 'unavailable',
        'service-state': 'enabled',
        'last-update': now(),
      })),
    };
  });
  app.get(`${base}/os-hosts/:host`, async (req, reply) => {
    admin(req, reply);
    const { host } = req.params as { host: string };
    const site = services().find((s) => s.binary === 'cinder-volume' && onHost(s.host, host));
    if (!site) throw new NotFound(`Host ${host} could not be found.`);
    const rows = (what: 'volumes' | 'snapshots') => svc.repo.totalsPerProject(what, site.zone);
    const per = new Map<string, { v: number; vg: number; s: number; sg: number }>();
    const at = (p: string) => per.get(p) ?? per.set(p, { v: 0, vg: 0, s: 0, sg: 0 }).get(p)!;
    for (const r of rows('volumes')) Object.assign(at(r.project_id), { v: r.c, vg: r.g });
    for (const r of rows('snapshots')) Object.assign(at(r.project_id), { s: r.c, sg: r.g });
    const total = [...per.values()].reduce(
      (t, x) => ({ v: t.v + x.v, vg: t.vg + x.vg, s: t.s + x.s, sg: t.sg + x.sg }),
      { v: 0, vg: 0, s: 0, sg: 0 },
    );
    const resource = (project: string, x: typeof total) => ({
      resource: {
        host,
        project,
        volume_count: String(x.v),
        total_volume_gb: String(x.vg),
        snapshot_count: String(x.s),
        total_snapshot_gb: String(x.sg),
      },
    });
    return { host: [resource('(total)', total), ...[...per].map(([p, x]) => resource(p, x))] };
  });

  /** One pool per site's volume service; capacity is not measured, so it reads as unlimited. */
  const capabilities = (site: string) => ({ ...backendCapabilities(svc.driver.name, now()), site });
  app.get(`${base}/scheduler-stats/get_pools`, async (req, reply) => {
    admin(req, reply);
    const q = isObj(req.query) ? req.query : {};
    const detail = ['1', 'true', 'True'].includes(String(q.detail ?? ''));
    return {
      pools: sites().map((s) => {
        const name = svc.hostOf(s.id);
        if (!detail) return { name };
        const { site: _site, pool_name: _pool, ...caps } = capabilities(s.id);
        return { name, capabilities: caps };
      }),
    };
  });
  app.get(`${base}/capabilities/:host`, async (req, reply) => {
    admin(req, reply);
    const { host } = req.params as { host: string };
    // A backend (site@driver) or one of its pools (site@driver#pool), as Cinder takes either.
    const backend = host.split('#')[0]!;
    const s = sites().find((x) => backend === x.id || backend === `${x.id}@${svc.driver.name}`);
    if (!s) throw new NotFound(`Host ${host} could not be found.`);
    const c = capabilities(s.id);
    return {
      namespace: `OS::Storage::Capabilities::${host}`,
      volume_backend_name: c.volume_backend_name,
      pool_name: c.pool_name,
      vendor_name: c.vendor_name,
      driver_version: c.driver_version,
      storage_protocol: c.storage_protocol,
      display_name: null,
      description: null,
      visibility: null,
      replication_targets: [],
      properties: {},
    };
  });
}
