/**
 * @module The compute service's SQL: reads of its tables, and the local (never replicated) host and
 * claim bookkeeping with prepared statements, since the scheduler runs them on every boot.
 * Replicated rows are written only through the change log (ChangeLog.put/remove).
 */
import type { Db } from '../../../store/db.ts';
import type {
  FlavorRow,
  HostRow,
  InstanceActionRow,
  KeypairRow,
  ServerGroupRow,
  ServerRow,
} from './schema.ts';

export class ComputeRepo {
  private s;
  constructor(
    readonly db: Db,
    private site: string,
  ) {
    this.s = {
      server: db.prepare('SELECT * FROM servers WHERE id = ?'),
      flavor: db.prepare('SELECT * FROM flavors WHERE id = ?'),
      // The winner of a name two sites' rows share until the loser is renamed (federation/unique.ts).
      flavorByName: db.prepare('SELECT * FROM flavors WHERE name = ? ORDER BY created_at, id, owner LIMIT 1'),
      access: db.prepare('SELECT 1 FROM flavor_access WHERE id = ?'),
      usage: db.prepare(
        "SELECT count(*) AS n, coalesce(sum(vcpus),0) AS cores, coalesce(sum(ram),0) AS ram FROM servers WHERE project_id = ? AND vm_state != 'deleted'",
      ),
      hosts: db.prepare(
        "SELECT * FROM compute_hosts WHERE owner = ? AND state = 'up' AND status = 'enabled' AND vcpus - used_vcpus >= ? AND ram_mb - used_ram_mb >= ? AND disk_gb - used_disk_gb >= ?",
      ),
      allHosts: db.prepare('SELECT * FROM compute_hosts WHERE owner = ? ORDER BY id'),
      claim: db.prepare('SELECT * FROM compute_claims WHERE id = ?'),
      insertClaim: db.prepare(
        'INSERT INTO compute_claims (id, owner, server_id, host, vcpus, ram_mb, disk_gb) VALUES (?, ?, ?, ?, ?, ?, ?)',
      ),
      deleteClaim: db.prepare('DELETE FROM compute_claims WHERE id = ?'),
      useHost: db.prepare(
        'UPDATE compute_hosts SET used_vcpus = used_vcpus + ?, used_ram_mb = used_ram_mb + ?, used_disk_gb = used_disk_gb + ?, running_vms = running_vms + ? WHERE id = ?',
      ),
      groupHosts: db.prepare(
        "SELECT DISTINCT host FROM servers WHERE server_group_id = ? AND host IS NOT NULL AND vm_state != 'error'",
      ),
      groupCount: db.prepare('SELECT count(*) AS n FROM servers WHERE server_group_id = ?'),
      quota: db.prepare('SELECT * FROM compute_quotas WHERE id = ?'),
      keypair: db.prepare('SELECT * FROM keypairs WHERE id = ?'),
      actionsOf: db.prepare(
        'SELECT * FROM instance_actions WHERE server_id = ? ORDER BY start_time DESC, id',
      ),
      action: db.prepare('SELECT * FROM instance_actions WHERE server_id = ? AND request_id = ?'),
      insertAction: db.prepare(
        'INSERT INTO instance_actions (id, owner, server_id, request_id, action, user_id, project_id, message, start_time, updated_at, events) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)',
      ),
      updateAction: db.prepare(
        'UPDATE instance_actions SET events = ?, message = ?, updated_at = ? WHERE id = ?',
      ),
      serverGroup: db.prepare('SELECT * FROM server_groups WHERE id = ?'),
      unsettled: db.prepare(
        "SELECT * FROM servers WHERE owner = ? AND (task_state IS NOT NULL OR vm_state = 'building') ORDER BY created_at, id",
      ),
    };
  }

