/**
 * @module Compute tables. Replicated everywhere: flavors and their access lists (owned by the site that
 * made them), keypairs (the site they were made at), servers (the site they run on), server groups,
 * quota sets. Local only: compute hosts, resource claims and instance actions, which nobody but the
 * owning site's scheduler and API needs (other sites forward instance-action reads to the owner).
 */
import type { KindSpec } from '../../../federation/changelog.ts';
import { defineKind } from '../../../federation/changelog.ts';
import { anySite, ownerOf, projectHome, userHome } from '../../../federation/origin.ts';
import { homeOf, projectRow } from '../../../federation/unique.ts';

export const computeMigrations = [
  {
    id: 'compute/001-core',
    sql: `
      CREATE TABLE flavors (
        id TEXT PRIMARY KEY, owner TEXT NOT NULL, name TEXT NOT NULL, vcpus INTEGER NOT NULL,
        ram INTEGER NOT NULL, disk INTEGER NOT NULL, ephemeral INTEGER NOT NULL DEFAULT 0,
        swap INTEGER NOT NULL DEFAULT 0, rxtx_factor REAL NOT NULL DEFAULT 1.0,
        is_public INTEGER NOT NULL DEFAULT 1, disabled INTEGER NOT NULL DEFAULT 0, description TEXT,
        extra_specs TEXT NOT NULL DEFAULT '{}', created_at INTEGER NOT NULL
      );
      CREATE UNIQUE INDEX flavors_name ON flavors (name);
      -- id = flavor_id + ':' + project_id
      CREATE TABLE flavor_access (
        id TEXT PRIMARY KEY, owner TEXT NOT NULL, flavor_id TEXT NOT NULL, project_id TEXT NOT NULL
      );
      CREATE INDEX flavor_access_flavor ON flavor_access (flavor_id);
      -- id = user_id + ':' + name
      CREATE TABLE keypairs (
        id TEXT PRIMARY KEY, owner TEXT NOT NULL, user_id TEXT NOT NULL, name TEXT NOT NULL,
        type TEXT NOT NULL, public_key TEXT NOT NULL, fingerprint TEXT NOT NULL, created_at INTEGER NOT NULL
      );
      CREATE INDEX keypairs_user ON keypairs (user_id);
      CREATE TABLE servers (
        id TEXT PRIMARY KEY, owner TEXT NOT NULL, project_id TEXT NOT NULL, user_id TEXT NOT NULL,
        name TEXT NOT NULL, host TEXT, flavor_id TEXT NOT NULL, flavor TEXT NOT NULL,
        vcpus INTEGER NOT NULL, ram INTEGER NOT NULL, disk INTEGER NOT NULL, image_id TEXT,
        key_name TEXT, metadata TEXT NOT NULL DEFAULT '{}', user_data TEXT,
        vm_state TEXT NOT NULL, task_state TEXT, power_state INTEGER NOT NULL DEFAULT 0,
        locked INTEGER NOT NULL DEFAULT 0, locked_reason TEXT, fault TEXT, addresses TEXT NOT NULL DEFAULT '[]',
        server_group_id TEXT, old_flavor TEXT, old_host TEXT, description TEXT,
        created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL, launched_at INTEGER
      );
      CREATE INDEX servers_project ON servers (project_id);
      CREATE INDEX servers_group ON servers (server_group_id);
      CREATE TABLE server_groups (
        id TEXT PRIMARY KEY, owner TEXT NOT NULL, project_id TEXT NOT NULL, user_id TEXT NOT NULL,
        name TEXT NOT NULL, policy TEXT NOT NULL, rules TEXT NOT NULL DEFAULT '{}', created_at INTEGER NOT NULL
      );
      -- id = project_id
      CREATE TABLE compute_quotas (
        id TEXT PRIMARY KEY, owner TEXT NOT NULL, limits TEXT NOT NULL
      );
      CREATE TABLE compute_hosts (
        id TEXT PRIMARY KEY, owner TEXT NOT NULL, vcpus INTEGER NOT NULL, ram_mb INTEGER NOT NULL,
        disk_gb INTEGER NOT NULL, used_vcpus INTEGER NOT NULL DEFAULT 0, used_ram_mb INTEGER NOT NULL DEFAULT 0,
        used_disk_gb INTEGER NOT NULL DEFAULT 0, running_vms INTEGER NOT NULL DEFAULT 0,
        state TEXT NOT NULL DEFAULT 'up', status TEXT NOT NULL DEFAULT 'enabled', disabled_reason TEXT,
        service_id TEXT NOT NULL, created_at INTEGER NOT NULL
      );
      -- id = server_id, or server_id + ':resize' for the destination of a resize in progress
      CREATE TABLE compute_claims (
        id TEXT PRIMARY KEY, owner TEXT NOT NULL, server_id TEXT NOT NULL, host TEXT NOT NULL,
        vcpus INTEGER NOT NULL, ram_mb INTEGER NOT NULL, disk_gb INTEGER NOT NULL
      );
      CREATE TABLE instance_actions (
        id TEXT PRIMARY KEY, owner TEXT NOT NULL, server_id TEXT NOT NULL, request_id TEXT NOT NULL,
        action TEXT NOT NULL, user_id TEXT NOT NULL, project_id TEXT NOT NULL, message TEXT,
        start_time INTEGER NOT NULL, updated_at INTEGER NOT NULL, events TEXT NOT NULL DEFAULT '[]'
      );
      CREATE INDEX instance_actions_server ON instance_actions (server_id);
    `,
  },
  {
    // Flavor names are resolved across sites (unique.ts, 'first'): a UNIQUE index would make replicas
    // reject the other site's row of a clash.
    id: 'compute/002-flavor-names-across-sites',
    sql: `
      DROP INDEX flavors_name;
      CREATE INDEX flavors_name ON flavors (name);
    `,
  },
  {
    // Host aggregates group this site's compute hosts, which are local; so are their aggregates (plain
    // SQL in store/aggregates.ts, no change log). Nova's id is an integer clients put in URLs: the rowid.
    id: 'compute/003-aggregates',
    sql: `
      CREATE TABLE compute_aggregates (
        num INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT NOT NULL UNIQUE, owner TEXT NOT NULL,
        name TEXT NOT NULL UNIQUE, availability_zone TEXT, metadata TEXT NOT NULL DEFAULT '{}',
        hosts TEXT NOT NULL DEFAULT '[]', created_at INTEGER NOT NULL, updated_at INTEGER
      );
    `,
  },
  {
    // accessIPv4 / accessIPv6: addresses the owner sets for others to reach the server by (Nova
    // stores them as given and checks only their form).
    id: 'compute/004-access-ips',
    sql: `
      ALTER TABLE servers ADD COLUMN access_ipv4 TEXT;
      ALTER TABLE servers ADD COLUMN access_ipv6 TEXT;
    `,
  },
  {
    // Server tags (2.26, a JSON list) and OS-DCF:diskConfig (AUTO or MANUAL, as asked at create,
    // rebuild, resize or update; the drivers do not resize partitions, Nova's libvirt stores it too).
    id: 'compute/005-tags-disk-config',
    sql: `
      ALTER TABLE servers ADD COLUMN tags TEXT NOT NULL DEFAULT '[]';
      ALTER TABLE servers ADD COLUMN disk_config TEXT NOT NULL DEFAULT 'MANUAL';
      ALTER TABLE servers ADD COLUMN delete_volumes TEXT NOT NULL DEFAULT '[]';
      ALTER TABLE servers ADD COLUMN backups TEXT NOT NULL DEFAULT '{}';
    `,
  },
  {
    // Nova's system_metadata shelved_image_id: the snapshot a shelve on a real driver made, which the
    // unshelve boots from. Null for every existing row: nothing is rewritten.
    id: 'compute/006-shelved-image',
    sql: `ALTER TABLE servers ADD COLUMN shelved_image_id TEXT;`,
  },
] as const;

