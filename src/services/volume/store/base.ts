/**
 * @module What every volume repository shares: the site's store and change log, one transaction, and
 * the two reads each table has (one row by id; every row or a project's, oldest first). Table names
 * are the repositories' own constants, never input.
 */
import type { ChangeLog } from '../../../federation/changelog.ts';
import type { Store } from '../../../store/db.ts';

export abstract class Repository {
  constructor(
    protected readonly store: Store,
    protected readonly changelog: ChangeLog,
  ) {}

  protected get db() {
    return this.store.db;
  }

  /** One transaction: every write in `fn` commits together or not at all. */
  tx<T>(fn: () => T): T {
    return this.store.tx(fn);
  }

  /** The row of `table` with this id. */
  protected byId<T>(table: string, id: string): T | undefined {
    return this.db.prepare(`SELECT * FROM ${table} WHERE id = ?`).get(id) as T | undefined;
  }

  /** Every row of `table`, or a project's only, oldest first. */
  protected ofProject<T>(table: string, project?: string): T[] {
    return (
      project === undefined
        ? this.db.prepare(`SELECT * FROM ${table} ORDER BY created_at, id`).all()
        : this.db.prepare(`SELECT * FROM ${table} WHERE project_id = ? ORDER BY created_at, id`).all(project)
    ) as T[];
  }
}
