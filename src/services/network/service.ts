/**
 * @module The network service's rules: create, change and delete networks, subnets, ports, security
 * groups, routers and floating IPs, with IPAM, quotas and visibility. Used by the HTTP routes and by
 * NetworkForCompute. Every write runs inside one ctx.store.tx() and only touches rows this site owns
 * (callers forward writes on foreign rows to their owner first). Rows keep Neutron's attributes as JSON
 * in `body`; the few columns beside it are what SQL filters on.
 */
import { createHash, randomBytes } from 'node:crypto';
import type { AuthContext } from '../../core/auth.ts';
import { BadRequest, Conflict, Forbidden, NotFound } from '../../core/errors.ts';
import type { SiteContext } from '../common/module.ts';
import { isObj, novaTime, optBool, optInt, optStr } from '../common/input.ts';
import type { Obj } from '../common/input.ts';
import type { NetworkDriver } from './domain/driver.ts';
import type { Range } from './domain/ip.ts';
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
} from './domain/ip.ts';
import { LeaseAgent, leaseOptions } from './leases.ts';
import { Ipam, NeedLease, ipAllocationFailed } from './store/ipam.ts';
import type { SubnetForIpam } from './store/ipam.ts';
import { NetKind, tableOf } from './store/schema.ts';
import type { ResourceKind } from './store/schema.ts';

export interface StoredRow {
  id: string;
  owner: string;
  project_id: string;
  body: string;
  created_at: number;
  updated_at: number;
  [k: string]: unknown;
}

export const DEFAULT_QUOTAS = {
  network: 100,
  subnet: 100,
  port: 500,
  router: 10,
  floatingip: 50,
  security_group: 10,
  security_group_rule: 100,
  rbac_policy: 10,
  subnetpool: -1,
} as const;
type QuotaKey = keyof typeof DEFAULT_QUOTAS;

export const DeviceOwner = {
  RouterInterface: 'network:router_interface',
  RouterGateway: 'network:router_gateway',
  FloatingIp: 'network:floatingip',
  Dhcp: 'network:dhcp',
} as const;

const MAC = /^([0-9a-fA-F]{2}:){5}[0-9a-fA-F]{2}$/;

/** An id the body must carry; Neutron calls a missing one an invalid UUID (InvalidInput, 400). */
export function requiredRef(o: Obj, field: string): string {
  const v = optStr(o, field);
  if (!v)
    throw new BadRequest(`Invalid input for ${field}. Reason: 'None' is not a valid UUID.`, 'InvalidInput');
  return v;
}

/** The first fields of a new network or router (an administratively up, ACTIVE project resource). */
function activeHead(id: string, projectId: string, o: Obj): Obj {
  return {
    id,
    name: optStr(o, 'name') ?? '',
    description: optStr(o, 'description') ?? '',
    project_id: projectId,
    tenant_id: projectId,
    admin_state_up: optBool(o, 'admin_state_up') ?? true,
    status: 'ACTIVE',
  };
}

/** An update sets the fields the body gives, read by `read`, and keeps the rest (Neutron's PUT). */
function setGiven(b: Obj, o: Obj, read: (o: Obj, k: string) => unknown, fields: readonly string[]): void {
  for (const k of fields) {
    const v = read(o, k);
    if (v !== undefined) b[k] = v;
  }
}

export class NetworkService {
  readonly ctx: SiteContext;
  readonly ipam: Ipam;
  readonly leases: LeaseAgent;
  readonly driver: NetworkDriver;
  private readonly macPrefix: string;

  constructor(ctx: SiteContext, driver: NetworkDriver) {
    this.ctx = ctx;
    this.driver = driver;
    const cfg = ctx.config.services.network ?? {};
    const blockSize = typeof cfg.ipBlockSize === 'number' ? cfg.ipBlockSize : 64;
    const lease = leaseOptions(cfg, blockSize, ctx.config.forwardTimeoutMs);
    this.ipam = new Ipam(
      ctx.store.db,
      ctx.changelog,
      ctx.name,
      () => ctx.clock.now(),
      { blockSize, leaseMarginMs: lease.marginMs },
      ctx.ids,
    );
    this.leases = new LeaseAgent(
      ctx,
      this.ipam,
      (id) => {
        const r = this.row('subnet', id);
        return r ? this.subnetForIpam(r) : undefined;
      },
      lease,
    );
    this.macPrefix = typeof cfg.baseMac === 'string' ? cfg.baseMac : 'fa:16:3e';
  }

  private get db() {
    return this.ctx.store.db;
  }

  // ---- rows ------------------------------------------------------------------------------------

  row(kind: ResourceKind, id: string): StoredRow | undefined {
    return this.db.prepare(`SELECT * FROM ${tableOf[kind]} WHERE id = ?`).get(id) as StoredRow | undefined;
  }

  rows(kind: ResourceKind, where = '', ...args: unknown[]): StoredRow[] {
    return this.db.prepare(`SELECT * FROM ${tableOf[kind]} ${where}`).all(...args) as StoredRow[];
  }

  body(r: StoredRow): Obj {
    return JSON.parse(r.body) as Obj;
  }

  /** The row if `auth` may see it, else 404 (Neutron hides what you may not read). */
  visible(auth: AuthContext, kind: ResourceKind, id: string, label: string = kind): StoredRow {
    const r = this.row(kind, id);
    if (!r || !this.canSee(auth, kind, r))
      throw new NotFound(`${title(label)} ${id} could not be found.`, `${pascal(label)}NotFound`);
    return r;
  }

  canSee(auth: AuthContext, kind: ResourceKind, r: StoredRow): boolean {
    if (auth.isAdmin || r.project_id === auth.projectId) return true;
    if (kind === 'network') return r.shared === 1 || r.external === 1;
    if (kind === 'subnet') {
      const n = this.row('network', String(r.network_id));
      return !!n && (n.shared === 1 || n.external === 1);
    }
    return false;
  }

  /** The row for a write: 404 when invisible, 403 when only readable. */
  writable(auth: AuthContext, kind: ResourceKind, id: string, label: string = kind): StoredRow {
    const r = this.visible(auth, kind, id, label);
    if (!auth.isAdmin && r.project_id !== auth.projectId)
      throw new Forbidden(`Not allowed to change ${label} ${id}.`);
    return r;
  }

  private now(): number {
    return this.ctx.clock.now();
  }

  private put(kind: ResourceKind, cols: Obj, body: Obj): void {
    const now = this.now();
    const created = typeof body.created_at === 'string' ? Date.parse(body.created_at) : now;
    const rev = typeof body.revision_number === 'number' ? body.revision_number : 0;
    const full: Obj = {
      ...body,
      created_at: novaTime(created),
      updated_at: novaTime(now),
      revision_number: rev,
    };
    this.ctx.changelog.put(kindName[kind], {
      id: String(body.id),
      ...cols,
      project_id: String(body.project_id ?? ''),
      body: JSON.stringify(full),
      created_at: created,
      updated_at: now,
    });
  }

  private bump(body: Obj): Obj {
    return {
      ...body,
      revision_number: (typeof body.revision_number === 'number' ? body.revision_number : 0) + 1,
    };
  }

  // ---- quotas ----------------------------------------------------------------------------------