// Flavor names and (caller-chosen) ids: any site creates; a clash resolves the same everywhere.
export const flavorKind = defineKind<FlavorRow>({
  kind: 'flavor',
  table: 'flavors',
  replicate: 'all',
  unique: { by: 'first', key: ['name'], rename: 'name' },
  origin: anySite,
});
export const flavorAccessKind = defineKind<FlavorAccessRow>({
  kind: 'flavor_access',
  table: 'flavor_access',
  replicate: 'all',
  origin: ownerOf('the owner of its flavor', 'flavors', 'flavor_id'),
});
// id = user_id:name, made at the user's home site, so its primary key decides.
export const keypairKind = defineKind<KeypairRow>({
  kind: 'keypair',
  table: 'keypairs',
  replicate: 'all',
  unique: { by: 'home', key: ['user_id', 'name'], home: homeOf.user },
  origin: userHome,
});
export const serverKind = defineKind<ServerRow>({
  kind: 'server',
  table: 'servers',
  replicate: 'all',
  origin: anySite,
});
export const serverGroupKind = defineKind<ServerGroupRow>({
  kind: 'server_group',
  table: 'server_groups',
  replicate: 'all',
  origin: anySite,
});
export const computeQuotaKind = defineKind<ComputeQuotaRow>({
  kind: 'compute_quota',
  table: 'compute_quotas',
  replicate: 'all',
  unique: projectRow,
  origin: projectHome,
});
export const hostKind = defineKind<HostRow>({
  kind: 'compute_host',
  table: 'compute_hosts',
  replicate: 'none',
});
export const claimKind = defineKind<ClaimRow>({
  kind: 'compute_claim',
  table: 'compute_claims',
  replicate: 'none',
});
export const instanceActionKind = defineKind<InstanceActionRow>({
  kind: 'instance_action',
  table: 'instance_actions',
  replicate: 'none',
});

