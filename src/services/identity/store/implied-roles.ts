/**
 * @module Role inference rules (id = prior_role_id + ':' + implied_role_id).
 */
import type { Db } from '../../../store/db.ts';
import type { ImpliedRoleRow, OwnedRef } from './schema.ts';
import { TableRows } from './sql.ts';

export class ImpliedRoleRepo extends TableRows<ImpliedRoleRow> {
  private q;
  constructor(db: Db) {
    super(db, 'implied_roles', 'prior_role_id, implied_role_id');
    this.q = {
      of: db.prepare('SELECT * FROM implied_roles WHERE prior_role_id = ? ORDER BY implied_role_id'),
      naming: db.prepare(
        'SELECT id, owner FROM implied_roles WHERE prior_role_id = ? OR implied_role_id = ?',
      ),
    };
  }

  /** The rules of one prior role, by implied role id. */
  of(priorRoleId: string): ImpliedRoleRow[] {
    return this.q.of.all(priorRoleId) as ImpliedRoleRow[];
  }
  /** The rules naming a role, as prior or implied. */
  naming(roleId: string): OwnedRef[] {
    return this.q.naming.all(roleId, roleId) as OwnedRef[];
  }
}