  server(id: string): ServerRow | undefined {
    return this.s.server.get(id) as ServerRow | undefined;
  }
  flavor(id: string): FlavorRow | undefined {
    return this.s.flavor.get(id) as FlavorRow | undefined;
  }
  flavorByName(name: string): FlavorRow | undefined {
    return this.s.flavorByName.get(name) as FlavorRow | undefined;
  }
  hasFlavorAccess(flavorId: string, projectId: string): boolean {
    return !!this.s.access.get(`${flavorId}:${projectId}`);
  }
  usage(projectId: string): { instances: number; cores: number; ram: number } {
    const r = this.s.usage.get(projectId) as { n: number; cores: number; ram: number };
    return { instances: r.n, cores: r.cores, ram: r.ram };
  }
  quota(projectId: string): { id: string; owner: string; limits: string } | undefined {
    return this.s.quota.get(projectId) as { id: string; owner: string; limits: string } | undefined;
  }
  keypair(userId: string, name: string): KeypairRow | undefined {
    return this.s.keypair.get(`${userId}:${name}`) as KeypairRow | undefined;
  }
  serverGroup(id: string): ServerGroupRow | undefined {
    return this.s.serverGroup.get(id) as ServerGroupRow | undefined;
  }
  groupHosts(groupId: string): string[] {
    return (this.s.groupHosts.all(groupId) as { host: string }[]).map((r) => r.host);
  }
  groupCount(groupId: string): number {
    return (this.s.groupCount.get(groupId) as { n: number }).n;
  }

  /** This site's servers in a transitional state (a task_state, or still building). */
  unsettledServers(): ServerRow[] {
    return this.s.unsettled.all(this.site) as ServerRow[];
  }

  /** Hosts of this site with room for the request (the SQL does the resource filters' first pass). */
  candidateHosts(vcpus: number, ramMb: number, diskGb: number): HostRow[] {
    return this.s.hosts.all(this.site, vcpus, ramMb, diskGb) as HostRow[];
  }
  hosts(): HostRow[] {
    return this.s.allHosts.all(this.site) as HostRow[];
  }

  /** Call inside a transaction: records the claim and takes its resources from the host. */
  claim(id: string, serverId: string, host: string, vcpus: number, ramMb: number, diskGb: number): void {
    this.s.insertClaim.run(id, this.site, serverId, host, vcpus, ramMb, diskGb);
    this.s.useHost.run(vcpus, ramMb, diskGb, 1, host);
  }
  /** Call inside a transaction: gives a claim's resources back; a missing claim is a no-op. */
  release(id: string): void {
    const c = this.s.claim.get(id) as
      { host: string; vcpus: number; ram_mb: number; disk_gb: number } | undefined;
    if (!c) return;
    this.s.deleteClaim.run(id);
    this.s.useHost.run(-c.vcpus, -c.ram_mb, -c.disk_gb, -1, c.host);
  }
  /** Call inside a transaction: the resize destination's claim becomes the server's claim. */
  moveClaim(from: string, to: string): void {
    this.db.prepare('UPDATE compute_claims SET id = ? WHERE id = ?').run(to, from);
  }
  claimOf(id: string): { host: string; vcpus: number; ram_mb: number; disk_gb: number } | undefined {
    return this.s.claim.get(id) as
      { host: string; vcpus: number; ram_mb: number; disk_gb: number } | undefined;
  }

  actions(serverId: string): InstanceActionRow[] {
    return this.s.actionsOf.all(serverId) as InstanceActionRow[];
  }
  action(serverId: string, requestId: string): InstanceActionRow | undefined {
    return this.s.action.get(serverId, requestId) as InstanceActionRow | undefined;
  }
  addAction(a: InstanceActionRow): void {
    this.s.insertAction.run(
      a.id,
      a.owner,
      a.server_id,
      a.request_id,
      a.action,
      a.user_id,
      a.project_id,
      a.message,
      a.start_time,
      a.updated_at,
      a.events,
    );
  }
  updateAction(id: string, events: string, message: string | null, at: number): void {
    this.s.updateAction.run(events, message, at, id);
  }
}
