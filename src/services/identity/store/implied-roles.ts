/**
 * @module Role inference rules (id = prior_role_id + ':' + implied_role_id).
 */
import type { Db } from '../../../store/db.ts';
import type { ImpliedRoleRow, OwnedRef } from './schema.ts';

export class ImpliedRoleRepo {
  private q;
  constructor(db: Db) {
    this.q = {
      one: db.prepare('SELECT * FROM implied_roles WHERE id = ?'),
      of: db.prepare('SELECT * FROM implied_roles WHERE prior_role_id = ? ORDER BY implied_role_id'),
      all: db.prepare('SELECT * FROM implied_roles ORDER BY prior_role_id, implied_role_id'),
      naming: db.prepare(
        'SELECT id, owner FROM implied_roles WHERE prior_role_id = ? OR implied_role_id = ?',
      ),
    };
  }

  get(id: string): ImpliedRoleRow | undefined {
    return this.q.one.get(id) as ImpliedRoleRow | undefined;
  }
  /** The rules of one prior role, by implied role id. */
  of(priorRoleId: string): ImpliedRoleRow[] {
    return this.q.of.all(priorRoleId) as ImpliedRoleRow[];
  }
  all(): ImpliedRoleRow[] {
    return this.q.all.all() as ImpliedRoleRow[];
  }
  /** The rules naming a role, as prior or implied. */
  naming(roleId: string): OwnedRef[] {
    return this.q.naming.all(roleId, roleId) as OwnedRef[];
  }
}
