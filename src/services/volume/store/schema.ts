/**
 * @module Block storage tables. A volume lives at one site (its availability zone) and belongs to it,
 * with its snapshots and attachments; volume types belong to the site that made them (the default type
 * is built in, the same at every site, and never stored). Everything replicates, so any site can list.
 */
import type { KindSpec } from '../../../federation/changelog.ts';
import { defineKind } from '../../../federation/changelog.ts';
import { anySite, membershipAuthority, ownerOf, projectHome } from '../../../federation/origin.ts';
import { projectRow } from '../../../federation/unique.ts';
import type { BackupRow } from './backups.ts';
import type { GroupRow, GroupSnapshotRow } from './groups.ts';
import type {
  AttachmentRow,
  BodyRow,
  MessageRow,
  SnapshotWrite,
  TransferRow,
  VolumeWrite,
} from './volumes.ts';

export const volumeMigrations = [
  {
    id: 'volume/001-core',
    sql: `
      CREATE TABLE vol_volumes (
        id TEXT PRIMARY KEY, owner TEXT NOT NULL, project_id TEXT NOT NULL, name TEXT NOT NULL DEFAULT '',
        status TEXT NOT NULL, size INTEGER NOT NULL, volume_type_id TEXT NOT NULL, body TEXT NOT NULL,
        created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL
      );
      CREATE INDEX vol_volumes_project ON vol_volumes (project_id);
      CREATE TABLE vol_snapshots (
        id TEXT PRIMARY KEY, owner TEXT NOT NULL, project_id TEXT NOT NULL, volume_id TEXT NOT NULL,
        name TEXT NOT NULL DEFAULT '', status TEXT NOT NULL, size INTEGER NOT NULL, body TEXT NOT NULL,
        created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL
      );
      CREATE INDEX vol_snapshots_volume ON vol_snapshots (volume_id);
      CREATE TABLE vol_attachments (
        id TEXT PRIMARY KEY, owner TEXT NOT NULL, volume_id TEXT NOT NULL, server_id TEXT NOT NULL,
        device TEXT NOT NULL, host TEXT NOT NULL DEFAULT '', attached_at INTEGER NOT NULL
      );
      CREATE INDEX vol_attachments_volume ON vol_attachments (volume_id);
      CREATE INDEX vol_attachments_server ON vol_attachments (server_id);
      CREATE TABLE vol_types (
        id TEXT PRIMARY KEY, owner TEXT NOT NULL, name TEXT NOT NULL, body TEXT NOT NULL, created_at INTEGER NOT NULL
      );
      CREATE TABLE vol_quotas (id TEXT PRIMARY KEY, owner TEXT NOT NULL, body TEXT NOT NULL);
    `,
  },
  {
    // Volume transfers (Cinder's os-volume-transfer / volume-transfers): the key is kept only as a
    // salted hash; the row belongs to the volume's site, where an accept must run. QoS specs and
    // group types belong to the site that made them, like volume types.
    id: 'volume/002-transfers-qos-group-types',
    sql: `
      CREATE TABLE vol_transfers (
        id TEXT PRIMARY KEY, owner TEXT NOT NULL, project_id TEXT NOT NULL, volume_id TEXT NOT NULL,
        name TEXT, salt TEXT NOT NULL, key_hash TEXT NOT NULL, no_snapshots INTEGER NOT NULL DEFAULT 0,
        created_at INTEGER NOT NULL
      );
      CREATE INDEX vol_transfers_volume ON vol_transfers (volume_id);
      CREATE TABLE vol_qos (id TEXT PRIMARY KEY, owner TEXT NOT NULL, name TEXT NOT NULL, body TEXT NOT NULL);
      CREATE TABLE vol_group_types (
        id TEXT PRIMARY KEY, owner TEXT NOT NULL, name TEXT NOT NULL, body TEXT NOT NULL
      );
    `,
  },
  {
    // Generic volume groups and their snapshots belong to the site that made the group (its volumes
    // live there); backups to the site of their volume, whose backup store holds the bytes.
    id: 'volume/003-groups-backups',
    sql: `
      CREATE TABLE vol_groups (
        id TEXT PRIMARY KEY, owner TEXT NOT NULL, project_id TEXT NOT NULL, name TEXT NOT NULL DEFAULT '',
        status TEXT NOT NULL, body TEXT NOT NULL, created_at INTEGER NOT NULL
      );
      CREATE INDEX vol_groups_project ON vol_groups (project_id);
      CREATE TABLE vol_group_snapshots (
        id TEXT PRIMARY KEY, owner TEXT NOT NULL, project_id TEXT NOT NULL, group_id TEXT NOT NULL,
        name TEXT NOT NULL DEFAULT '', status TEXT NOT NULL, body TEXT NOT NULL, created_at INTEGER NOT NULL
      );
      CREATE INDEX vol_group_snapshots_group ON vol_group_snapshots (group_id);
      CREATE TABLE vol_backups (
        id TEXT PRIMARY KEY, owner TEXT NOT NULL, project_id TEXT NOT NULL, volume_id TEXT NOT NULL,
        parent_id TEXT, data_key TEXT NOT NULL, name TEXT NOT NULL DEFAULT '', status TEXT NOT NULL,
        size INTEGER NOT NULL, body TEXT NOT NULL, created_at INTEGER NOT NULL
      );
      CREATE INDEX vol_backups_project ON vol_backups (project_id);
      CREATE INDEX vol_backups_volume ON vol_backups (volume_id);
    `,
  },
  {
    // User messages (Cinder 3.3: what went wrong with a request that answered 202), kept at the
    // site where it happened; quota classes (the defaults every project's quotas start from), written
    // only by the membership authority so that the cloud has one set of defaults.
    id: 'volume/004-messages-quota-classes',
    sql: `
      CREATE TABLE vol_messages (
        id TEXT PRIMARY KEY, owner TEXT NOT NULL, project_id TEXT NOT NULL, resource_uuid TEXT,
        body TEXT NOT NULL, created_at INTEGER NOT NULL
      );
      CREATE INDEX vol_messages_project ON vol_messages (project_id);
      CREATE TABLE vol_quota_classes (id TEXT PRIMARY KEY, owner TEXT NOT NULL, body TEXT NOT NULL);
    `,
  },
] as const;

