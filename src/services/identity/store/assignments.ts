/**
 * @module Role assignment rows (id = type:actor:target:role[:inherited]). Effective roles for tokens
 * are the reader's (reader.ts); this is what the assignment API and the cascading deletes read.
 */
import type { Db } from '../../../store/db.ts';
import { refsNamingAny } from './sql.ts';
import type { AssignmentRow, AssignmentType, OwnedRef, RoleRow } from './schema.ts';

export class AssignmentRepo {
  private db: Db;
  private q;
  constructor(db: Db) {
    this.db = db;
    this.q = {
      exists: db.prepare('SELECT 1 FROM role_assignments WHERE id = ?'),
      roles: db.prepare(
        `SELECT r.* FROM role_assignments a JOIN roles r ON r.id = a.role_id
         WHERE a.type = ? AND a.actor_id = ? AND a.target_id = ? AND a.inherited = ? ORDER BY r.name`,
      ),
      withRoles: db.prepare(
        'SELECT a.* FROM role_assignments a JOIN roles r ON r.id = a.role_id ORDER BY a.id',
      ),
      ofActor: db.prepare('SELECT id, owner FROM role_assignments WHERE actor_id = ?'),
      onTarget: db.prepare('SELECT id, owner FROM role_assignments WHERE target_id = ?'),
      ofRole: db.prepare('SELECT id, owner FROM role_assignments WHERE role_id = ?'),
    };
  }

  exists(id: string): boolean {
    return !!this.q.exists.get(id);
  }
  /** The roles one actor holds by direct assignments of one type on one target, by name. */
  roles(type: AssignmentType, actorId: string, targetId: string, inherited: boolean): RoleRow[] {
    return this.q.roles.all(type, actorId, targetId, inherited ? 1 : 0) as RoleRow[];
  }
  /** Every assignment whose role exists here, by id. */
  allWithRole(): AssignmentRow[] {
    return this.q.withRoles.all() as AssignmentRow[];
  }
  ofActor(actorId: string): OwnedRef[] {
    return this.q.ofActor.all(actorId) as OwnedRef[];
  }
  onTarget(targetId: string): OwnedRef[] {
    return this.q.onTarget.all(targetId) as OwnedRef[];
  }
  ofRole(roleId: string): OwnedRef[] {
    return this.q.ofRole.all(roleId) as OwnedRef[];
  }
  /** Assignments whose target or actor is any of these ids. */
  touching(ids: readonly string[]): OwnedRef[] {
    return refsNamingAny(this.db, 'role_assignments', ['target_id', 'actor_id'], ids);
  }
}
