/**
 * @module Domain rows: listing and the name lookups a create or a rename checks. Single-row reads on
 * the token path are the reader's (reader.ts, memoized); writes go through the change log.
 */
import type { Db } from '../../../store/db.ts';
import type { DomainRow } from './schema.ts';

export class DomainRepo {
  private q;
  constructor(db: Db) {
    this.q = {
      all: db.prepare('SELECT * FROM domains ORDER BY name'),
      byName: db.prepare('SELECT id FROM domains WHERE name = ?'),
      has: db.prepare('SELECT id FROM domains WHERE id = ?'),
    };
  }

  all(): DomainRow[] {
    return this.q.all.all() as DomainRow[];
  }
  /** Unmemoized (the reader's domain() is memoized): for writes inside a transaction. */
  has(id: string): boolean {
    return !!this.q.has.get(id);
  }
  /** A domain holding this name (any site's row). */
  idByName(name: string): { id: string } | undefined {
    return this.q.byName.get(name) as { id: string } | undefined;
  }
}
