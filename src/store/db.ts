/**
 * @module The only place that opens SQLite. One database per site (WAL, synchronous=NORMAL is not used:
 * FULL, because an acknowledged change must survive a crash). Migrations are ordered per module and
 * recorded, so a restarted site runs only what is new.
 */
import Database from 'better-sqlite3';

export type Db = Database.Database;

export interface Migration {
  /** Unique and stable, e.g. 'identity/001-core'. Never renamed or edited once released. */
  id: string;
  sql: string;
}

export class Store {
  readonly db: Db;
  private afterCommit: (() => void)[] = [];
  private depth = 0;
  private txSerial = 0;

  constructor(file: string) {
    this.db = new Database(file);
    if (file !== ':memory:') this.db.pragma('journal_mode = WAL');
    this.db.pragma('synchronous = FULL');
    this.db.pragma('foreign_keys = OFF');
    this.db.pragma('busy_timeout = 5000');
    this.db.exec(
      `CREATE TABLE IF NOT EXISTS schema_migrations (id TEXT PRIMARY KEY, applied_at TEXT NOT NULL)`,
    );
  }

  migrate(migrations: readonly Migration[]): string[] {
    const done = new Set(
      this.db
        .prepare('SELECT id FROM schema_migrations')
        .all()
        .map((r) => (r as { id: string }).id),
    );
    const ran: string[] = [];
    for (const m of migrations) {
      if (done.has(m.id)) continue;
      this.db.transaction(() => {
        this.db.exec(m.sql);
        this.db
          .prepare('INSERT INTO schema_migrations (id, applied_at) VALUES (?, ?)')
          .run(m.id, new Date().toISOString());
      })();
      ran.push(m.id);
    }
    return ran;
  }

  /**
   * Runs fn in one transaction. A nested call is a savepoint: if it throws, only its own writes are
   * undone and the outer transaction goes on. Callbacks queued with onCommit run after the outermost
   * commit, never after a rollback of it.
   */
  tx<T>(fn: () => T): T {
    if (this.depth > 0) {
      this.depth++;
      try {
        return this.db.transaction(fn)();
      } finally {
        this.depth--;
      }
    }
    this.depth = 1;
    this.txSerial++;
    let result: T;
    try {
      result = this.db.transaction(fn)();
    } catch (e) {
      this.afterCommit = [];
      throw e;
    } finally {
      this.depth = 0;
    }
    const hooks = this.afterCommit;
    this.afterCommit = [];
    for (const h of hooks) h();
    return result;
  }

  /** Counts outermost transactions; lets a caller queue one onCommit callback per transaction. */
  get serial(): number {
    return this.txSerial;
  }

  onCommit(fn: () => void): void {
    if (this.depth === 0) fn();
    else this.afterCommit.push(fn);
  }

  get inTransaction(): boolean {
    return this.depth > 0;
  }

  close(): void {
    if (this.db.open) this.db.close();
  }
}
