/**
 * @module NetworkForCompute: what Nova's compute side asks of Neutron when it builds or deletes a
 * server on this site (src/services/common/internal.ts). Ports made for a server are deleted with it;
 * ports it was given are only unbound, as Nova does with preserve_on_delete. Ports are made here, on
 * the server's site, also on networks other sites own: from blocks leased to this site.
 */
import type { AuthContext } from '../../core/auth.ts';
import { BadRequest, Conflict, SiteUnavailable } from '../../core/errors.ts';
import type { NetworkForCompute, NicRequest, ServerAddress } from '../common/internal.ts';
import type { Obj } from '../common/input.ts';
import type { NetworkService, StoredRow } from './service.ts';
import { NeedLease } from './store/ipam.ts';
import { NetKind } from './store/schema.ts';

/**
 * NetworkForCompute plus `prepareForServer`, its asynchronous half: called before allocateForServer
 * (outside compute's transaction), it leases a block from the owner of each foreign subnet the
 * server's networks need, so that the synchronous allocation then finds room locally.
 */
export type NetworkForComputeWithLeases = NetworkForCompute & {
  prepareForServer(auth: AuthContext, nics: NicRequest[] | 'auto' | 'none'): Promise<void>;
};

export function networkForCompute(svc: NetworkService): NetworkForComputeWithLeases {
  const { ctx } = svc;
  const db = ctx.store.db;

  const addressesOfPorts = (ports: StoredRow[]): ServerAddress[] =>
    ports.flatMap((p) => {
      const b = svc.body(p);
      const net = svc.row('network', String(p.network_id));
      const name = net ? String(net.name) || net.id : String(p.network_id);
      return (b.fixed_ips as { ip_address: string }[]).map((f) => ({
        networkName: name,
        addr: f.ip_address,
        version: f.ip_address.includes(':') ? (6 as const) : (4 as const),
        mac: String(b.mac_address),
        portId: p.id,
      }));
    });

  const pickAuto = (auth: AuthContext, projectId: string): StoredRow | undefined => {
    const nets = svc.rows('network', 'WHERE external = 0 ORDER BY created_at, id');
    const own = nets.filter((n) => n.project_id === projectId);
    const shared = nets.filter((n) => n.shared === 1 && svc.canSee(auth, 'network', n));
    const candidates = own.length ? own : shared;
    if (candidates.length > 1)
      throw new Conflict(
        'Multiple possible networks found, use a Network ID to be more specific.',
        'NetworkAmbiguous',
      );
    return candidates[0];
  };

  const serverPortsOf = (serverId: string) =>
    db.prepare('SELECT id, created FROM net_server_ports WHERE server_id = ?').all(serverId) as {
      id: string;
      created: number;
    }[];

  const allocate: NetworkForCompute['allocateForServer'] = (auth, server, nics) => {
    if (nics === 'none') return [];
    const az = ctx.name;
    const bind: Obj = {
      device_id: server.id,
      device_owner: `compute:${az}`,
      'binding:host_id': server.host,
    };
    return ctx.store.tx(() => {
      const ports: StoredRow[] = [];
      const requests: NicRequest[] = nics === 'auto' ? [] : nics;
      if (nics === 'auto') {
        const n = pickAuto(auth, server.projectId);
        if (n) requests.push({ networkId: n.id });
      }
      for (const nic of requests) {
        if (nic.portId) {
          const p = svc.visible(auth, 'port', nic.portId, 'port');
          const b = svc.body(p);
          if (b.device_id) throw new Conflict(`Port ${p.id} is still in use.`, 'PortInUse');
          if (!ctx.owns(p.owner))
            throw new Conflict(
              `Port ${p.id} belongs to site ${p.owner}; boot the server there or use a port of ${ctx.name}.`,
              'PortInUse',
            );
          svc.updatePort(auth, p, bind);
          ctx.changelog.put(NetKind.ServerPort, { id: p.id, server_id: server.id, created: 0 });
          ports.push(svc.row('port', p.id)!);
        } else if (nic.networkId) {
          const net = svc.visible(auth, 'network', nic.networkId, 'network');
          const made = svc.createPort(auth, server.projectId, net, {
            ...bind,
            ...(nic.fixedIp ? { fixed_ips: [{ ip_address: nic.fixedIp }] } : {}),
          });
          ctx.changelog.put(NetKind.ServerPort, { id: String(made.id), server_id: server.id, created: 1 });
          ports.push(svc.row('port', String(made.id))!);
        } else throw new BadRequest('A network request needs a network id or a port id.');
      }
      return addressesOfPorts(ports);
    });
  };

  return {
    async prepareForServer(auth, nics) {
      if (nics === 'none') return;
      const nets =
        nics === 'auto'
          ? [pickAuto(auth, auth.projectId ?? '')?.id]
          : nics.filter((n) => !n.portId && !n.fixedIp).map((n) => n.networkId);
      for (const id of new Set(nets)) {
        if (!id) continue;
        for (const version of [4, 6]) {
          const family = svc.rows('subnet', 'WHERE network_id = ? AND ip_version = ?', id, version);
          if (!family.length || family.some((s) => svc.ipam.freeCount(svc.subnetForIpam(s)) > 0)) continue;
          // No room: lease a block of a foreign subnet, or (ours) ask lessees for an empty one back.
          const foreign = family.find((s) => !ctx.owns(s.owner));
          if (foreign) await svc.leases.acquire(foreign.id);
          else await svc.leases.acquire(family[0]!.id).catch(() => undefined); // allocation answers 409
        }
      }
    },

    allocateForServer(auth, server, nics) {
      try {
        const out = allocate(auth, server, nics);
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
      ctx.store.tx(() => {
        const known = new Map(serverPortsOf(serverId).map((x) => [x.id, x.created === 1]));
        for (const p of svc.rows(
          'port',
          'WHERE device_id = ? AND device_owner LIKE ?',
          serverId,
          'compute:%',
        )) {
          if (!ctx.owns(p.owner)) {
            ctx.log.warn(
              { port: p.id, owner: p.owner, serverId },
              'port of a deleted server is owned by another site',
            );
            continue;
          }
          if (known.get(p.id) === false) {
            const sys = { isAdmin: true } as AuthContext;
            svc.updatePort(sys, p, { device_id: '', device_owner: '', 'binding:host_id': '' });
          } else svc.deletePort(p);
        }
        for (const id of known.keys()) ctx.changelog.remove(NetKind.ServerPort, id);
      });
    },

    addressesOf(serverId) {
      const ports = svc.rows('port', 'WHERE device_id = ? ORDER BY created_at, id', serverId);
      if (!ports.length && serverPortsOf(serverId).length === 0) return [];
      return addressesOfPorts(ports);
    },
  };
}
