/**
 * @module Subnets: a CIDR of one network with its gateway, allocation pools, DNS servers and host
 * routes (https://docs.openstack.org/api-ref/network/v2/#subnets). Made by the network's owner, which
 * leases blocks of the pools to the sites that make ports on it.
 */
import { BadRequest, Conflict, NotFound } from '../../../core/errors.ts';
import { isObj, optBool, optInt, optStr } from '../../common/input.ts';
import type { Obj } from '../../common/input.ts';
import type { SubnetForIpam } from '../store/ipam.ts';
import type { Caller } from './access.ts';
import { isAdmin, visible } from './access.ts';
import type { NetworkDeps, StoredRow } from './deps.ts';
import type { Cidr, Range } from './ip.ts';
import { allocate, checkInside, shapeOf } from './subnetpools.ts';
import {
  cidrText,
  contains,
  defaultGateway,
  defaultPools,
  ipText,
  overlaps,
  parseCidr,
  parseIp,
  requireIp,
} from './ip.ts';
import { checkQuota } from './quotas.ts';
import { bodyOf, bump, onNetworkHead, optStrListOf, save, setGiven } from './records.ts';

/** What IPAM needs of a subnet row. */
export function subnetForIpam(r: StoredRow): SubnetForIpam {
  const b = bodyOf(r);
  const cidr = parseCidr(String(r.cidr), false)!;
  const pools = ((b.allocation_pools as { start: string; end: string }[]) ?? []).map((p) => ({
    first: parseIp(p.start)!.n,
    last: parseIp(p.end)!.n,
  }));
  const gw = typeof b.gateway_ip === 'string' ? parseIp(b.gateway_ip)?.n : undefined;
  return { id: r.id, owner: r.owner, network_id: String(r.network_id), cidr, pools, gateway: gw };
}

