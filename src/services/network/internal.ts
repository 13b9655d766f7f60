/**
 * @module NetworkForCompute: what Nova's compute side asks of Neutron when it builds or deletes a
 * server on this site (src/services/common/internal.ts). A thin adapter: each call is a typed domain
 * command (domain/servers.ts) run as the server's caller, plus the lease round trips that cannot run
 * inside compute's synchronous transaction. Nothing here builds Neutron request bodies or principals.
 */
import type { AuthContext } from '../../core/auth.ts';
import { Conflict, SiteUnavailable } from '../../core/errors.ts';
import type { NetworkForCompute, NicRequest } from '../common/internal.ts';
import {
  addressesOfPorts,
  allocateServerPorts,
  autoNetwork,
  releaseServerPorts,
  serverAddresses,
} from './domain/servers.ts';
import { subnetForIpam } from './domain/subnets.ts';
import type { SiteDataPlane } from './dataplane/site.ts';
import type { NetworkService } from './service.ts';
import { NeedLease } from './store/ipam.ts';

/**
 * NetworkForCompute plus `prepareForServer`, its asynchronous half: called before allocateForServer
 * (outside compute's transaction), it leases a block from the owner of each foreign subnet the
 * server's networks need, so that the synchronous allocation then finds room locally.
 */
export type NetworkForComputeWithLeases = NetworkForCompute & {
  prepareForServer(auth: AuthContext, nics: NicRequest[] | 'auto' | 'none'): Promise<void>;
};

export function networkForCompute(svc: NetworkService, plane?: SiteDataPlane): NetworkForComputeWithLeases {
  const { ctx, deps: d } = svc;
  return {
    async prepareForServer(auth, nics) {
      if (nics === 'none') return;
      const nets =
        nics === 'auto'
          ? [autoNetwork(d, auth, auth.projectId ?? '')?.id]
          : nics.filter((n) => !n.portId && !n.fixedIp).map((n) => n.networkId);
      for (const id of new Set(nets)) {
        if (!id) continue;
        for (const version of [4, 6]) {
          const family = svc.repo.subnetsOfFamily(id, version);
          if (!family.length || family.some((s) => svc.ipam.freeCount(subnetForIpam(s)) > 0)) continue;
          // No room: lease a block of a foreign subnet, or (ours) ask lessees for an empty one back.
          const foreign = family.find((s) => !ctx.owns(s.owner));
          if (foreign) await svc.leases.acquire(foreign.id);
          else await svc.leases.acquire(family[0]!.id).catch(() => undefined); // allocation answers 409
        }
      }
    },

    allocateForServer(auth, server, nics) {
      try {
        const out = addressesOfPorts(d, allocateServerPorts(d, auth, server, nics));
        if (nics !== 'none' && nics !== 'auto')
          for (const n of nics) if (n.networkId) svc.leases.topUp(n.networkId);
        return out;
      } catch (e) {
        if (!(e instanceof NeedLease)) throw e;
        // The compute contract is synchronous, so the round trip to the owner cannot happen inside
        // it: ask for the block now and tell the caller to retry (prepareForServer avoids this).
        if (!e.recall && !ctx.replicator.isUp(e.owner))
          throw new SiteUnavailable(
            e.owner,
            `no block of subnet ${e.subnetId} leased to ${ctx.name} has room`,
          );
        svc.leases.acquireInBackground(e.subnetId, e.ip);
        throw new Conflict(
          e.recall
            ? `${e.message} Empty blocks were asked back from their lessees; retry in a moment.`
            : `${e.message} A lease was requested from ${e.owner}; retry in a moment.`,
          'IpAddressGenerationFailure',
        );
      }
    },

    releaseForServer(serverId) {
      for (const p of releaseServerPorts(d, serverId))
        ctx.log.warn(
          { port: p.id, owner: p.owner, serverId },
          'port of a deleted server is owned by another site',
        );
    },

    addressesOf(serverId) {
      return serverAddresses(d, serverId);
    },

    vifsOf(serverId) {
      return plane ? plane.vifs(svc.repo.portsOfDeviceOrdered(serverId)) : [];
    },

    async plugServer() {
      // Level-based: one pass over every row makes the server's taps (and its network's bridge and DHCP).
      if (plane && plane.name !== 'none') await plane.loop.converge();
    },
  };
}
