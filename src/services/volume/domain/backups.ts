/**
 * @module Volume backups (Cinder's backups API): full and incremental backups of a volume or of one of
 * its snapshots (`force` for an in-use volume), restore to a new or an existing volume, export and
 * import of a backup's record, reset_status, metadata (3.43). The bytes go to the site's backup store
 * (the BackupStore port; ../backend/backup-store.ts writes chunks with a sha256 each). As in Cinder,
 * a backup and a restore are asynchronous: the row is written 'creating' (quota counted) or
 * 'restoring', the request answers 202, and the row becomes 'available' or 'error' when the store is
 * done (reading a whole volume can take longer than a forwarded request may wait). A backup belongs
 * to the site of its volume, where its bytes are; these commands run there (the routes forward first).
 * https://docs.openstack.org/api-ref/block-storage/v3/#backups-backups
 */
import type { AuthContext } from '../../../core/auth.ts';
import { BadRequest, NotFound, TooLarge } from '../../../core/errors.ts';
import type { Clock, Ids, Logger } from '../../../core/ports.ts';
import { isObj, novaTime, optBool, optStr } from '../../common/input.ts';
import type { Obj } from '../../common/input.ts';
import type { BackupRepository, BackupRow } from '../store/backups.ts';
import type { VolRow, VolumeService } from './volumes.ts';
import { stringValues } from './volumes.ts';

/** Where a backup's bytes are read from: a volume's file or a snapshot's. */
export interface BackupSource {
  volumeId?: string;
  snapshotId?: string;
}

/**
 * The backup store port: `key` names a backup's data. `write` stores the source's bytes (only the
 * chunks that differ from `parent`'s when given: an incremental backup) and answers how many objects
 * it wrote; `restore` writes a backup's bytes into a volume, checking every chunk's sha256.
 */
export interface BackupStore {
  /** The driver name export_record reports (Cinder's `backup_service`). */
  readonly service: string;
  write(key: string, source: BackupSource, parent?: string): Promise<{ objects: number }>;
  restore(key: string, volumeId: string, sizeGb: number): Promise<void>;
  has(key: string): boolean;
  delete(key: string): void;
  close(): void;
}

/** A store that keeps nothing, beside the 'fake' volume driver. */
export const fakeBackupStore: BackupStore = {
  service: 'cinder.backup.drivers.fake',
  write: () => Promise.resolve({ objects: 0 }),
  restore: () => Promise.resolve(),
  has: () => true,
  delete() {},
  close() {},
};

/** Statuses os-reset_status accepts for a backup (Cinder: available or error). */
export const BACKUP_RESET_STATUSES = ['available', 'error'] as const;

export interface VolumeBackupsOptions {
  volumes: VolumeService;
  repo: BackupRepository;
  store: BackupStore;
  clock: Clock;
  ids: Ids;
  log: Logger;
  site: string;
}

/** Cinder reads a few body flags as booleans or their spellings ("True"). */
function flag(o: Obj, field: string): boolean {
  const v = o[field];
  if (typeof v === 'string') return ['true', '1', 'yes', 'on'].includes(v.toLowerCase());
  return optBool(o, field) ?? false;
}

export class VolumeBackups {
  /** Backups and restores running in the background. */
  private readonly running = new Set<Promise<void>>();
  constructor(private readonly opts: VolumeBackupsOptions) {}

  /** Runs `work` in the background (never rejecting), tracked until it settles. */
  private background(what: string, work: () => Promise<void>): void {
    const p = work()
      .catch((e: unknown) => this.opts.log.warn({ err: String(e) }, `${what} failed`))
      .finally(() => this.running.delete(p));
    this.running.add(p);
  }

  /** Resolves once every background backup and restore has settled (close, tests). */
  async idle(): Promise<void> {
    while (this.running.size) await Promise.all([...this.running]);
  }

  private get repo() {
    return this.opts.repo;
  }
  private get volumes() {
    return this.opts.volumes;
  }
  private now() {
    return this.opts.clock.now();
  }

  body(r: { body: string }): Obj {
    return JSON.parse(r.body) as Obj;
  }
  get service(): string {
    return this.opts.store.service;
  }

  get(id: string): BackupRow | undefined {
    return this.repo.backup(id);
  }
  visible(auth: AuthContext, id: string): BackupRow {
    const b = this.repo.backup(id);
    if (!b || !this.volumes.canSee(auth, b)) throw new NotFound(`Backup ${id} could not be found.`);
    return b;
  }
  list(project?: string): BackupRow[] {
    return this.repo.list(project);
  }
  hasDependents(id: string): boolean {
    return this.repo.hasChildren(id);
  }

