/**
 * @module Application credential rows. Reads by id are the reader's (reader.ts).
 */
import type { Db } from '../../../store/db.ts';
import { refsNamingAny } from './sql.ts';
import type { AccessRuleRow, AppCredRow, OwnedRef } from './schema.ts';

export class AppCredRepo {
  private db: Db;
  private q;
  constructor(db: Db) {
    this.db = db;
    this.q = {
      byName: db.prepare('SELECT * FROM application_credentials WHERE user_id = ? AND name = ?'),
      ofUser: db.prepare('SELECT * FROM application_credentials WHERE user_id = ? ORDER BY name'),
      refsOfUser: db.prepare('SELECT id, owner FROM application_credentials WHERE user_id = ?'),
      refsOfProject: db.prepare('SELECT id, owner FROM application_credentials WHERE project_id = ?'),
    };
  }

  byName(userId: string, name: string): AppCredRow | undefined {
    return this.q.byName.get(userId, name) as AppCredRow | undefined;
  }
  /** A user's credentials, by name. */
  ofUser(userId: string): AppCredRow[] {
    return this.q.ofUser.all(userId) as AppCredRow[];
  }
  refsOfUser(userId: string): OwnedRef[] {
    return this.q.refsOfUser.all(userId) as OwnedRef[];
  }
  refsOfProject(projectId: string): OwnedRef[] {
    return this.q.refsOfProject.all(projectId) as OwnedRef[];
  }
  refsOfUsers(userIds: readonly string[]): OwnedRef[] {
    return refsNamingAny(this.db, 'application_credentials', ['user_id'], userIds);
  }
}

/** Access rules (a user's, shared by the user's application credentials that name them). */
export class AccessRuleRepo {
  private db: Db;
  private q;
  constructor(db: Db) {
    this.db = db;
    this.q = {
      get: db.prepare('SELECT * FROM access_rules WHERE id = ?'),
      ofUser: db.prepare('SELECT * FROM access_rules WHERE user_id = ? ORDER BY created_at, id'),
      same: db.prepare(
        'SELECT * FROM access_rules WHERE user_id = ? AND service = ? AND method = ? AND path = ? ORDER BY id LIMIT 1',
      ),
      refsOfUser: db.prepare('SELECT id, owner FROM access_rules WHERE user_id = ?'),
    };
  }

  get(id: string): AccessRuleRow | undefined {
    return this.q.get.get(id) as AccessRuleRow | undefined;
  }
  ofUser(userId: string): AccessRuleRow[] {
    return this.q.ofUser.all(userId) as AccessRuleRow[];
  }
  /** The user's rule for this service, method and path, when there is one. */
  same(userId: string, r: { service: string; method: string; path: string }): AccessRuleRow | undefined {
    return this.q.same.get(userId, r.service, r.method, r.path) as AccessRuleRow | undefined;
  }
  refsOfUser(userId: string): OwnedRef[] {
    return this.q.refsOfUser.all(userId) as OwnedRef[];
  }
  refsOfUsers(userIds: readonly string[]): OwnedRef[] {
    return refsNamingAny(this.db, 'access_rules', ['user_id'], userIds);
  }
}
