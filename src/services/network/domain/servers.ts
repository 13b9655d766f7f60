/**
 * @module The ports of Nova's servers, as typed commands for compute's side (internal.ts): a port made
 * for a server on a network, a port it was given bound to it, and at its deletion the first deleted and
 * the second unbound (Nova's preserve_on_delete). Ports are made here, on the server's site, also on
 * networks other sites own: from blocks leased to this site.
 */
import { BadRequest, Conflict } from '../../../core/errors.ts';
import type { NicRequest, ServerAddress } from '../../common/internal.ts';
import type { Caller } from './access.ts';
import { asSystem, canSee, visible } from './access.ts';
import type { NetworkDeps, StoredRow } from './deps.ts';
import { createPort, deletePort, updatePort } from './ports.ts';
import { bodyOf } from './records.ts';

/** The server the ports are for. */
export interface ServerRef {
  id: string;
  projectId: string;
  /** The compute host it runs on (binding:host_id). */
  host: string;
}

/** What a port bound to a server says of it (Nova's device_owner is `compute:<availability zone>`). */
function serverBinding(d: NetworkDeps, server: ServerRef) {
  return {
    device_id: server.id,
    device_owner: `compute:${d.site.name}`,
    'binding:host_id': server.host,
  };
}

/**
 * The network `auto` picks: the project's own non-external network, else a shared one it may see;
 * 409 NetworkAmbiguous when there are several.
 */
export function autoNetwork(d: NetworkDeps, caller: Caller, projectId: string): StoredRow | undefined {
  const nets = d.repo.internalNetworksOrdered();
  const own = nets.filter((n) => n.project_id === projectId);
  const shared = nets.filter((n) => n.shared === 1 && canSee(d, caller, 'network', n));
  const candidates = own.length ? own : shared;
  if (candidates.length > 1)
    throw new Conflict(
      'Multiple possible networks found, use a Network ID to be more specific.',
      'NetworkAmbiguous',
    );
  return candidates[0];
}

/** Makes a port for the server on a network the caller may use, with the fixed IP asked for. */
export function createServerPort(
  d: NetworkDeps,
  caller: Caller,
  req: { server: ServerRef; networkId: string; fixedIp?: string | undefined },
): StoredRow {
  const net = visible(d, caller, 'network', req.networkId, 'network');
  const made = createPort(d, caller, req.server.projectId, net, {
    ...serverBinding(d, req.server),
    ...(req.fixedIp ? { fixed_ips: [{ ip_address: req.fixedIp }] } : {}),
  });
  d.repo.saveServerPort(String(made.id), req.server.id, true);
  return d.repo.row('port', String(made.id))!;
}

/** Binds a port the caller gave (unbound, made on this site) to the server. */
export function bindServerPort(
  d: NetworkDeps,
  caller: Caller,
  req: { server: ServerRef; portId: string },
): StoredRow {
  const p = visible(d, caller, 'port', req.portId, 'port');
  const b = bodyOf(p);
  if (b.device_id) throw new Conflict(`Port ${p.id} is still in use.`, 'PortInUse');
  if (!d.site.owns(p.owner))
    throw new Conflict(
      `Port ${p.id} belongs to site ${p.owner}; boot the server there or use a port of ${d.site.name}.`,
      'PortInUse',
    );
  updatePort(d, caller, p, serverBinding(d, req.server));
  d.repo.saveServerPort(p.id, req.server.id, false);
  return d.repo.row('port', p.id)!;
}

/**
 * Creates or binds the server's ports in one transaction ('auto': on autoNetwork, 'none': nothing).
 * Throws CloudError (400/404/409, or NeedLease when a foreign subnet has no block with room here),
 * leaving nothing allocated.
 */
export function allocateServerPorts(
  d: NetworkDeps,
  caller: Caller,
  server: ServerRef,
  nics: NicRequest[] | 'auto' | 'none',
): StoredRow[] {
  if (nics === 'none') return [];
  return d.repo.tx(() => {
    const ports: StoredRow[] = [];
    const requests: NicRequest[] = nics === 'auto' ? [] : nics;
    if (nics === 'auto') {
      const n = autoNetwork(d, caller, server.projectId);
      if (n) requests.push({ networkId: n.id });
    }
    for (const nic of requests) {
      if (nic.portId) ports.push(bindServerPort(d, caller, { server, portId: nic.portId }));
      else if (nic.networkId)
        ports.push(createServerPort(d, caller, { server, networkId: nic.networkId, fixedIp: nic.fixedIp }));
      else throw new BadRequest('A network request needs a network id or a port id.');
    }
    return ports;
  });
}

/**
 * At the server's deletion: deletes the ports made for it, unbinds the ones it was given. Returns the
 * ports left alone because another site owns them (the caller logs them).
 */
export function releaseServerPorts(d: NetworkDeps, serverId: string): StoredRow[] {
  const foreign: StoredRow[] = [];
  d.repo.tx(() => {
    const known = new Map(d.repo.serverPorts(serverId).map((x) => [x.id, x.created === 1]));
    for (const p of d.repo.portsOfDeviceOwnerLike(serverId, 'compute:')) {
      if (!d.site.owns(p.owner)) {
        foreign.push(p);
        continue;
      }
      if (known.get(p.id) === false)
        updatePort(d, asSystem('the server the port was given to is deleted'), p, {
          device_id: '',
          device_owner: '',
          'binding:host_id': '',
        });
      else deletePort(d, p);
    }
    for (const id of known.keys()) d.repo.removeServerPort(id);
  });
  return foreign;
}

/** The server's addresses as Nova shows them, from its ports. */
export function addressesOfPorts(d: NetworkDeps, ports: StoredRow[]): ServerAddress[] {
  return ports.flatMap((p) => {
    const b = bodyOf(p);
    const net = d.repo.row('network', String(p.network_id));
    const name = net ? String(net.name) || net.id : String(p.network_id);
    return (b.fixed_ips as { ip_address: string }[]).map((f) => ({
      networkName: name,
      addr: f.ip_address,
      version: f.ip_address.includes(':') ? (6 as const) : (4 as const),
      mac: String(b.mac_address),
      portId: p.id,
    }));
  });
}

export function serverAddresses(d: NetworkDeps, serverId: string): ServerAddress[] {
  const ports = d.repo.portsOfDeviceOrdered(serverId);
  if (!ports.length && d.repo.serverPorts(serverId).length === 0) return [];
  return addressesOfPorts(d, ports);
}
