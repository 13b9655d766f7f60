/**
 * @module The block storage repository: every SQL read of the vol_* tables, and their writes, which
 * go through the change log (ChangeLog.put/remove) so that they replicate. A volume's or snapshot's
 * `body` column is its whole API document (JSON); the other columns are what queries filter on.
 */
import { Repository } from './base.ts';
import {
  attachmentKind,
  groupTypeKind,
  messageKind,
  qosKind,
  quotaClassKind,
  snapshotKind,
  transferKind,
  volumeKind,
  volumeQuotaKind,
  volumeTypeKind,
} from './schema.ts';

/** A volume or snapshot row. */
export interface VolRow {
  id: string;
  owner: string;
  project_id: string;
  name: string;
  status: string;
  size: number;
  body: string;
  created_at: number;
  updated_at: number;
  [k: string]: unknown;
}

export interface AttachmentRow {
  id: string;
  owner: string;
  volume_id: string;
  server_id: string;
  device: string;
  host: string;
  attached_at: number;
}

export interface TransferRow {
  id: string;
  owner: string;
  project_id: string;
  volume_id: string;
  name: string | null;
  salt: string;
  key_hash: string;
  no_snapshots: number;
  created_at: number;
}

/** A user message (Cinder's messages API): `body` is its API document. */
export interface MessageRow {
  id: string;
  project_id: string;
  resource_uuid: string | null;
  body: string;
  created_at: number;
}

/** A row whose API document is the JSON `body` (types, QoS specs, group types). */
export interface BodyRow {
  id: string;
  name: string;
  body: string;
}

/** Count and gigabytes of a project's volumes or snapshots. */
export interface Totals {
  c: number;
  g: number;
}

/** The columns a volume is written with (its owner is this site, filled in by the change log). */
export interface VolumeWrite {
  id: string;
  project_id: string;
  name: string;
  status: string;
  size: number;
  volume_type_id: string;
  body: string;
  created_at: number;
  updated_at: number;
}

export interface SnapshotWrite extends Omit<VolumeWrite, 'volume_type_id'> {
  volume_id: string;
}

type Table = 'vol_volumes' | 'vol_snapshots' | 'vol_backups';
const TABLES: Record<'volumes' | 'snapshots', Table> = {
  volumes: 'vol_volumes',
  snapshots: 'vol_snapshots',
};

export class VolumeRepository extends Repository {
  // ---- volumes and snapshots ----------------------------------------------------------------------

  volume(id: string): VolRow | undefined {
    return this.db.prepare('SELECT * FROM vol_volumes WHERE id = ?').get(id) as VolRow | undefined;
  }

  snapshot(id: string): VolRow | undefined {
    return this.db.prepare('SELECT * FROM vol_snapshots WHERE id = ?').get(id) as VolRow | undefined;
  }

  /** Every volume or snapshot, or a project's only. */
  list(what: 'volumes' | 'snapshots', project?: string): VolRow[] {
    const table = TABLES[what];
    return (
      project === undefined
        ? this.db.prepare(`SELECT * FROM ${table}`).all()
        : this.db.prepare(`SELECT * FROM ${table} WHERE project_id = ?`).all(project)
    ) as VolRow[];
  }

  /** Rows of volumes or snapshots caught mid-copy (status 'creating'). */
  creating(what: 'volumes' | 'snapshots'): VolRow[] {
    return this.withStatus(what, 'creating');
  }

  /** Rows of volumes or snapshots in one status. */
  withStatus(what: 'volumes' | 'snapshots', status: string): VolRow[] {
    return this.db.prepare(`SELECT * FROM ${TABLES[what]} WHERE status = ?`).all(status) as VolRow[];
  }

  snapshotsOf(volumeId: string): VolRow[] {
    return this.db.prepare('SELECT * FROM vol_snapshots WHERE volume_id = ?').all(volumeId) as VolRow[];
  }

  hasSnapshots(volumeId: string): boolean {
    return !!this.db.prepare('SELECT 1 FROM vol_snapshots WHERE volume_id = ? LIMIT 1').get(volumeId);
  }

  /** Count and gigabytes of a project's volumes, snapshots or backups. */
  totals(what: 'volumes' | 'snapshots' | 'backups', project: string): Totals {
    const table = what === 'backups' ? 'vol_backups' : TABLES[what];
    return this.db
      .prepare(`SELECT count(*) AS c, coalesce(sum(size),0) AS g FROM ${table} WHERE project_id = ?`)
      .get(project) as Totals;
  }

