/**
 * @module Network tables. Every resource row keeps its searchable columns plus `body`, the JSON of the
 * Neutron attributes that have no column. Networks, subnets, routers, security groups (and their rules)
 * belong to the site that made them; ports, floating IPs and IP allocations belong to the site where
 * they were made; address blocks belong to the subnet's owner, which leases each to one site
 * (`leased_to_site`, docs/network.md). All replicate everywhere, except two local tables: the ports
 * compute made and the leases this site holds on other sites' subnets (`net_ip_leases`).
 */
import type { KindSpec } from '../../../federation/changelog.ts';
import { defineKind } from '../../../federation/changelog.ts';
import { anySite, ownerOf, projectHome } from '../../../federation/origin.ts';
import { projectRow } from '../../../federation/unique.ts';
import type { BlockRow, LeaseRow } from './ipam.ts';

export const networkMigrations = [
  {
    id: 'network/001-core',
    sql: `
      CREATE TABLE net_networks (
        id TEXT PRIMARY KEY, owner TEXT NOT NULL, project_id TEXT NOT NULL, name TEXT NOT NULL DEFAULT '',
        shared INTEGER NOT NULL DEFAULT 0, external INTEGER NOT NULL DEFAULT 0, body TEXT NOT NULL,
        created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL
      );
      CREATE TABLE net_subnets (
        id TEXT PRIMARY KEY, owner TEXT NOT NULL, project_id TEXT NOT NULL, network_id TEXT NOT NULL,
        name TEXT NOT NULL DEFAULT '', ip_version INTEGER NOT NULL, cidr TEXT NOT NULL, body TEXT NOT NULL,
        created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL
      );
      CREATE INDEX net_subnets_network ON net_subnets (network_id);
      CREATE TABLE net_ports (
        id TEXT PRIMARY KEY, owner TEXT NOT NULL, project_id TEXT NOT NULL, network_id TEXT NOT NULL,
        name TEXT NOT NULL DEFAULT '', mac_address TEXT NOT NULL, device_id TEXT NOT NULL DEFAULT '',
        device_owner TEXT NOT NULL DEFAULT '', body TEXT NOT NULL,
        created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL
      );
      CREATE INDEX net_ports_network ON net_ports (network_id);
      CREATE INDEX net_ports_device ON net_ports (device_id);
      -- A MAC is unique in its network among one site's ports; sites draw from the same random space, so
      -- a cross-site clash (2^-24 per pair) is possible and must not wedge replication (docs/network.md).
      CREATE UNIQUE INDEX net_ports_mac ON net_ports (network_id, mac_address, owner);
      -- One row per address handed out. id = subnet_id + '/' + ip; the UNIQUE index is what makes a
      -- double allocation impossible: the row is written in the same transaction as its port.
      CREATE TABLE net_ip_allocations (
        id TEXT PRIMARY KEY, owner TEXT NOT NULL, subnet_id TEXT NOT NULL, network_id TEXT NOT NULL,
        ip TEXT NOT NULL, ip_key TEXT NOT NULL, port_id TEXT NOT NULL, block_id TEXT
      );
      CREATE UNIQUE INDEX net_ip_allocations_ip ON net_ip_allocations (subnet_id, ip);
      CREATE INDEX net_ip_allocations_port ON net_ip_allocations (port_id);
      CREATE INDEX net_ip_allocations_block ON net_ip_allocations (block_id, ip_key);
      -- Blocks of a subnet's allocation pools. first/last are fixed-width hex keys (numeric order).
      CREATE TABLE net_ip_blocks (
        id TEXT PRIMARY KEY, owner TEXT NOT NULL, subnet_id TEXT NOT NULL, first TEXT NOT NULL,
        last TEXT NOT NULL, leased_to_site TEXT, lease_expires_at INTEGER, state TEXT NOT NULL DEFAULT 'leased',
        created_at INTEGER NOT NULL
      );
      CREATE INDEX net_ip_blocks_subnet ON net_ip_blocks (subnet_id, first);
      CREATE TABLE net_security_groups (
        id TEXT PRIMARY KEY, owner TEXT NOT NULL, project_id TEXT NOT NULL, name TEXT NOT NULL DEFAULT '',
        body TEXT NOT NULL, created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL
      );
      CREATE TABLE net_security_group_rules (
        id TEXT PRIMARY KEY, owner TEXT NOT NULL, project_id TEXT NOT NULL, security_group_id TEXT NOT NULL,
        body TEXT NOT NULL, created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL
      );
      CREATE INDEX net_sg_rules_group ON net_security_group_rules (security_group_id);
      CREATE TABLE net_routers (
        id TEXT PRIMARY KEY, owner TEXT NOT NULL, project_id TEXT NOT NULL, name TEXT NOT NULL DEFAULT '',
        body TEXT NOT NULL, created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL
      );
      CREATE TABLE net_floating_ips (
        id TEXT PRIMARY KEY, owner TEXT NOT NULL, project_id TEXT NOT NULL, floating_network_id TEXT NOT NULL,
        floating_ip_address TEXT NOT NULL, port_id TEXT, body TEXT NOT NULL,
        created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL
      );
      -- id = project id; owned by the site that first set the project's quotas.
      CREATE TABLE net_quotas (id TEXT PRIMARY KEY, owner TEXT NOT NULL, body TEXT NOT NULL);
      -- Local: which ports compute made for a server (deleted with it) and which it was given (unbound).
      CREATE TABLE net_server_ports (
        id TEXT PRIMARY KEY, owner TEXT NOT NULL, server_id TEXT NOT NULL, created INTEGER NOT NULL
      );
      CREATE INDEX net_server_ports_server ON net_server_ports (server_id);
    `,
  },
  {
    id: 'network/002-project-indexes',
    sql: `
      CREATE INDEX net_ports_project ON net_ports (project_id);
      CREATE INDEX net_networks_project ON net_networks (project_id);
      CREATE INDEX net_subnets_project ON net_subnets (project_id);
    `,
  },
  {
    id: 'network/003-ip-leases',
    sql: `
      -- Each grant of a block gets a fresh lease id, so a late renew or return of an earlier grant of
      -- the same slot can never touch a later one (docs/network.md, "Lease protocol").
      ALTER TABLE net_ip_blocks ADD COLUMN lease_id TEXT;
      CREATE INDEX net_ip_blocks_lessee ON net_ip_blocks (leased_to_site, subnet_id);
      -- Local, on the lessee: the blocks of other sites' subnets this site may allocate from. Written
      -- from the owner's reply to a lease request (and from the replicated block row, should the reply
      -- be lost); state 'returning' stops allocation from it until the owner confirms the return.
      CREATE TABLE net_ip_leases (
        id TEXT PRIMARY KEY, owner TEXT NOT NULL, subnet_id TEXT NOT NULL, lessor TEXT NOT NULL,
        first TEXT NOT NULL, last TEXT NOT NULL, lease_id TEXT NOT NULL, expires_at INTEGER NOT NULL,
        state TEXT NOT NULL DEFAULT 'active', granted_at INTEGER NOT NULL, idle_since INTEGER,
        return_head INTEGER
      );
      CREATE INDEX net_ip_leases_subnet ON net_ip_leases (subnet_id, first);
    `,
  },
  {
    id: 'network/004-allocation-per-site',
    sql: `
      -- An address moves between sites when its block is returned and leased again. Its rows then have
      -- different origins, whose logs a third site may apply in any order (the new holder's put before
      -- the old holder's delete), so a replica may briefly hold both: the id names the site
      -- (subnet/ip@site, rows before this migration keep subnet/ip) and the index is per site. One site
      -- still never holds an address twice (the index, and ensureFree inside the port's transaction);
      -- two sites never do because each allocates only where the subnet's owner let it.
      DROP INDEX net_ip_allocations_ip;
      CREATE UNIQUE INDEX net_ip_allocations_ip ON net_ip_allocations (subnet_id, ip, owner);
      CREATE INDEX net_ip_allocations_subnet_key ON net_ip_allocations (subnet_id, ip_key);
    `,
  },
  {
    id: 'network/005-subnet-pools',
    sql: `
      -- Subnet pools (Neutron subnet_allocation): owned by the site that made them, like networks.
      CREATE TABLE net_subnet_pools (
        id TEXT PRIMARY KEY, owner TEXT NOT NULL, project_id TEXT NOT NULL, name TEXT NOT NULL DEFAULT '',
        shared INTEGER NOT NULL DEFAULT 0, body TEXT NOT NULL, created_at INTEGER NOT NULL,
        updated_at INTEGER NOT NULL
      );
    `,
  },
  {
    id: 'network/006-metering',
    sql: `
      -- Metering labels and their rules (Neutron's metering extension): stored and served, they meter
      -- nothing (docs/network.md). A label belongs to the site that made it, its rules to the label's.
      CREATE TABLE net_metering_labels (
        id TEXT PRIMARY KEY, owner TEXT NOT NULL, project_id TEXT NOT NULL, name TEXT NOT NULL DEFAULT '',
        body TEXT NOT NULL, created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL
      );
      CREATE TABLE net_metering_label_rules (
        id TEXT PRIMARY KEY, owner TEXT NOT NULL, project_id TEXT NOT NULL, metering_label_id TEXT NOT NULL,
        body TEXT NOT NULL, created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL
      );
      CREATE INDEX net_metering_rules_label ON net_metering_label_rules (metering_label_id);
    `,
  },
] as const;