  private put(b: Obj, row: Pick<BackupRow, 'parent_id' | 'data_key' | 'created_at'>): void {
    b.updated_at = novaTime(this.now());
    this.repo.put({
      id: String(b.id),
      project_id: String(b.project_id),
      volume_id: String(b.volume_id),
      parent_id: row.parent_id,
      data_key: row.data_key,
      name: String(b.name ?? ''),
      status: String(b.status),
      size: Number(b.size),
      body: JSON.stringify(b),
      created_at: row.created_at,
    });
  }
  patch(r: BackupRow, patch: Obj): Obj {
    const b = { ...this.body(r), ...patch };
    this.repo.tx(() => this.put(b, r));
    return b;
  }

  private checkQuota(project: string, size: number): void {
    const q = this.volumes.quotas(project);
    const u = this.repo.totals(project);
    if (q.backups >= 0 && u.c + 1 > q.backups)
      throw new TooLarge(`Maximum number of backups allowed (${q.backups}) exceeded for quota 'backups'.`);
    if (q.backup_gigabytes >= 0 && u.g + size > q.backup_gigabytes)
      throw new TooLarge(
        `Requested backup exceeds allowed Backup gigabytes quota. Requested ${size}G, quota is ${q.backup_gigabytes}G and ${u.g}G has been consumed.`,
      );
  }

  /**
   * POST /backups on the volume's site: `o` is the request's backup (`metadata` read from 3.43).
   * Answers the 'creating' row; the bytes are written in the background.
   */
  create(auth: AuthContext, vol: VolRow, o: Obj, withMetadata: boolean): Obj {
    const force = flag(o, 'force');
    const incremental = flag(o, 'incremental');
    const snapId = optStr(o, 'snapshot_id');
    const snap = snapId ? this.volumes.visibleSnapshot(auth, snapId) : undefined;
    if (snap && snap.volume_id !== vol.id)
      throw new BadRequest(`Invalid snapshot: snapshot ${snap.id} is not a snapshot of volume ${vol.id}.`);
    if (snap && snap.status !== 'available')
      throw new BadRequest(
        `Invalid snapshot: snapshot ${snap.id} status must be available, but it is ${snap.status}.`,
      );
    if (!snap && vol.status !== 'available' && !(force && vol.status === 'in-use'))
      throw new BadRequest(
        `Invalid volume: Volume to be backed up must be available or in-use, but the current status is "${vol.status}".` +
          (vol.status === 'in-use' ? ' An in-use volume needs force.' : ''),
      );
    const parent = incremental
      ? this.repo.ofVolume(vol.id).find((b) => b.status === 'available' && this.volumes.owns(b.owner))
      : undefined;
    if (incremental && !parent)
      throw new BadRequest('Invalid backup: No backups available to do an incremental backup.');
    const metadata = isObj(o.metadata) && withMetadata ? stringValues(o.metadata) : {};
    const vb = this.volumes.body(vol);
    const now = this.now();
    const id = this.opts.ids.uuid();
    const b: Obj = {
      id,
      name: optStr(o, 'name') ?? null,
      description: optStr(o, 'description') ?? null,
      status: 'creating',
      size: vol.size,
      object_count: 0,
      availability_zone: this.opts.site,
      container: optStr(o, 'container') ?? 'volumebackups',
      created_at: novaTime(now),
      updated_at: novaTime(now),
      fail_reason: null,
      volume_id: vol.id,
      snapshot_id: snap?.id ?? null,
      is_incremental: !!parent,
      data_timestamp: snap ? String(this.volumes.body(snap).created_at) : novaTime(now),
      metadata,
      project_id: vol.project_id,
      user_id: auth.userId,
      // What a restore gives back beside the bytes (Cinder backs up the volume's metadata too).
      volume: {
        metadata: isObj(vb.metadata) ? vb.metadata : {},
        bootable: vb.bootable ?? 'false',
        ...(isObj(vb.volume_image_metadata) ? { volume_image_metadata: vb.volume_image_metadata } : {}),
      },
    };
    const row = { parent_id: parent?.id ?? null, data_key: id, created_at: now };
    const prior = vol.status;
    this.repo.tx(() => {
      this.checkQuota(vol.project_id, vol.size);
      this.put(b, row);
      if (snap) this.volumes.patchSnapshot(snap, { status: 'backing-up' });
      else this.volumes.setStatus(vol, 'backing-up');
    });
    const source: BackupSource = snap ? { snapshotId: snap.id } : { volumeId: vol.id };
    this.background('volume backup', async () => {
      let done: Obj = { status: 'available' };
      try {
        const { objects } = await this.opts.store.write(id, source, parent?.data_key);
        done.object_count = objects;
      } catch (e) {
        this.opts.log.warn({ id, err: String(e) }, 'volume backup failed');
        done = { status: 'error', fail_reason: String(e instanceof Error ? e.message : e) };
      }
      this.repo.tx(() => {
        const s = snap ? this.volumes.snapshot(snap.id) : undefined;
        if (s?.status === 'backing-up') this.volumes.patchSnapshot(s, { status: 'available' });
        const v = this.volumes.volume(vol.id);
        if (v?.status === 'backing-up') this.volumes.setStatus(v, prior);
        const cur = this.repo.backup(id);
        if (!cur) return this.dropData(id);
        if (cur.status !== 'creating') return;
        this.put({ ...this.body(cur), ...done }, cur);
      });
    });
    return b;
  }

