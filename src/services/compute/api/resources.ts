/**
 * @module Compute resources other than servers: version discovery, flavors (+ extra specs and
 * os-flavor-access), keypairs, server groups, availability zones (one per site), hypervisors and
 * services (admin). https://docs.openstack.org/api-ref/compute/
 */
import { createHash, generateKeyPairSync } from 'node:crypto';
import { loadavg, uptime } from 'node:os';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { AuthContext } from '../../../core/auth.ts';
import { canRead, requireAdmin, requireMember, requireReader } from '../../../core/auth.ts';
import { BadRequest, Conflict, Forbidden, NotFound } from '../../../core/errors.ts';
import { isObj, optInt, optStr, query, reqInt, reqStr, wrapped } from '../../common/input.ts';
import type { Obj } from '../../common/input.ts';
import { forwardToHome } from '../../common/home.ts';
import { forwardIfRemote } from '../../common/owner.ts';
import type { ComputeService } from '../service.ts';
import type { FlavorRow, KeypairRow, ServerGroupRow } from '../store/schema.ts';
import { flavorAccessKind, flavorKind, keypairKind, serverGroupKind } from '../store/schema.ts';
import { MAX_VERSION, MIN_VERSION, atLeast } from './microversion.ts';
import { limitsOf } from './quotas.ts';
import { flavorView, keypairView, link } from './views.ts';

const P = '/compute/v2.1';

export function registerDiscovery(app: FastifyInstance, svc: ComputeService): void {
  // Nova lists the legacy v2.0 API first (clients and Tempest expect it), then v2.1 with microversions.
  const doc = (id: 'v2.0' | 'v2.1') => ({
    id,
    status: id === 'v2.1' ? 'CURRENT' : 'SUPPORTED',
    version: id === 'v2.1' ? MAX_VERSION : '',
    min_version: id === 'v2.1' ? MIN_VERSION : '',
    updated: id === 'v2.1' ? '2013-07-23T11:33:21Z' : '2011-01-21T11:33:21Z',
    links: [{ rel: 'self', href: `${svc.ctx.publicUrl()}/compute/${id === 'v2.1' ? 'v2.1' : 'v2'}/` }],
    'media-types': [
      { base: 'application/json', type: `application/vnd.openstack.compute+json;version=${id.slice(1)}` },
    ],
  });
  const listed = (id: 'v2.0' | 'v2.1') => {
    const { 'media-types': _m, ...v } = doc(id);
    return v;
  };
  app.get('/compute', async () => ({ versions: [listed('v2.0'), listed('v2.1')] }));
  app.get('/compute/v2', async () => ({ version: doc('v2.0') }));
  app.get('/compute/v2.1', async () => ({ version: doc('v2.1') }));
}

