/**
 * @module Servers, server actions and instance actions (Nova v2.1): parsing, policy, forwarding and
 * views; a create runs as the BootServers command (domain/boot-servers.ts).
 * https://docs.openstack.org/api-ref/compute/#servers-servers
 * A server lives at the site named by its availability zone: a create for another site, and every
 * write on a server another site owns, is forwarded there. Reads answer from the local replica.
 */
import { isIP } from 'node:net';
import { formatIp, parseIp } from '../../network/domain/ip.ts';
import { randomBytes } from 'node:crypto';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { AuthContext } from '../../../core/auth.ts';
import { canRead, canWrite, requireAdmin, requireMember } from '../../../core/auth.ts';
import { BadRequest, CloudError, Conflict, Forbidden, NotFound } from '../../../core/errors.ts';
import { linearRegex } from '../../../core/linear-regex.ts';
import { isObj, novaTime, optStr, query, wrapped } from '../../common/input.ts';
import type { Obj } from '../../common/input.ts';
import type { NicRequest, ServerAddress } from '../../common/internal.ts';
import { forwardIfRemote } from '../../common/owner.ts';
import { paginate } from '../../common/paging.ts';
import { bootServers } from '../domain/boot-servers.ts';
import { LIFECYCLE } from '../domain/lifecycle.ts';
import { confirmResize, resizeServer, revertResize } from '../domain/resize-server.ts';
import {
  deleteServer,
  lockServer,
  resetState,
  runLifecycle,
  unlockServer,
} from '../domain/server-actions.ts';
import type { Lifecycle } from '../domain/lifecycle.ts';
import { vmStatesForStatus } from '../domain/states.ts';
import type { ComputeService } from '../service.ts';
import type { ServerListFilter, ServerSortColumn } from '../store/repo.ts';
import type { ServerRow } from '../store/schema.ts';
import { atLeast } from './microversion.ts';
import { serviceCaller } from './proxy.ts';
import { checkMetadata } from './quotas.ts';
import { checkTags, tagFilter } from './server-tags.ts';
import { parseBlockDevices } from './block-devices.ts';
import type { BootVolume } from './block-devices.ts';
import { addressesView, link, plainAddresses, serverView, serverWriteView } from './views.ts';

const P = '/compute/v2.1';
/** A date, or a date and time with an optional zone, in ISO 8601's extended form. */
const ISO_8601 = /^\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:?\d{2})?)?$/;