  /** PUT /backups/{id} (3.9): name, description and, from 3.43, metadata. */
  update(r: BackupRow, o: Obj, withMetadata: boolean): Obj {
    const patch: Obj = {};
    if ('name' in o) patch.name = optStr(o, 'name') ?? null;
    if ('description' in o) patch.description = optStr(o, 'description') ?? null;
    if (withMetadata && isObj(o.metadata)) patch.metadata = stringValues(o.metadata);
    return this.patch(r, patch);
  }

  /** Removes a backup (available or error, no incremental backups on it; `force`: any status). */
  remove(r: BackupRow, force = false): void {
    if (!force && !['available', 'error'].includes(r.status))
      throw new BadRequest(
        `Invalid backup: Backup status must be available or error, but it is ${r.status}.`,
      );
    if (this.repo.hasChildren(r.id))
      throw new BadRequest(`Invalid backup: Incremental backups exist for this backup.`);
    this.repo.tx(() => {
      this.repo.remove(r.id);
      this.dropData(r.data_key);
    });
  }

  /** Drops stored data no record points at any more (an imported record may share it). */
  private dropData(key: string): void {
    if (this.repo.sharing(key) === 0) this.opts.store.delete(key);
  }

  /**
   * POST /backups/{id}/restore: into `volume_id` (available, at least the backup's size, on this site)
   * or into a new volume of the caller's project. The backup is 'restoring' and the volume
   * 'restoring-backup' meanwhile; the volume gets the backed-up metadata and bootable flag.
   */
  async restore(auth: AuthContext, project: string, r: BackupRow, o: Obj): Promise<Obj> {
    if (r.status !== 'available')
      throw new BadRequest(`Invalid backup: Backup status must be available, but it is ${r.status}.`);
    if (!this.opts.store.has(r.data_key))
      throw new BadRequest(`Invalid backup: the data of backup ${r.id} is not in this site's backup store.`);
    const targetId = optStr(o, 'volume_id');
    let vol: VolRow;
    if (targetId) {
      vol = this.volumes.visibleVolume(auth, targetId);
      if (!this.volumes.owns(vol.owner))
        throw new BadRequest(
          `Invalid volume: volume ${vol.id} is in availability zone ${vol.owner}; backup ${r.id} is in ${this.opts.site}.`,
        );
      if (vol.status !== 'available')
        throw new BadRequest(
          `Invalid volume: Volume to be restored to must be available, but it is ${vol.status}.`,
        );
      if (vol.size < r.size)
        throw new BadRequest(
          `Invalid volume: volume size ${vol.size}GB cannot be smaller than the backup size ${r.size}GB.`,
        );
    } else {
      const name = optStr(o, 'name') ?? `restore_backup_${r.id}`;
      const made = await this.volumes.createVolume(auth, project, {
        size: r.size,
        name,
        description: `auto-created_from_restore_from_backup`,
      });
      vol = this.volumes.volume(String(made.id))!;
    }
    this.repo.tx(() => {
      this.volumes.setStatus(vol, 'restoring-backup');
      this.patch(r, { status: 'restoring' });
    });
    this.background('backup restore', async () => {
      let status = 'available';
      try {
        await this.opts.store.restore(r.data_key, vol.id, vol.size);
      } catch (e) {
        status = 'error_restoring';
        this.opts.log.warn({ id: r.id, volume: vol.id, err: String(e) }, 'backup restore failed');
      }
      this.finishRestore(r, vol.id, status);
    });
    return { backup_id: r.id, volume_id: vol.id, volume_name: String(this.volumes.body(vol).name ?? '') };
  }