  quotas(projectId: string): Record<QuotaKey, number> {
    const r = this.db.prepare('SELECT body FROM net_quotas WHERE id = ?').get(projectId) as
      { body: string } | undefined;
    return { ...DEFAULT_QUOTAS, ...(r ? (JSON.parse(r.body) as Partial<Record<QuotaKey, number>>) : {}) };
  }

  usage(projectId: string): Record<QuotaKey, number> {
    const count = (table: string) =>
      (
        this.db.prepare(`SELECT count(*) AS c FROM ${table} WHERE project_id = ?`).get(projectId) as {
          c: number;
        }
      ).c;
    return {
      network: count('net_networks'),
      subnet: count('net_subnets'),
      port: count('net_ports'),
      router: count('net_routers'),
      floatingip: count('net_floating_ips'),
      security_group: count('net_security_groups'),
      security_group_rule: count('net_security_group_rules'),
      rbac_policy: 0,
      subnetpool: 0,
    };
  }

  setQuotas(projectId: string, changes: Partial<Record<QuotaKey, number>>): Record<QuotaKey, number> {
    return this.ctx.store.tx(() => {
      const cur = this.db.prepare('SELECT body FROM net_quotas WHERE id = ?').get(projectId) as
        { body: string } | undefined;
      const next = { ...(cur ? (JSON.parse(cur.body) as Obj) : {}), ...changes };
      this.ctx.changelog.put(NetKind.NetQuota, { id: projectId, body: JSON.stringify(next) });
      return this.quotas(projectId);
    });
  }

  resetQuotas(projectId: string): void {
    this.ctx.store.tx(() => this.ctx.changelog.remove(NetKind.NetQuota, projectId));
  }

  private checkQuota(projectId: string, key: QuotaKey, adding = 1): void {
    if (projectId === '') return;
    const limit = this.quotas(projectId)[key];
    if (limit < 0) return;
    const table: Partial<Record<QuotaKey, string>> = {
      network: 'net_networks',
      subnet: 'net_subnets',
      port: 'net_ports',
      router: 'net_routers',
      floatingip: 'net_floating_ips',
      security_group: 'net_security_groups',
      security_group_rule: 'net_security_group_rules',
    };
    const t = table[key];
    if (!t) return;
    const used = this.db
      .prepare(`SELECT count(*) FROM ${t} WHERE project_id = ?`)
      .pluck()
      .get(projectId) as number;
    if (used + adding > limit) throw new Conflict(`Quota exceeded for resources: ['${key}'].`, 'OverQuota');
  }

  // ---- networks ----------------------------------------------------------------------------------

  createNetwork(auth: AuthContext, projectId: string, o: Obj): Obj {
    const shared = optBool(o, 'shared') ?? false;
    const external = optBool(o, 'router:external') ?? false;
    if ((shared || external) && !auth.isAdmin)
      throw new Forbidden('(rule:create_network:shared) is disallowed by policy');
    const hints = optStrListOf(o, 'availability_zone_hints');
    for (const h of hints)
      if (!this.ctx.registry.get(h) && h !== this.ctx.name)
        throw new BadRequest(`AvailabilityZone ${h} could not be found.`, 'AvailabilityZoneNotFound');
    const mtu = optInt(o, 'mtu', 68, 9216) ?? 1500;
    const id = this.ctx.ids.uuid();
    const body: Obj = {
      ...activeHead(id, projectId, o),
      shared,
      'router:external': external,
      mtu,
      availability_zone_hints: hints,
      port_security_enabled: optBool(o, 'port_security_enabled') ?? true,
      ipv4_address_scope: null,
      ipv6_address_scope: null,
      is_default: optBool(o, 'is_default') ?? false,
      l2_adjacency: true,
      qos_policy_id: null,
      dns_domain: optStr(o, 'dns_domain') ?? '',
      'provider:network_type': optStr(o, 'provider:network_type') ?? 'local',
      'provider:physical_network': optStr(o, 'provider:physical_network') ?? null,
      'provider:segmentation_id': optInt(o, 'provider:segmentation_id') ?? null,
      tags: [],
    };
    this.ctx.store.tx(() => {
      this.checkQuota(projectId, 'network');
      this.put('network', { name: body.name, shared: shared ? 1 : 0, external: external ? 1 : 0 }, body);
    });
    return this.renderNetwork(this.row('network', id)!);
  }

  renderNetwork(r: StoredRow): Obj {
    const b = this.body(r);
    const subnets = this.db
      .prepare('SELECT id FROM net_subnets WHERE network_id = ? ORDER BY created_at, id')
      .pluck()
      .all(r.id);
    return { ...b, subnets, availability_zones: [r.owner] };
  }

  updateNetwork(auth: AuthContext, r: StoredRow, o: Obj): Obj {
    const b = this.bump(this.body(r));
    setGiven(b, o, optStr, ['name', 'description', 'dns_domain']);
    setGiven(b, o, optBool, ['admin_state_up', 'port_security_enabled', 'is_default']);
    for (const k of ['shared', 'router:external'] as const) {
      const v = optBool(o, k);
      if (v === undefined) continue;
      if (!auth.isAdmin) throw new Forbidden(`(rule:update_network:${k}) is disallowed by policy`);
      b[k] = v;
    }
    const mtu = optInt(o, 'mtu', 68, 9216);
    if (mtu !== undefined) b.mtu = mtu;
    this.ctx.store.tx(() =>
      this.put(
        'network',
        { name: b.name, shared: b.shared ? 1 : 0, external: b['router:external'] ? 1 : 0 },
        b,
      ),
    );
    return this.renderNetwork(this.row('network', r.id)!);
  }

  deleteNetwork(r: StoredRow): void {
    this.ctx.store.tx(() => {
      const ports = this.rows('port', 'WHERE network_id = ? AND device_owner != ?', r.id, DeviceOwner.Dhcp);
      if (ports.length)
        throw new Conflict(
          `Unable to complete operation on network ${r.id}. There are one or more ports still in use on the network.`,
          'NetworkInUse',
        );
      for (const s of this.rows('subnet', 'WHERE network_id = ?', r.id)) {
        if (s.owner !== this.ctx.name)
          throw new Conflict(
            `Network ${r.id} has subnet ${s.id} owned by site ${s.owner}; delete it there first.`,
            'NetworkInUse',
          );
        this.deleteSubnet(s);
      }
      this.ctx.changelog.remove(NetKind.Network, r.id);
    });
  }

  // ---- subnets -----------------------------------------------------------------------------------

  subnetForIpam(r: StoredRow): SubnetForIpam {
    const b = this.body(r);
    const cidr = parseCidr(String(r.cidr), false)!;
    const pools = ((b.allocation_pools as { start: string; end: string }[]) ?? []).map((p) => ({
      first: parseIp(p.start)!.n,
      last: parseIp(p.end)!.n,
    }));
    const gw = typeof b.gateway_ip === 'string' ? parseIp(b.gateway_ip)?.n : undefined;
    return { id: r.id, owner: r.owner, network_id: String(r.network_id), cidr, pools, gateway: gw };
  }

