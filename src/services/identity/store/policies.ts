/**
 * @module Policy documents (Keystone's /v3/policies): stored and served, never enforced.
 */
import type { Db } from '../../../store/db.ts';
import type { PolicyRow } from './schema.ts';

export class PolicyRepo {
  private q;
  constructor(db: Db) {
    this.q = {
      one: db.prepare('SELECT * FROM policies WHERE id = ?'),
      all: db.prepare('SELECT * FROM policies ORDER BY id'),
    };
  }

  get(id: string): PolicyRow | undefined {
    return this.q.one.get(id) as PolicyRow | undefined;
  }
  all(): PolicyRow[] {
    return this.q.all.all() as PolicyRow[];
  }
}
