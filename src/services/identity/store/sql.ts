/**
 * @module Small helpers the identity repositories share: the by-id and listing reads most tables start
 * with, and the (id, owner) refs of the rows naming any of a set of ids (the cascading deletes).
 */
import type { Db } from '../../../store/db.ts';
import type { OwnedRef } from './schema.ts';

/** `?,?,?` for an IN clause of n values (n > 0). */
export const placeholders = (n: number): string => Array.from({ length: n }, () => '?').join(',');

/** One table's row by id and all its rows in one order. `table` and `orderBy` are SQL, never input. */
export class TableRows<Row> {
  private one;
  private every;
  constructor(db: Db, table: string, orderBy: string) {
    this.one = db.prepare(`SELECT * FROM ${table} WHERE id = ?`);
    this.every = db.prepare(`SELECT * FROM ${table} ORDER BY ${orderBy}`);
  }

  get(id: string): Row | undefined {
    return this.one.get(id) as Row | undefined;
  }
  all(): Row[] {
    return this.every.all() as Row[];
  }
}

/**
 * The refs of the rows of `table` whose value in any of `columns` is one of `ids` (none for no ids).
 * Prepared per call: the IN list's length varies. `table` and `columns` are SQL, never input.
 */
export function refsNamingAny(
  db: Db,
  table: string,
  columns: readonly string[],
  ids: readonly string[],
): OwnedRef[] {
  if (ids.length === 0) return [];
  const inList = placeholders(ids.length);
  const where = columns.map((c) => `${c} IN (${inList})`).join(' OR ');
  return db
    .prepare(`SELECT id, owner FROM ${table} WHERE ${where}`)
    .all(...columns.flatMap(() => ids)) as OwnedRef[];
}