export function registerServerRoutes(app: FastifyInstance, svc: ComputeService): void {
  const { ctx, repo } = svc;
  const call = serviceCaller(app);
  svc.imageCaller = call;
  /**
   * The security groups a create names ({"name": ...} each), checked as Nova checks them with
   * Neutron: each must be one of the caller's groups, by name or id (400 otherwise).
   */
  const securityGroupsOf = async (req: FastifyRequest, v: unknown): Promise<string[]> => {
    if (v === undefined) return [];
    if (!Array.isArray(v) || v.some((g) => !isObj(g) || typeof g.name !== 'string' || !g.name))
      throw new BadRequest('Invalid input for field/attribute security_groups.');
    const names = [...new Set(v.map((g) => String((g as Obj).name)))];
    const auth = ctx.authenticate(req);
    const mine = ((await call(req, 'GET', '/network/v2.0/security-groups')).security_groups as Obj[]).filter(
      (g) => (g.project_id ?? g.tenant_id) === auth.projectId,
    );
    for (const n of names)
      if (n !== 'default' && !mine.some((g) => g.name === n || g.id === n))
        throw new BadRequest(`Unable to find security_group with name or id '${n}'`);
    return names;
  };
  const base = () => ctx.publicUrl();
  const attached = (s: ServerRow | string) =>
    svc.volume?.attachmentsOf(typeof s === 'string' ? s : s.id).map((a) => a.volumeId) ?? [];

  const visible = (auth: AuthContext, id: string): ServerRow => {
    const s = repo.server(id);
    if (!s || !canRead(auth, s.project_id)) throw new NotFound(`Instance ${id} could not be found.`);
    return s;
  };
  const writable = (auth: AuthContext, id: string): ServerRow => {
    const s = visible(auth, id);
    if (!canWrite(auth, s.project_id)) throw new Forbidden();
    return s;
  };

  // ---- create: parse, authenticate, forward to the zone's site; domain/boot-servers.ts does the rest
  app.post(`${P}/servers`, async (req, reply) => {
    const auth = ctx.authenticate(req);
    const project = requireMember(auth);
    const b = wrapped(req.body, 'server');
    const azRaw = optStr(b, 'availability_zone');
    let forceHost: string | undefined;
    if (azRaw) {
      const [az, host] = azRaw.split(':');
      if (az && az !== 'nova' && !ctx.owns(az)) {
        if (!ctx.registry.inGoodStanding(az))
          throw new BadRequest(`The requested availability zone is not available`);
        return ctx.forwardTo(az, req, reply);
      }
      if (host) {
        requireAdmin(auth);
        forceHost = host;
      }
    }
    const name = optStr(b, 'name', { min: 1 }) ?? '';
    if (!name.trim()) throw new BadRequest("Invalid input for field/attribute name. Value: ''");
    const flavorRef = b.flavorRef;
    if (typeof flavorRef !== 'string' && typeof flavorRef !== 'number')
      throw new BadRequest("Invalid input for field/attribute server. 'flavorRef' is a required property");
    const hints = isObj((req.body as Obj)['os:scheduler_hints'])
      ? ((req.body as Obj)['os:scheduler_hints'] as Obj)
      : {};
    const minCount = Number(b.min_count ?? 1);
    const adminPass = adminPassOf(b);
    const diskConfig = diskConfigOf(b);
    if (b.tags !== undefined && !atLeast(req, '2.52'))
      throw new BadRequest(
        "Invalid input for field/attribute server. Additional properties are not allowed ('tags' was unexpected)",
      );
    const tags = b.tags === undefined ? undefined : checkTags(b.tags);
    const groups = await securityGroupsOf(req, b.security_groups);
    const givenImage = typeof b.imageRef === 'string' ? b.imageRef : '';
    const bdms = await parseBlockDevices(call, req, project, b.block_device_mapping_v2, givenImage);
    const maxCount = Number(b.max_count ?? minCount);
    if (bdms.volumes.length && maxCount > 1)
      throw new BadRequest('Cannot attach one or more volumes to multiple instances');
    const created = await bootServers(svc.bootDeps, {
      auth,
      projectId: project,
      requestId: req.id,
      name,
      flavorRef: String(flavorRef),
      imageRef: bdms.bootFromVolume ? '' : (bdms.imageRef ?? givenImage),
      bootFromVolume: bdms.bootFromVolume,
      deleteVolumes: bdms.volumes.filter((v) => v.deleteOnTermination).map((v) => v.volumeId),
      keyName: optStr(b, 'key_name'),
      metadata: b.metadata ?? {},
      userData: optStr(b, 'user_data', { max: 65535 }),
      nics: parseNetworks(b.networks, atLeast(req, '2.37')),
      groupId: typeof hints.group === 'string' ? hints.group : undefined,
      minCount,
      maxCount,
      description: optStr(b, 'description'),
      ...accessIps(b),
      tags,
      diskConfig,
      forceHost,
    });
    const first = created[0]!.row;
    attachAtBoot(first, bdms.volumes, auth);
    reply.code(202).header('location', `${base()}/compute/v2.1/servers/${first.id}`);
    if (b.return_reservation_id === true) return { reservation_id: `r-${first.id.slice(0, 8)}` };
    return {
      server: {
        id: first.id,
        links: link(base(), 'servers', first.id),
        'OS-DCF:diskConfig': diskConfig ?? 'MANUAL',
        security_groups: groups.length ? groups.map((name) => ({ name })) : [{ name: 'default' }],
        adminPass,
      },
    };
  });

  /**
   * The volumes of a create's block devices, attached once the server row exists (the boot volume,
   * index 0, as /dev/vda). They were found available just before; one taken meanwhile fails the build.
   */
  const attachAtBoot = (s: ServerRow, volumes: BootVolume[], auth: AuthContext) => {
    const api = svc.volume;
    if (!volumes.length) return;
    if (!api) throw new CloudError(503, 'The volume service is not available on this site.');
    const ordered = [...volumes].sort((a, b) => (a.bootIndex ?? 99) - (b.bootIndex ?? 99));
    try {
      for (const v of ordered) api.attach(auth, v.volumeId, s.id, v.bootIndex === 0 ? '/dev/vda' : undefined);
    } catch (e) {
      svc.failBuild(s.id, `Attaching the volumes of the server failed: ${(e as Error).message}`);
    }
  };

  // ---- list / show --------------------------------------------------------------------------------
  const list = (req: FastifyRequest, detail: boolean) => {
    const auth = ctx.authenticate(req);
    const q = query(req.query);
    const all = allTenants(q.all_tenants);
    if (all && !auth.isAdmin)
      throw new Forbidden('Only administrators may list the servers of all projects.');
    const filter: ServerListFilter = { sort: 'created_at', dir: 'DESC' };
    if (!all) {
      if (!auth.projectId) throw new Forbidden('This action requires a project-scoped token.');
      filter.projectId = auth.projectId;
    } else {
      const projectId = q.project_id ?? q.tenant_id;
      if (projectId) filter.projectId = projectId;
    }
    if (q.status) {
      const states = vmStatesForStatus(q.status);
      if (!states.length) return { servers: [] };
      filter.vmStates = states;
    }
    if (q.host) {
      if (!auth.isAdmin) throw new Forbidden('Only administrators may filter by host.');
      filter.host = q.host;
    }
    if (q.flavor) filter.flavorId = q.flavor;
    if (q.image) filter.imageId = q.image.replace(/^.*\/images\//, '');
    if (q.availability_zone) filter.owner = q.availability_zone;
    for (const [param, bound] of [
      ['changes-since', 'updatedFrom'],
      ['changes-before', 'updatedTo'],
    ] as const) {
      if (q[param] === undefined) continue;
      // Nova reads these as ISO 8601 only: "2011/01/01" is a 400, though Date.parse would take it.
      const at = ISO_8601.test(q[param]) ? Date.parse(q[param]) : Number.NaN;
      if (Number.isNaN(at)) throw new BadRequest(`Invalid input for query parameters ${param}.`);
      filter[bound] = at;
    }
    const sortKeys: Record<string, ServerSortColumn> = {
      created_at: 'created_at',
      updated_at: 'updated_at',
      display_name: 'name',
      name: 'name',
      vm_state: 'vm_state',
      host: 'host',
      uuid: 'id',
    };
    const wanted = q.sort_key ?? 'created_at';
    const sk = Object.hasOwn(sortKeys, wanted) ? sortKeys[wanted] : undefined;
    if (!sk) throw new BadRequest(`Invalid input for query parameters sort_key. Value: ${q.sort_key}.`);
    filter.sort = sk;
    filter.dir = (q.sort_dir ?? 'desc').toLowerCase() === 'asc' ? 'ASC' : 'DESC';
    let rows = repo.listServers(filter);
    if (q.name) {
      // Nova treats name as a regex; a backtracking RegExp would let one request stall the loop.
      let re: { test(s: string): boolean };
      try {
        re = linearRegex(q.name);
      } catch (e) {
        throw new BadRequest(`Invalid regular expression ${q.name}: ${(e as Error).message}`);
      }
      rows = rows.filter((r) => re.test(r.name));
    }
    const byTags = atLeast(req, '2.26') ? tagFilter(q) : undefined;
    if (byTags) rows = rows.filter(byTags);
    // An empty marker is no marker (as Nova reads it).
    const { marker: _marker, ...unmarked } = q;
    const page = paginate(rows, q.marker ? q : unmarked, (r) => r.id, {
      unknownMarker: (m) => new BadRequest(`marker [${m}] not found`),
      badNumber: () => new BadRequest('limit param must be an integer'),
    });
    const pageRows = page.items;
    const out: Obj = {
      servers: pageRows.map((s) =>
        detail
          ? serverView(s, base(), req, auth, ctx.freshness(s.owner), attached(s))
          : { id: s.id, name: s.name, links: link(base(), 'servers', s.id) },
      ),
    };
    if (page.nextMarker !== undefined) {
      const params = new URLSearchParams({ ...q, limit: String(page.limit), marker: page.nextMarker });
      out.servers_links = [
        { rel: 'next', href: `${base()}${P}/servers${detail ? '/detail' : ''}?${params.toString()}` },
      ];
    }
    return out;
  };
  app.get(`${P}/servers`, async (req) => list(req, false));
  app.get(`${P}/servers/detail`, async (req) => list(req, true));

  app.get<{ Params: { id: string } }>(`${P}/servers/:id`, async (req) => {
    const auth = ctx.authenticate(req);
    const row = visible(auth, req.params.id);
    return { server: serverView(row, base(), req, auth, ctx.freshness(row.owner), attached(row)) };
  });

  app.put<{ Params: { id: string } }>(`${P}/servers/:id`, async (req, reply) => {
    const auth = ctx.authenticate(req);
    const s = writable(auth, req.params.id);
    const fwd = forwardIfRemote(ctx, s.owner, req, reply);
    if (fwd) return fwd;
    const b = wrapped(req.body, 'server');
    const name = optStr(b, 'name', { min: 1 });
    const description = atLeast(req, '2.19') ? optStr(b, 'description') : undefined;
    const ips = accessIps(b);
    const diskConfig = diskConfigOf(b);
    const next = svc.update(s.id, {
      ...(diskConfig !== undefined ? { disk_config: diskConfig } : {}),
      ...(name !== undefined ? { name } : {}),
      ...(description !== undefined ? { description } : {}),
      ...(ips.accessIPv4 !== undefined ? { access_ipv4: ips.accessIPv4 || null } : {}),
      ...(ips.accessIPv6 !== undefined ? { access_ipv6: ips.accessIPv6 || null } : {}),
    });
    const full = serverView(next!, base(), req, auth, ctx.freshness(next!.owner), attached(next!));
    return { server: serverWriteView(full, req) };
  });

  app.delete<{ Params: { id: string } }>(`${P}/servers/:id`, async (req, reply) => {
    const auth = ctx.authenticate(req);
    const s = writable(auth, req.params.id);
    const fwd = forwardIfRemote(ctx, s.owner, req, reply);
    if (fwd) return fwd;
    deleteServer(svc.actionDeps, { auth, requestId: req.id, server: s });
    return reply.code(204).send();
  });

  // ---- actions ------------------------------------------------------------------------------------
  app.post<{ Params: { id: string } }>(`${P}/servers/:id/action`, async (req, reply) => {
    const auth = ctx.authenticate(req);
    const s = writable(auth, req.params.id);
    const fwd = forwardIfRemote(ctx, s.owner, req, reply);
    if (fwd) return fwd;
    const body = req.body;
    if (!isObj(body) || Object.keys(body).length !== 1)
      throw new BadRequest('The action body must name one action.');
    const [action, arg] = Object.entries(body)[0]!;
    return runAction(svc, req, reply, auth, s, action, arg);
  });

  app.get<{ Params: { id: string } }>(`${P}/servers/:id/os-instance-actions`, async (req, reply) => {
    const auth = ctx.authenticate(req);
    const row = repo.server(req.params.id);
    // From 2.21 a deleted server's actions are listed too (kept by the site that owned it).
    const kept = !row && atLeast(req, '2.21') ? repo.actions(req.params.id) : [];
    if (!row && kept.length && canRead(auth, kept[0]!.project_id))
      return { instanceActions: kept.map(actionView(req)) };
    const s = visible(auth, req.params.id);
    const fwd = forwardIfRemote(ctx, s.owner, req, reply);
    if (fwd) return fwd;
    return { instanceActions: repo.actions(s.id).map(actionView(req)) };
  });
  const actionView = (req: FastifyRequest) => (a: ReturnType<typeof repo.actions>[number]) => ({
    action: a.action,
    instance_uuid: a.server_id,
    message: a.message,
    project_id: a.project_id,
    request_id: a.request_id,
    start_time: novaTime(a.start_time).replace('Z', '.000000'),
    user_id: a.user_id,
    ...(atLeast(req, '2.58') ? { updated_at: novaTime(a.updated_at).replace('Z', '.000000') } : {}),
  });
  app.get<{ Params: { id: string; rid: string } }>(
    `${P}/servers/:id/os-instance-actions/:rid`,
    async (req, reply) => {
      const auth = ctx.authenticate(req);
      const s = visible(auth, req.params.id);
      const fwd = forwardIfRemote(ctx, s.owner, req, reply);
      if (fwd) return fwd;
      const a = repo.action(s.id, req.params.rid);
      if (!a) throw new NotFound(`Action for request_id ${req.params.rid} on instance ${s.id} not found`);
      const t = (ms: unknown) => (typeof ms === 'number' ? novaTime(ms).replace('Z', '.000000') : null);
      return {
        instanceAction: {
          action: a.action,
          instance_uuid: a.server_id,
          message: a.message,
          project_id: a.project_id,
          request_id: a.request_id,
          start_time: t(a.start_time),
          user_id: a.user_id,
          events: (JSON.parse(a.events) as Obj[]).map((e) => ({
            event: e.event,
            start_time: t(e.start_time),
            finish_time: t(e.finish_time),
            result: e.result,
            ...(auth.isAdmin ? { traceback: e.traceback, host: e.host } : {}),
          })),
        },
      };
    },
  );

  // Addresses (os-ips): all networks, or one by name.
  const ips = (s: ServerRow) =>
    plainAddresses(addressesView(JSON.parse(s.addresses) as ServerAddress[]) as Record<string, Obj[]>);
  app.get<{ Params: { id: string } }>(`${P}/servers/:id/ips`, async (req) => ({
    addresses: ips(visible(ctx.authenticate(req), req.params.id)),
  }));
  app.get<{ Params: { id: string; net: string } }>(`${P}/servers/:id/ips/:net`, async (req) => {
    const all = ips(visible(ctx.authenticate(req), req.params.id));
    const list = all[req.params.net];
    if (!list) throw new NotFound('There are no instances attached to this network.');
    return { [req.params.net]: list };
  });

  // Server metadata (the CLI's `server set --property`).
  app.post<{ Params: { id: string } }>(`${P}/servers/:id/metadata`, async (req, reply) => {
    const auth = ctx.authenticate(req);
    const s = writable(auth, req.params.id);
    const fwd = forwardIfRemote(ctx, s.owner, req, reply);
    if (fwd) return fwd;
    const md = checkMetadata(svc, s.project_id, wrapped(req.body, 'metadata'));
    const next = checkMetadata(svc, s.project_id, { ...(JSON.parse(s.metadata) as Obj), ...md });
    svc.update(s.id, { metadata: JSON.stringify(next) });
    return { metadata: next };
  });
  app.get<{ Params: { id: string } }>(`${P}/servers/:id/metadata`, async (req) => {
    const auth = ctx.authenticate(req);
    return { metadata: JSON.parse(visible(auth, req.params.id).metadata) as Obj };
  });
  // Replace all of it.
  app.put<{ Params: { id: string } }>(`${P}/servers/:id/metadata`, async (req, reply) => {
    const auth = ctx.authenticate(req);
    const s = writable(auth, req.params.id);
    const fwd = forwardIfRemote(ctx, s.owner, req, reply);
    if (fwd) return fwd;
    const md = checkMetadata(svc, s.project_id, wrapped(req.body, 'metadata'));
    svc.update(s.id, { metadata: JSON.stringify(md) });
    return { metadata: md };
  });
  app.get<{ Params: { id: string; key: string } }>(`${P}/servers/:id/metadata/:key`, async (req) => {
    const md = JSON.parse(visible(ctx.authenticate(req), req.params.id).metadata) as Obj;
    if (!Object.hasOwn(md, req.params.key)) throw new NotFound('Metadata item was not found');
    return { meta: { [req.params.key]: md[req.params.key] } };
  });
  // Set one item: the body names exactly that key ({"meta": {key: value}}).
  app.put<{ Params: { id: string; key: string } }>(`${P}/servers/:id/metadata/:key`, async (req, reply) => {
    const auth = ctx.authenticate(req);
    const s = writable(auth, req.params.id);
    const fwd = forwardIfRemote(ctx, s.owner, req, reply);
    if (fwd) return fwd;
    const meta = wrapped(req.body, 'meta');
    const keys = Object.keys(meta);
    if (keys.length !== 1) throw new BadRequest('Request body contains too many items');
    if (keys[0] !== req.params.key) throw new BadRequest('Request body and URI mismatch');
    const item = checkMetadata(svc, s.project_id, meta);
    const next = checkMetadata(svc, s.project_id, { ...(JSON.parse(s.metadata) as Obj), ...item });
    svc.update(s.id, { metadata: JSON.stringify(next) });
    return { meta: item };
  });
  app.delete<{ Params: { id: string; key: string } }>(
    `${P}/servers/:id/metadata/:key`,
    async (req, reply) => {
      const auth = ctx.authenticate(req);
      const s = writable(auth, req.params.id);
      const fwd = forwardIfRemote(ctx, s.owner, req, reply);
      if (fwd) return fwd;
      const md = JSON.parse(s.metadata) as Obj;
      if (!(req.params.key in md)) throw new NotFound(`Metadata item was not found`);
      delete md[req.params.key];
      svc.update(s.id, { metadata: JSON.stringify(md) });
      return reply.code(204).send();
    },
  );
}

/** Nova's all_tenants: present and empty, or a boolean string; anything else is a 400. */
function allTenants(v: string | undefined): boolean {
  if (v === undefined) return false;
  const s = v.toLowerCase();
  if (['', '1', 'true', 'on', 'yes', 'y', 't'].includes(s)) return true;
  if (['0', 'false', 'off', 'no', 'n', 'f'].includes(s)) return false;
  throw new BadRequest(`Invalid input for query parameters all_tenants. Value: ${v}.`);
}

/**
 * accessIPv4 / accessIPv6 of a create, update or rebuild body: an address of that family, or '' to
 * clear it (as Nova's schema allows); anything else is a 400.
 */
function accessIps(b: Obj): { accessIPv4?: string; accessIPv6?: string } {
  const out: { accessIPv4?: string; accessIPv6?: string } = {};
  for (const [field, family] of [
    ['accessIPv4', 4],
    ['accessIPv6', 6],
  ] as const) {
    const v = b[field];
    if (v === undefined || v === null) continue;
    if (typeof v !== 'string' || (v !== '' && isIP(v) !== family))
      throw new BadRequest(`Invalid input for field/attribute ${field}. Value: ${String(v)}.`);
    // Kept in canonical form (RFC 5952 for IPv6), as Nova stores it.
    const ip = v === '' ? undefined : parseIp(v);
    out[field] = ip ? formatIp(ip) : v;
  }
  return out;
}

/** OS-DCF:diskConfig of a create, update, rebuild or resize body: AUTO or MANUAL (400 otherwise). */
function diskConfigOf(b: Obj): string | undefined {
  const v = b['OS-DCF:diskConfig'];
  if (v === undefined) return undefined;
  if (v !== 'AUTO' && v !== 'MANUAL')
    throw new BadRequest(`Invalid input for field/attribute OS-DCF:diskConfig. Value: ${String(v)}.`);
  return v;
}

/** The admin password a create or rebuild answers with: the one asked for, else a generated one. */
function adminPassOf(body: unknown): string {
  const given = isObj(body) ? body.adminPass : undefined;
  if (given === undefined || given === null) return randomBytes(9).toString('base64url');
  if (typeof given !== 'string') throw new BadRequest('Invalid input for field/attribute adminPass.');
  return given;
}

function parseNetworks(v: unknown, required: boolean): NicRequest[] | 'auto' | 'none' {
  if (v === undefined || v === null) {
    if (required)
      throw new BadRequest("Invalid input for field/attribute server. 'networks' is a required property");
    return 'auto';
  }
  if (v === 'auto' || v === 'none') return v;
  if (!Array.isArray(v)) throw new BadRequest('Invalid input for field/attribute networks.');
  return v.map((n) => {
    if (!isObj(n)) throw new BadRequest('Invalid input for field/attribute networks.');
    const nic: NicRequest = {};
    if (typeof n.uuid === 'string') {
      if (!/^[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}$/i.test(n.uuid))
        throw new BadRequest(`Bad networks format: network uuid is not in proper format (${n.uuid})`);
      nic.networkId = n.uuid;
    }
    if (typeof n.port === 'string') nic.portId = n.port;
    if (typeof n.fixed_ip === 'string') nic.fixedIp = n.fixed_ip;
    if (!nic.networkId && !nic.portId) throw new BadRequest('A network needs a uuid or a port.');
    return nic;
  });
}

async function runAction(
  svc: ComputeService,
  req: FastifyRequest,
  reply: FastifyReply,
  auth: AuthContext,
  s: ServerRow,
  action: string,
  arg: unknown,
): Promise<unknown> {
  const { ctx, repo } = svc;
  const accepted = () => reply.code(202).send();
  const cmd = { auth, requestId: req.id, server: s };
  const simple = (l: Lifecycle) => {
    runLifecycle(svc.actionDeps, { ...cmd, lifecycle: l });
    return accepted();
  };
  const plain = LIFECYCLE.get(action);
  if (plain && !action.includes(':')) return simple(plain);
  switch (action) {
    case 'reboot': {
      const type = isObj(arg) && typeof arg.type === 'string' ? arg.type.toUpperCase() : '';
      if (type !== 'SOFT' && type !== 'HARD') throw new BadRequest('Invalid input for field/attribute type.');
      return simple(LIFECYCLE.get(`reboot:${type}`)!);
    }
    case 'lock': {
      const reason = isObj(arg) && typeof arg.locked_reason === 'string' ? arg.locked_reason : null;
      lockServer(svc.actionDeps, { ...cmd, reason });
      return accepted();
    }
    case 'unlock':
      unlockServer(svc.actionDeps, cmd);
      return accepted();
    case 'os-resetState': {
      // Admin only; Nova accepts exactly these two states and clears any task in progress.
      requireAdmin(auth);
      const state = isObj(arg) ? arg.state : undefined;
      if (state !== 'active' && state !== 'error')
        throw new BadRequest("Invalid input for field/attribute state. Value: must be 'active' or 'error'.");
      resetState(svc.actionDeps, { ...cmd, state });
      return accepted();
    }
    case 'rebuild': {
      if (!isObj(arg) || typeof arg.imageRef !== 'string')
        throw new BadRequest("'imageRef' is a required property");
      svc.checkState(s, 'rebuild', ['active', 'stopped', 'error'], auth);
      const flavor = svc.flavorOf(s);
      const img = svc.image?.usableImage(auth, arg.imageRef.replace(/^.*\/images\//, ''));
      if (!img) throw new BadRequest(`Image ${arg.imageRef} could not be found.`);
      if (img.status !== 'active') throw new BadRequest(`Image ${img.id} is not active.`);
      if (flavor.disk > 0 && img.minDisk > flavor.disk)
        throw new BadRequest("Flavor's disk is too small for requested image.");
      const patch: Partial<ServerRow> = { image_id: img.id };
      const diskConfig = diskConfigOf(arg);
      if (diskConfig !== undefined) patch.disk_config = diskConfig;
      if (typeof arg.name === 'string' && arg.name) patch.name = arg.name;
      const ips = accessIps(arg);
      if (ips.accessIPv4 !== undefined) patch.access_ipv4 = ips.accessIPv4 || null;
      if (ips.accessIPv6 !== undefined) patch.access_ipv6 = ips.accessIPv6 || null;
      if (arg.metadata !== undefined)
        patch.metadata = JSON.stringify(checkMetadata(svc, s.project_id, arg.metadata));
      const adminPass = adminPassOf(arg);
      const actionId = svc.startAction(s, 'rebuild', auth, req.id);
      const cur = svc.update(s.id, patch)!;
      svc.lifecycle(cur, {
        task: 'rebuilding',
        op: 'rebuild',
        actionId,
        // A stopped server stays stopped (Nova rebuilds it powered off); one in error comes back active.
        after: () => ({ vm_state: s.vm_state === 'stopped' ? 'stopped' : 'active' }),
      });
      reply.code(202);
      const full = serverView(
        repo.server(s.id)!,
        ctx.publicUrl(),
        req,
        auth,
        ctx.freshness(s.owner),
        svc.volume?.attachmentsOf(s.id).map((a) => a.volumeId) ?? [],
      );
      const now = repo.server(s.id)!;
      return { server: { ...serverWriteView(full, req, { userData: now.user_data }), adminPass } };
    }
    case 'migrate':
    case 'os-migrateLive': {
      // Admin only; the states Nova allows (cold: active or stopped; live: active or paused), then
      // the destination: a host of another site is a 400 (a server lives at its zone's site).
      requireAdmin(auth);
      const live = action === 'os-migrateLive';
      svc.checkState(
        s,
        action === 'migrate' ? 'migrate' : 'live-migration',
        live ? ['active', 'paused'] : ['active', 'stopped'],
        auth,
      );
      const host = isObj(arg) && typeof arg.host === 'string' ? arg.host : undefined;
      if (host && !repo.hosts().some((h) => h.id === host))
        throw new BadRequest(
          `Compute host ${host} is not a host of site ${ctx.name}: a server cannot move to another site (its availability zone).`,
        );
      throw new BadRequest(`Moving a server between the hosts of a site (${action}) is not implemented yet.`);
    }
    case 'rescue': {
      // The fake driver's rescue: the guest "reboots" into the rescue image and comes back RESCUE.
      // A real guest would need a rescue disk the QEMU driver does not make yet: a clear 409 there.
      svc.checkState(s, 'rescue', ['active', 'stopped', 'error'], auth);
      if (svc.opts.driver !== 'fake')
        throw new Conflict(`Cannot 'rescue' instance ${s.id}: the ${svc.opts.driver} driver has no rescue.`);
      const ref = isObj(arg) ? arg.rescue_image_ref : undefined;
      if (ref !== undefined && ref !== null) {
        const img =
          typeof ref === 'string'
            ? svc.image?.usableImage(auth, ref.replace(/^.*\/images\//, ''))
            : undefined;
        if (!img)
          throw new BadRequest(`Invalid input for field/attribute rescue_image_ref. Value: ${String(ref)}.`);
      }
      const adminPass = adminPassOf(arg);
      const actionId = svc.startAction(s, 'rescue', auth, req.id);
      svc.lifecycle(s, { task: 'rescuing', op: 'reboot', actionId, after: () => ({ vm_state: 'rescued' }) });
      return reply.code(200).send({ adminPass });
    }
    case 'unrescue': {
      svc.checkState(s, 'unrescue', ['rescued'], auth);
      const actionId = svc.startAction(s, 'unrescue', auth, req.id);
      svc.lifecycle(s, { task: 'unrescuing', op: 'reboot', actionId, after: () => ({ vm_state: 'active' }) });
      return accepted();
    }
    case 'restore':
      // No soft delete here (Nova's reclaim_instance_interval 0): no server is ever SOFT_DELETED.
      throw new Conflict(`Cannot 'restore' instance ${s.id} while it is in vm_state ${s.vm_state}`);
    case 'forceDelete':
      // With no soft delete, a force delete is a delete (Nova allows it in any state).
      deleteServer(svc.actionDeps, cmd);
      return accepted();
    case 'resize':
      return resize(svc, req, reply, auth, s, arg);
    case 'confirmResize':
      confirmResize(svc.resizeDeps, { auth, requestId: req.id, server: s });
      return reply.code(204).send();
    case 'revertResize':
      revertResize(svc.resizeDeps, { auth, requestId: req.id, server: s });
      return accepted();
    case 'createBackup':
    case 'createImage': {
      const backup = action === 'createBackup';
      if (!isObj(arg) || typeof arg.name !== 'string' || !arg.name)
        throw new BadRequest("'name' is a required property");
      let rotation = 0;
      let backupType = '';
      if (backup) {
        // Nova: backup_type a string, rotation an integer (or its string) >= 0, both required.
        if (typeof arg.backup_type !== 'string' || !arg.backup_type)
          throw new BadRequest(
            "Invalid input for field/attribute createBackup. 'backup_type' is a required property",
          );
        const n =
          typeof arg.rotation === 'string' && /^[0-9]+$/.test(arg.rotation)
            ? Number(arg.rotation)
            : arg.rotation;
        if (typeof n !== 'number' || !Number.isInteger(n) || n < 0)
          throw new BadRequest(`Invalid input for field/attribute rotation. Value: ${String(arg.rotation)}.`);
        rotation = n;
        backupType = arg.backup_type;
      }
      svc.checkState(
        s,
        action,
        backup ? ['active', 'stopped'] : ['active', 'stopped', 'paused', 'suspended'],
        auth,
      );
      if (!svc.image) throw new CloudError(503, 'The image service is not available on this site.');
      const actionId = svc.startAction(s, action, auth, req.id);
      // The snapshot runs inside this request: the server is busy until it ends.
      const done = svc.working(s.id);
      svc.update(s.id, { task_state: 'image_snapshot' });
      let imageId: string;
      try {
        const props: Record<string, string> = backup
          ? { instance_uuid: s.id, image_type: 'backup', backup_type: backupType }
          : { instance_uuid: s.id, image_type: 'snapshot' };
        if (isObj(arg.metadata))
          for (const [k, v] of Object.entries(arg.metadata)) if (typeof v === 'string') props[k] = v;
        imageId = await svc.snapshotImage(auth, s, arg.name, props);
        if (backup) await rotateBackups(svc, req, s, imageId, backupType, rotation);
      } finally {
        svc.update(s.id, { task_state: null });
        done();
      }
      svc.finishAction(actionId);
      reply.code(202);
      if (atLeast(req, '2.45')) return { image_id: imageId };
      reply.header('location', `${ctx.publicUrl()}${P}/images/${imageId}`);
      return reply.send();
    }
    case 'os-getConsoleOutput': {
      // Nova: {"os-getConsoleOutput": {"length": N}}, N an integer (or its string) >= -1; -1 or
      // null is the whole log. The answer is 200 {"output": "..."}, the last N lines.
      if (!isObj(arg)) throw new BadRequest('Invalid input for field/attribute os-getConsoleOutput.');
      const raw = arg.length ?? null;
      let length: number | null = null;
      if (raw !== null) {
        const n = typeof raw === 'string' && /^-?[0-9]+$/.test(raw) ? Number(raw) : raw;
        if (typeof n !== 'number' || !Number.isInteger(n) || n < -1)
          throw new BadRequest('Invalid input for field/attribute length.');
        length = n === -1 ? null : n;
      }
      if (!s.host || s.vm_state === 'building' || s.vm_state === 'error')
        throw new Conflict(`Instance ${s.id} is not ready`);
      const r = await svc.host(s.host, 'get_console_output', s);
      let out = r.data ?? '';
      if (length !== null) {
        const lines = out.split('\n');
        if (lines[lines.length - 1] === '') lines.pop();
        out = length === 0 ? '' : lines.slice(-length).join('\n');
      }
      return reply.code(200).send({ output: out });
    }
    default: {
      const proxied = svc.proxyActions.get(action);
      if (proxied) return proxied(req, reply, auth, s, arg);
      throw new BadRequest(`There is no such action: ${action}`);
    }
  }
}

/**
 * Nova's backup rotation: of the server's backups of that type, the newest `rotation` stay and the
 * older ones are deleted, through the Image API with the caller's token.
 */
async function rotateBackups(
  svc: ComputeService,
  req: FastifyRequest,
  s: ServerRow,
  newest: string,
  backupType: string,
  rotation: number,
): Promise<void> {
  // The order backups were made in is the server's own record (image times are to the second).
  let drop: string[] = [];
  svc.update(s.id, (cur) => {
    const all = JSON.parse(cur.backups ?? '{}') as Record<string, string[]>;
    const list = [...(all[backupType] ?? []), newest];
    const keep = rotation === 0 ? [] : list.slice(-rotation);
    drop = list.filter((id) => !keep.includes(id));
    return { backups: JSON.stringify({ ...all, [backupType]: keep }) };
  });
  const call = svc.imageCaller;
  if (!call) return;
  for (const id of drop)
    await call(req, 'DELETE', `/image/v2/images/${id}`).catch((e: unknown) => {
      // One deleted by hand meanwhile is gone already.
      if (!(e instanceof CloudError && e.status === 404)) throw e;
    });
}

function resize(
  svc: ComputeService,
  req: FastifyRequest,
  reply: FastifyReply,
  auth: AuthContext,
  s: ServerRow,
  arg: unknown,
) {
  if (!isObj(arg) || (typeof arg.flavorRef !== 'string' && typeof arg.flavorRef !== 'number'))
    throw new BadRequest("'flavorRef' is a required property");
  const diskConfig = diskConfigOf(arg);
  resizeServer(svc.resizeDeps, { auth, requestId: req.id, server: s, flavorRef: String(arg.flavorRef) });
  if (diskConfig !== undefined) svc.update(s.id, { disk_config: diskConfig });
  return reply.code(202).send();
}
