/**
 * @module Networking API v2.0 routes (Neutron), under /network: the version and extension discovery
 * documents and availability zones here, each resource's routes in its own file (api/resource.ts for
 * what collections share). Reads are answered from this site's replicas; a write to a row another site
 * owns is forwarded to that owner. Creates happen here, ports included: a port on another site's
 * network takes its addresses from blocks leased to this site.
 * https://docs.openstack.org/api-ref/network/v2/
 */
import type { FastifyInstance } from 'fastify';
import { NotFound } from '../../../core/errors.ts';
import type { ServiceContext } from '../../common/module.ts';
import type { NetworkService } from '../service.ts';
import type { ResourceKind } from '../store/schema.ts';
import { registerAgentRoutes } from './agents.ts';
import { floatingIpResource } from './floating-ips.ts';
import { listBody, multiQuery } from './listing.ts';
import { networkResource, registerIpAvailability, subnetPoolResource, subnetResource } from './networks.ts';
import { portResource } from './ports.ts';
import { registerQuotaRoutes } from './quotas.ts';
import { V2, registerResource } from './resource.ts';
import { registerRouterActions, routerResource } from './routers.ts';
import { registerTagRoutes } from './tags.ts';
import { meteringLabelResource, meteringRuleResource } from './metering.ts';
import { securityGroupResource, securityGroupRuleResource } from './security-groups.ts';

const EXTENSIONS: [string, string, string][] = [
  ['subnet_allocation', 'Subnet Allocation', 'Enables allocation of subnets from a subnet pool'],
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
  // Agents are the sites' network services (api/agents.ts): one DHCP and one L3 agent per site.
  ['agent', 'agent', 'The agent management extension.'],
  ['dhcp_agent_scheduler', 'DHCP Agent Scheduler', 'Schedule networks among dhcp agents'],
  ['l3_agent_scheduler', 'L3 Agent Scheduler', 'Schedule routers among l3 agents'],
  // `distributed` is an admin's flag on a router; routing is the same either way (docs/network.md).
  ['dvr', 'Distributed Virtual Router', 'Enables configuration of Distributed Virtual Routers.'],
  // Labels and rules are stored; nothing is metered (docs/network.md).
  ['metering', 'Neutron Metering', 'Neutron Metering extension.'],
  ['tag', 'Tag support', 'Enables to set tag on resources.'],
  [
    'standard-attr-tag',
    'Tag support for resources with standard attribute: subnet, trunk, network_segment_range, router, network, policy, subnetpool, port, security_group, floatingip',
    'Enables to set tag on resources with standard attribute.',
  ],
  [
    'ip-substring-filtering',
    'IP address substring filtering',
    'Provides IP address substring filtering when listing ports',
  ],
  [
    'service-type',
    'Neutron Service Type Management',
    'API for retrieving service providers for Neutron advanced services',
  ],
];

/** The resources with standard attributes, so tags (Neutron's standard-attr-tag). */
const TAGGABLE = new Set<ResourceKind>([
  'network',
  'subnet',
  'port',
  'router',
  'floating_ip',
  'security_group',
  'subnet_pool',
]);

export function registerNetworkRoutes(app: FastifyInstance, ctx: ServiceContext, svc: NetworkService): void {
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
        'subnetpools',
        'agents',
        'metering-labels',
        'metering-label-rules',
        'service-providers',
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
  // No pluggable service providers: each service is the site's own (an empty list, as Neutron gives
  // when none is configured).
  app.get(`${V2}/service-providers`, async (req) => {
    ctx.authenticate(req);
    return { service_providers: [] };
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

  for (const res of [
    networkResource(svc),
    subnetResource(ctx, svc),
    portResource(svc),
    securityGroupResource(svc),
    securityGroupRuleResource(ctx, svc),
    routerResource(svc),
    floatingIpResource(svc),
    subnetPoolResource(svc),
    meteringLabelResource(svc),
    meteringRuleResource(ctx, svc),
  ]) {
    registerResource(app, ctx, svc, res);
    if (TAGGABLE.has(res.kind)) registerTagRoutes(app, ctx, svc, res);
  }
  registerRouterActions(app, ctx, svc);
  registerAgentRoutes(app, ctx, svc);
  registerQuotaRoutes(app, ctx, svc);
  registerIpAvailability(app, ctx, svc);
}
