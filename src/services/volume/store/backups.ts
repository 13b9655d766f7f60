/**
 * @module The repository of volume backups: every SQL read of vol_backups, and its writes through the
 * change log. `parent_id` is the backup an incremental one builds on; `data_key` names the backup's
 * data in the site's backup store (its own id, or the exported backup's for an imported record, so
 * two records can share one copy of the bytes).
 */
import { Repository } from './base.ts';
import { backupKind } from './schema.ts';
import type { Totals } from './volumes.ts';

export interface BackupRow {
  id: string;
  owner: string;
  project_id: string;
  volume_id: string;
  parent_id: string | null;
  data_key: string;
  name: string;
  status: string;
  size: number;
  body: string;
  created_at: number;
}

export class BackupRepository extends Repository {
  backup(id: string): BackupRow | undefined {
    return this.byId('vol_backups', id);
  }

  /** Every backup, or a project's only, oldest first. */
  list(project?: string): BackupRow[] {
    return this.ofProject('vol_backups', project);
  }

  /** A volume's backups, newest first (an incremental one builds on the newest available). */
  ofVolume(volumeId: string): BackupRow[] {
    return this.db
      .prepare('SELECT * FROM vol_backups WHERE volume_id = ? ORDER BY created_at DESC, id DESC')
      .all(volumeId) as BackupRow[];
  }

  hasChildren(id: string): boolean {
    return !!this.db.prepare('SELECT 1 FROM vol_backups WHERE parent_id = ? LIMIT 1').get(id);
  }

  /** How many records point at the same stored data. */
  sharing(dataKey: string): number {
    return this.db
      .prepare('SELECT count(*) FROM vol_backups WHERE data_key = ?')
      .pluck()
      .get(dataKey) as number;
  }

  /** Count and gigabytes of a project's backups. */
  totals(project: string): Totals {
    return this.db
      .prepare('SELECT count(*) AS c, coalesce(sum(size), 0) AS g FROM vol_backups WHERE project_id = ?')
      .get(project) as Totals;
  }

  /** Rows caught mid-copy ('creating' or 'restoring'). */
  busy(): BackupRow[] {
    return this.db
      .prepare("SELECT * FROM vol_backups WHERE status IN ('creating', 'restoring', 'deleting')")
      .all() as BackupRow[];
  }

  put(row: Omit<BackupRow, 'owner'>): void {
    this.changelog.put(backupKind, { ...row });
  }

  remove(id: string): void {
    this.changelog.remove(backupKind, id);
  }
}