  /** Count and gigabytes of a project's volumes, or of its snapshots, per volume type. */
  totalsPerType(what: 'volumes' | 'snapshots', project: string): (Totals & { type_id: string })[] {
    return this.db
      .prepare(
        what === 'volumes'
          ? 'SELECT volume_type_id AS type_id, count(*) AS c, coalesce(sum(size), 0) AS g FROM vol_volumes WHERE project_id = ? GROUP BY volume_type_id'
          : 'SELECT v.volume_type_id AS type_id, count(*) AS c, coalesce(sum(s.size), 0) AS g FROM vol_snapshots s JOIN vol_volumes v ON v.id = s.volume_id WHERE s.project_id = ? GROUP BY v.volume_type_id',
      )
      .all(project) as (Totals & { type_id: string })[];
  }

  /** Count and gigabytes per project of the volumes or snapshots a site holds. */
  totalsPerProject(what: 'volumes' | 'snapshots', owner: string): (Totals & { project_id: string })[] {
    return this.db
      .prepare(
        `SELECT project_id, count(*) AS c, coalesce(sum(size), 0) AS g FROM ${TABLES[what]} WHERE owner = ? GROUP BY project_id`,
      )
      .all(owner) as (Totals & { project_id: string })[];
  }

  putVolume(row: VolumeWrite): void {
    this.changelog.put(volumeKind, { ...row });
  }

  putSnapshot(row: SnapshotWrite): void {
    this.changelog.put(snapshotKind, { ...row });
  }

  removeVolume(id: string): void {
    this.changelog.remove(volumeKind, id);
  }

  removeSnapshot(id: string): void {
    this.changelog.remove(snapshotKind, id);
  }

  // ---- attachments --------------------------------------------------------------------------------

  attachment(id: string): AttachmentRow | undefined {
    return this.db.prepare('SELECT * FROM vol_attachments WHERE id = ?').get(id) as AttachmentRow | undefined;
  }

  attachmentsOfVolume(volumeId: string): AttachmentRow[] {
    return this.db
      .prepare('SELECT * FROM vol_attachments WHERE volume_id = ? ORDER BY attached_at, id')
      .all(volumeId) as AttachmentRow[];
  }

  attachmentsOfServer(serverId: string): AttachmentRow[] {
    return this.db
      .prepare('SELECT * FROM vol_attachments WHERE server_id = ? ORDER BY attached_at, id')
      .all(serverId) as AttachmentRow[];
  }

  putAttachment(row: Omit<AttachmentRow, 'owner'>): void {
    this.changelog.put(attachmentKind, { ...row });
  }

  removeAttachment(id: string): void {
    this.changelog.remove(attachmentKind, id);
  }

  // ---- volume types -------------------------------------------------------------------------------

  /** Stored volume types (the built-in default is not stored), oldest first. */
  types(): BodyRow[] {
    return this.db.prepare('SELECT * FROM vol_types ORDER BY created_at, id').all() as BodyRow[];
  }

  typeOwner(id: string): string | undefined {
    return this.db.prepare('SELECT owner FROM vol_types WHERE id = ?').pluck().get(id) as string | undefined;
  }

  typeInUse(id: string): boolean {
    return !!this.db.prepare('SELECT 1 FROM vol_volumes WHERE volume_type_id = ? LIMIT 1').get(id);
  }

  putType(row: BodyRow & { created_at: number }): void {
    this.changelog.put(volumeTypeKind, { ...row });
  }

  removeType(id: string): void {
    this.changelog.remove(volumeTypeKind, id);
  }

  // ---- quotas -------------------------------------------------------------------------------------

  /** A project's stored quota overrides (JSON), if any were set. */
  quotaBody(project: string): string | undefined {
    return (
      this.db.prepare('SELECT body FROM vol_quotas WHERE id = ?').get(project) as { body: string } | undefined
    )?.body;
  }

  /** The site holding a project's quota row, if one was written. */
  quotaOwner(project: string): string | undefined {
    return this.db.prepare('SELECT owner FROM vol_quotas WHERE id = ?').pluck().get(project) as
      string | undefined;
  }

  putQuota(project: string, body: string): void {
    this.changelog.put(volumeQuotaKind, { id: project, body });
  }