  createSubnet(auth: AuthContext, projectId: string, net: StoredRow, o: Obj): Obj {
    if (!auth.isAdmin && net.project_id !== projectId && !(this.body(net).shared === true))
      throw new NotFound(`Network ${net.id} could not be found.`, 'NetworkNotFound');
    if (o.subnetpool_id || o.use_default_subnetpool)
      throw new BadRequest('Subnet pools are not supported; give a cidr.');
    const cidrIn = optStr(o, 'cidr');
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
    const id = this.ctx.ids.uuid();
    const body: Obj = {
      id,
      name: optStr(o, 'name') ?? '',
      description: optStr(o, 'description') ?? '',
      network_id: net.id,
      project_id: projectId,
      tenant_id: projectId,
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
      subnetpool_id: null,
      segment_id: null,
      service_types: [],
      dns_publish_fixed_ip: false,
      tags: [],
    };
    this.ctx.store.tx(() => {
      for (const other of this.rows('subnet', 'WHERE network_id = ?', net.id)) {
        const oc = parseCidr(String(other.cidr), false);
        if (oc && overlaps(oc, cidr))
          throw new BadRequest(
            `Invalid input for operation: Requested subnet with cidr: ${cidrText(cidr)} for network: ${net.id} overlaps with another subnet.`,
            'InvalidInput',
          );
      }
      this.checkQuota(projectId, 'subnet');
      this.put(
        'subnet',
        { network_id: net.id, name: body.name, ip_version: cidr.version, cidr: body.cidr },
        body,
      );
    });
    return this.renderSubnet(this.row('subnet', id)!);
  }

  renderSubnet(r: StoredRow): Obj {
    return this.body(r);
  }

