/**
 * @module The site's data plane (issue 14): what the network rows ask of this host's kernel, derived
 * level-based from the rows (as a Kubernetes controller): a bridge per network that has a port bound
 * here, a tap per such port, and a DHCP server per network with DHCP subnets, serving exactly the
 * fixed IPs the API allocated. `desiredState` is pure; an implementation (`linux.ts`, or `none`)
 * makes the host match it in `reconcile`, creating what is missing and removing what no row explains.
 */
import { idPart, tapName } from '../../common/vif.ts';
import type { Vif } from '../../common/vif.ts';
import type { Obj } from '../../common/input.ts';

/** The data planes a site can run (`services.network.dataplane`). */
export const DATAPLANES = ['none', 'linux'] as const;
export type DataPlaneName = (typeof DATAPLANES)[number];

export interface DesiredPort {
  id: string;
  tap: string;
  mac: string;
}

export interface DesiredDhcpSubnet {
  id: string;
  /** Network address and prefix length, e.g. 10.0.0.0 and 24. */
  network: string;
  prefix: number;
  gateway: string | null;
  dnsServers: string[];
}

export interface DesiredNetwork {
  id: string;
  bridge: string;
  mtu: number;
  ports: DesiredPort[];
  /** IPv4 subnets with enable_dhcp; empty: no namespace, no dnsmasq. */
  dhcp: DesiredDhcpSubnet[];
  /** `mac,ip` lines for dnsmasq's --dhcp-hostsfile: every fixed IPv4 address of the DHCP subnets. */
  hosts: string[];
}

export interface DesiredState {
  networks: DesiredNetwork[];
}

export interface DataPlane {
  readonly name: DataPlaneName;
  /** At start: throws with a clear message when this host cannot run the data plane. */
  check(): Promise<void>;
  /** Makes the host match `want`; resolves when done (errors are per device, logged, retried next pass). */
  reconcile(want: DesiredState): Promise<void>;
}

/** Neutron's Linux bridge agent names a network's bridge `brq` + the first 11 characters of its id. */
export const bridgeName = (networkId: string): string => `brq${idPart(networkId)}`;
/** The DHCP namespace of a network (Neutron: `qdhcp-<network id>`). */
export const dhcpNamespace = (networkId: string): string => `qdhcp-${networkId}`;
/** The veth from the bridge into the DHCP namespace: `qdh…` on the bridge, `ns-…` inside. */
export const dhcpVeth = (networkId: string): { host: string; ns: string } => ({
  host: `qdh${idPart(networkId)}`,
  ns: `ns-${idPart(networkId)}`,
});

/** The rows the desired state is computed from (network bodies, their subnets and ports). */
export interface DataPlaneRows {
  network(id: string): Obj | undefined;
  subnetsOf(networkId: string): Obj[];
  portsOf(networkId: string): { owner: string; body: Obj }[];
  /** Every port row (owner and body). */
  ports(): { owner: string; body: Obj }[];
}

const DEFAULT_MTU = 1500;

/** Whether this site's data plane plugs the port: made here, bound to a host, a server's NIC. */
export function plugsHere(site: string, p: { owner: string; body: Obj }): boolean {
  const b = p.body;
  return (
    p.owner === site &&
    typeof b['binding:host_id'] === 'string' &&
    b['binding:host_id'] !== '' &&
    typeof b.device_owner === 'string' &&
    b.device_owner.startsWith('compute:') &&
    typeof b.network_id === 'string'
  );
}

export function mtuOf(net: Obj | undefined): number {
  return typeof net?.mtu === 'number' && net.mtu >= 68 ? net.mtu : DEFAULT_MTU;
}

/** What the rows ask of this site's host (pure). */
export function desiredState(site: string, rows: DataPlaneRows): DesiredState {
  const byNet = new Map<string, DesiredPort[]>();
  for (const p of rows.ports()) {
    if (!plugsHere(site, p)) continue;
    const netId = String(p.body.network_id);
    const list = byNet.get(netId) ?? [];
    list.push({ id: String(p.body.id), tap: tapName(String(p.body.id)), mac: String(p.body.mac_address) });
    byNet.set(netId, list);
  }
  const networks: DesiredNetwork[] = [];
  for (const [id, ports] of [...byNet].sort(([a], [b]) => a.localeCompare(b))) {
    const net = rows.network(id);
    if (!net) continue;
    const dhcp: DesiredDhcpSubnet[] = [];
    for (const s of rows.subnetsOf(id)) {
      if (s.ip_version !== 4 || s.enable_dhcp === false || typeof s.cidr !== 'string') continue;
      const [network, len] = s.cidr.split('/');
      dhcp.push({
        id: String(s.id),
        network: network!,
        prefix: Number(len),
        gateway: typeof s.gateway_ip === 'string' ? s.gateway_ip : null,
        dnsServers: Array.isArray(s.dns_nameservers) ? s.dns_nameservers.map(String) : [],
      });
    }
    const dhcpIds = new Set(dhcp.map((s) => s.id));
    const hosts: string[] = [];
    if (dhcp.length)
      for (const p of rows.portsOf(id)) {
        const ips = Array.isArray(p.body.fixed_ips) ? (p.body.fixed_ips as Obj[]) : [];
        for (const ip of ips)
          if (dhcpIds.has(String(ip.subnet_id)))
            hosts.push(`${String(p.body.mac_address)},${String(ip.ip_address)}`);
      }
    hosts.sort();
    ports.sort((a, b) => a.id.localeCompare(b.id));
    networks.push({ id, bridge: bridgeName(id), mtu: mtuOf(net), ports, dhcp, hosts });
  }
  return { networks };
}

/** The NICs of a server that the data plane plugs, in the order of its ports. */
export function vifsOf(site: string, rows: DataPlaneRows, ports: { owner: string; body: Obj }[]): Vif[] {
  return ports
    .filter((p) => plugsHere(site, p))
    .map((p) => ({
      portId: String(p.body.id),
      mac: String(p.body.mac_address),
      tap: tapName(String(p.body.id)),
      mtu: mtuOf(rows.network(String(p.body.network_id))),
    }));
}

/** The no-op data plane (the fake driver, the lab, a site without root): bookkeeping only. */
export const noneDataPlane: DataPlane = {
  name: 'none',
  async check() {},
  async reconcile() {},
};
