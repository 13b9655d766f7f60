/**
 * @module The network service's SQL: named reads of its tables, and writes through this site's change
 * log (ChangeLog.put/remove), so each row and its log entry land in one transaction. Implements the
 * domain's NetworkRepository port (domain/deps.ts).
 */
import type { ChangeLog, Kind } from '../../../federation/changelog.ts';
import type { Store } from '../../../store/db.ts';
import type { Obj } from '../../common/input.ts';
import type { NetworkRepository, QuotaKey, StoredRow } from '../domain/deps.ts';
import type { ResourceKind, ResourceRow } from './schema.ts';
import {
  floatingIpKind,
  meteringLabelKind,
  meteringLabelRuleKind,
  netQuotaKind,
  networkKind,
  portKind,
  routerKind,
  securityGroupKind,
  securityGroupRuleKind,
  serverPortKind,
  subnetKind,
  subnetPoolKind,
  tableOf,
} from './schema.ts';

const kindOf: Record<ResourceKind, Kind<ResourceRow>> = {
  network: networkKind,
  subnet: subnetKind,
  port: portKind,
  security_group: securityGroupKind,
  security_group_rule: securityGroupRuleKind,
  router: routerKind,
  floating_ip: floatingIpKind,
  subnet_pool: subnetPoolKind,
  metering_label: meteringLabelKind,
  metering_label_rule: meteringLabelRuleKind,
};

export class SqlNetworkRepository implements NetworkRepository {
  constructor(
    private readonly store: Store,
    private readonly changelog: ChangeLog,
  ) {}

  private get db() {
    return this.store.db;
  }

  private where(kind: ResourceKind, where: string, ...args: unknown[]): StoredRow[] {
    return this.db.prepare(`SELECT * FROM ${tableOf[kind]} ${where}`).all(...args) as StoredRow[];
  }

  tx<T>(fn: () => T): T {
    return this.store.tx(fn);
  }

  onCommit(fn: () => void): void {
    this.store.onCommit(fn);
  }

  row(kind: ResourceKind, id: string): StoredRow | undefined {
    return this.db.prepare(`SELECT * FROM ${tableOf[kind]} WHERE id = ?`).get(id) as StoredRow | undefined;
  }

  all(kind: ResourceKind): StoredRow[] {
    return this.where(kind, '');
  }

  /** The list pre-filter of GET /<collection>?id=... */
  withId(kind: ResourceKind, id: string): StoredRow[] {
    return this.where(kind, 'WHERE id = ?', id);
  }

  save(
    kind: ResourceKind,
    row: { id: string; project_id: string; body: Obj; created_at: number; updated_at: number } & Obj,
  ): void {
    this.changelog.put(kindOf[kind], { ...row, body: JSON.stringify(row.body) });
  }

  remove(kind: ResourceKind, id: string): void {
    this.changelog.remove(kindOf[kind], id);
  }

  subnetsOf(networkId: string): StoredRow[] {
    return this.where('subnet', 'WHERE network_id = ?', networkId);
  }

  subnetsOfOrdered(networkId: string): StoredRow[] {
    return this.where('subnet', 'WHERE network_id = ? ORDER BY created_at, id', networkId);
  }

  subnetIdsOf(networkId: string): string[] {
    return this.db
      .prepare('SELECT id FROM net_subnets WHERE network_id = ? ORDER BY created_at, id')
      .pluck()
      .all(networkId) as string[];
  }

  subnetsOfFamily(networkId: string, ipVersion: number): StoredRow[] {
    return this.where('subnet', 'WHERE network_id = ? AND ip_version = ?', networkId, ipVersion);
  }

  v4SubnetsOrdered(networkId: string): StoredRow[] {
    return this.where('subnet', 'WHERE network_id = ? AND ip_version = 4 ORDER BY created_at, id', networkId);
  }

  portsOf(networkId: string): StoredRow[] {
    return this.where('port', 'WHERE network_id = ?', networkId);
  }

  portsOfExcept(networkId: string, deviceOwner: string): StoredRow[] {
    return this.where('port', 'WHERE network_id = ? AND device_owner != ?', networkId, deviceOwner);
  }

  portsOfDevice(deviceId: string): StoredRow[] {
    return this.where('port', 'WHERE device_id = ?', deviceId);
  }

