/**
 * @module Admin views of this site's compute: simple tenant usage (os-simple-tenant-usage, what
 * dashboards chart), the instance usage audit log (os-instance_usage_audit_log) and the hosts of the
 * pre-2.43 os-hosts API.
 * https://docs.openstack.org/api-ref/compute/#usage-reports-os-simple-tenant-usage
 * https://docs.openstack.org/api-ref/compute/#hosts-os-hosts-deprecated
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { canRead, requireAdmin } from '../../../core/auth.ts';
import { BadRequest, CloudError, NotFound } from '../../../core/errors.ts';
import { isObj, query } from '../../common/input.ts';
import type { Obj } from '../../common/input.ts';
import { serverStatus } from '../domain/states.ts';
import type { ComputeService } from '../service.ts';
import type { FlavorRow, ServerRow } from '../store/schema.ts';
import { atLeast } from './microversion.ts';

const P = '/compute/v2.1';
const HOUR = 3_600_000;
const stamp = (ms: number) =>
  new Date(ms)
    .toISOString()
    .replace('Z', '')
    .replace(/\.(\d{3})$/, '.$1000');

/** Nova's usage period: start and end as ISO times (default: the last day up to now), start < end. */
function period(q: Record<string, string>, now: number): { start: number; end: number } {
  const at = (v: string | undefined, dflt: number, name: string) => {
    if (v === undefined) return dflt;
    const ms = Date.parse(/[zZ]|[+-]\d\d:?\d\d$/.test(v) ? v : `${v}Z`);
    if (Number.isNaN(ms)) throw new BadRequest(`Invalid ${name} time: ${v}.`);
    return ms;
  };
  const end = Math.min(at(q.end, now, 'end'), now);
  const start = at(q.start, now - 24 * HOUR, 'start');
  if (start >= at(q.end, now, 'end'))
    throw new BadRequest('Invalid start time. The start time cannot occur after the end time.');
  return { start, end };
}

/** One project's usage over the period, from the servers this site knows. */
function tenantUsage(
  servers: ServerRow[],
  project: string,
  span: { start: number; end: number },
  detailed: boolean,
): Obj {
  const usages = servers.map((s) => {
    const f = JSON.parse(s.flavor) as FlavorRow;
    const started = s.launched_at ?? s.created_at;
    const hours = Math.max(0, span.end - Math.max(span.start, started)) / HOUR;
    return {
      instance_id: s.id,
      name: s.name,
      tenant_id: s.project_id,
      flavor: f.name,
      vcpus: s.vcpus,
      memory_mb: s.ram,
      local_gb: s.disk,
      hours,
      started_at: stamp(started),
      ended_at: null,
      state: serverStatus(s.vm_state, s.task_state) === 'ACTIVE' ? 'active' : s.vm_state,
      uptime: Math.floor((span.end - started) / 1000),
    };
  });
  const sum = (f: (u: (typeof usages)[number]) => number) => usages.reduce((a, u) => a + f(u), 0);
  return {
    tenant_id: project,
    start: stamp(span.start),
    stop: stamp(span.end),
    total_hours: sum((u) => u.hours),
    total_vcpus_usage: sum((u) => u.hours * u.vcpus),
    total_memory_mb_usage: sum((u) => u.hours * u.memory_mb),
    total_local_gb_usage: sum((u) => u.hours * u.local_gb),
    ...(detailed ? { server_usages: usages } : {}),
  };
}

