/**
 * @module Routes of networks and subnets (https://docs.openstack.org/api-ref/network/v2/#networks,
 * #subnets), and a network's IP availability. A subnet is made by its network's owner, which leases
 * its blocks: a create elsewhere is forwarded there.
 */
import type { FastifyInstance } from 'fastify';
import { requireAdmin } from '../../../core/auth.ts';
import type { ServiceContext } from '../../common/module.ts';
import { forwardIfRemote } from '../../common/owner.ts';
import { visible } from '../domain/access.ts';
import { createNetwork, deleteNetwork, updateNetwork } from '../domain/networks.ts';
import { requiredRef } from '../domain/records.ts';
import { createSubnet, deleteSubnet, subnetForIpam, updateSubnet } from '../domain/subnets.ts';
import type { NetworkService } from '../service.ts';
import type { Resource } from './resource.ts';
import { V2 } from './resource.ts';
import { createSubnetPool, deleteSubnetPool, updateSubnetPool } from '../domain/subnetpools.ts';
import { renderNetwork, renderSubnet, renderSubnetPool } from './views.ts';

export function subnetPoolResource(svc: NetworkService): Resource {
  const d = svc.deps;
  return {
    kind: 'subnet_pool',
    path: 'subnetpools',
    singular: 'subnetpool',
    collection: 'subnetpools',
    label: 'subnetpool',
    render: renderSubnetPool,
    create: (auth, project, o) => renderSubnetPool(createSubnetPool(d, auth, project, o)),
    update: (auth, r, o) => renderSubnetPool(updateSubnetPool(d, auth, r, o)),
    remove: (_auth, r) => deleteSubnetPool(d, r),
  };
}

export function networkResource(svc: NetworkService): Resource {
  const d = svc.deps;
  return {
    kind: 'network',
    path: 'networks',
    singular: 'network',
    collection: 'networks',
    label: 'network',
    render: (r) => renderNetwork(svc.repo, r),
    create: (auth, project, o) => renderNetwork(svc.repo, createNetwork(d, auth, project, o)),
    update: (auth, r, o) => renderNetwork(svc.repo, updateNetwork(d, auth, r, o)),
    remove: (_auth, r) => deleteNetwork(d, r),
  };
}

export function subnetResource(ctx: ServiceContext, svc: NetworkService): Resource {
  const d = svc.deps;
  return {
    kind: 'subnet',
    path: 'subnets',
    singular: 'subnet',
    collection: 'subnets',
    label: 'subnet',
    render: renderSubnet,
    create: async (auth, project, o, req, reply) => {
      const net = visible(d, auth, 'network', requiredRef(o, 'network_id'));
      // A network's subnets are made by its owner (their origin rule), which leases their blocks.
      const fwd = forwardIfRemote(ctx, net.owner, req, reply);
      if (fwd) return fwd;
      return renderSubnet(createSubnet(d, auth, project, net, o));
    },
    update: (_auth, r, o) => renderSubnet(updateSubnet(d, r, o)),
    remove: (_auth, r) => deleteSubnet(d, r),
  };
}

/** GET /network-ip-availabilities/{network_id} (admin). */
export function registerIpAvailability(app: FastifyInstance, ctx: ServiceContext, svc: NetworkService): void {
  app.get(`${V2}/network-ip-availabilities/:id`, async (req) => {
    requireAdmin(ctx.authenticate(req));
    const { id } = req.params as { id: string };
    const n = visible(svc.deps, ctx.authenticate(req), 'network', id);
    const subnets = svc.repo.subnetsOf(id).map((s) => {
      const u = svc.ipam.usage(subnetForIpam(s));
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