export function registerResourceRoutes(app: FastifyInstance, svc: ComputeService): void {
  const { ctx, repo } = svc;
  const base = () => ctx.publicUrl();

  // ---- flavors ----------------------------------------------------------------------------------
  const flavorVisible = (auth: AuthContext, f: FlavorRow) =>
    !!f.is_public || auth.isAdmin || repo.hasFlavorAccess(f.id, auth.projectId ?? '');
  const findFlavor = (auth: AuthContext, id: string): FlavorRow => {
    const f = repo.flavor(id);
    if (!f || !flavorVisible(auth, f)) throw new NotFound(`Flavor ${id} could not be found.`);
    return f;
  };
  /** A flavor write (admins only) runs at the flavor's owning site: undefined once carried there. */
  const flavorToWrite = async (
    req: FastifyRequest,
    reply: FastifyReply,
    id: string,
  ): Promise<FlavorRow | undefined> => {
    const auth = ctx.authenticate(req);
    requireAdmin(auth);
    const f = findFlavor(auth, id);
    return (await forwardIfRemote(ctx, f.owner, req, reply)) ? undefined : f;
  };
  const listFlavors = (req: FastifyRequest, detail: boolean) => {
    const auth = ctx.authenticate(req);
    const q = query(req.query);
    let rows = repo.flavors();
    // is_public: default true (admins: public + private they see with None/all).
    const isPublic = (q.is_public ?? 'true').toLowerCase();
    if (isPublic === 'true' || isPublic === '1' || isPublic === 'yes')
      rows = rows.filter((f) => f.is_public || (!auth.isAdmin && flavorVisible(auth, f)));
    else if (isPublic === 'false' || isPublic === '0' || isPublic === 'no')
      rows = rows.filter((f) => !f.is_public && flavorVisible(auth, f));
    else rows = rows.filter((f) => flavorVisible(auth, f));
    if (q.minRam) rows = rows.filter((f) => f.ram >= Number(q.minRam));
    if (q.minDisk) rows = rows.filter((f) => f.disk >= Number(q.minDisk));
    const key = (q.sort_key ?? 'flavorid') === 'flavorid' ? 'id' : (q.sort_key as keyof FlavorRow);
    const dir = (q.sort_dir ?? 'asc') === 'desc' ? -1 : 1;
    rows.sort((a, b) => (a[key]! < b[key]! ? -dir : a[key]! > b[key]! ? dir : 0));
    let start = 0;
    if (q.marker) {
      start = rows.findIndex((f) => f.id === q.marker) + 1;
      if (start === 0) throw new BadRequest(`marker [${q.marker}] not found`);
    }
    const limit = q.limit !== undefined ? Math.min(Number(q.limit), 1000) : 1000;
    return {
      flavors: rows.slice(start, start + limit).map((f) =>
        detail
          ? flavorView(f, base(), req)
          : {
              id: f.id,
              name: f.name,
              links: link(base(), 'flavors', f.id),
              ...(atLeast(req, '2.55') ? { description: f.description } : {}),
            },
      ),
    };
  };
  app.get(`${P}/flavors`, async (req) => listFlavors(req, false));
  app.get(`${P}/flavors/detail`, async (req) => listFlavors(req, true));
  app.get<{ Params: { id: string } }>(`${P}/flavors/:id`, async (req) => {
    const auth = ctx.authenticate(req);
    return { flavor: flavorView(findFlavor(auth, req.params.id), base(), req) };
  });
  app.post(`${P}/flavors`, async (req, reply) => {
    const auth = ctx.authenticate(req);
    requireAdmin(auth);
    const b = wrapped(req.body, 'flavor');
    const name = reqStr(b, 'name').trim();
    const idRaw = b.id;
    const id = idRaw === undefined || idRaw === null || idRaw === 'auto' ? ctx.ids.uuid() : String(idRaw);
    if (!/^[\w.\- ]{1,255}$/.test(id)) throw new BadRequest('Invalid input for field/attribute id.');
    if (repo.flavor(id)) throw new Conflict(`Flavor with ID ${id} already exists.`);
    if (repo.flavorByName(name)) throw new Conflict(`Flavor with name ${name} already exists.`);
    const row: FlavorRow = {
      id,
      owner: ctx.name,
      name,
      vcpus: reqInt(b, 'vcpus', 1, 2 ** 31 - 1),
      ram: reqInt(b, 'ram', 1, 2 ** 31 - 1),
      disk: reqInt(b, 'disk', 0, 2 ** 31 - 1),
      ephemeral: optInt(b, 'OS-FLV-EXT-DATA:ephemeral', 0) ?? 0,
      swap: optInt(b, 'swap', 0) ?? 0,
      rxtx_factor: typeof b.rxtx_factor === 'number' ? b.rxtx_factor : 1.0,
      is_public: novaBool(b, 'os-flavor-access:is_public') === false ? 0 : 1,
      disabled: 0,
      description: atLeast(req, '2.55') ? (optStr(b, 'description', { max: 65535 }) ?? null) : null,
      extra_specs: '{}',
      created_at: ctx.clock.now(),
    };
    ctx.store.tx(() => ctx.changelog.put(flavorKind, { ...row }));
    reply.code(200);
    return { flavor: flavorView(row, base(), req) };
  });
  app.put<{ Params: { id: string } }>(`${P}/flavors/:id`, async (req, reply) => {
    const f = await flavorToWrite(req, reply, req.params.id);
    if (!f) return reply;
    const b = wrapped(req.body, 'flavor');
    const next = { ...f, description: optStr(b, 'description', { max: 65535 }) ?? null };
    ctx.store.tx(() => ctx.changelog.put(flavorKind, { ...next }));
    return { flavor: flavorView(next, base(), req) };
  });
  app.delete<{ Params: { id: string } }>(`${P}/flavors/:id`, async (req, reply) => {
    const f = await flavorToWrite(req, reply, req.params.id);
    if (!f) return reply;
    ctx.store.tx(() => {
      for (const id of repo.flavorAccessIds(f.id)) ctx.changelog.remove(flavorAccessKind, id);
      ctx.changelog.remove(flavorKind, f.id);
    });
    return reply.code(202).send();
  });

  // extra specs
  const specs = (f: FlavorRow) => JSON.parse(f.extra_specs) as Record<string, string>;
  const saveSpecs = (f: FlavorRow, s: Record<string, string>) =>
    ctx.store.tx(() => ctx.changelog.put(flavorKind, { ...f, extra_specs: JSON.stringify(s) }));
  app.get<{ Params: { id: string } }>(`${P}/flavors/:id/os-extra_specs`, async (req) => {
    const auth = ctx.authenticate(req);
    return { extra_specs: specs(findFlavor(auth, req.params.id)) };
  });
  app.get<{ Params: { id: string; key: string } }>(`${P}/flavors/:id/os-extra_specs/:key`, async (req) => {
    const auth = ctx.authenticate(req);
    const s = specs(findFlavor(auth, req.params.id));
    if (!(req.params.key in s))
      throw new NotFound(`Flavor ${req.params.id} has no extra specs with key ${req.params.key}.`);
    return { [req.params.key]: s[req.params.key] };
  });
  app.post<{ Params: { id: string } }>(`${P}/flavors/:id/os-extra_specs`, async (req, reply) => {
    const f = await flavorToWrite(req, reply, req.params.id);
    if (!f) return reply;
    const add = wrapped(req.body, 'extra_specs');
    const s = specs(f);
    for (const [k, v] of Object.entries(add)) {
      if (typeof v !== 'string' && typeof v !== 'number' && typeof v !== 'boolean')
        throw new BadRequest(`Invalid input for field/attribute extra_specs.${k}.`);
      s[k] = String(v);
    }
    saveSpecs(f, s);
    return { extra_specs: add };
  });
  app.put<{ Params: { id: string; key: string } }>(
    `${P}/flavors/:id/os-extra_specs/:key`,
    async (req, reply) => {
      const f = await flavorToWrite(req, reply, req.params.id);
      if (!f) return reply;
      const body = req.body as Obj;
      if (!isObj(body) || !(req.params.key in body)) throw new BadRequest('Request body and URI mismatch');
      const s = specs(f);
      s[req.params.key] = String(body[req.params.key]);
      saveSpecs(f, s);
      return { [req.params.key]: s[req.params.key] };
    },
  );
  app.delete<{ Params: { id: string; key: string } }>(
    `${P}/flavors/:id/os-extra_specs/:key`,
    async (req, reply) => {
      const f = await flavorToWrite(req, reply, req.params.id);
      if (!f) return reply;
      const s = specs(f);
      if (!(req.params.key in s))
        throw new NotFound(`Flavor ${f.id} has no extra specs with key ${req.params.key}.`);
      delete s[req.params.key];
      saveSpecs(f, s);
      return reply.code(200).send();
    },
  );

  // os-flavor-access
  const accessList = (f: FlavorRow) => ({
    flavor_access: repo.flavorAccessProjects(f.id).map((p) => ({ flavor_id: f.id, tenant_id: p })),
  });
  app.get<{ Params: { id: string } }>(`${P}/flavors/:id/os-flavor-access`, async (req) => {
    const auth = ctx.authenticate(req);
    requireAdmin(auth);
    const f = findFlavor(auth, req.params.id);
    if (f.is_public) throw new NotFound('Access list not available for public flavors.');
    return accessList(f);
  });
  app.post<{ Params: { id: string } }>(`${P}/flavors/:id/action`, async (req, reply) => {
    const f = await flavorToWrite(req, reply, req.params.id);
    if (!f) return reply;
    const b = req.body as Obj;
    if (isObj(b) && isObj(b.addTenantAccess)) {
      if (f.is_public) throw new Conflict('Can not add access to a public flavor.');
      const tenant = reqStr(b.addTenantAccess, 'tenant');
      const id = `${f.id}:${tenant}`;
      if (repo.hasFlavorAccess(f.id, tenant))
        throw new Conflict(
          `Flavor access already exists for flavor ${f.id} and project ${tenant} combination.`,
        );
      ctx.store.tx(() => ctx.changelog.put(flavorAccessKind, { id, flavor_id: f.id, project_id: tenant }));
      return accessList(f);
    }
    if (isObj(b) && isObj(b.removeTenantAccess)) {
      const tenant = reqStr(b.removeTenantAccess, 'tenant');
      if (!repo.hasFlavorAccess(f.id, tenant))
        throw new NotFound(`Flavor access not found for ${f.id} / ${tenant} combination.`);
      ctx.store.tx(() => ctx.changelog.remove(flavorAccessKind, `${f.id}:${tenant}`));
      return accessList(f);
    }
    throw new BadRequest('Unknown flavor action.');
  });

  // ---- keypairs -----------------------------------------------------------------------------------
  const keypairUser = (auth: AuthContext, req: FastifyRequest) => {
    const q = query(req.query);
    if (q.user_id && q.user_id !== auth.userId) {
      requireAdmin(auth);
      return q.user_id;
    }
    return auth.userId;
  };
  app.get(`${P}/os-keypairs`, async (req) => {
    const auth = ctx.authenticate(req);
    const user = keypairUser(auth, req);
    const rows = repo.keypairsOf(user);
    return { keypairs: rows.map((k) => ({ keypair: keypairView(k, req, true) })) };
  });
  app.get<{ Params: { name: string } }>(`${P}/os-keypairs/:name`, async (req) => {
    const auth = ctx.authenticate(req);
    const k = repo.keypair(keypairUser(auth, req), req.params.name);
    if (!k) throw new NotFound(`Keypair ${req.params.name} not found for user ${auth.userId}`);
    return { keypair: keypairView(k, req, false) };
  });
  app.post(`${P}/os-keypairs`, async (req, reply) => {
    const auth = ctx.authenticate(req);
    const b = wrapped(req.body, 'keypair');
    let user = auth.userId;
    if (atLeast(req, '2.10') && typeof b.user_id === 'string' && b.user_id !== auth.userId) {
      requireAdmin(auth);
      user = b.user_id;
    }
    const home = forwardToHome(
      ctx,
      keypairKind,
      { user_id: user },
      req,
      reply,
      () => new BadRequest(`User ${user} is not known at this site.`),
    );
    if (home) return home;
    const name = reqStr(b, 'name');
    if (!/^[\w.@ -]{1,255}$/.test(name))
      throw new BadRequest('Keypair data is invalid: Keypair name contains unsafe characters');
    const type = atLeast(req, '2.2') ? (optStr(b, 'type') ?? 'ssh') : 'ssh';
    if (type !== 'ssh' && type !== 'x509') throw new BadRequest('Invalid input for field/attribute type.');
    if (repo.keypair(user, name)) throw new Conflict(`Key pair '${name}' already exists.`);
    const count = repo.keypairCount(user);
    const limit = limitsOf(svc, auth.projectId ?? '').key_pairs!;
    if (limit >= 0 && count >= limit) throw new Forbidden('Quota exceeded, too many key pairs.');
    let publicKey = optStr(b, 'public_key', { max: 65535 });
    let privateKey: string | undefined;
    if (publicKey === undefined) {
      if (atLeast(req, '2.92')) throw new BadRequest("'public_key' is a required property");
      const pair = generateKeyPairSync('ed25519');
      const raw = Buffer.from(pair.publicKey.export({ format: 'jwk' }).x!, 'base64url');
      publicKey = `ssh-ed25519 ${sshBlob('ssh-ed25519', raw).toString('base64')} Generated-by-Atoll`;
      privateKey = pair.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
    }
    const fingerprint = fingerprintOf(publicKey);
    const row: KeypairRow = {
      id: `${user}:${name}`,
      owner: ctx.name,
      user_id: user,
      name,
      type,
      public_key: publicKey.trim(),
      fingerprint,
      created_at: ctx.clock.now(),
    };
    ctx.store.tx(() => ctx.changelog.put(keypairKind, { ...row }));
    if (atLeast(req, '2.2')) reply.code(201);
    const v = keypairView(row, req, true);
    v.user_id = user;
    if (privateKey) v.private_key = privateKey;
    return { keypair: v };
  });
  app.delete<{ Params: { name: string } }>(`${P}/os-keypairs/:name`, async (req, reply) => {
    const auth = ctx.authenticate(req);
    const k = repo.keypair(keypairUser(auth, req), req.params.name);
    if (!k) throw new NotFound(`Keypair ${req.params.name} not found for user ${auth.userId}`);
    const fwd = forwardIfRemote(ctx, k.owner, req, reply);
    if (fwd) return fwd;
    ctx.store.tx(() => ctx.changelog.remove(keypairKind, k.id));
    return reply.code(atLeast(req, '2.2') ? 204 : 202).send();
  });

  // ---- server groups --------------------------------------------------------------------------------
  const groupView = (g: ServerGroupRow, req: FastifyRequest) => {
    const members = repo.groupMembers(g.id);
    // metadata: always empty, and gone from 2.64.
    const v: Obj = { id: g.id, name: g.name, members, ...(atLeast(req, '2.64') ? {} : { metadata: {} }) };
    if (atLeast(req, '2.64')) {
      v.policy = g.policy;
      v.rules = JSON.parse(g.rules) as Obj;
    } else v.policies = [g.policy];
    if (atLeast(req, '2.13')) {
      v.project_id = g.project_id;
      v.user_id = g.user_id;
    }
    return v;
  };
  app.get(`${P}/os-server-groups`, async (req) => {
    const auth = ctx.authenticate(req);
    const q = query(req.query);
    const all = auth.isAdmin && !!q.all_projects;
    const rows = repo.serverGroups().filter((g) => all || g.project_id === auth.projectId);
    return { server_groups: rows.map((g) => groupView(g, req)) };
  });
  app.get<{ Params: { id: string } }>(`${P}/os-server-groups/:id`, async (req) => {
    const auth = ctx.authenticate(req);
    const g = repo.serverGroup(req.params.id);
    if (!g || !canRead(auth, g.project_id))
      throw new NotFound(`Instance group ${req.params.id} could not be found.`);
    return { server_group: groupView(g, req) };
  });
  app.post(`${P}/os-server-groups`, async (req) => {
    const auth = ctx.authenticate(req);
    const project = requireMember(auth);
    const b = wrapped(req.body, 'server_group');
    const name = reqStr(b, 'name');
    let policy: string | undefined;
    if (atLeast(req, '2.64')) policy = optStr(b, 'policy');
    else if (Array.isArray(b.policies) && typeof b.policies[0] === 'string') policy = b.policies[0];
    if (!policy || !['affinity', 'anti-affinity', 'soft-affinity', 'soft-anti-affinity'].includes(policy))
      throw new BadRequest(`Invalid input for field/attribute policy. Value: ${String(policy)}.`);
    const used = repo.serverGroupCount(project);
    const limit = limitsOf(svc, project).server_groups!;
    if (limit >= 0 && used >= limit) throw new Forbidden('Quota exceeded, too many server groups.');
    const row: ServerGroupRow = {
      id: ctx.ids.uuid(),
      owner: ctx.name,
      project_id: project,
      user_id: auth.userId,
      name,
      policy,
      rules: JSON.stringify(isObj(b.rules) ? b.rules : {}),
      created_at: ctx.clock.now(),
    };
    ctx.store.tx(() => ctx.changelog.put(serverGroupKind, { ...row }));
    return { server_group: groupView(row, req) };
  });
  app.delete<{ Params: { id: string } }>(`${P}/os-server-groups/:id`, async (req, reply) => {
    const auth = ctx.authenticate(req);
    const g = repo.serverGroup(req.params.id);
    if (!g || !canRead(auth, g.project_id))
      throw new NotFound(`Instance group ${req.params.id} could not be found.`);
    const fwd = forwardIfRemote(ctx, g.owner, req, reply);
    if (fwd) return fwd;
    ctx.store.tx(() => ctx.changelog.remove(serverGroupKind, g.id));
    return reply.code(204).send();
  });

  // ---- availability zones: every site is one ----------------------------------------------------
  const zones = (detail: boolean) => ({
    availabilityZoneInfo: ctx.registry
      .list()
      .filter((s) => ctx.registry.inGoodStanding(s.id))
      .map((s) => {
        const up = ctx.owns(s.id) || ctx.replicator.isUp(s.id);
        const z: Obj = { zoneName: s.id, zoneState: { available: up }, hosts: null };
        if (detail && ctx.owns(s.id))
          z.hosts = Object.fromEntries(
            repo.hosts().map((h) => [
              h.id,
              {
                'nova-compute': {
                  available: h.state === 'up',
                  active: h.status === 'enabled',
                  updated_at: null,
                },
              },
            ]),
          );
        return z;
      }),
  });
  app.get(`${P}/os-availability-zone`, async (req) => {
    requireReader(ctx.authenticate(req));
    return zones(false);
  });
  app.get(`${P}/os-availability-zone/detail`, async (req) => {
    requireAdmin(ctx.authenticate(req));
    return zones(true);
  });

  // ---- hypervisors and services (admin) -------------------------------------------------------------
  const hypervisorView = (h: ReturnType<typeof repo.hosts>[number], detail: boolean, req: FastifyRequest) => {
    const v: Obj = {
      id: atLeast(req, '2.53') ? h.service_id : hostNumber(h.id),
      hypervisor_hostname: h.id,
      state: h.state,
      status: h.status,
    };
    if (!detail) return v;
    Object.assign(v, {
      hypervisor_type: svc.hypervisor.type,
      hypervisor_version: svc.hypervisor.version,
      host_ip: '127.0.0.1',
      service: {
        id: atLeast(req, '2.53') ? h.service_id : hostNumber(h.id),
        host: h.id,
        disabled_reason: h.disabled_reason,
      },
    });
    if (!atLeast(req, '2.88'))
      Object.assign(v, {
        vcpus: h.vcpus,
        memory_mb: h.ram_mb,
        local_gb: h.disk_gb,
        vcpus_used: h.used_vcpus,
        memory_mb_used: h.used_ram_mb,
        local_gb_used: h.used_disk_gb,
        free_ram_mb: h.ram_mb - h.used_ram_mb,
        free_disk_gb: h.disk_gb - h.used_disk_gb,
        current_workload: 0,
        running_vms: h.running_vms,
        disk_available_least: h.disk_gb - h.used_disk_gb,
        // A JSON string below 2.28, an object from it (Nova's schema).
        cpu_info: ((info: Obj) => (atLeast(req, '2.28') ? info : JSON.stringify(info)))(
          svc.hypervisor.accel ? { accel: svc.hypervisor.accel } : {},
        ),
      });
    return v;
  };
  app.get(`${P}/os-hypervisors`, async (req) => {
    requireAdmin(ctx.authenticate(req));
    return { hypervisors: repo.hosts().map((h) => hypervisorView(h, false, req)) };
  });
  app.get(`${P}/os-hypervisors/detail`, async (req) => {
    requireAdmin(ctx.authenticate(req));
    return { hypervisors: repo.hosts().map((h) => hypervisorView(h, true, req)) };
  });
  app.get(`${P}/os-hypervisors/statistics`, async (req) => {
    requireAdmin(ctx.authenticate(req));
    const hs = repo.hosts();
    const sum = (f: (h: (typeof hs)[number]) => number) => hs.reduce((a, h) => a + f(h), 0);
    return {
      hypervisor_statistics: {
        count: hs.length,
        vcpus: sum((h) => h.vcpus),
        vcpus_used: sum((h) => h.used_vcpus),
        memory_mb: sum((h) => h.ram_mb),
        memory_mb_used: sum((h) => h.used_ram_mb),
        free_ram_mb: sum((h) => h.ram_mb - h.used_ram_mb),
        local_gb: sum((h) => h.disk_gb),
        local_gb_used: sum((h) => h.used_disk_gb),
        free_disk_gb: sum((h) => h.disk_gb - h.used_disk_gb),
        running_vms: sum((h) => h.running_vms),
        current_workload: 0,
        disk_available_least: sum((h) => h.disk_gb - h.used_disk_gb),
      },
    };
  });
  const hypervisor = (id: string) => {
    const h = repo.hosts().find((x) => x.service_id === id || x.id === id || String(hostNumber(x.id)) === id);
    if (!h) throw new NotFound(`Hypervisor with ID ${id} could not be found.`);
    return h;
  };
  // Search and servers by hostname pattern (a substring, as Nova's SQL LIKE), replaced in 2.53 by
  // the hypervisor_hostname_pattern and with_servers query parameters.
  const matching = (req: FastifyRequest<{ Params: { pattern: string } }>) => {
    requireAdmin(ctx.authenticate(req));
    if (atLeast(req, '2.53')) throw new NotFound('The resource could not be found.');
    const hs = repo.hosts().filter((h) => h.id.includes(req.params.pattern));
    if (!hs.length) throw new NotFound(`No hypervisor matching '${req.params.pattern}' could be found.`);
    return hs;
  };
  app.get<{ Params: { pattern: string } }>(`${P}/os-hypervisors/:pattern/search`, async (req) => ({
    hypervisors: matching(req).map((h) => hypervisorView(h, false, req)),
  }));
  app.get<{ Params: { pattern: string } }>(`${P}/os-hypervisors/:pattern/servers`, async (req) => ({
    hypervisors: matching(req).map((h) => {
      const servers = repo.serversOnHost(h.id).map((x) => ({ uuid: x.id, name: x.name }));
      return { ...hypervisorView(h, false, req), ...(servers.length ? { servers } : {}) };
    }),
  }));
  app.get<{ Params: { id: string } }>(`${P}/os-hypervisors/:id`, async (req) => {
    requireAdmin(ctx.authenticate(req));
    return { hypervisor: hypervisorView(hypervisor(req.params.id), true, req) };
  });
  // Nova's uptime (removed in 2.88, where show carries it): `openstack hypervisor show` asks for it.
  app.get<{ Params: { id: string } }>(`${P}/os-hypervisors/:id/uptime`, async (req) => {
    requireAdmin(ctx.authenticate(req));
    if (atLeast(req, '2.88')) throw new NotFound('The resource could not be found.');
    // The host's `uptime` line, as Nova's libvirt driver reports it (the CLI parses this shape).
    const up = Math.floor(uptime() / 60);
    const at = new Date(ctx.clock.now()).toISOString().slice(11, 19);
    const load = loadavg()
      .map((l) => l.toFixed(2))
      .join(', ');
    const line = ` ${at} up ${Math.floor(up / 1440)} days, ${Math.floor((up % 1440) / 60)}:${String(up % 60).padStart(2, '0')},  0 users,  load average: ${load}`;
    return { hypervisor: { ...hypervisorView(hypervisor(req.params.id), false, req), uptime: line } };
  });
  app.get(`${P}/os-services`, async (req) => {
    requireAdmin(ctx.authenticate(req));
    const q = query(req.query);
    const now = new Date(ctx.clock.now()).toISOString().replace(/\.(\d{3})Z$/, '.$1000');
    const services: Obj[] = [
      {
        id: atLeast(req, '2.53') ? `${ctx.name}-scheduler` : 1,
        binary: 'nova-scheduler',
        host: ctx.name,
        zone: 'internal',
        status: 'enabled',
        state: 'up',
        updated_at: now,
        disabled_reason: null,
        ...(atLeast(req, '2.11') ? { forced_down: false } : {}),
      },
      {
        id: atLeast(req, '2.53') ? `${ctx.name}-conductor` : 2,
        binary: 'nova-conductor',
        host: ctx.name,
        zone: 'internal',
        status: 'enabled',
        state: 'up',
        updated_at: now,
        disabled_reason: null,
        ...(atLeast(req, '2.11') ? { forced_down: false } : {}),
      },
      ...repo.hosts().map((h) => ({
        id: atLeast(req, '2.53') ? h.service_id : hostNumber(h.id) + 2,
        binary: 'nova-compute',
        host: h.id,
        zone: ctx.name,
        status: h.status,
        state: h.state,
        updated_at: now,
        disabled_reason: h.disabled_reason,
        ...(atLeast(req, '2.11') ? { forced_down: false } : {}),
      })),
    ];
    return {
      services: services.filter(
        (s) => (!q.binary || s.binary === q.binary) && (!q.host || s.host === q.host),
      ),
    };
  });
}