export const meteringLabelKind = defineKind<ResourceRow>({
  kind: 'metering_label',
  table: 'net_metering_labels',
  replicate: 'all',
  origin: anySite,
});
export const meteringLabelRuleKind = defineKind<ResourceRow>({
  kind: 'metering_label_rule',
  table: 'net_metering_label_rules',
  replicate: 'all',
  origin: ownerOf('the owner of its metering label', 'net_metering_labels', 'metering_label_id'),
});

export const subnetPoolKind = defineKind<ResourceRow>({
  kind: 'subnet_pool',
  table: 'net_subnet_pools',
  replicate: 'all',
  origin: anySite,
});

export const networkKind = defineKind<ResourceRow>({
  kind: 'network',
  table: 'net_networks',
  replicate: 'all',
  origin: anySite,
});
export const subnetKind = defineKind<ResourceRow>({
  kind: 'subnet',
  table: 'net_subnets',
  replicate: 'all',
  origin: ownerOf('the owner of its network', 'net_networks', 'network_id'),
});
// Ports live where their servers run, on any site's network.
export const portKind = defineKind<ResourceRow>({
  kind: 'port',
  table: 'net_ports',
  replicate: 'all',
  origin: anySite,
});
// Made by the lessee of the address's block; the lease travels in the owner's log, so a third site
// may hear of an allocation before of its block: checked by the lease protocol, not here.
export const ipAllocationKind = defineKind<IpAllocationRow>({
  kind: 'ip_allocation',
  table: 'net_ip_allocations',
  replicate: 'all',
  origin: anySite,
});
export const ipBlockKind = defineKind<BlockRow>({
  kind: 'ip_block',
  table: 'net_ip_blocks',
  replicate: 'all',
  origin: ownerOf('the owner of its subnet', 'net_subnets', 'subnet_id'),
});
export const securityGroupKind = defineKind<ResourceRow>({
  kind: 'security_group',
  table: 'net_security_groups',
  replicate: 'all',
  origin: anySite,
});
export const securityGroupRuleKind = defineKind<ResourceRow>({
  kind: 'security_group_rule',
  table: 'net_security_group_rules',
  replicate: 'all',
  origin: ownerOf('the owner of its security group', 'net_security_groups', 'security_group_id'),
});
export const routerKind = defineKind<ResourceRow>({
  kind: 'router',
  table: 'net_routers',
  replicate: 'all',
  origin: anySite,
});
export const floatingIpKind = defineKind<ResourceRow>({
  kind: 'floating_ip',
  table: 'net_floating_ips',
  replicate: 'all',
  origin: anySite,
});
export const netQuotaKind = defineKind<NetQuotaRow>({
  kind: 'network_quota',
  table: 'net_quotas',
  replicate: 'all',
  unique: projectRow,
  origin: projectHome,
});
export const serverPortKind = defineKind<ServerPortRow>({
  kind: 'network_server_port',
  table: 'net_server_ports',
  replicate: 'none',
});
export const ipLeaseKind = defineKind<LeaseRow>({
  kind: 'network_ip_lease',
  table: 'net_ip_leases',
  replicate: 'none',
});