  updateSubnet(r: StoredRow, o: Obj): Obj {
    if (o.allocation_pools !== undefined || o.cidr !== undefined || o.ip_version !== undefined)
      throw new BadRequest(
        'Changing cidr, ip_version or allocation_pools of a subnet is not supported.',
        'InvalidInput',
      );
    const b = this.bump(this.body(r));
    setGiven(b, o, optStr, ['name', 'description']);
    setGiven(b, o, optBool, ['enable_dhcp']);
    if (o.dns_nameservers !== undefined) {
      const dns = optStrListOf(o, 'dns_nameservers');
      for (const d of dns) requireIp(d, 'dns_nameservers');
      b.dns_nameservers = dns;
    }
    if (o.host_routes !== undefined) {
      if (!Array.isArray(o.host_routes))
        throw new BadRequest('Invalid input for host_routes.', 'InvalidInput');
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
        const s = this.subnetForIpam(r);
        if (!contains(cidr, g) || s.pools.some((p) => g.n >= p.first && g.n <= p.last))
          throw new Conflict(
            `Gateway ip ${String(o.gateway_ip)} conflicts with allocation pool.`,
            'GatewayConflictWithAllocationPools',
          );
        b.gateway_ip = ipText(cidr.version, g.n);
      }
    }
    this.ctx.store.tx(() =>
      this.put(
        'subnet',
        { network_id: r.network_id, name: b.name, ip_version: r.ip_version, cidr: r.cidr },
        b,
      ),
    );
    return this.renderSubnet(this.row('subnet', r.id)!);
  }

  deleteSubnet(r: StoredRow): void {
    this.ctx.store.tx(() => {
      if (this.ipam.inUse(r.id))
        throw new Conflict(
          `Unable to complete operation on subnet ${r.id}: One or more ports have an IP allocation from this subnet.`,
          'SubnetInUse',
        );
      this.ipam.dropSubnet(r.id);
      this.ctx.changelog.remove(NetKind.Subnet, r.id);
    });
  }

  // ---- ports -------------------------------------------------------------------------------------

  private newMac(networkId: string): string {
    for (let i = 0; i < 64; i++) {
      const b = randomBytes(3);
      const mac = `${this.macPrefix}:${[...b].map((x) => x.toString(16).padStart(2, '0')).join(':')}`;
      if (
        !this.db
          .prepare('SELECT 1 FROM net_ports WHERE network_id = ? AND mac_address = ?')
          .get(networkId, mac)
      )
        return mac;
    }
    throw new Conflict('Unable to generate a unique mac address.', 'MacAddressGenerationFailure');
  }

  /**
   * Creates a port and its addresses in one transaction. `fixed_ips` entries are {subnet_id?, ip_address?};
   * without them the port gets one address from the first IPv4 subnet with room and one from the first
   * IPv6 subnet with room (Neutron's default).
   */
  createPort(auth: AuthContext, projectId: string, net: StoredRow, o: Obj): Obj {
    if (!this.canSee(auth, 'network', net))
      throw new NotFound(`Network ${net.id} could not be found.`, 'NetworkNotFound');
    const nb = this.body(net);
    if (!auth.isAdmin && net.project_id !== projectId && nb.shared !== true)
      throw new Forbidden(`(rule:create_port) is disallowed by policy on network ${net.id}`);
    const id = this.ctx.ids.uuid();
    const deviceOwner = optStr(o, 'device_owner') ?? '';
    const deviceId = optStr(o, 'device_id') ?? '';
    const host = optStr(o, 'binding:host_id') ?? '';
    const portSecurity = optBool(o, 'port_security_enabled') ?? nb.port_security_enabled !== false;
    const macIn = optStr(o, 'mac_address');
    if (macIn !== undefined && !MAC.test(macIn))
      throw new BadRequest(
        `Invalid input for mac_address. Reason: '${macIn}' is not a valid MAC address.`,
        'InvalidInput',
      );
    return this.ctx.store.tx(() => {
      this.checkQuota(projectId, 'port');
      let mac = macIn?.toLowerCase();
      if (
        mac &&
        this.db.prepare('SELECT 1 FROM net_ports WHERE network_id = ? AND mac_address = ?').get(net.id, mac)
      )
        throw new Conflict(
          `Unable to complete operation for network ${net.id}. The mac address ${mac} is in use.`,
          'MacAddressInUse',
        );
      mac ??= this.newMac(net.id);
      const fixedIps = this.allocateFixedIps(net, id, o.fixed_ips, deviceOwner);
      let groups: string[] = [];
      if (o.security_groups !== undefined && o.security_groups !== null) {
        groups = optStrListOf(o, 'security_groups');
        for (const g of groups) this.visible(auth, 'security_group', g, 'security group');
      } else if (portSecurity && !deviceOwner.startsWith('network:')) {
        const dg = this.ensureDefaultGroup(projectId);
        if (dg) groups = [dg];
      }
      if (!portSecurity && groups.length && o.security_groups !== undefined)
        throw new BadRequest(
          'Port has port security disabled and security groups given.',
          'PortSecurityAndIPRequiredForSecurityGroups',
        );
      if (!portSecurity) groups = [];
      const body: Obj = {
        id,
        name: optStr(o, 'name') ?? '',
        description: optStr(o, 'description') ?? '',
        network_id: net.id,
        project_id: projectId,
        tenant_id: projectId,
        mac_address: mac,
        admin_state_up: optBool(o, 'admin_state_up') ?? true,
        status: deviceId ? 'ACTIVE' : 'DOWN',
        device_id: deviceId,
        device_owner: deviceOwner,
        fixed_ips: fixedIps,
        allowed_address_pairs: Array.isArray(o.allowed_address_pairs) ? o.allowed_address_pairs : [],
        extra_dhcp_opts: Array.isArray(o.extra_dhcp_opts) ? o.extra_dhcp_opts : [],
        security_groups: groups,
        port_security_enabled: portSecurity,
        'binding:host_id': host,
        'binding:vnic_type': optStr(o, 'binding:vnic_type') ?? 'normal',
        'binding:vif_type': host ? 'ovs' : 'unbound',
        'binding:vif_details': host ? { port_filter: true } : {},
        'binding:profile': isObj(o['binding:profile']) ? o['binding:profile'] : {},
        dns_name: optStr(o, 'dns_name') ?? '',
        dns_assignment: [],
        ip_allocation: 'immediate',
        propagate_uplink_status: false,
        qos_policy_id: null,
        qos_network_policy_id: null,
        resource_request: null,
        tags: [],
      };
      this.savePort(body);
      if (host) this.driver.portBound(bindingOf(body));
      return body;
    });
  }

  private savePort(b: Obj): void {
    this.put(
      'port',
      {
        network_id: b.network_id,
        name: b.name,
        mac_address: b.mac_address,
        device_id: b.device_id,
        device_owner: b.device_owner,
      },
      b,
    );
  }

  private allocateFixedIps(
    net: StoredRow,
    portId: string,
    req: unknown,
    deviceOwner: string,
  ): { subnet_id: string; ip_address: string }[] {
    const subnets = this.rows('subnet', 'WHERE network_id = ? ORDER BY created_at, id', net.id);
    const mayUseGateway =
      deviceOwner === DeviceOwner.RouterInterface || deviceOwner === DeviceOwner.RouterGateway;
    const out: { subnet_id: string; ip_address: string }[] = [];
    if (req !== undefined && req !== null) {
      if (!Array.isArray(req))
        throw new BadRequest('Invalid input for fixed_ips. Reason: must be a list.', 'InvalidInput');
      for (const f of req) {
        if (!isObj(f)) throw new BadRequest('Invalid input for fixed_ips.', 'InvalidInput');
        const ipText0 = typeof f.ip_address === 'string' ? f.ip_address : undefined;
        let s: StoredRow | undefined;
        if (typeof f.subnet_id === 'string') {
          s = subnets.find((x) => x.id === f.subnet_id);
          if (!s) {
            if (!this.row('subnet', f.subnet_id))
              throw new NotFound(`Subnet ${f.subnet_id} could not be found.`, 'SubnetNotFound');
            throw new BadRequest(
              `Invalid input for operation: Failed to create port on network ${net.id}, because fixed_ips included invalid subnet ${f.subnet_id}.`,
              'InvalidInput',
            );
          }
        } else if (ipText0 !== undefined) {
          const ip = requireIp(ipText0, 'fixed_ips.ip_address');
          s = subnets.find((x) => contains(parseCidr(String(x.cidr), false)!, ip));
          if (!s)
            throw new BadRequest(
              `IP address ${ipText0} is not a valid IP for any of the subnets on the specified network.`,
              'InvalidIpForNetwork',
            );
        } else if (typeof f.subnet === 'string') {
          throw new BadRequest('Invalid input for fixed_ips: use subnet_id.', 'InvalidInput');
        } else
          throw new BadRequest(
            'Invalid input for fixed_ips: each entry needs subnet_id or ip_address.',
            'InvalidInput',
          );
        out.push({
          subnet_id: s.id,
          ip_address: this.ipam.allocate(this.subnetForIpam(s), portId, ipText0, mayUseGateway),
        });
      }
      return out;
    }
    for (const version of [4, 6]) {
      const family = subnets.filter((s) => s.ip_version === version);
      if (!family.length) continue;
      let got = false;
      // A subnet another site owns where we hold no block with room: remembered, and thrown if no
      // subnet of the family has room, so the caller asks its owner for a lease and tries again.
      let needLease: NeedLease | undefined;
      for (const s of family) {
        try {
          out.push({ subnet_id: s.id, ip_address: this.ipam.allocate(this.subnetForIpam(s), portId) });
          got = true;
          break;
        } catch (e) {
          if (e instanceof NeedLease) needLease ??= e;
          else if ((e as { detailType?: string }).detailType !== 'IpAddressGenerationFailure') throw e;
        }
      }
      if (!got) throw needLease ?? ipAllocationFailed(net.id);
    }
    return out;
  }

  renderPort(r: StoredRow): Obj {
    return this.body(r);
  }

  updatePort(auth: AuthContext, r: StoredRow, o: Obj): Obj {
    return this.ctx.store.tx(() => {
      const before = this.body(r);
      const b = this.bump(before);
      setGiven(b, o, optStr, [
        'name',
        'description',
        'device_id',
        'device_owner',
        'binding:host_id',
        'binding:vnic_type',
        'dns_name',
      ]);
      setGiven(b, o, optBool, ['admin_state_up', 'port_security_enabled']);
      if (isObj(o['binding:profile'])) b['binding:profile'] = o['binding:profile'];
      if (Array.isArray(o.allowed_address_pairs)) b.allowed_address_pairs = o.allowed_address_pairs;
      if (o.security_groups !== undefined) {
        const groups = o.security_groups === null ? [] : optStrListOf(o, 'security_groups');
        for (const g of groups) this.visible(auth, 'security_group', g, 'security group');
        b.security_groups = groups;
      }
      if (b.port_security_enabled === false && Array.isArray(b.security_groups) && b.security_groups.length) {
        if (o.security_groups !== undefined && (o.security_groups as unknown[] | null)?.length)
          throw new Conflict(
            'Port has security groups; remove them to disable port security.',
            'PortSecurityPortHasSecurityGroup',
          );
        b.security_groups = [];
      }
      if (o.mac_address !== undefined && o.mac_address !== before.mac_address)
        throw new BadRequest('Changing the MAC address of a port is not supported.', 'InvalidInput');
      if (o.fixed_ips !== undefined) {
        const net = this.row('network', String(r.network_id))!;
        const wanted = Array.isArray(o.fixed_ips) ? (o.fixed_ips as Obj[]) : [];
        const current = before.fixed_ips as { subnet_id: string; ip_address: string }[];
        const keep = current.filter((c) => wanted.some((w) => isObj(w) && w.ip_address === c.ip_address));
        for (const c of current) if (!keep.includes(c)) this.ipam.release(c.subnet_id, c.ip_address);
        const fresh = wanted.filter((w) => !(isObj(w) && keep.some((k) => k.ip_address === w.ip_address)));
        b.fixed_ips = [...keep, ...this.allocateFixedIps(net, r.id, fresh, String(b.device_owner))];
      }
      b.status = b.device_id ? 'ACTIVE' : 'DOWN';
      b['binding:vif_type'] = b['binding:host_id'] ? 'ovs' : 'unbound';
      this.savePort(b);
      if (b['binding:host_id']) this.driver.portBound(bindingOf(b));
      else if (before['binding:host_id']) this.driver.portUnbound(r.id);
      return b;
    });
  }

  /** Deletes a port this site owns, its addresses and its floating IP associations. */
  deletePort(r: StoredRow): void {
    this.ctx.store.tx(() => {
      this.ipam.releasePort(r.id);
      for (const f of this.rows('floating_ip', 'WHERE port_id = ? AND owner = ?', r.id, this.ctx.name))
        this.setFloatingPort(f, null);
      this.ctx.changelog.remove(NetKind.Port, r.id);
    });
    this.driver.portUnbound(r.id);
  }

  // ---- security groups -------------------------------------------------------------------------

  /** The project's "default" group: made at the project's home site, once (its id is derived from the project). */
  ensureDefaultGroup(projectId: string): string | undefined {
    const id = uuidFrom('default-security-group', projectId);
    if (this.row('security_group', id)) return id;
    const home = this.db.prepare('SELECT owner FROM projects WHERE id = ?').pluck().get(projectId) as
      string | undefined;
    if (home !== undefined && home !== this.ctx.name) return undefined;
    this.ctx.store.tx(() => this.insertGroup(id, projectId, 'default', 'Default security group', true));
    return id;
  }

  private insertGroup(
    id: string,
    projectId: string,
    name: string,
    description: string,
    isDefault: boolean,
    stateful = true,
  ): void {
    this.put(
      'security_group',
      { name },
      {
        id,
        name,
        description,
        project_id: projectId,
        tenant_id: projectId,
        stateful,
        shared: false,
        tags: [],
      },
    );
    for (const ethertype of ['IPv4', 'IPv6']) {
      this.insertRule(projectId, { security_group_id: id, direction: 'egress', ethertype });
      if (isDefault)
        this.insertRule(projectId, {
          security_group_id: id,
          direction: 'ingress',
          ethertype,
          remote_group_id: id,
        });
    }
  }

  createGroup(projectId: string, o: Obj): Obj {
    const name = optStr(o, 'name') ?? '';
    if (name === 'default')
      throw new Conflict('Default security group already exists.', 'SecurityGroupDefaultAlreadyExists');
    const id = this.ctx.ids.uuid();
    this.ctx.store.tx(() => {
      this.checkQuota(projectId, 'security_group');
      this.insertGroup(
        id,
        projectId,
        name,
        optStr(o, 'description') ?? '',
        false,
        optBool(o, 'stateful') ?? true,
      );
    });
    return this.renderGroup(this.row('security_group', id)!);
  }

  renderGroup(r: StoredRow): Obj {
    const rules = this.rows(
      'security_group_rule',
      'WHERE security_group_id = ? ORDER BY created_at, id',
      r.id,
    ).map((x) => this.body(x));
    return { ...this.body(r), security_group_rules: rules };
  }

  updateGroup(r: StoredRow, o: Obj): Obj {
    const b = this.bump(this.body(r));
    const name = optStr(o, 'name');
    if (name !== undefined) {
      if (b.name === 'default' && name !== 'default')
        throw new Conflict(
          'Cannot update the default security group name.',
          'SecurityGroupCannotUpdateDefault',
        );
      b.name = name;
    }
    const d = optStr(o, 'description');
    if (d !== undefined) b.description = d;
    this.ctx.store.tx(() => this.put('security_group', { name: b.name }, b));
    return this.renderGroup(this.row('security_group', r.id)!);
  }

  deleteGroup(auth: AuthContext, r: StoredRow): void {
    const b = this.body(r);
    if (b.name === 'default' && !auth.isAdmin)
      throw new Conflict(
        'Insufficient rights for removing default security group.',
        'SecurityGroupCannotRemoveDefault',
      );
    this.ctx.store.tx(() => {
      const inUse = this.rows('port', 'WHERE body LIKE ?', `%${r.id}%`).some((p) =>
        (this.body(p).security_groups as string[]).includes(r.id),
      );
      if (inUse) throw new Conflict(`Security Group ${r.id} in use.`, 'SecurityGroupInUse');
      for (const rule of this.rows('security_group_rule', 'WHERE security_group_id = ?', r.id))
        this.ctx.changelog.remove(NetKind.SecurityGroupRule, rule.id);
      this.ctx.changelog.remove(NetKind.SecurityGroup, r.id);
    });
  }

  private insertRule(projectId: string, o: Obj): Obj {
    const direction = optStr(o, 'direction');
    if (direction !== 'ingress' && direction !== 'egress')
      throw new BadRequest(
        `Invalid input for direction. Reason: '${String(direction)}' is not in ['ingress', 'egress'].`,
        'InvalidInput',
      );
    const ethertype = optStr(o, 'ethertype') ?? 'IPv4';
    if (ethertype !== 'IPv4' && ethertype !== 'IPv6')
      throw new BadRequest(`Invalid input for ethertype: ${ethertype}.`, 'InvalidInput');
    let protocol: string | null =
      o.protocol === undefined || o.protocol === null ? null : String(o.protocol).toLowerCase();
    if (protocol === 'any') protocol = null;
    const known = [
      'tcp',
      'udp',
      'icmp',
      'icmpv6',
      'ipv6-icmp',
      'sctp',
      'gre',
      'esp',
      'ah',
      'vrrp',
      'igmp',
      'ipip',
      'dccp',
      'ospf',
      'pgm',
      'rsvp',
      'udplite',
      'egp',
      'ipv6-encap',
      'ipv6-frag',
      'ipv6-nonxt',
      'ipv6-opts',
      'ipv6-route',
    ];
    if (
      protocol !== null &&
      !known.includes(protocol) &&
      !(/^\d+$/.test(protocol) && Number(protocol) <= 255)
    )
      throw new BadRequest(
        `Security group rule protocol ${protocol} not supported.`,
        'SecurityGroupRuleInvalidProtocol',
      );
    const min = optInt(o, 'port_range_min', 0, 65535) ?? null;
    const max = optInt(o, 'port_range_max', 0, 65535) ?? null;
    if ((min !== null || max !== null) && protocol === null)
      throw new BadRequest(
        'Must also specify protocol if port range is given.',
        'SecurityGroupProtocolRequiredWithPorts',
      );
    if (min !== null && max !== null && min > max && protocol !== 'icmp')
      throw new BadRequest(
        'For TCP/UDP protocols, port_range_min must be <= port_range_max',
        'SecurityGroupInvalidPortRange',
      );
    let prefix = optStr(o, 'remote_ip_prefix') ?? null;
    if (prefix !== null) {
      const c = parseCidr(
        prefix.includes('/') ? prefix : `${prefix}/${prefix.includes(':') ? 128 : 32}`,
        false,
      );
      if (!c) throw new BadRequest(`Invalid input for remote_ip_prefix: '${prefix}'.`, 'InvalidInput');
      if ((c.version === 4) !== (ethertype === 'IPv4'))
        throw new BadRequest(
          `Conflicting value ethertype ${ethertype} for CIDR ${prefix}`,
          'SecurityGroupRuleParameterConflict',
        );
      prefix = cidrText(c);
    }
    const remoteGroup = optStr(o, 'remote_group_id') ?? null;
    if (remoteGroup && prefix)
      throw new BadRequest(
        'Only remote_ip_prefix or remote_group_id may be provided.',
        'SecurityGroupRemoteGroupAndRemoteIpPrefix',
      );
    const groupId = String(o.security_group_id);
    const rule: Obj = {
      security_group_id: groupId,
      direction,
      ethertype,
      protocol,
      port_range_min: min,
      port_range_max: max,
      remote_ip_prefix: prefix,
      remote_group_id: remoteGroup,
      remote_address_group_id: null,
      normalized_cidr: prefix,
      description: optStr(o, 'description') ?? '',
      project_id: projectId,
      tenant_id: projectId,
      belongs_to_default_sg: false,
    };
    const same = (x: Obj) =>
      [
        'direction',
        'ethertype',
        'protocol',
        'port_range_min',
        'port_range_max',
        'remote_ip_prefix',
        'remote_group_id',
      ].every((k) => x[k] === rule[k]);
    const dup = this.rows('security_group_rule', 'WHERE security_group_id = ?', groupId).find((x) =>
      same(this.body(x)),
    );
    if (dup)
      throw new Conflict(
        `Security group rule already exists. Rule id is ${dup.id}.`,
        'SecurityGroupRuleExists',
      );
    const id = this.ctx.ids.uuid();
    const body = { id, ...rule };
    this.put('security_group_rule', { security_group_id: groupId }, body);
    return body;
  }

  createRule(auth: AuthContext, group: StoredRow, o: Obj): Obj {
    // Neutron looks the remote group up as the caller: another project's group is a 404.
    const remote = optStr(o, 'remote_group_id');
    if (remote) this.visible(auth, 'security_group', remote, 'security group');
    return this.ctx.store.tx(() => {
      this.checkQuota(group.project_id, 'security_group_rule');
      const b = this.insertRule(group.project_id, { ...o, security_group_id: group.id });
      return this.body(this.row('security_group_rule', String(b.id))!);
    });
  }

  deleteRule(r: StoredRow): void {
    this.ctx.store.tx(() => this.ctx.changelog.remove(NetKind.SecurityGroupRule, r.id));
  }

  // ---- routers -----------------------------------------------------------------------------------

  createRouter(auth: AuthContext, projectId: string, o: Obj): Obj {
    const id = this.ctx.ids.uuid();
    const body: Obj = {
      ...activeHead(id, projectId, o),
      external_gateway_info: null,
      routes: [],
      distributed: optBool(o, 'distributed') ?? false,
      ha: optBool(o, 'ha') ?? false,
      availability_zone_hints: optStrListOf(o, 'availability_zone_hints'),
      flavor_id: null,
      enable_ndp_proxy: false,
      tags: [],
    };
    return this.ctx.store.tx(() => {
      this.checkQuota(projectId, 'router');
      this.put('router', { name: body.name }, body);
      if (isObj(o.external_gateway_info))
        return this.setGateway(auth, this.row('router', id)!, o.external_gateway_info);
      this.notifyRouter(id);
      return this.renderRouter(this.row('router', id)!);
    });
  }

  renderRouter(r: StoredRow): Obj {
    return { ...this.body(r), availability_zones: [r.owner] };
  }

  updateRouter(auth: AuthContext, r: StoredRow, o: Obj): Obj {
    return this.ctx.store.tx(() => {
      const b = this.bump(this.body(r));
      setGiven(b, o, optStr, ['name', 'description']);
      setGiven(b, o, optBool, ['admin_state_up']);
      if (o.routes !== undefined) {
        if (!Array.isArray(o.routes)) throw new BadRequest('Invalid input for routes.', 'InvalidInput');
        b.routes = o.routes.map((x) => {
          if (!isObj(x) || typeof x.destination !== 'string' || !parseCidr(x.destination, false))
            throw new BadRequest('Invalid input for routes.', 'InvalidInput');
          requireIp(x.nexthop, 'routes.nexthop');
          return { destination: x.destination, nexthop: x.nexthop };
        });
      }
      this.put('router', { name: b.name }, b);
      if ('external_gateway_info' in o) {
        if (isObj(o.external_gateway_info) && Object.keys(o.external_gateway_info).length)
          return this.setGateway(auth, this.row('router', r.id)!, o.external_gateway_info);
        return this.clearGateway(this.row('router', r.id)!);
      }
      this.notifyRouter(r.id);
      return this.renderRouter(this.row('router', r.id)!);
    });
  }

  private routerPorts(routerId: string, owner?: string): StoredRow[] {
    return owner
      ? this.rows('port', 'WHERE device_id = ? AND device_owner = ?', routerId, owner)
      : this.rows('port', "WHERE device_id = ? AND device_owner LIKE 'network:router%'", routerId);
  }

  private setGateway(auth: AuthContext, r: StoredRow, g: Obj): Obj {
    // Neutron's create/update_router:external_gateway_info:external_fixed_ips is admin only.
    if (g.external_fixed_ips !== undefined && !auth.isAdmin)
      throw new Forbidden(
        '(rule:update_router:external_gateway_info:external_fixed_ips) is disallowed by policy',
      );
    const netId = optStr(g, 'network_id');
    if (!netId)
      throw new BadRequest(
        'Invalid input for external_gateway_info: network_id is required.',
        'InvalidInput',
      );
    const net = this.visible(auth, 'network', netId);
    if (!this.body(net)['router:external'])
      throw new BadRequest(`Network ${netId} is not a valid external network.`, 'BadRequest');
    this.clearGateway(r, false);
    const sys = { ...auth, isAdmin: true };
    const port = this.createPort(sys, '', net, {
      device_owner: DeviceOwner.RouterGateway,
      device_id: r.id,
      ...(Array.isArray(g.external_fixed_ips) ? { fixed_ips: g.external_fixed_ips } : {}),
    });
    const b = this.bump(this.body(this.row('router', r.id)!));
    b.external_gateway_info = {
      network_id: netId,
      enable_snat: optBool(g, 'enable_snat') ?? true,
      external_fixed_ips: port.fixed_ips,
    };
    this.put('router', { name: b.name }, b);
    this.notifyRouter(r.id);
    return this.renderRouter(this.row('router', r.id)!);
  }

  private clearGateway(r: StoredRow, save = true): Obj {
    const gw = this.routerPorts(r.id, DeviceOwner.RouterGateway);
    if (gw.length) {
      const routerFips = this.rows('floating_ip', '').filter((f) => this.body(f).router_id === r.id);
      if (routerFips.length)
        throw new Conflict(
          `Gateway cannot be updated for router ${r.id}, since a gateway to external network is required by one or more floating IPs.`,
          'RouterExternalGatewayInUseByFloatingIp',
        );
    }
    for (const p of gw) this.deletePort(p);
    if (save) {
      const b = this.bump(this.body(r));
      b.external_gateway_info = null;
      this.put('router', { name: b.name }, b);
      this.notifyRouter(r.id);
    }
    return this.renderRouter(this.row('router', r.id)!);
  }

  addInterface(auth: AuthContext, r: StoredRow, o: Obj): Obj {
    const subnetId = optStr(o, 'subnet_id');
    const portId = optStr(o, 'port_id');
    if (!!subnetId === !!portId)
      throw new BadRequest('Either subnet_id or port_id must be specified.', 'BadRequest');
    return this.ctx.store.tx(() => {
      const attached = this.routerPorts(r.id, DeviceOwner.RouterInterface).flatMap((p) =>
        (this.body(p).fixed_ips as { subnet_id: string }[]).map((f) => f.subnet_id),
      );
      let port: Obj;
      if (subnetId) {
        const s = this.visible(auth, 'subnet', subnetId);
        const sb = this.body(s);
        if (attached.includes(subnetId))
          throw new BadRequest(`Router already has a port on subnet ${subnetId}.`, 'BadRequest');
        if (!sb.gateway_ip)
          throw new BadRequest(`Bad router request: Subnet ${subnetId} has no gateway IP.`, 'BadRequest');
        const net = this.row('network', String(s.network_id))!;
        const inUse = this.db
          .prepare('SELECT port_id FROM net_ip_allocations WHERE subnet_id = ? AND ip = ?')
          .pluck()
          .get(subnetId, sb.gateway_ip);
        port = this.createPort({ ...auth, isAdmin: true }, r.project_id, net, {
          device_owner: DeviceOwner.RouterInterface,
          device_id: r.id,
          fixed_ips: [inUse ? { subnet_id: subnetId } : { subnet_id: subnetId, ip_address: sb.gateway_ip }],
        });
      } else {
        const p = this.visible(auth, 'port', portId!);
        const pb = this.body(p);
        if (pb.device_id)
          throw new Conflict(
            `Port ${portId} is in use by ${String(pb.device_owner)} ${String(pb.device_id)}.`,
            'PortInUse',
          );
        if (p.owner !== this.ctx.name)
          throw new Conflict(`Port ${portId} belongs to site ${p.owner}; attach it from there.`, 'PortInUse');
        const fixed = pb.fixed_ips as { subnet_id: string }[];
        if (!fixed.length)
          throw new BadRequest(
            `Bad router request: Router port must have at least one fixed IP.`,
            'BadRequest',
          );
        if (fixed.some((f) => attached.includes(f.subnet_id)))
          throw new BadRequest(`Router already has a port on subnet ${fixed[0]!.subnet_id}.`, 'BadRequest');
        port = this.updatePort({ ...auth, isAdmin: true }, p, {
          device_owner: DeviceOwner.RouterInterface,
          device_id: r.id,
        });
      }
      this.notifyRouter(r.id);
      const ips = port.fixed_ips as { subnet_id: string }[];
      return {
        id: r.id,
        tenant_id: r.project_id,
        project_id: r.project_id,
        port_id: port.id,
        network_id: port.network_id,
        subnet_id: ips[0]?.subnet_id,
        subnet_ids: ips.map((f) => f.subnet_id),
      };
    });
  }

  removeInterface(auth: AuthContext, r: StoredRow, o: Obj): Obj {
    const subnetId = optStr(o, 'subnet_id');
    const portId = optStr(o, 'port_id');
    if (!subnetId && !portId)
      throw new BadRequest('Either subnet_id or port_id must be specified.', 'BadRequest');
    return this.ctx.store.tx(() => {
      const ports = this.routerPorts(r.id, DeviceOwner.RouterInterface).filter(
        (p) =>
          (!portId || p.id === portId) &&
          (!subnetId ||
            (this.body(p).fixed_ips as { subnet_id: string }[]).some((f) => f.subnet_id === subnetId)),
      );
      const p = ports[0];
      if (!p)
        throw new NotFound(
          portId
            ? `Router ${r.id} does not have an interface with id ${portId}`
            : `Router ${r.id} has no interface on subnet ${subnetId}`,
          'RouterInterfaceNotFoundForSubnet',
        );
      const pb = this.body(p);
      const ips = pb.fixed_ips as { subnet_id: string }[];
      const fipsUsing = this.rows('floating_ip', '').filter((f) => {
        const fb = this.body(f);
        if (fb.router_id !== r.id || !fb.port_id) return false;
        const target = this.row('port', String(fb.port_id));
        return (
          !!target &&
          (this.body(target).fixed_ips as { subnet_id: string }[]).some((x) =>
            ips.some((i) => i.subnet_id === x.subnet_id),
          )
        );
      });
      if (fipsUsing.length)
        throw new Conflict(
          `Router interface for subnet ${ips[0]?.subnet_id} on router ${r.id} cannot be deleted, as it is required by one or more floating IPs.`,
          'RouterInterfaceInUseByFloatingIP',
        );
      this.deletePort(p);
      this.notifyRouter(r.id);
      return {
        id: r.id,
        tenant_id: r.project_id,
        project_id: r.project_id,
        port_id: p.id,
        network_id: p.network_id,
        subnet_id: ips[0]?.subnet_id,
        subnet_ids: ips.map((f) => f.subnet_id),
      };
    });
  }

  deleteRouter(r: StoredRow): void {
    this.ctx.store.tx(() => {
      if (this.routerPorts(r.id, DeviceOwner.RouterInterface).length)
        throw new Conflict(`Router ${r.id} still has ports`, 'RouterInUse');
      this.clearGateway(r, false);
      this.ctx.changelog.remove(NetKind.Router, r.id);
    });
    this.driver.routerDeleted(r.id);
  }

  private notifyRouter(id: string): void {
    const r = this.row('router', id);
    if (!r) return;
    const b = this.body(r);
    const subnets = this.routerPorts(id, DeviceOwner.RouterInterface).flatMap((p) =>
      (this.body(p).fixed_ips as { subnet_id: string }[]).map((f) => f.subnet_id),
    );
    const gw = b.external_gateway_info as { network_id?: string } | null;
    this.ctx.store.onCommit(() =>
      this.driver.routerUpdated({
        routerId: id,
        adminStateUp: b.admin_state_up !== false,
        interfaceSubnetIds: subnets,
        externalNetworkId: gw?.network_id,
      }),
    );
  }

  // ---- floating IPs ------------------------------------------------------------------------------

  createFloatingIp(auth: AuthContext, projectId: string, o: Obj): Obj {
    const netId = requiredRef(o, 'floating_network_id');
    const net = this.visible(auth, 'network', netId);
    if (!this.body(net)['router:external'])
      throw new BadRequest(
        `Bad floatingip request: Network ${netId} is not a valid external network.`,
        'BadRequest',
      );
    const id = this.ctx.ids.uuid();
    return this.ctx.store.tx(() => {
      this.checkQuota(projectId, 'floatingip');
      const subnetId = optStr(o, 'subnet_id');
      const want = optStr(o, 'floating_ip_address');
      if (want && !auth.isAdmin)
        throw new Forbidden('(rule:create_floatingip:floating_ip_address) is disallowed by policy');
      const v4 = this.rows(
        'subnet',
        'WHERE network_id = ? AND ip_version = 4 ORDER BY created_at, id',
        netId,
      );
      if (!v4.length)
        throw new BadRequest(
          `Bad floatingip request: Network ${netId} does not contain any IPv4 subnet.`,
          'BadRequest',
        );
      const fixed = want
        ? [{ ip_address: want, ...(subnetId ? { subnet_id: subnetId } : {}) }]
        : subnetId
          ? [{ subnet_id: subnetId }]
          : undefined;
      const port = this.createPort({ ...auth, isAdmin: true }, '', net, {
        device_owner: DeviceOwner.FloatingIp,
        device_id: id,
        ...(fixed ? { fixed_ips: fixed } : {}),
      });
      const addr = (port.fixed_ips as { ip_address: string }[])[0]!.ip_address;
      const body: Obj = {
        id,
        floating_ip_address: addr,
        floating_network_id: netId,
        project_id: projectId,
        tenant_id: projectId,
        router_id: null,
        port_id: null,
        fixed_ip_address: null,
        status: 'DOWN',
        description: optStr(o, 'description') ?? '',
        dns_domain: '',
        dns_name: '',
        port_details: null,
        port_forwardings: [],
        qos_policy_id: null,
        qos_network_policy_id: null,
        tags: [],
      };
      this.put('floating_ip', { floating_network_id: netId, floating_ip_address: addr, port_id: null }, body);
      const row = this.row('floating_ip', id)!;
      if (o.port_id) return this.associate(auth, row, optStr(o, 'port_id')!, optStr(o, 'fixed_ip_address'));
      return this.renderFloatingIp(row);
    });
  }

  renderFloatingIp(r: StoredRow): Obj {
    const b = this.body(r);
    if (b.port_id) {
      const p = this.row('port', String(b.port_id));
      if (p) {
        const pb = this.body(p);
        b.port_details = {
          name: pb.name,
          network_id: pb.network_id,
          mac_address: pb.mac_address,
          admin_state_up: pb.admin_state_up,
          status: pb.status,
          device_id: pb.device_id,
          device_owner: pb.device_owner,
        };
      }
    }
    return b;
  }

  updateFloatingIp(auth: AuthContext, r: StoredRow, o: Obj): Obj {
    return this.ctx.store.tx(() => {
      if (o.description !== undefined) {
        const b = this.bump(this.body(r));
        b.description = optStr(o, 'description') ?? '';
        this.put(
          'floating_ip',
          {
            floating_network_id: r.floating_network_id,
            floating_ip_address: r.floating_ip_address,
            port_id: b.port_id,
          },
          b,
        );
      }
      const cur = this.row('floating_ip', r.id)!;
      if (!('port_id' in o)) return this.renderFloatingIp(cur);
      if (o.port_id === null) return this.setFloatingPort(cur, null);
      return this.associate(auth, cur, String(o.port_id), optStr(o, 'fixed_ip_address'));
    });
  }

  private associate(auth: AuthContext, fip: StoredRow, portId: string, fixedIp?: string): Obj {
    const port = this.visible(auth, 'port', portId);
    const pb = this.body(port);
    const ips = (pb.fixed_ips as { subnet_id: string; ip_address: string }[]).filter(
      (f) => !f.ip_address.includes(':'),
    );
    const chosen = fixedIp ? ips.find((f) => f.ip_address === fixedIp) : ips[0];
    if (!chosen)
      throw new BadRequest(
        `Bad floatingip request: Port ${portId} does not have fixed ip ${fixedIp ?? '(any IPv4)'}.`,
        'BadRequest',
      );
    const fb = this.body(fip);
    const taken = this.rows(
      'floating_ip',
      'WHERE port_id = ? AND floating_network_id = ? AND id != ?',
      portId,
      fb.floating_network_id,
      fip.id,
    ).some((f) => this.body(f).fixed_ip_address === chosen.ip_address);
    if (taken)
      throw new Conflict(
        `Cannot associate floating IP ${String(fb.floating_ip_address)} with port ${portId} using fixed IP ${chosen.ip_address}, as that fixed IP already has a floating IP on external network ${String(fb.floating_network_id)}.`,
        'FloatingIPPortAlreadyAssociated',
      );
    const router = this.routerFor(String(fb.floating_network_id), chosen.subnet_id);
    if (!router)
      throw new NotFound(
        `External network ${String(fb.floating_network_id)} is not reachable from subnet ${chosen.subnet_id}. Therefore, cannot associate Port ${portId} with a Floating IP.`,
        'ExternalGatewayForFloatingIPNotFound',
      );
    return this.setFloatingPort(fip, { portId, fixedIp: chosen.ip_address, routerId: router });
  }

  /** A router with a gateway on the external network and an interface on the subnet. */
  private routerFor(externalNetId: string, subnetId: string): string | undefined {
    for (const r of this.rows('router', '')) {
      const gw = this.body(r).external_gateway_info as { network_id?: string } | null;
      if (gw?.network_id !== externalNetId) continue;
      const has = this.routerPorts(r.id, DeviceOwner.RouterInterface).some((p) =>
        (this.body(p).fixed_ips as { subnet_id: string }[]).some((f) => f.subnet_id === subnetId),
      );
      if (has) return r.id;
    }
    return undefined;
  }

  private setFloatingPort(
    fip: StoredRow,
    to: { portId: string; fixedIp: string; routerId: string } | null,
  ): Obj {
    const b = this.bump(this.body(fip));
    b.port_id = to?.portId ?? null;
    b.fixed_ip_address = to?.fixedIp ?? null;
    b.router_id = to?.routerId ?? null;
    b.status = to ? 'ACTIVE' : 'DOWN';
    b.port_details = null;
    this.put(
      'floating_ip',
      {
        floating_network_id: fip.floating_network_id,
        floating_ip_address: fip.floating_ip_address,
        port_id: b.port_id,
      },
      b,
    );
    return this.renderFloatingIp(this.row('floating_ip', fip.id)!);
  }

  deleteFloatingIp(r: StoredRow): void {
    this.ctx.store.tx(() => {
      for (const p of this.rows(
        'port',
        'WHERE device_id = ? AND device_owner = ?',
        r.id,
        DeviceOwner.FloatingIp,
      ))
        this.deletePort(p);
      this.ctx.changelog.remove(NetKind.FloatingIp, r.id);
    });
  }

  /** Addresses in use in a subnet, for ip availability and tests. */
  subnetUsage(r: StoredRow): { used: number; total: bigint } {
    return this.ipam.usage(this.subnetForIpam(r));
  }
}

