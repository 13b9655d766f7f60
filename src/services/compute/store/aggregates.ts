/**
 * @module This site's host aggregates (os-aggregates): named groups of its compute hosts with metadata
 * and an optional availability zone name. Local like the hosts they group, so plain SQL, no change log.
 */
import type { Store } from '../../../store/db.ts';
import type { AggregateRow } from './schema.ts';

export class AggregateStore {
  constructor(
    private readonly store: Store,
    private readonly site: string,
  ) {}

  list(): AggregateRow[] {
    return this.store.db
      .prepare('SELECT * FROM compute_aggregates WHERE owner = ? ORDER BY num')
      .all(this.site) as AggregateRow[];
  }

  get(num: string): AggregateRow | undefined {
    if (!/^\d+$/.test(num)) return undefined;
    return this.store.db
      .prepare('SELECT * FROM compute_aggregates WHERE num = ? AND owner = ?')
      .get(Number(num), this.site) as AggregateRow | undefined;
  }

  byName(name: string): AggregateRow | undefined {
    return this.store.db.prepare('SELECT * FROM compute_aggregates WHERE name = ?').get(name) as
      AggregateRow | undefined;
  }

  create(row: Omit<AggregateRow, 'num'>): AggregateRow {
    const r = this.store.db
      .prepare(
        'INSERT INTO compute_aggregates (id, owner, name, availability_zone, metadata, hosts, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)',
      )
      .run(
        row.id,
        row.owner,
        row.name,
        row.availability_zone,
        row.metadata,
        row.hosts,
        row.created_at,
        row.updated_at,
      );
    return { ...row, num: Number(r.lastInsertRowid) };
  }

  update(row: AggregateRow): void {
    this.store.db
      .prepare(
        'UPDATE compute_aggregates SET name = ?, availability_zone = ?, metadata = ?, hosts = ?, updated_at = ? WHERE num = ?',
      )
      .run(row.name, row.availability_zone, row.metadata, row.hosts, row.updated_at, row.num);
  }

  remove(num: number): void {
    this.store.db.prepare('DELETE FROM compute_aggregates WHERE num = ?').run(num);
  }
}