  removeQuota(project: string): void {
    this.changelog.remove(volumeQuotaKind, project);
  }

  /** A quota class's stored limits (JSON), if it was ever changed. */
  quotaClassBody(name: string): string | undefined {
    return (
      this.db.prepare('SELECT body FROM vol_quota_classes WHERE id = ?').get(name) as
        { body: string } | undefined
    )?.body;
  }

  putQuotaClass(name: string, body: string): void {
    this.changelog.put(quotaClassKind, { id: name, body });
  }

  // ---- user messages ------------------------------------------------------------------------------

  /** Every message, or a project's only, newest first. */
  messages(project?: string): (MessageRow & { owner: string })[] {
    return (
      project === undefined
        ? this.db.prepare('SELECT * FROM vol_messages ORDER BY created_at DESC, id').all()
        : this.db
            .prepare('SELECT * FROM vol_messages WHERE project_id = ? ORDER BY created_at DESC, id')
            .all(project)
    ) as (MessageRow & { owner: string })[];
  }

  message(id: string): (MessageRow & { owner: string }) | undefined {
    return this.db.prepare('SELECT * FROM vol_messages WHERE id = ?').get(id) as
      (MessageRow & { owner: string }) | undefined;
  }

  putMessage(row: MessageRow): void {
    this.changelog.put(messageKind, { ...row });
  }

  removeMessage(id: string): void {
    this.changelog.remove(messageKind, id);
  }

  // ---- transfers ----------------------------------------------------------------------------------

  transfer(id: string): TransferRow | undefined {
    return this.db.prepare('SELECT * FROM vol_transfers WHERE id = ?').get(id) as TransferRow | undefined;
  }

  /** Every transfer, or a project's only, oldest first. */
  transfers(project?: string): TransferRow[] {
    return (
      project === undefined
        ? this.db.prepare('SELECT * FROM vol_transfers ORDER BY created_at, id').all()
        : this.db
            .prepare('SELECT * FROM vol_transfers WHERE project_id = ? ORDER BY created_at, id')
            .all(project)
    ) as TransferRow[];
  }

  putTransfer(t: TransferRow): void {
    this.changelog.put(transferKind, { ...t });
  }

  removeTransfer(id: string): void {
    this.changelog.remove(transferKind, id);
  }

  // ---- QoS specs and group types ------------------------------------------------------------------

  /** QoS specs' documents, by name. */
  qosBodies(): string[] {
    return (this.db.prepare('SELECT body FROM vol_qos ORDER BY name, id').all() as { body: string }[]).map(
      (r) => r.body,
    );
  }

  qos(id: string): { owner: string; body: string } | undefined {
    return this.db.prepare('SELECT owner, body FROM vol_qos WHERE id = ?').get(id) as
      { owner: string; body: string } | undefined;
  }

  putQos(row: BodyRow): void {
    this.changelog.put(qosKind, { ...row });
  }

  removeQos(id: string): void {
    this.changelog.remove(qosKind, id);
  }

  /** Stored group types' documents, by name. */
  groupTypeBodies(): string[] {
    return (
      this.db.prepare('SELECT body FROM vol_group_types ORDER BY name, id').all() as { body: string }[]
    ).map((r) => r.body);
  }

  groupTypeOwner(id: string): string | undefined {
    return this.db.prepare('SELECT owner FROM vol_group_types WHERE id = ?').pluck().get(id) as
      string | undefined;
  }

  /** Whether some group has this group type (it cannot be deleted then). */
  groupTypeInUse(id: string): boolean {
    return !!this.db
      .prepare("SELECT 1 FROM vol_groups WHERE json_extract(body, '$.group_type') = ? LIMIT 1")
      .get(id);
  }

  putGroupType(row: BodyRow): void {
    this.changelog.put(groupTypeKind, { ...row });
  }

  removeGroupType(id: string): void {
    this.changelog.remove(groupTypeKind, id);
  }

  // ---- the image service's table --------------------------------------------------------------------

  /**
   * An image row, read straight from the image service's replicated table (undefined when there is
   * none); `false` when this site runs no image service at all.
   */
  image(id: string): Record<string, unknown> | undefined | false {
    const has = this.db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'images'").get();
    if (!has) return false;
    return this.db.prepare('SELECT * FROM images WHERE id = ?').get(id) as
      Record<string, unknown> | undefined;
  }
}
