/**
 * @module The image service's repository: every SQL read of the images and image_members tables, and
 * their writes, which go through the change log (ChangeLog.put/remove) so that they replicate. The
 * domain (domain/images.ts) sees this through the ImageRepository interface only.
 */
import type { Store } from '../../../store/db.ts';
import type { ChangeLog } from '../../../federation/changelog.ts';
import type { ImageRow, MemberRow } from './schema.ts';
import { imageKind, imageMemberKind } from './schema.ts';

/** What the image domain reads and writes (the interface, so that a test or the lab can stand in). */
export interface ImageRepository {
  get(id: string): ImageRow | undefined;
  all(): ImageRow[];
  /** Images shared with `project` whose membership has `status`. */
  sharedWith(project: string, status: string): Set<string>;
  countOf(project: string): number;
  bytesOf(project: string): number;
  /** This site's images caught mid-upload or mid-import (status 'saving' or 'importing'). */
  saving(site: string): ImageRow[];
  /** True when an image of `site` still holds the blob. */
  blobInUse(sha256: string, site: string): boolean;
  member(imageId: string, memberId: string): MemberRow | undefined;
  /** An image's members, oldest first. */
  members(imageId: string): MemberRow[];
  /** One transaction: every write in `fn` commits together or not at all. */
  tx<T>(fn: () => T): T;
  save(img: ImageRow): void;
  /** Deletes an image with its members. */
  remove(imageId: string): void;
  saveMember(m: MemberRow): void;
  removeMember(id: string): void;
}

export class SqlImageRepository implements ImageRepository {
  constructor(
    private readonly store: Store,
    private readonly changelog: ChangeLog,
  ) {}

  private get db() {
    return this.store.db;
  }

  get(id: string): ImageRow | undefined {
    return this.db.prepare('SELECT * FROM images WHERE id = ?').get(id) as ImageRow | undefined;
  }

  all(): ImageRow[] {
    return this.db.prepare('SELECT * FROM images').all() as ImageRow[];
  }

  sharedWith(project: string, status: string): Set<string> {
    const rows = this.db
      .prepare('SELECT image_id FROM image_members WHERE member_id = ? AND status = ?')
      .all(project, status) as { image_id: string }[];
    return new Set(rows.map((r) => r.image_id));
  }

  countOf(project: string): number {
    return (
      this.db.prepare('SELECT count(*) AS n FROM images WHERE project_id = ?').get(project) as { n: number }
    ).n;
  }

  bytesOf(project: string): number {
    return (
      this.db
        .prepare('SELECT coalesce(sum(size), 0) AS used FROM images WHERE project_id = ?')
        .get(project) as { used: number }
    ).used;
  }

  saving(site: string): ImageRow[] {
    return this.db
      .prepare("SELECT * FROM images WHERE status IN ('saving', 'importing') AND owner = ?")
      .all(site) as ImageRow[];
  }

  blobInUse(sha256: string, site: string): boolean {
    return !!this.db.prepare('SELECT 1 FROM images WHERE blob = ? AND owner = ?').get(sha256, site);
  }

  member(imageId: string, memberId: string): MemberRow | undefined {
    return this.db.prepare('SELECT * FROM image_members WHERE id = ?').get(`${imageId}:${memberId}`) as
      MemberRow | undefined;
  }

  members(imageId: string): MemberRow[] {
    return this.db
      .prepare('SELECT * FROM image_members WHERE image_id = ? ORDER BY created_at')
      .all(imageId) as MemberRow[];
  }

  tx<T>(fn: () => T): T {
    return this.store.tx(fn);
  }

  save(img: ImageRow): void {
    this.store.tx(() => this.changelog.put(imageKind, { ...img }));
  }

  remove(imageId: string): void {
    this.store.tx(() => {
      for (const m of this.db.prepare('SELECT id FROM image_members WHERE image_id = ?').all(imageId) as {
        id: string;
      }[])
        this.changelog.remove(imageMemberKind, m.id);
      this.changelog.remove(imageKind, imageId);
    });
  }

  saveMember(m: MemberRow): void {
    this.store.tx(() => this.changelog.put(imageMemberKind, { ...m }));
  }

  removeMember(id: string): void {
    this.store.tx(() => this.changelog.remove(imageMemberKind, id));
  }
}
