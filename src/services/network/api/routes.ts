/**
 * @module Networking API v2.0 routes (Neutron), under /network. Reads are answered from this site's
 * replicas; a write to a row another site owns is forwarded to that owner. Creates happen here, ports
 * included: a port on another site's network takes its addresses from blocks leased to this site.
 * https://docs.openstack.org/api-ref/network/v2/
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { AuthContext } from '../../../core/auth.ts';
import { requireAdmin, requireMember, requireReader } from '../../../core/auth.ts';
import { BadRequest, Conflict, NotFound } from '../../../core/errors.ts';
import type { SiteContext } from '../../common/module.ts';
import { isObj, optStr, wrapped } from '../../common/input.ts';
import type { Obj } from '../../common/input.ts';
import type { NetworkService, StoredRow } from '../service.ts';
import { DEFAULT_QUOTAS, requiredRef } from '../service.ts';
import type { ResourceKind } from '../store/schema.ts';
import { NetKind } from '../store/schema.ts';
import { forwardToHome, unknownProject } from '../../common/home.ts';
import { listBody, multiQuery, trimFields } from './listing.ts';

const V2 = '/network/v2.0';

interface Resource {
  kind: ResourceKind;
  path: string;
  singular: string;
  collection: string;
  label: string;
  render(r: StoredRow): Obj;
  create(
    auth: AuthContext,
    project: string,
    o: Obj,
    req: FastifyRequest,
    reply: FastifyReply,
  ): Promise<Obj | FastifyReply> | Obj;
  update(auth: AuthContext, r: StoredRow, o: Obj): Obj | Promise<Obj>;
  remove(auth: AuthContext, r: StoredRow): void;
}

const EXTENSIONS: [string, string, string][] = [
  ['external-net', 'Neutron external network', 'Adds external network attribute to network resource.'],
  [
    'router',
    'Neutron L3 Router',
    'Router abstraction for basic L3 forwarding between L2 Neutron networks and access to external networks via a NAT gateway.',
  ],
  [
    'ext-gw-mode',
    'Neutron L3 Configurable external gateway mode',
    'Extension of the router abstraction for specifying whether SNAT should occur on the external gateway',
  ],
  ['extraroute', 'Neutron Extra Route', 'Extra routes configuration for L3 router'],
  ['quotas', 'Quota management support', 'Expose functions for quotas management per project'],
  [
    'quota_details',
    'Quota details management support',
    'Expose functions for quotas usage statistics per project',
  ],
  ['security-group', 'security-group', 'The security groups extension.'],
  ['binding', 'Port Binding', 'Expose port bindings of a virtual port to external application'],
  ['port-security', 'Port Security', 'Provides port security'],
  ['allowed-address-pairs', 'Allowed Address Pairs', 'Provides allowed address pairs'],
  ['extra_dhcp_opt', 'Neutron Extra DHCP options', 'Extra options configuration for DHCP.'],
  ['net-mtu', 'Network MTU', 'Provides MTU attribute for a network resource.'],
  ['availability_zone', 'Availability Zone', 'The availability zone extension.'],
  ['network_availability_zone', 'Network Availability Zone', 'Availability zone support for network.'],
  ['router_availability_zone', 'Router Availability Zone', 'Availability zone support for router.'],
  [
    'standard-attr-description',
    'standard-attr-description',
    'Extension to add descriptions to standard attributes',
  ],
  [
    'standard-attr-timestamp',
    'Resource timestamps',
    'Adds created_at and updated_at fields to all Neutron resources that have Neutron standard attributes.',
  ],
  [
    'standard-attr-revisions',
    'Resource revision numbers',
    'This extension will display the revision number of neutron resources.',
  ],
  ['project-id', 'project_id field enabled', 'Extension that indicates that project_id field is enabled.'],
  [
    'fip-port-details',
    'Floating IP Port Details Extension',
    'Add port_details attribute to Floating IP resource',
  ],
  ['pagination', 'Pagination support', 'Extension that indicates that pagination is enabled.'],
  ['sorting', 'Sorting support', 'Extension that indicates that sorting is enabled.'],
  ['provider', 'Provider Network', 'Expose mapping of virtual networks to physical networks'],
  [
    'stateful-security-group',
    'Stateful security group',
    'Indicates if the security group is stateful or not',
  ],
];

export function registerNetworkRoutes(app: FastifyInstance, ctx: SiteContext, svc: NetworkService): void {
  const version = () => ({
    id: 'v2.0',
    status: 'CURRENT',
    links: [{ rel: 'self', href: `${ctx.publicUrl()}/network/v2.0/` }],
  });
  app.get('/network', async () => ({ versions: [version()] }));
  app.get(V2, async (req) => {
    ctx.authenticate(req);
    return {
      resources: [
        'networks',
        'subnets',
        'ports',
        'routers',
        'floatingips',
        'security-groups',
        'security-group-rules',
        'quotas',
      ].map((c) => ({
        name: c.replace(/s$/, ''),
        collection: c,
        links: [{ rel: 'self', href: `${ctx.publicUrl()}${V2}/${c}` }],
      })),
    };
  });
  app.get(`${V2}/extensions`, async (req) => {
    ctx.authenticate(req);
    return {
      extensions: EXTENSIONS.map(([alias, name, description]) => ({
        alias,
        name,
        description,
        updated: '2024-01-01T00:00:00-00:00',
        links: [],
      })),
    };
  });
  app.get(`${V2}/extensions/:alias`, async (req) => {
    ctx.authenticate(req);
    const { alias } = req.params as { alias: string };
    const e = EXTENSIONS.find((x) => x[0] === alias);
    if (!e) throw new NotFound(`Extension with alias ${alias} does not exist`);
    return {
      extension: { alias, name: e[1], description: e[2], updated: '2024-01-01T00:00:00-00:00', links: [] },
    };
  });
  app.get(`${V2}/availability_zones`, async (req) => {
    ctx.authenticate(req);
    const sites = ctx.registry.list().map((s) => s.id);
    const zones = sites.flatMap((name) =>
      ['network', 'router'].map((resource) => ({
        name,
        resource,
        state: ctx.replicator.isUp(name) || name === ctx.name ? 'available' : 'unavailable',
      })),
    );
    return {
      availability_zones: listBody('availability_zones', zones, multiQuery(req.query), '').availability_zones,
    };
  });

  const projectFor = (auth: AuthContext, o: Obj): string => {
    const p = requireMember(auth);
    const asked = optStr(o, 'project_id') ?? optStr(o, 'tenant_id');
    if (asked && asked !== p) {
      requireAdmin(auth);
      return asked;
    }
    return p;
  };

  const resources: Resource[] = [
    {
      kind: 'network',
      path: 'networks',
      singular: 'network',
      collection: 'networks',
      label: 'network',
      render: (r) => svc.renderNetwork(r),
      create: (auth, project, o) => svc.createNetwork(auth, project, o),
      update: (auth, r, o) => svc.updateNetwork(auth, r, o),
      remove: (_auth, r) => svc.deleteNetwork(r),
    },
    {
      kind: 'subnet',
      path: 'subnets',
      singular: 'subnet',
      collection: 'subnets',
      label: 'subnet',
      render: (r) => svc.renderSubnet(r),
      create: async (auth, project, o, req, reply) => {
        const net = svc.visible(auth, 'network', requiredRef(o, 'network_id'));
        // A network's subnets are made by its owner (their origin rule), which leases their blocks.
        if (!ctx.owns(net.owner)) return ctx.forwardTo(net.owner, req, reply);
        return svc.createSubnet(auth, project, net, o);
      },
      update: (_auth, r, o) => svc.updateSubnet(r, o),
      remove: (_auth, r) => svc.deleteSubnet(r),
    },
    {
      kind: 'port',
      path: 'ports',
      singular: 'port',
      collection: 'ports',
      label: 'port',
      render: (r) => svc.renderPort(r),
      create: async (auth, project, o) => {
        const netId = requiredRef(o, 'network_id');
        const net = svc.visible(auth, 'network', netId);
        // Made here, whoever owns the network: addresses come from blocks leased to this site, and a
        // block is asked of the subnet's owner (one round trip) when none has room (docs/network.md).
        return svc.leases.withLeases(() => svc.createPort(auth, project, net, o), net.id);
      },
      update: (auth, r, o) =>
        o.fixed_ips === undefined
          ? svc.updatePort(auth, r, o)
          : svc.leases.withLeases(
              () => svc.updatePort(auth, svc.row('port', r.id) ?? r, o),
              String(r.network_id),
            ),
      remove: (_auth, r) => {
        const b = svc.body(r);
        if (String(b.device_owner).startsWith('network:router') || b.device_owner === 'network:floatingip')
          throw new Conflict(
            `Port ${r.id} cannot be deleted directly via the port API: has device owner ${String(b.device_owner)}.`,
            'ServicePortInUse',
          );
        svc.deletePort(r);
      },
    },
    {
      kind: 'security_group',
      path: 'security-groups',
      singular: 'security_group',
      collection: 'security_groups',
      label: 'security group',
      render: (r) => svc.renderGroup(r),
      create: (_auth, project, o) => {
        svc.ensureDefaultGroup(project);
        return svc.createGroup(project, o);
      },
      update: (_auth, r, o) => svc.updateGroup(r, o),
      remove: (auth, r) => svc.deleteGroup(auth, r),
    },
    {
      kind: 'security_group_rule',
      path: 'security-group-rules',
      singular: 'security_group_rule',
      collection: 'security_group_rules',
      label: 'security group rule',
      render: (r) => svc.body(r),
      create: async (auth, _project, o, req, reply) => {
        const gid = requiredRef(o, 'security_group_id');
        const g = svc.writable(auth, 'security_group', gid, 'security group');
        if (!ctx.owns(g.owner)) return ctx.forwardTo(g.owner, req, reply);
        return svc.createRule(auth, g, o);
      },
      update: () => {
        throw new BadRequest('Security group rules cannot be updated.', 'BadRequest');
      },
      remove: (_auth, r) => svc.deleteRule(r),
    },
    {
      kind: 'router',
      path: 'routers',
      singular: 'router',
      collection: 'routers',
      label: 'router',
      render: (r) => svc.renderRouter(r),
      create: (auth, project, o) => svc.createRouter(auth, project, o),
      update: (auth, r, o) => svc.updateRouter(auth, r, o),
      remove: (_auth, r) => svc.deleteRouter(r),
    },
    {
      kind: 'floating_ip',
      path: 'floatingips',
      singular: 'floatingip',
      collection: 'floatingips',
      label: 'floating IP',
      render: (r) => svc.renderFloatingIp(r),
      create: (auth, project, o) => svc.createFloatingIp(auth, project, o),
      update: (auth, r, o) => svc.updateFloatingIp(auth, r, o),
      remove: (_auth, r) => svc.deleteFloatingIp(r),
    },
  ];

  for (const res of resources) {
    const base = `${V2}/${res.path}`;
    app.get(base, async (req) => {
      const auth = ctx.authenticate(req);
      requireReader(auth);
      if (res.kind === 'security_group' && auth.projectId) svc.ensureDefaultGroup(auth.projectId);
      const q = multiQuery(req.query);
      let rows: StoredRow[];
      // a cheap pre-filter for the common lookups (by id, name, network, device)
      const one = (k: string) => (q.get(k)?.length === 1 ? q.get(k)![0] : undefined);
      if (one('id')) rows = svc.rows(res.kind, 'WHERE id = ?', one('id'));
      else if (res.kind === 'port' && one('device_id') !== undefined)
        rows = svc.rows('port', 'WHERE device_id = ?', one('device_id'));
      else if ((res.kind === 'port' || res.kind === 'subnet') && one('network_id'))
        rows = svc.rows(res.kind, 'WHERE network_id = ?', one('network_id'));
      else rows = svc.rows(res.kind);
      const items = rows.filter((r) => svc.canSee(auth, res.kind, r)).map((r) => res.render(r));
      return listBody(res.collection, items, q, `${ctx.publicUrl()}${base}`);
    });
    app.get(`${base}/:id`, async (req) => {
      const auth = ctx.authenticate(req);
      requireReader(auth);
      const { id } = req.params as { id: string };
      const r = svc.visible(auth, res.kind, id, res.label);
      const fields = multiQuery(req.query).get('fields');
      return { [res.singular]: trimFields([res.render(r)], fields)[0] };
    });
    app.post(base, async (req, reply) => {
      const auth = ctx.authenticate(req);
      const body = req.body;
      if (isObj(body) && Array.isArray(body[res.collection])) {
        // bulk create: each item on its own (not atomic across items, unlike Neutron's native bulk)
        const out: Obj[] = [];
        for (const item of body[res.collection] as unknown[]) {
          if (!isObj(item)) throw new BadRequest(`Invalid ${res.collection} item.`);
          const made = await res.create(auth, projectFor(auth, item), item, req, reply);
          if ((made as unknown) === reply || !isObj(made))
            throw new BadRequest(`Bulk create of ${res.collection} must not span sites.`);
          out.push(made as Obj);
        }
        reply.code(201);
        return { [res.collection]: out };
      }
      const o = wrapped(body, res.singular);
      const made = await res.create(auth, projectFor(auth, o), o, req, reply);
      if ((made as unknown) === reply) return reply;
      reply.code(201);
      return { [res.singular]: made };
    });
    app.put(`${base}/:id`, async (req, reply) => {
      const auth = ctx.authenticate(req);
      const { id } = req.params as { id: string };
      const r = svc.writable(auth, res.kind, id, res.label);
      if (!ctx.owns(r.owner)) return ctx.forwardTo(r.owner, req, reply);
      return { [res.singular]: await res.update(auth, r, wrapped(req.body, res.singular)) };
    });
    app.delete(`${base}/:id`, async (req, reply) => {
      const auth = ctx.authenticate(req);
      const { id } = req.params as { id: string };
      const r = svc.writable(auth, res.kind, id, res.label);
      if (!ctx.owns(r.owner)) return ctx.forwardTo(r.owner, req, reply);
      res.remove(auth, r);
      return reply.code(204).send();
    });
  }

  for (const action of ['add_router_interface', 'remove_router_interface'] as const) {
    app.put(`${V2}/routers/:id/${action}`, async (req, reply) => {
      const auth = ctx.authenticate(req);
      const { id } = req.params as { id: string };
      const r = svc.writable(auth, 'router', id, 'router');
      if (!ctx.owns(r.owner)) return ctx.forwardTo(r.owner, req, reply);
      if (!isObj(req.body)) throw new BadRequest('The request body must be a JSON object.');
      return action === 'add_router_interface'
        ? svc.addInterface(auth, r, req.body)
        : svc.removeInterface(auth, r, req.body);
    });
  }
  for (const action of ['add_extraroutes', 'remove_extraroutes'] as const) {
    app.put(`${V2}/routers/:id/${action}`, async (req, reply) => {
      const auth = ctx.authenticate(req);
      const { id } = req.params as { id: string };
      const r = svc.writable(auth, 'router', id, 'router');
      if (!ctx.owns(r.owner)) return ctx.forwardTo(r.owner, req, reply);
      const o = wrapped(req.body, 'router');
      const routes = Array.isArray(o.routes) ? (o.routes as Obj[]) : [];
      const cur = (svc.body(r).routes as Obj[]) ?? [];
      const same = (a: Obj, b: Obj) => a.destination === b.destination && a.nexthop === b.nexthop;
      const next =
        action === 'add_extraroutes'
          ? [...cur, ...routes.filter((x) => !cur.some((c) => same(c, x)))]
          : cur.filter((c) => !routes.some((x) => same(c, x)));
      return { router: svc.updateRouter(auth, r, { routes: next }) };
    });
  }

  // ---- quotas (https://docs.openstack.org/api-ref/network/v2/#quotas-extension-quotas) ----
  const quotaBody = (q: Record<string, number>) => ({ ...q });
  app.get(`${V2}/quotas`, async (req) => {
    requireAdmin(ctx.authenticate(req));
    const rows = ctx.store.db.prepare('SELECT id FROM net_quotas ORDER BY id').pluck().all() as string[];
    return { quotas: rows.map((p) => ({ ...svc.quotas(p), project_id: p, tenant_id: p })) };
  });
  const quotaTarget = (auth: AuthContext, project: string) => {
    if (!auth.isAdmin && auth.projectId !== project)
      throw new NotFound(`Quota for project ${project} could not be found.`);
  };
  app.get(`${V2}/quotas/:project/default`, async (req) => {
    const auth = ctx.authenticate(req);
    quotaTarget(auth, (req.params as { project: string }).project);
    return { quota: { ...DEFAULT_QUOTAS } };
  });
  app.get(`${V2}/quotas/:project/details`, async (req) => {
    const auth = ctx.authenticate(req);
    const { project } = req.params as { project: string };
    quotaTarget(auth, project);
    const q = svc.quotas(project);
    const u = svc.usage(project);
    return {
      quota: Object.fromEntries(
        Object.entries(q).map(([k, limit]) => [k, { limit, used: u[k as keyof typeof u] ?? 0, reserved: 0 }]),
      ),
    };
  });
  app.get(`${V2}/quotas/:project`, async (req) => {
    const auth = ctx.authenticate(req);
    const { project } = req.params as { project: string };
    quotaTarget(auth, project);
    return { quota: quotaBody(svc.quotas(project)) };
  });
  app.put(`${V2}/quotas/:project`, async (req, reply) => {
    const auth = ctx.authenticate(req);
    requireAdmin(auth);
    const { project } = req.params as { project: string };
    const owner = ctx.store.db.prepare('SELECT owner FROM net_quotas WHERE id = ?').pluck().get(project) as
      string | undefined;
    if (owner && !ctx.owns(owner)) return ctx.forwardTo(owner, req, reply);
    const home = owner
      ? undefined
      : forwardToHome(ctx, NetKind.NetQuota, { id: project }, req, reply, unknownProject(project));
    if (home) return home;
    const o = wrapped(req.body, 'quota');
    const changes: Record<string, number> = {};
    for (const [k, v] of Object.entries(o)) {
      if (!(k in DEFAULT_QUOTAS)) throw new BadRequest(`Unrecognized attribute(s) '${k}'`, 'InvalidInput');
      const n = typeof v === 'string' && /^-?\d+$/.test(v) ? Number(v) : v;
      if (typeof n !== 'number' || !Number.isInteger(n) || n < -1)
        throw new BadRequest(`Invalid input for ${k}: must be an integer >= -1.`, 'InvalidInput');
      changes[k] = n;
    }
    return { quota: svc.setQuotas(project, changes) };
  });
  app.delete(`${V2}/quotas/:project`, async (req, reply) => {
    const auth = ctx.authenticate(req);
    requireAdmin(auth);
    const { project } = req.params as { project: string };
    const owner = ctx.store.db.prepare('SELECT owner FROM net_quotas WHERE id = ?').pluck().get(project) as
      string | undefined;
    if (owner && !ctx.owns(owner)) return ctx.forwardTo(owner, req, reply);
    svc.resetQuotas(project);
    return reply.code(204).send();
  });

  app.get(`${V2}/network-ip-availabilities/:id`, async (req) => {
    requireAdmin(ctx.authenticate(req));
    const { id } = req.params as { id: string };
    const n = svc.visible(ctx.authenticate(req), 'network', id);
    const subnets = svc.rows('subnet', 'WHERE network_id = ?', id).map((s) => {
      const u = svc.subnetUsage(s);
      return {
        subnet_id: s.id,
        subnet_name: s.name,
        cidr: s.cidr,
        ip_version: s.ip_version,
        used_ips: u.used,
        total_ips: Number(u.total),
      };
    });
    return {
      network_ip_availability: {
        network_id: id,
        network_name: n.name,
        project_id: n.project_id,
        tenant_id: n.project_id,
        subnet_ip_availability: subnets,
        used_ips: subnets.reduce((a, s) => a + s.used_ips, 0),
        total_ips: subnets.reduce((a, s) => a + s.total_ips, 0),
      },
    };
  });
}