export const networkKinds: readonly KindSpec[] = [
  networkKind,
  subnetKind,
  portKind,
  ipAllocationKind,
  ipBlockKind,
  securityGroupKind,
  securityGroupRuleKind,
  routerKind,
  floatingIpKind,
  subnetPoolKind,
  meteringLabelKind,
  meteringLabelRuleKind,
  netQuotaKind,
  serverPortKind,
  ipLeaseKind,
];

/** A row of a resource kind with an API body: its searchable columns, and the rest as JSON in body. */
export interface ResourceRow {
  id: string;
  owner: string;
  project_id: string;
  body: string;
  created_at: number;
  updated_at: number;
  [column: string]: unknown;
}

/** An address taken in a subnet: id = subnet/ip@site. */
export interface IpAllocationRow {
  id: string;
  owner: string;
  subnet_id: string;
  network_id: string;
  ip: string;
  /** The address as a sortable key (ipam.ts keyOf). */
  ip_key: string;
  port_id: string;
  block_id: string | null;
}

/** A project's network quota: id = project id, body = JSON of its limits. */
export interface NetQuotaRow {
  id: string;
  owner: string;
  body: string;
}

/** A port compute made for a server (created = 1) or was given (local). */
export interface ServerPortRow {
  id: string;
  owner: string;
  server_id: string;
  created: number;
}

/** The table of each resource kind that has an API body. */
export const tableOf = {
  network: 'net_networks',
  subnet: 'net_subnets',
  port: 'net_ports',
  security_group: 'net_security_groups',
  security_group_rule: 'net_security_group_rules',
  router: 'net_routers',
  floating_ip: 'net_floating_ips',
  subnet_pool: 'net_subnet_pools',
  metering_label: 'net_metering_labels',
  metering_label_rule: 'net_metering_label_rules',
} as const;
export type ResourceKind = keyof typeof tableOf;