/** The OpenSSH wire encoding of a public key: string(type) || string(key). */
function sshBlob(type: string, key: Buffer): Buffer {
  const str = (b: Buffer) => {
    const len = Buffer.alloc(4);
    len.writeUInt32BE(b.length);
    return Buffer.concat([len, b]);
  };
  return Buffer.concat([str(Buffer.from(type)), str(key)]);
}

/** Nova's fingerprint: MD5 of the key blob as colon-separated hex (x509: SHA1 of the DER). */
function fingerprintOf(publicKey: string): string {
  const parts = publicKey.trim().split(/\s+/);
  if (parts.length < 2 || !/^(ssh-|ecdsa-)/.test(parts[0]!))
    throw new BadRequest('Keypair data is invalid: failed to generate fingerprint');
  const blob = Buffer.from(parts[1]!, 'base64');
  if (blob.length < 16) throw new BadRequest('Keypair data is invalid: failed to generate fingerprint');
  return createHash('md5').update(blob).digest('hex').match(/../g)!.join(':');
}

const TRUE = ['true', '1', 'on', 'yes', 'y', 't'];
const FALSE = ['false', '0', 'off', 'no', 'n', 'f'];
/** Nova's parameter_types.boolean: a JSON boolean or one of its strings ("True", "0", "yes"...). */
function novaBool(o: Obj, field: string): boolean | undefined {
  const v = o[field];
  if (v === undefined || v === null || typeof v === 'boolean') return v ?? undefined;
  const s = String(v).toLowerCase();
  if (TRUE.includes(s)) return true;
  if (FALSE.includes(s)) return false;
  throw new BadRequest(`Invalid input for field/attribute ${field}. Value: ${String(v)}.`);
}

const hostNumber = (name: string) => Number(/(\d+)$/.exec(name)?.[1] ?? 0);