export const computeKinds: readonly KindSpec[] = [
  flavorKind,
  flavorAccessKind,
  keypairKind,
  serverKind,
  serverGroupKind,
  computeQuotaKind,
  hostKind,
  claimKind,
  instanceActionKind,
];

/** id = flavor_id + ':' + project_id */
export interface FlavorAccessRow {
  id: string;
  owner: string;
  flavor_id: string;
  project_id: string;
}

/** A project's quota set: id = project id, limits = JSON of its limits. */
export interface ComputeQuotaRow {
  id: string;
  owner: string;
  limits: string;
}

/** A resource claim on a compute host (local). */
export interface ClaimRow {
  id: string;
  owner: string;
  server_id: string;
  host: string;
  vcpus: number;
  ram_mb: number;
  disk_gb: number;
}

export interface AggregateRow {
  num: number;
  id: string;
  owner: string;
  name: string;
  availability_zone: string | null;
  metadata: string;
  hosts: string;
  created_at: number;
  updated_at: number | null;
}

export interface FlavorRow {
  id: string;
  owner: string;
  name: string;
  vcpus: number;
  ram: number;
  disk: number;
  ephemeral: number;
  swap: number;
  rxtx_factor: number;
  is_public: number;
  disabled: number;
  description: string | null;
  extra_specs: string;
  created_at: number;
}

export interface KeypairRow {
  id: string;
  owner: string;
  user_id: string;
  name: string;
  type: string;
  public_key: string;
  fingerprint: string;
  created_at: number;
}

export interface ServerRow {
  id: string;
  owner: string;
  project_id: string;
  user_id: string;
  name: string;
  host: string | null;
  flavor_id: string;
  /** JSON of the flavor as booted (Nova embeds it in the instance). */
  flavor: string;
  vcpus: number;
  ram: number;
  disk: number;
  image_id: string | null;
  key_name: string | null;
  metadata: string;
  user_data: string | null;
  vm_state: string;
  task_state: string | null;
  power_state: number;
  locked: number;
  locked_reason: string | null;
  /** JSON {code, message, details, created} when the server is in ERROR. */
  fault: string | null;
  /** JSON ServerAddress[] */
  addresses: string;
  server_group_id: string | null;
  old_flavor: string | null;
  old_host: string | null;
  description: string | null;
  created_at: number;
  updated_at: number;
  launched_at: number | null;
  /** accessIPv4 and accessIPv6 as set by the owner (null: not set). */
  access_ipv4?: string | null;
  access_ipv6?: string | null;
  /** JSON string[] of the server's tags (2.26). */
  tags?: string;
  /** OS-DCF:diskConfig: 'AUTO' or 'MANUAL'. */
  disk_config?: string;
  /** JSON string[]: volumes attached at boot with delete_on_termination, deleted with the server. */
  delete_volumes?: string;
  /** JSON {backup_type: image ids, oldest first}: createBackup's rotation order. */
  backups?: string;
  /** The image a shelve made of the disk (real drivers), booted by the unshelve; then cleared. */
  shelved_image_id?: string | null;
}

export interface ServerGroupRow {
  id: string;
  owner: string;
  project_id: string;
  user_id: string;
  name: string;
  policy: string;
  rules: string;
  created_at: number;
}

export interface HostRow {
  id: string;
  owner: string;
  vcpus: number;
  ram_mb: number;
  disk_gb: number;
  used_vcpus: number;
  used_ram_mb: number;
  used_disk_gb: number;
  running_vms: number;
  state: string;
  status: string;
  disabled_reason: string | null;
  service_id: string;
  created_at: number;
}

export interface InstanceActionRow {
  id: string;
  owner: string;
  server_id: string;
  request_id: string;
  action: string;
  user_id: string;
  project_id: string;
  message: string | null;
  start_time: number;
  updated_at: number;
  events: string;
}
