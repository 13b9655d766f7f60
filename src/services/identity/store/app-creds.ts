/**
 * @module Application credential rows. Reads by id are the reader's (reader.ts).
 */
import type { Db } from '../../../store/db.ts';
import { refsNamingAny } from './sql.ts';
import type { AppCredRow, OwnedRef } from './schema.ts';

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