  /** After a restore: the volume gets its status (and the backed-up metadata), the backup is available. */
  private finishRestore(r: BackupRow, volumeId: string, status: string): void {
    const saved = isObj(this.body(r).volume) ? (this.body(r).volume as Obj) : {};
    const vol = { id: volumeId };
    this.repo.tx(() => {
      const v = this.volumes.volume(vol.id);
      if (v?.status === 'restoring-backup') {
        const vb = this.volumes.body(v);
        this.volumes.patchVolume(v, {
          status,
          ...(status === 'available'
            ? {
                metadata: {
                  ...(isObj(vb.metadata) ? vb.metadata : {}),
                  ...(isObj(saved.metadata) ? saved.metadata : {}),
                },
                bootable: saved.bootable ?? vb.bootable,
                ...(isObj(saved.volume_image_metadata)
                  ? { volume_image_metadata: saved.volume_image_metadata }
                  : {}),
              }
            : {}),
        });
      }
      const cur = this.repo.backup(r.id);
      if (cur?.status === 'restoring') this.patch(cur, { status: 'available' });
    });
  }

  /** export_record: the record as base64 JSON (Cinder's backup_url), for an import_record elsewhere or later. */
  exportRecord(r: BackupRow): { backup_service: string; backup_url: string } {
    if (r.status !== 'available')
      throw new BadRequest(`Invalid backup: Backup status must be available, but it is ${r.status}.`);
    const record = { ...this.body(r), parent_id: r.parent_id, data_key: r.data_key, site: r.owner };
    return {
      backup_service: this.service,
      backup_url: Buffer.from(JSON.stringify(record)).toString('base64'),
    };
  }

  /** Reads an exported record (400 for anything that is not one). */
  static decodeRecord(url: string): Obj {
    let rec: unknown;
    try {
      rec = JSON.parse(Buffer.from(url, 'base64').toString('utf8'));
    } catch {
      throw new BadRequest('Invalid input received: backup_url is not an exported backup record.');
    }
    if (
      !isObj(rec) ||
      typeof rec.id !== 'string' ||
      !/^[\w-]{1,64}$/.test(rec.id) ||
      typeof rec.data_key !== 'string'
    )
      throw new BadRequest('Invalid input received: backup_url is not an exported backup record.');
    return rec;
  }

  /** import_record: a new record, in the caller's project, for data this site's store holds. */
  importRecord(auth: AuthContext, project: string, service: string, rec: Obj): Obj {
    if (service !== this.service)
      throw new BadRequest(
        `Invalid input received: backup service ${service} is not this site's (${this.service}).`,
      );
    const id = String(rec.id);
    if (this.repo.backup(id)) throw new BadRequest(`Invalid backup: Backup ${id} already exists.`);
    const key = String(rec.data_key);
    if (!this.opts.store.has(key))
      throw new BadRequest(`Invalid backup: the data of backup ${id} is not in this site's backup store.`);
    const parentId =
      typeof rec.parent_id === 'string' && this.repo.backup(rec.parent_id) ? rec.parent_id : null;
    const now = this.now();
    const size = Number(rec.size);
    if (!Number.isInteger(size) || size < 1)
      throw new BadRequest('Invalid input received: the record has no size.');
    const b: Obj = {
      ...Object.fromEntries(
        Object.entries(rec).filter(([k]) => !['parent_id', 'data_key', 'site'].includes(k)),
      ),
      id,
      size,
      status: 'available',
      availability_zone: this.opts.site,
      created_at: novaTime(now),
      project_id: project,
      user_id: auth.userId,
      is_incremental: !!parentId,
      fail_reason: null,
    };
    this.repo.tx(() => {
      this.checkQuota(project, size);
      this.put(b, { parent_id: parentId, data_key: key, created_at: now });
    });
    return b;
  }

  /**
   * At start: a backup or restore this site was making when it stopped will never finish: its
   * backup is 'error' (or 'available' again after a restore) and the volume or snapshot usable again.
   */
  failInterrupted(): void {
    const stuck = this.repo.busy().filter((r) => this.volumes.owns(r.owner));
    if (!stuck.length) return;
    this.repo.tx(() => {
      for (const r of stuck) {
        this.patch(
          r,
          r.status === 'restoring'
            ? { status: 'available' }
            : { status: 'error', fail_reason: 'interrupted' },
        );
        const v = this.volumes.volume(r.volume_id);
        if (v?.status === 'backing-up')
          this.volumes.setStatus(v, this.volumes.attachmentsOfVolume(v.id).length ? 'in-use' : 'available');
        if (v?.status === 'restoring-backup') this.volumes.setStatus(v, 'error_restoring');
        const snapId = this.body(r).snapshot_id;
        const s = typeof snapId === 'string' ? this.volumes.snapshot(snapId) : undefined;
        if (s?.status === 'backing-up') this.volumes.patchSnapshot(s, { status: 'available' });
      }
    });
  }
}
