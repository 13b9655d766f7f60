/**
 * @module User rows: listings, the users of a domain. Single-user reads are the reader's (reader.ts).
 */
import type { Db } from '../../../store/db.ts';
import type { OwnedRef, UserRow } from './schema.ts';

export class UserRepo {
  private q;
  constructor(db: Db) {
    this.q = {
      all: db.prepare('SELECT * FROM users ORDER BY name'),
      inDomain: db.prepare('SELECT id, owner FROM users WHERE domain_id = ?'),
      byName: db.prepare('SELECT * FROM users WHERE domain_id = ? AND name = ?'),
    };
  }

  all(): UserRow[] {
    return this.q.all.all() as UserRow[];
  }
  inDomain(domainId: string): OwnedRef[] {
    return this.q.inDomain.all(domainId) as OwnedRef[];
  }
  /** Not memoized (the reader's userByName is the same query): for writes inside a transaction. */
  byName(domainId: string, name: string): UserRow | undefined {
    return this.q.byName.get(domainId, name) as UserRow | undefined;
  }
}