export function registerUsageRoutes(app: FastifyInstance, svc: ComputeService): void {
  const { ctx } = svc;
  const serversIn = (span: { end: number }, project?: string) => svc.repo.serversCreatedBy(span.end, project);

  app.get(`${P}/os-simple-tenant-usage`, async (req) => {
    requireAdmin(ctx.authenticate(req));
    const q = query(req.query);
    const span = period(q, ctx.clock.now());
    const byProject = new Map<string, ServerRow[]>();
    for (const s of serversIn(span)) byProject.set(s.project_id, [...(byProject.get(s.project_id) ?? []), s]);
    const detailed = q.detailed === '1';
    return {
      tenant_usages: [...byProject].map(([p, list]) => tenantUsage(list, p, span, detailed)),
    };
  });
  app.get<{ Params: { id: string } }>(`${P}/os-simple-tenant-usage/:id`, async (req) => {
    const auth = ctx.authenticate(req);
    if (!canRead(auth, req.params.id)) requireAdmin(auth);
    const span = period(query(req.query), ctx.clock.now());
    return { tenant_usage: tenantUsage(serversIn(span, req.params.id), req.params.id, span, true) };
  });

  // ---- os-instance_usage_audit_log: Nova's periodic usage audit (off by default there) is not run
  // here, so each report says so truthfully: every compute host "not run" for the period.
  const auditLog = (before: number) => {
    const d = new Date(before);
    const end = Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), 1);
    const begin = Date.UTC(d.getUTCFullYear(), d.getUTCMonth() - 1, 1);
    const hosts = svc.repo.hosts().map((h) => h.id);
    const fmt = (ms: number) => new Date(ms).toISOString().slice(0, 19).replace('T', ' ');
    return {
      hosts_not_run: hosts,
      log: {},
      num_hosts: hosts.length,
      num_hosts_done: 0,
      num_hosts_not_run: hosts.length,
      num_hosts_running: 0,
      overall_status: `0 of ${hosts.length} hosts done. 0 errors.`,
      period_beginning: fmt(begin),
      period_ending: fmt(end),
      total_errors: 0,
      total_instances: 0,
    };
  };
  app.get(`${P}/os-instance_usage_audit_log`, async (req) => {
    requireAdmin(ctx.authenticate(req));
    return { instance_usage_audit_logs: auditLog(ctx.clock.now()) };
  });
  app.get<{ Params: { before: string } }>(`${P}/os-instance_usage_audit_log/:before`, async (req) => {
    requireAdmin(ctx.authenticate(req));
    const m = /^(\d{4}-\d{2}-\d{2}) (\d{2}:\d{2}:\d{2})(\.\d+)?$/.exec(req.params.before);
    const at = m ? Date.parse(`${m[1]}T${m[2]}Z`) : Number.NaN;
    if (Number.isNaN(at)) throw new BadRequest('Invalid timestamp for date');
    return { instance_usage_audit_log: auditLog(at) };
  });

  // ---- os-hosts (gone from 2.43): each service's host; a compute host's resources ------------------
  const hostsGone = (req: FastifyRequest) => {
    if (atLeast(req, '2.43')) throw new NotFound('The resource could not be found.');
    requireAdmin(ctx.authenticate(req));
  };
  const computeHost = (name: string) => {
    const h = svc.repo.hosts().find((x) => x.id === name);
    if (!h) throw new NotFound(`Compute host ${name} could not be found.`);
    return h;
  };
  app.get(`${P}/os-hosts`, async (req) => {
    hostsGone(req);
    const zone = query(req.query).zone;
    const hosts = [
      { host_name: ctx.name, service: 'scheduler', zone: 'internal' },
      { host_name: ctx.name, service: 'conductor', zone: 'internal' },
      ...svc.repo.hosts().map((h) => ({ host_name: h.id, service: 'compute', zone: ctx.name })),
    ];
    return { hosts: zone ? hosts.filter((h) => h.zone === zone) : hosts };
  });
  app.get<{ Params: { host: string } }>(`${P}/os-hosts/:host`, async (req) => {
    hostsGone(req);
    const h = computeHost(req.params.host);
    const row = (project: string, cpu: number, memory_mb: number, disk_gb: number) => ({
      resource: { host: h.id, project, cpu, memory_mb, disk_gb },
    });
    return {
      host: [
        row('(total)', h.vcpus, h.ram_mb, h.disk_gb),
        row('(used_now)', h.used_vcpus, h.used_ram_mb, h.used_disk_gb),
        row('(used_max)', h.used_vcpus, h.used_ram_mb, h.used_disk_gb),
      ],
    };
  });
  // Enabling, maintenance mode and power actions are the virt driver's; Nova answers 501 for drivers
  // that do not implement them (libvirt among them), after the same validation.
  app.put<{ Params: { host: string } }>(`${P}/os-hosts/:host`, async (req) => {
    hostsGone(req);
    // The body is not wrapped: {"status": "enable", "maintenance_mode": null}.
    if (!isObj(req.body)) throw new BadRequest('The request body must be a JSON object.');
    const b = Object.fromEntries(Object.entries(req.body).filter(([, v]) => v !== null));
    const allowed = ['enable', 'disable'];
    const keys = Object.keys(b);
    if (
      !keys.length ||
      keys.some((k) => !['status', 'maintenance_mode'].includes(k) || !allowed.includes(String(b[k])))
    )
      throw new BadRequest(
        'Invalid input for field/attribute host: status or maintenance_mode, enable or disable.',
      );
    computeHost(req.params.host);
    throw new CloudError(501, 'Virt driver does not implement host disabled status.');
  });
  for (const action of ['startup', 'shutdown', 'reboot'])
    app.get<{ Params: { host: string } }>(`${P}/os-hosts/:host/${action}`, async (req) => {
      hostsGone(req);
      computeHost(req.params.host);
      throw new CloudError(501, `Virt driver does not implement host ${action}.`);
    });
}