export function createSubnet(
  d: NetworkDeps,
  caller: Caller,
  projectId: string,
  net: StoredRow,
  o: Obj,
): StoredRow {
  if (!isAdmin(caller) && net.project_id !== projectId && !(bodyOf(net).shared === true))
    throw new NotFound(`Network ${net.id} could not be found.`, 'NetworkNotFound');
  if (o.use_default_subnetpool) throw new BadRequest('There is no default subnet pool.', 'BadRequest');
  const pool = poolFor(d, caller, o);
  let cidrIn = optStr(o, 'cidr');
  if (pool && !cidrIn) cidrIn = allocateFromPool(d, pool, o);
  if (!cidrIn)
    throw new BadRequest(
      'Bad subnets request: a cidr must be specified in the absence of a subnet pool',
      'BadRequest',
    );
  const loose = parseCidr(cidrIn, false);
  if (!loose)
    throw new BadRequest(
      `Invalid input for cidr. Reason: '${cidrIn}' is not a valid IP subnet.`,
      'InvalidInput',
    );
  const cidr = parseCidr(cidrIn, true);
  if (!cidr)
    throw new BadRequest(
      `Invalid input for cidr. Reason: '${cidrIn}' isn't a recognized IP subnet cidr, '${cidrText(loose)}' is recommended.`,
      'InvalidInput',
    );
  const ipVersion = optInt(o, 'ip_version', 4, 6) ?? 4;
  if (ipVersion !== 4 && ipVersion !== 6)
    throw new BadRequest('Invalid input for ip_version: must be 4 or 6.', 'InvalidInput');
  if (pool) checkInside(shapeOf(bodyOf(pool)), cidr);
  if (ipVersion !== cidr.version)
    throw new BadRequest(
      `Cannot use version ${cidr.version} cidr ${cidrIn} for a subnet with ip_version ${ipVersion}.`,
      'InvalidInput',
    );
  if (cidr.version === 4 && cidr.prefix > 32) throw new BadRequest('Invalid prefix.');
  let gateway: bigint | undefined;
  if ('gateway_ip' in o && o.gateway_ip === null) gateway = undefined;
  else if (o.gateway_ip !== undefined) {
    const g = requireIp(o.gateway_ip, 'gateway_ip', cidr.version);
    if (!contains(cidr, g))
      throw new BadRequest(
        `Gateway ip ${String(o.gateway_ip)} conflicts with the subnet cidr.`,
        'InvalidInput',
      );
    gateway = g.n;
  } else gateway = defaultGateway(cidr);
  let pools: Range[];
  if (Array.isArray(o.allocation_pools) && o.allocation_pools.length) {
    pools = o.allocation_pools.map((p) => {
      if (!isObj(p)) throw new BadRequest('Invalid input for allocation_pools.', 'InvalidInput');
      const s = requireIp(p.start, 'allocation_pools.start', cidr.version);
      const e = requireIp(p.end, 'allocation_pools.end', cidr.version);
      if (!contains(cidr, s) || !contains(cidr, e) || e.n < s.n)
        throw new BadRequest(
          `The allocation pool ${String(p.start)}-${String(p.end)} spans beyond the subnet cidr ${cidrText(cidr)}.`,
          'OutOfBoundsAllocationPool',
        );
      return { first: s.n, last: e.n };
    });
    pools.sort((a, b) => (a.first < b.first ? -1 : 1));
    for (let i = 1; i < pools.length; i++)
      if (pools[i]!.first <= pools[i - 1]!.last)
        throw new BadRequest('Found overlapping allocation pools.', 'OverlappingAllocationPools');
    if (gateway !== undefined && pools.some((p) => gateway! >= p.first && gateway! <= p.last))
      throw new Conflict(
        `Gateway ip ${ipText(cidr.version, gateway)} conflicts with allocation pool.`,
        'GatewayConflictWithAllocationPools',
      );
  } else pools = defaultPools(cidr, gateway);
  const dns = optStrListOf(o, 'dns_nameservers');
  for (const d of dns) requireIp(d, 'dns_nameservers');
  const routes = Array.isArray(o.host_routes) ? o.host_routes : [];
  const hostRoutes = routes.map((h) => {
    if (!isObj(h) || typeof h.destination !== 'string' || !parseCidr(h.destination, false))
      throw new BadRequest(
        'Invalid input for host_routes: each needs a destination CIDR and a nexthop.',
        'InvalidInput',
      );
    requireIp(h.nexthop, 'host_routes.nexthop');
    return { destination: h.destination, nexthop: h.nexthop };
  });
  const id = d.ids.uuid();
  const body: Obj = {
    ...onNetworkHead(id, projectId, net.id, o),
    ip_version: cidr.version,
    cidr: cidrText(cidr),
    gateway_ip: gateway === undefined ? null : ipText(cidr.version, gateway),
    allocation_pools: pools.map((p) => ({
      start: ipText(cidr.version, p.first),
      end: ipText(cidr.version, p.last),
    })),
    dns_nameservers: dns,
    host_routes: hostRoutes,
    enable_dhcp: optBool(o, 'enable_dhcp') ?? true,
    ipv6_ra_mode: cidr.version === 6 ? (optStr(o, 'ipv6_ra_mode') ?? null) : null,
    ipv6_address_mode: cidr.version === 6 ? (optStr(o, 'ipv6_address_mode') ?? null) : null,
    subnetpool_id: pool ? pool.id : null,
    segment_id: null,
    service_types: [],
    dns_publish_fixed_ip: false,
    tags: [],
  };
  d.repo.tx(() => {
    for (const other of d.repo.subnetsOf(net.id)) {
      const oc = parseCidr(String(other.cidr), false);
      if (oc && overlaps(oc, cidr))
        throw new BadRequest(
          `Invalid input for operation: Requested subnet with cidr: ${cidrText(cidr)} for network: ${net.id} overlaps with another subnet.`,
          'InvalidInput',
        );
    }
    checkQuota(d, projectId, 'subnet');
    save(
      d,
      'subnet',
      { network_id: net.id, name: body.name, ip_version: cidr.version, cidr: body.cidr },
      body,
    );
  });
  return d.repo.row('subnet', id)!;
}

