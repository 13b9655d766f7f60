/**
 * @module The repository of generic volume groups and group snapshots (Cinder 3.13+): every SQL read
 * of vol_groups and vol_group_snapshots, and their writes through the change log. A volume's group is
 * its body's `group_id`, a snapshot's group snapshot its body's `group_snapshot_id`.
 */
import { Repository } from './base.ts';
import { groupKind, groupSnapshotKind } from './schema.ts';
import type { VolRow } from './volumes.ts';

/** A group: its API document is the JSON `body`; the other columns are what queries filter on. */
export interface GroupRow {
  id: string;
  owner: string;
  project_id: string;
  name: string;
  status: string;
  body: string;
  created_at: number;
}

export interface GroupSnapshotRow extends GroupRow {
  group_id: string;
}

export class GroupRepository extends Repository {
  group(id: string): GroupRow | undefined {
    return this.byId('vol_groups', id);
  }

  /** Every group, or a project's only, oldest first. */
  groups(project?: string): GroupRow[] {
    return this.ofProject('vol_groups', project);
  }

  count(project: string): number {
    return this.db
      .prepare('SELECT count(*) FROM vol_groups WHERE project_id = ?')
      .pluck()
      .get(project) as number;
  }

  putGroup(row: Omit<GroupRow, 'owner'>): void {
    this.changelog.put(groupKind, { ...row });
  }

  removeGroup(id: string): void {
    this.changelog.remove(groupKind, id);
  }

  /** The volumes in a group. */
  volumesOf(groupId: string): VolRow[] {
    return this.db
      .prepare("SELECT * FROM vol_volumes WHERE json_extract(body, '$.group_id') = ? ORDER BY created_at, id")
      .all(groupId) as VolRow[];
  }

  groupSnapshot(id: string): GroupSnapshotRow | undefined {
    return this.byId('vol_group_snapshots', id);
  }

  /** Every group snapshot, or a project's only, oldest first. */
  groupSnapshots(project?: string): GroupSnapshotRow[] {
    return this.ofProject('vol_group_snapshots', project);
  }

  groupSnapshotsOf(groupId: string): GroupSnapshotRow[] {
    return this.db
      .prepare('SELECT * FROM vol_group_snapshots WHERE group_id = ? ORDER BY created_at, id')
      .all(groupId) as GroupSnapshotRow[];
  }

  putGroupSnapshot(row: Omit<GroupSnapshotRow, 'owner'>): void {
    this.changelog.put(groupSnapshotKind, { ...row });
  }

  removeGroupSnapshot(id: string): void {
    this.changelog.remove(groupSnapshotKind, id);
  }

  /** The volume snapshots a group snapshot made. */
  snapshotsOf(groupSnapshotId: string): VolRow[] {
    return this.db
      .prepare(
        "SELECT * FROM vol_snapshots WHERE json_extract(body, '$.group_snapshot_id') = ? ORDER BY created_at, id",
      )
      .all(groupSnapshotId) as VolRow[];
  }
}
