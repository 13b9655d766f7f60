/**
 * @module Role rows: listing and the name lookups of create, rename and bootstrap. Single-role reads
 * are the reader's (reader.ts).
 */
import type { Db } from '../../../store/db.ts';
import type { RoleRow } from './schema.ts';

export class RoleRepo {
  private q;
  constructor(db: Db) {
    this.q = {
      all: db.prepare('SELECT * FROM roles ORDER BY name'),
      byName: db.prepare("SELECT id FROM roles WHERE ifnull(domain_id, '') = ? AND name = ?"),
      globalByName: db.prepare('SELECT id FROM roles WHERE name = ? AND domain_id IS NULL'),
    };
  }

  all(): RoleRow[] {
    return this.q.all.all() as RoleRow[];
  }
  /** A role holding this name in a domain (null: the global roles). */
  idByName(domainId: string | null, name: string): { id: string } | undefined {
    return this.q.byName.get(domainId ?? '', name) as { id: string } | undefined;
  }
  /** A global role of this name (bootstrap: any one of them, not the name's winner). */
  globalIdByName(name: string): string | undefined {
    return (this.q.globalByName.get(name) as { id: string } | undefined)?.id;
  }
}