const kindName: Record<ResourceKind, string> = {
  network: NetKind.Network,
  subnet: NetKind.Subnet,
  port: NetKind.Port,
  security_group: NetKind.SecurityGroup,
  security_group_rule: NetKind.SecurityGroupRule,
  router: NetKind.Router,
  floating_ip: NetKind.FloatingIp,
};

function optStrListOf(o: Obj, field: string): string[] {
  const v = o[field];
  if (v === undefined || v === null) return [];
  if (!Array.isArray(v) || !v.every((x) => typeof x === 'string'))
    throw new BadRequest(`Invalid input for ${field}: must be a list of strings.`, 'InvalidInput');
  return v as string[];
}

function title(kind: string): string {
  return kind.replaceAll('_', ' ').replace(/^./, (c) => c.toUpperCase());
}
function pascal(kind: string): string {
  return kind
    .split(/[_ ]/)
    .map((w) => (w === 'ip' ? 'IP' : w.charAt(0).toUpperCase() + w.slice(1)))
    .join('');
}

/** A stable UUID from parts (for rows every site must agree on, like a project's default group). */
export function uuidFrom(...parts: string[]): string {
  const h = createHash('sha256').update(parts.join('\0')).digest('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-4${h.slice(13, 16)}-a${h.slice(17, 20)}-${h.slice(20, 32)}`;
}

function bindingOf(b: Obj) {
  return {
    portId: String(b.id),
    networkId: String(b.network_id),
    macAddress: String(b.mac_address),
    fixedIps: (b.fixed_ips as { subnet_id: string; ip_address: string }[]).map((f) => ({
      subnetId: f.subnet_id,
      ipAddress: f.ip_address,
    })),
    deviceId: String(b.device_id),
    deviceOwner: String(b.device_owner),
    hostId: String(b['binding:host_id']),
  };
}