export const volumeKind = defineKind<VolumeWrite>({
  kind: 'volume',
  table: 'vol_volumes',
  replicate: 'all',
  origin: anySite,
});
export const snapshotKind = defineKind<SnapshotWrite>({
  kind: 'volume_snapshot',
  table: 'vol_snapshots',
  replicate: 'all',
  origin: ownerOf('the owner of its volume', 'vol_volumes', 'volume_id'),
});
export const attachmentKind = defineKind<AttachmentRow>({
  kind: 'volume_attachment',
  table: 'vol_attachments',
  replicate: 'all',
  origin: ownerOf('the owner of its volume', 'vol_volumes', 'volume_id'),
});
export const volumeTypeKind = defineKind<BodyRow & { created_at: number }>({
  kind: 'volume_type',
  table: 'vol_types',
  replicate: 'all',
  origin: anySite,
});
export const volumeQuotaKind = defineKind<VolQuotaRow>({
  kind: 'volume_quota',
  table: 'vol_quotas',
  replicate: 'all',
  unique: projectRow,
  origin: projectHome,
});
export const transferKind = defineKind<TransferRow>({
  kind: 'volume_transfer',
  table: 'vol_transfers',
  replicate: 'all',
  origin: ownerOf('the owner of its volume', 'vol_volumes', 'volume_id'),
});
export const qosKind = defineKind<BodyRow>({
  kind: 'volume_qos',
  table: 'vol_qos',
  replicate: 'all',
  origin: anySite,
});
export const groupTypeKind = defineKind<BodyRow>({
  kind: 'volume_group_type',
  table: 'vol_group_types',
  replicate: 'all',
  origin: anySite,
});

export const groupKind = defineKind<GroupRow>({
  kind: 'volume_group',
  table: 'vol_groups',
  replicate: 'all',
  origin: anySite,
});
export const groupSnapshotKind = defineKind<GroupSnapshotRow>({
  kind: 'volume_group_snapshot',
  table: 'vol_group_snapshots',
  replicate: 'all',
  origin: ownerOf('the owner of its group', 'vol_groups', 'group_id'),
});
/** A backup outlives its volume, so its rule cannot name the volume's owner: the site that made it owns it. */
export const backupKind = defineKind<BackupRow>({
  kind: 'volume_backup',
  table: 'vol_backups',
  replicate: 'all',
  origin: anySite,
});
export const messageKind = defineKind<MessageRow>({
  kind: 'volume_message',
  table: 'vol_messages',
  replicate: 'all',
  origin: anySite,
});
export const quotaClassKind = defineKind<VolQuotaRow>({
  kind: 'volume_quota_class',
  table: 'vol_quota_classes',
  replicate: 'all',
  origin: membershipAuthority,
});

export const volumeKinds: readonly KindSpec[] = [
  volumeKind,
  snapshotKind,
  attachmentKind,
  volumeTypeKind,
  volumeQuotaKind,
  transferKind,
  qosKind,
  groupTypeKind,
  groupKind,
  groupSnapshotKind,
  backupKind,
  messageKind,
  quotaClassKind,
];

/** A project's volume quota (id = project id) or a quota class (id = class name): body = JSON of its limits. */
export interface VolQuotaRow {
  id: string;
  owner: string;
  body: string;
}
