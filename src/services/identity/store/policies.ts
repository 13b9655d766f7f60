/**
 * @module Policy documents (Keystone's /v3/policies): stored and served, never enforced.
 */
import type { Db } from '../../../store/db.ts';
import type { PolicyRow } from './schema.ts';
import { TableRows } from './sql.ts';

export class PolicyRepo extends TableRows<PolicyRow> {
  constructor(db: Db) {
    super(db, 'policies', 'id');
  }
}
