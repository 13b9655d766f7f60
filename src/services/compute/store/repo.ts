/**
 * @module The compute service's SQL (the only place compute speaks it): reads of its tables, and the
 * local (never replicated) host, claim and instance-action bookkeeping with prepared statements, since
 * the scheduler runs them on every boot. Replicated rows are written only through the change log
 * (ChangeLog.put/remove).
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

/** The columns a server list may sort by (the API maps Nova's sort keys onto them). */
export type ServerSortColumn = 'created_at' | 'updated_at' | 'name' | 'vm_state' | 'host' | 'id';

/** GET /servers filters, every one optional; they combine with AND. */
export interface ServerListFilter {
  projectId?: string;
  vmStates?: readonly string[];
  host?: string;
  flavorId?: string;
  imageId?: string;
  /** The owning site (availability_zone). */
  owner?: string;
  /** updated_at bounds, inclusive (changes-since, changes-before). */
  updatedFrom?: number;
  updatedTo?: number;
  sort: ServerSortColumn;
  dir: 'ASC' | 'DESC';
}

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
      flavors: db.prepare('SELECT * FROM flavors'),
      accessIds: db.prepare('SELECT id FROM flavor_access WHERE flavor_id = ?'),
      accessProjects: db.prepare(
        'SELECT project_id FROM flavor_access WHERE flavor_id = ? ORDER BY project_id',
      ),
      keypairsOf: db.prepare('SELECT * FROM keypairs WHERE user_id = ? ORDER BY name'),
      keypairCount: db.prepare('SELECT count(*) AS n FROM keypairs WHERE user_id = ?'),
      groupMembers: db.prepare('SELECT id FROM servers WHERE server_group_id = ?'),
      groups: db.prepare('SELECT * FROM server_groups ORDER BY created_at'),
      groupsOfProject: db.prepare('SELECT count(*) AS n FROM server_groups WHERE project_id = ?'),
      serversOnHost: db.prepare('SELECT id, name FROM servers WHERE host = ? ORDER BY created_at'),
      createdBy: db.prepare('SELECT * FROM servers WHERE created_at <= ? ORDER BY created_at'),
      createdByInProject: db.prepare(
        'SELECT * FROM servers WHERE created_at <= ? AND project_id = ? ORDER BY created_at',
      ),
      actionEvents: db.prepare('SELECT events FROM instance_actions WHERE id = ?'),
      upsertHost: db.prepare(
        'INSERT INTO compute_hosts (id, owner, vcpus, ram_mb, disk_gb, service_id, created_at) VALUES (?, ?, ?, ?, ?, ?, ?) ' +
          'ON CONFLICT(id) DO UPDATE SET vcpus = excluded.vcpus, ram_mb = excluded.ram_mb, disk_gb = excluded.disk_gb',
      ),
      running: db.prepare(
        "SELECT * FROM servers WHERE owner = ? AND task_state IS NULL AND vm_state IN ('active', 'paused', 'suspended') AND host IS NOT NULL ORDER BY created_at, id",
      ),
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

  /** The servers matching a GET /servers filter, sorted (ties by id in the same direction). */
  listServers(f: ServerListFilter): ServerRow[] {
    const where: string[] = [];
    const args: unknown[] = [];
    const eq = (col: string, v: unknown) => {
      where.push(`${col} = ?`);
      args.push(v);
    };
    if (f.projectId !== undefined) eq('project_id', f.projectId);
    if (f.vmStates) {
      where.push(`vm_state IN (${f.vmStates.map(() => '?').join(',')})`);
      args.push(...f.vmStates);
    }
    if (f.host !== undefined) eq('host', f.host);
    if (f.flavorId !== undefined) eq('flavor_id', f.flavorId);
    if (f.imageId !== undefined) eq('image_id', f.imageId);
    if (f.owner !== undefined) eq('owner', f.owner);
    if (f.updatedFrom !== undefined) {
      where.push('updated_at >= ?');
      args.push(f.updatedFrom);
    }
    if (f.updatedTo !== undefined) {
      where.push('updated_at <= ?');
      args.push(f.updatedTo);
    }
    const dir = f.dir === 'ASC' ? 'ASC' : 'DESC';
    return this.db
      .prepare(
        `SELECT * FROM servers ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY ${f.sort} ${dir}, id ${dir}`,
      )
      .all(...args) as ServerRow[];
  }
  /** Servers created by `at` (of one project, if given), oldest first (usage reports). */
  serversCreatedBy(at: number, projectId?: string): ServerRow[] {
    return (
      projectId ? this.s.createdByInProject.all(at, projectId) : this.s.createdBy.all(at)
    ) as ServerRow[];
  }
  serversOnHost(host: string): { id: string; name: string }[] {
    return this.s.serversOnHost.all(host) as { id: string; name: string }[];
  }

  flavors(): FlavorRow[] {
    return this.s.flavors.all() as FlavorRow[];
  }
  /** The ids of a flavor's access rows (to remove them with it). */
  flavorAccessIds(flavorId: string): string[] {
    return (this.s.accessIds.all(flavorId) as { id: string }[]).map((r) => r.id);
  }
  /** The projects a private flavor is shared with, sorted. */
  flavorAccessProjects(flavorId: string): string[] {
    return (this.s.accessProjects.all(flavorId) as { project_id: string }[]).map((r) => r.project_id);
  }

  keypairsOf(userId: string): KeypairRow[] {
    return this.s.keypairsOf.all(userId) as KeypairRow[];
  }
  keypairCount(userId: string): number {
    return (this.s.keypairCount.get(userId) as { n: number }).n;
  }

  serverGroups(): ServerGroupRow[] {
    return this.s.groups.all() as ServerGroupRow[];
  }
  serverGroupCount(projectId: string): number {
    return (this.s.groupsOfProject.get(projectId) as { n: number }).n;
  }
  groupMembers(groupId: string): string[] {
    return (this.s.groupMembers.all(groupId) as { id: string }[]).map((r) => r.id);
  }

  /** Registers (or resizes) one of this site's compute hosts; its usage counters are kept. */
  upsertHost(h: {
    id: string;
    vcpus: number;
    ramMb: number;
    diskGb: number;
    serviceId: string;
    at: number;
  }): void {
    this.s.upsertHost.run(h.id, this.site, h.vcpus, h.ramMb, h.diskGb, h.serviceId, h.at);
  }

  /** This site's servers at rest that should have a guest running (active, paused, suspended). */
  runningServers(): ServerRow[] {
    return this.s.running.all(this.site) as ServerRow[];
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
  actionEvents(id: string): string | undefined {
    return (this.s.actionEvents.get(id) as { events: string } | undefined)?.events;
  }
  updateAction(id: string, events: string, message: string | null, at: number): void {
    this.s.updateAction.run(events, message, at, id);
  }
}