export function updateSubnet(d: NetworkDeps, r: StoredRow, o: Obj): StoredRow {
  if (o.allocation_pools !== undefined || o.cidr !== undefined || o.ip_version !== undefined)
    throw new BadRequest(
      'Changing cidr, ip_version or allocation_pools of a subnet is not supported.',
      'InvalidInput',
    );
  const b = bump(bodyOf(r));
  setGiven(b, o, optStr, ['name', 'description']);
  setGiven(b, o, optBool, ['enable_dhcp']);
  if (o.dns_nameservers !== undefined) {
    const dns = optStrListOf(o, 'dns_nameservers');
    for (const d of dns) requireIp(d, 'dns_nameservers');
    b.dns_nameservers = dns;
  }
  if (o.host_routes !== undefined) {
    if (!Array.isArray(o.host_routes)) throw new BadRequest('Invalid input for host_routes.', 'InvalidInput');
    b.host_routes = o.host_routes.map((h) => {
      if (!isObj(h) || typeof h.destination !== 'string' || !parseCidr(h.destination, false))
        throw new BadRequest('Invalid input for host_routes.', 'InvalidInput');
      requireIp(h.nexthop, 'host_routes.nexthop');
      return { destination: h.destination, nexthop: h.nexthop };
    });
  }
  if ('gateway_ip' in o) {
    const cidr = parseCidr(String(r.cidr), false)!;
    if (o.gateway_ip === null) b.gateway_ip = null;
    else {
      const g = requireIp(o.gateway_ip, 'gateway_ip', cidr.version);
      const s = subnetForIpam(r);
      if (!contains(cidr, g) || s.pools.some((p) => g.n >= p.first && g.n <= p.last))
        throw new Conflict(
          `Gateway ip ${String(o.gateway_ip)} conflicts with allocation pool.`,
          'GatewayConflictWithAllocationPools',
        );
      b.gateway_ip = ipText(cidr.version, g.n);
    }
  }
  d.repo.tx(() =>
    save(d, 'subnet', { network_id: r.network_id, name: b.name, ip_version: r.ip_version, cidr: r.cidr }, b),
  );
  return d.repo.row('subnet', r.id)!;
}

export function deleteSubnet(d: NetworkDeps, r: StoredRow): void {
  d.repo.tx(() => {
    if (d.ipam.inUse(r.id))
      throw new Conflict(
        `Unable to complete operation on subnet ${r.id}: One or more ports have an IP allocation from this subnet.`,
        'SubnetInUse',
      );
    d.ipam.dropSubnet(r.id);
    d.repo.remove('subnet', r.id);
  });
}

/** The pool a subnet create names, if any: visible to the caller and owned here (it is allocated from). */
function poolFor(d: NetworkDeps, caller: Caller, o: Obj): StoredRow | undefined {
  const id = optStr(o, 'subnetpool_id');
  if (!id) return undefined;
  const pool = visible(d, caller, 'subnet_pool', id);
  if (pool.owner !== d.site.name)
    throw new Conflict(
      `Subnet pool ${id} is owned by site ${pool.owner}; make the subnet on a network of that site.`,
      'SubnetPoolRemote',
    );
  return pool;
}

/** A free block of the pool (prefixlen, else its default), none of its subnets overlapping. */
function allocateFromPool(d: NetworkDeps, pool: StoredRow, o: Obj): string {
  const shape = shapeOf(bodyOf(pool));
  const used = d.repo
    .all('subnet')
    .map((s) => parseCidr(String(s.cidr ?? bodyOf(s).cidr), false))
    .filter((c): c is Cidr => !!c);
  const prefixlen = optInt(o, 'prefixlen', 0, 128);
  const got = allocate(shape, used, prefixlen);
  if (!got)
    throw new Conflict(
      `No free prefix of the requested size in subnet pool ${pool.id}.`,
      'SubnetAllocationError',
    );
  return cidrText(got);
}
