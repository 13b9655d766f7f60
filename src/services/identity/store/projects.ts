/**
 * @module Project rows: listings, the leaf check before a delete, and the projects of a domain.
 */
import type { Db } from '../../../store/db.ts';
import type { OwnedRef, ProjectRow } from './schema.ts';

export class ProjectRepo {
  private q;
  constructor(db: Db) {
    this.q = {
      all: db.prepare('SELECT * FROM projects WHERE is_domain = 0 ORDER BY name'),
      // Unordered, as the effective role assignment listing reads them.
      unordered: db.prepare('SELECT * FROM projects WHERE is_domain = 0'),
      child: db.prepare('SELECT id FROM projects WHERE parent_id = ? LIMIT 1'),
      inDomain: db.prepare('SELECT id, owner FROM projects WHERE domain_id = ?'),
      byName: db.prepare('SELECT id FROM projects WHERE domain_id = ? AND name = ?'),
    };
  }

  /** Every project (not those acting as domains), by name. */
  all(): ProjectRow[] {
    return this.q.all.all() as ProjectRow[];
  }
  /** Every project (not those acting as domains), in table order. */
  allUnordered(): ProjectRow[] {
    return this.q.unordered.all() as ProjectRow[];
  }
  hasChildren(id: string): boolean {
    return !!this.q.child.get(id);
  }
  inDomain(domainId: string): OwnedRef[] {
    return this.q.inDomain.all(domainId) as OwnedRef[];
  }
  idByName(domainId: string, name: string): string | undefined {
    return (this.q.byName.get(domainId, name) as { id: string } | undefined)?.id;
  }
}