  portsOfDeviceOrdered(deviceId: string): StoredRow[] {
    return this.where('port', 'WHERE device_id = ? ORDER BY created_at, id', deviceId);
  }

  portsOfDeviceOwnedBy(deviceId: string, deviceOwner: string): StoredRow[] {
    return this.where('port', 'WHERE device_id = ? AND device_owner = ?', deviceId, deviceOwner);
  }

  portsOfDeviceOwnerLike(deviceId: string, prefix: string): StoredRow[] {
    return this.where('port', 'WHERE device_id = ? AND device_owner LIKE ?', deviceId, `${prefix}%`);
  }

  portsMentioning(text: string): StoredRow[] {
    return this.where('port', 'WHERE body LIKE ?', `%${text}%`);
  }

  macInUse(networkId: string, mac: string): boolean {
    return !!this.db
      .prepare('SELECT 1 FROM net_ports WHERE network_id = ? AND mac_address = ?')
      .get(networkId, mac);
  }

  portAt(subnetId: string, ip: string): string | undefined {
    return this.db
      .prepare('SELECT port_id FROM net_ip_allocations WHERE subnet_id = ? AND ip = ?')
      .pluck()
      .get(subnetId, ip) as string | undefined;
  }

  rulesOf(groupId: string): StoredRow[] {
    return this.where('security_group_rule', 'WHERE security_group_id = ?', groupId);
  }

  meteringRulesOf(labelId: string): StoredRow[] {
    return this.where('metering_label_rule', 'WHERE metering_label_id = ? ORDER BY created_at, id', labelId);
  }

  rulesOfOrdered(groupId: string): StoredRow[] {
    return this.where('security_group_rule', 'WHERE security_group_id = ? ORDER BY created_at, id', groupId);
  }

  floatingIpsOfPort(portId: string, owner: string): StoredRow[] {
    return this.where('floating_ip', 'WHERE port_id = ? AND owner = ?', portId, owner);
  }

  floatingIpsOnPortExcept(portId: string, floatingNetworkId: unknown, exceptId: string): StoredRow[] {
    return this.where(
      'floating_ip',
      'WHERE port_id = ? AND floating_network_id = ? AND id != ?',
      portId,
      floatingNetworkId,
      exceptId,
    );
  }

  internalNetworksOrdered(): StoredRow[] {
    return this.where('network', 'WHERE external = 0 ORDER BY created_at, id');
  }

  projectHome(projectId: string): string | undefined {
    return this.db.prepare('SELECT owner FROM projects WHERE id = ?').pluck().get(projectId) as
      string | undefined;
  }

  quotaLimits(projectId: string): Partial<Record<QuotaKey, number>> | undefined {
    const r = this.db.prepare('SELECT body FROM net_quotas WHERE id = ?').get(projectId) as
      { body: string } | undefined;
    return r ? (JSON.parse(r.body) as Partial<Record<QuotaKey, number>>) : undefined;
  }

  /** The site that owns the project's quota row, if one was set. */
  quotaOwner(projectId: string): string | undefined {
    return this.db.prepare('SELECT owner FROM net_quotas WHERE id = ?').pluck().get(projectId) as
      string | undefined;
  }

  /** Projects with quotas set, in id order. */
  quotaProjects(): string[] {
    return this.db.prepare('SELECT id FROM net_quotas ORDER BY id').pluck().all() as string[];
  }

  saveQuotaLimits(projectId: string, limits: Obj): void {
    this.changelog.put(netQuotaKind, { id: projectId, body: JSON.stringify(limits) });
  }

  removeQuotaLimits(projectId: string): void {
    this.changelog.remove(netQuotaKind, projectId);
  }

  countOf(kind: ResourceKind, projectId: string): number {
    return this.db
      .prepare(`SELECT count(*) FROM ${tableOf[kind]} WHERE project_id = ?`)
      .pluck()
      .get(projectId) as number;
  }

  serverPorts(serverId: string): { id: string; created: number }[] {
    return this.db.prepare('SELECT id, created FROM net_server_ports WHERE server_id = ?').all(serverId) as {
      id: string;
      created: number;
    }[];
  }

  saveServerPort(portId: string, serverId: string, created: boolean): void {
    this.changelog.put(serverPortKind, { id: portId, server_id: serverId, created: created ? 1 : 0 });
  }

  removeServerPort(portId: string): void {
    this.changelog.remove(serverPortKind, portId);
  }
}
