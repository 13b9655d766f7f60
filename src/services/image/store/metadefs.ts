/**
 * @module The metadata definitions repository: every SQL read of metadef_namespaces and
 * metadef_items, and their writes through the change log (so that they replicate).
 */
import type { Store } from '../../../store/db.ts';
import type { ChangeLog } from '../../../federation/changelog.ts';
import type { MetadefItemRow, NamespaceRow } from './schema.ts';
import { metadefItemKind, namespaceKind } from './schema.ts';

export class MetadefRepository {
  constructor(
    private readonly store: Store,
    private readonly changelog: ChangeLog,
  ) {}

  private get db() {
    return this.store.db;
  }

  /** The namespace called `name` (the first created, if two sites made one each before replicating). */
  byName(name: string): NamespaceRow | undefined {
    return this.db
      .prepare('SELECT * FROM metadef_namespaces WHERE namespace = ? ORDER BY created_at, id')
      .get(name) as NamespaceRow | undefined;
  }

  /** Every namespace, by name. */
  namespaces(): NamespaceRow[] {
    return this.db.prepare('SELECT * FROM metadef_namespaces ORDER BY namespace').all() as NamespaceRow[];
  }

  /** A namespace's items (of one type if given), oldest first. */
  items(nsId: string, type?: MetadefItemRow['type']): MetadefItemRow[] {
    return this.db
      .prepare(
        `SELECT * FROM metadef_items WHERE namespace_id = ?${type ? ' AND type = ?' : ''} ORDER BY created_at, name`,
      )
      .all(...(type ? [nsId, type] : [nsId])) as MetadefItemRow[];
  }

  item(nsId: string, type: MetadefItemRow['type'], name: string): MetadefItemRow | undefined {
    return this.db
      .prepare('SELECT * FROM metadef_items WHERE namespace_id = ? AND type = ? AND name = ?')
      .get(nsId, type, name) as MetadefItemRow | undefined;
  }

  /** One transaction: every write in `fn` commits together or not at all. */
  tx<T>(fn: () => T): T {
    return this.store.tx(fn);
  }

  putNamespace(ns: NamespaceRow): void {
    this.store.tx(() => this.changelog.put(namespaceKind, { ...ns }));
  }

  /** Deletes a namespace with its items. */
  removeNamespace(ns: NamespaceRow): void {
    this.store.tx(() => {
      for (const r of this.items(ns.id)) this.changelog.remove(metadefItemKind, r.id);
      this.changelog.remove(namespaceKind, ns.id);
    });
  }

  putItem(row: MetadefItemRow): void {
    this.store.tx(() => this.changelog.put(metadefItemKind, { ...row }));
  }

  removeItem(id: string): void {
    this.store.tx(() => this.changelog.remove(metadefItemKind, id));
  }
}
