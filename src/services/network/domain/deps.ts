/**
 * @module What the network domain sees of the world (its ports): the resource repository, IPAM, the
 * data-plane driver, this site, a clock, ids and randomness. src/services/network/index.ts fills them
 * from the site; nothing here speaks SQL, HTTP or the fabric.
 */
import type { Obj } from '../../common/input.ts';
import type { SubnetForIpam } from '../store/ipam.ts';
import type { ResourceKind, ResourceRow } from '../store/schema.ts';
import type { NetworkDriver } from './driver.ts';

/** A resource row: the columns SQL filters on, and `body`, the JSON of its Neutron attributes. */
export type StoredRow = ResourceRow;

export type QuotaKey =
  | 'network'
  | 'subnet'
  | 'port'
  | 'router'
  | 'floatingip'
  | 'security_group'
  | 'security_group_rule'
  | 'rbac_policy'
  | 'subnetpool';

/** The network tables, read by named queries and written through this site's change log. */
export interface NetworkRepository {
  /** Runs `fn` in one transaction (nested calls join the outer one). */
  tx<T>(fn: () => T): T;
  /** Runs `fn` once the outermost transaction committed. */
  onCommit(fn: () => void): void;

  row(kind: ResourceKind, id: string): StoredRow | undefined;
  all(kind: ResourceKind): StoredRow[];
  /** Writes a resource row (the change log stamps owner and sequence). */
  save(
    kind: ResourceKind,
    row: { id: string; project_id: string; body: Obj; created_at: number; updated_at: number } & Obj,
  ): void;
  remove(kind: ResourceKind, id: string): void;

  subnetsOf(networkId: string): StoredRow[];
  subnetsOfOrdered(networkId: string): StoredRow[];
  subnetIdsOf(networkId: string): string[];
  subnetsOfFamily(networkId: string, ipVersion: number): StoredRow[];
  v4SubnetsOrdered(networkId: string): StoredRow[];
  portsOf(networkId: string): StoredRow[];
  /** Ports on the network other than those with this device owner. */
  portsOfExcept(networkId: string, deviceOwner: string): StoredRow[];
  portsOfDevice(deviceId: string): StoredRow[];
  portsOfDeviceOrdered(deviceId: string): StoredRow[];
  portsOfDeviceOwnedBy(deviceId: string, deviceOwner: string): StoredRow[];
  /** Ports of the device whose device owner starts with `prefix`. */
  portsOfDeviceOwnerLike(deviceId: string, prefix: string): StoredRow[];
  /** Ports whose body mentions `text` (a cheap pre-filter; the caller checks the attribute). */
  portsMentioning(text: string): StoredRow[];
  macInUse(networkId: string, mac: string): boolean;
  /** The port holding this address of the subnet, if any. */
  portAt(subnetId: string, ip: string): string | undefined;
  rulesOf(groupId: string): StoredRow[];
  rulesOfOrdered(groupId: string): StoredRow[];
  /** A metering label's rules, oldest first. */
  meteringRulesOf(labelId: string): StoredRow[];
  floatingIpsOfPort(portId: string, owner: string): StoredRow[];
  floatingIpsOnPortExcept(portId: string, floatingNetworkId: unknown, exceptId: string): StoredRow[];
  internalNetworksOrdered(): StoredRow[];

  /** The project's home site, when identity's replica knows the project. */
  projectHome(projectId: string): string | undefined;
  quotaLimits(projectId: string): Partial<Record<QuotaKey, number>> | undefined;
  saveQuotaLimits(projectId: string, limits: Obj): void;
  removeQuotaLimits(projectId: string): void;
  /** How many rows of the kind the project has. */
  countOf(kind: ResourceKind, projectId: string): number;

  serverPorts(serverId: string): { id: string; created: number }[];
  saveServerPort(portId: string, serverId: string, created: boolean): void;
  removeServerPort(portId: string): void;
}

/** The address management the domain uses (store/ipam.ts implements it). */
export interface IpamPort {
  allocate(s: SubnetForIpam, portId: string, ip?: string, mayUseGateway?: boolean): string;
  release(subnetId: string, ip: string): void;
  releasePort(portId: string): void;
  inUse(subnetId: string): boolean;
  dropSubnet(subnetId: string): void;
  freeCount(s: SubnetForIpam): number;
  usage(s: SubnetForIpam): { used: number; total: bigint };
}

/** This site as the domain needs it. */
export interface SiteInfo {
  readonly name: string;
  /** True when a row with this owner is written here. */
  owns(owner: string): boolean;
  /** True when the site is a member of the federation (availability zones are sites). */
  knows(site: string): boolean;
}

export interface NetworkDeps {
  readonly repo: NetworkRepository;
  readonly ipam: IpamPort;
  readonly driver: NetworkDriver;
  readonly site: SiteInfo;
  readonly clock: { now(): number };
  readonly ids: { uuid(): string };
  /** `n` random bytes (MAC addresses). */
  readonly randomBytes: (n: number) => Uint8Array;
  /** The first three octets of the MACs this site makes (config.services.network.baseMac). */
  readonly macPrefix: string;
}
