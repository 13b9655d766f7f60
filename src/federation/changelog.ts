/**
 * @module Ownership and the change log. Every replicated table has a text `id` primary key and an
 * `owner` column (the site that is its only writer). A site writes its own rows through put()/remove(),
 * which append to its ordered change log in the same SQLite transaction, so no acknowledged change can
 * be lost. Replicas apply other sites' changes with applyRemote(): in order per origin, idempotent, and
 * only for rows the origin owns.
 */
import type { Statement } from 'better-sqlite3';
import type { Store } from '../store/db.ts';
import type { Logger } from '../core/ports.ts';
import { Conflict } from '../core/errors.ts';
import type { UniqueSpec } from './unique.ts';
import type { OriginRule } from './origin.ts';
import { originRefusal } from './origin.ts';
import { conflictName, outranks, sameKeySql } from './unique.ts';
import { assertRowFits } from './limits.ts';

/** Which sites get a kind's changes. 'none' keeps the kind local (claims, host records). */
export type ReplicationPolicy = 'all' | 'none';

export interface KindSpec {
  kind: string;
  table: string;
  replicate: ReplicationPolicy;
  /** How names of this kind stay unique across the cloud (src/federation/unique.ts). */
  unique?: UniqueSpec;
  /** Which site may write this kind's rows (src/federation/origin.ts); required when replicated. */
  origin?: OriginRule;
}

export type Row = Record<string, unknown> & { id: string };

/** What every row of a kind has: a text id (and an owner column, which put() fills in). */
export interface KeyedRow {
  id: string;
}

/**
 * A change-log kind with the type of its rows: its spec (name, table, replication, uniqueness and
 * origin rules) plus `R`, which exists only for the type checker, so `changelog.put(serverKind, row)`
 * takes and returns a ServerRow with no cast. Declared with defineKind beside the kind's table.
 */
export interface Kind<R extends KeyedRow = Row> extends KindSpec {
  /** Never set; carries R. */
  readonly _row?: (r: R) => R;
}

/** A typed handle for a kind (see Kind); the spec itself is unchanged. */
export function defineKind<R extends KeyedRow>(spec: KindSpec): Kind<R> {
  return spec;
}

/** A kind by its handle or (for code not yet migrated) by its name. */
export type KindRef = string | KindSpec;

export const kindName = (k: KindRef): string => (typeof k === 'string' ? k : k.kind);

/**
 * What put() takes for a row of `R`: the row, with its owner optional (this site when left out).
 * (A key-remapped mapped type, unlike Omit, keeps the named columns of a row with an index signature.)
 */
export type NewRow<R> = { [K in keyof R as K extends 'owner' ? never : K]: R[K] } & { owner?: string };

export interface Change {
  seq: number;
  kind: string;
  id: string;
  op: 'put' | 'del';
  /** The whole row after a put; null for a delete. */
  row: Row | null;
  at: number;
}

export const changelogMigrations = [
  {
    id: 'federation/001-changelog',
    sql: `
      CREATE TABLE changes (
        seq  INTEGER PRIMARY KEY,
        kind TEXT NOT NULL,
        id   TEXT NOT NULL,
        op   TEXT NOT NULL CHECK (op IN ('put','del')),
        row  TEXT,
        at   INTEGER NOT NULL
      );
      CREATE TABLE cursors (
        origin     TEXT PRIMARY KEY,
        seq        INTEGER NOT NULL,
        applied_at INTEGER NOT NULL
      );
      -- Changes of kinds this version does not know (a newer peer during a rolling upgrade):
      -- kept and replayed after an upgrade instead of being lost.
      CREATE TABLE parked_changes (
        origin TEXT NOT NULL,
        seq    INTEGER NOT NULL,
        change TEXT NOT NULL,
        PRIMARY KEY (origin, seq)
      );
    `,
  },
] as const;

export interface ApplyResult {
  applied: number;
  skipped: number;
  rejected: number;
  /** Set when the batch did not follow the cursor: pull from here. */
  gapFrom?: number;
  cursor: number;
}

export class ChangeLog {
  readonly site: string;
  private store: Store;
  private log: Logger;
  private now: () => number;
  private kinds = new Map<string, KindSpec & { columns: string[] }>();
  private listeners: ((changes: Change[]) => void)[] = [];
  /** The last seq handed to the listeners: delivery reads the log past it (level-based). */
  private delivered: number | undefined;
  /** The transaction serial a flush is queued for, so each transaction queues one. */
  private flushQueuedFor = -1;
  private flushing = false;

  constructor(store: Store, site: string, log: Logger, now: () => number) {
    this.store = store;
    this.site = site;
    this.log = log;
    this.now = now;
  }

  register(spec: KindSpec): void {
    const columns = (
      this.store.db.prepare(`PRAGMA table_info(${spec.table})`).all() as { name: string }[]
    ).map((c) => c.name);
    if (!columns.includes('id') || !columns.includes('owner'))
      throw new Error(`table ${spec.table} of kind ${spec.kind} needs id and owner columns`);
    if (spec.replicate !== 'none' && !spec.origin)
      throw new Error(`replicated kind ${spec.kind} must declare which site may originate it (origin)`);
    if (
      spec.unique?.by === 'home' &&
      (spec.origin?.by !== 'site' || spec.origin.sql !== spec.unique.home.sql)
    )
      throw new Error(
        `kind ${spec.kind} is created at its namespace's home: its origin rule must be that home`,
      );
    this.kinds.set(spec.kind, { ...spec, columns });
  }

  kindSpecs(): KindSpec[] {
    return [...this.kinds.values()].map(({ kind, table, replicate }) => ({ kind, table, replicate }));
  }

  /** Called after each commit that appended changes, in log order. */
  onAppend(fn: (changes: Change[]) => void): void {
    this.listeners.push(fn);
  }

  private spec(kind: string) {
    const s = this.kinds.get(kind);
    if (!s) throw new Error(`unknown kind ${kind}`);
    return s;
  }

  /** Prepared statements by SQL text: preparing costs more than running on the apply path. */
  private statements = new Map<string, Statement>();
  private stmt(sql: string) {
    let st = this.statements.get(sql);
    if (!st) {
      st = this.store.db.prepare(sql);
      this.statements.set(sql, st);
    }
    return st;
  }

  /** The first column of the first row `sql` selects (its own statement cache: pluck() is sticky). */
  private values = new Map<string, Statement>();
  private value(sql: string, args: unknown[]): unknown {
    let st = this.values.get(sql);
    if (!st) {
      st = this.store.db.prepare(sql).pluck();
      this.values.set(sql, st);
    }
    return st.get(...args);
  }

  private ownerOf(table: string, id: string): string | undefined {
    const r = this.stmt(`SELECT owner FROM ${table} WHERE id = ?`).get(id) as { owner: string } | undefined;
    return r?.owner;
  }

  private upsert(spec: KindSpec & { columns: string[] }, row: Row): void {
    const cols = spec.columns.filter((c) => c in row);
    const sql =
      `INSERT INTO ${spec.table} (${cols.join(',')}) VALUES (${cols.map(() => '?').join(',')}) ` +
      `ON CONFLICT(id) DO UPDATE SET ${cols.map((c) => `${c}=excluded.${c}`).join(',')}`;
    this.stmt(sql).run(...cols.map((c) => toSql(row[c])));
  }

  /** Writes (insert or replace) a row this site owns and logs it. */
  put<R extends KeyedRow>(kind: Kind<R>, row: NoInfer<NewRow<R>>): R;
  put(kind: string, row: Row): Row;
  put(ref: KindRef, input: NewRow<KeyedRow>): KeyedRow {
    const kind = kindName(ref);
    const row = input as Row;
    const spec = this.spec(kind);
    const full: Row = { ...row, owner: row.owner ?? this.site };
    // Every change must fit in one fabric message (limits.ts): 413 before anything is written.
    if (spec.replicate !== 'none') assertRowFits(kind, full);
    if (full.owner !== this.site)
      throw new Conflict(`${kind} ${row.id} must be written by its owner ${full.owner}`);
    return this.store.tx(() => {
      const cur = this.ownerOf(spec.table, full.id);
      if (cur !== undefined && cur !== this.site)
        throw new Conflict(`${kind} ${full.id} is owned by site ${cur}; only it may change it`);
      // (A `home` kind's origin rule is its home: the one check covers creates elsewhere too.)
      const refused = this.originRefusal(spec, full, this.site);
      if (refused) throw new Conflict(refused);
      this.upsert(spec, full);
      this.append(spec, { kind, id: full.id, op: 'put', row: full });
      return full;
    });
  }

  /** Deletes a row this site owns and logs it. */
  remove(ref: KindRef, id: string): void {
    const kind = kindName(ref);
    const spec = this.spec(kind);
    this.store.tx(() => {
      const cur = this.ownerOf(spec.table, id);
      if (cur === undefined) return;
      if (cur !== this.site)
        throw new Conflict(`${kind} ${id} is owned by site ${cur}; only it may delete it`);
      this.stmt(`DELETE FROM ${spec.table} WHERE id = ?`).run(id);
      this.append(spec, { kind, id, op: 'del', row: null });
    });
  }

  private append(spec: KindSpec, c: Omit<Change, 'seq' | 'at'>): void {
    if (spec.replicate === 'none') return;
    const at = this.now();
    const info = this.stmt('INSERT INTO changes (kind, id, op, row, at) VALUES (?, ?, ?, ?, ?)').run(
      c.kind,
      c.id,
      c.op,
      c.row ? JSON.stringify(c.row) : null,
      at,
    );
    this.delivered ??= Number(info.lastInsertRowid) - 1;
    if (this.flushQueuedFor !== this.store.serial || !this.store.inTransaction) {
      this.flushQueuedFor = this.store.serial;
      this.store.onCommit(() => this.flush());
    }
  }

  /**
   * Hands what the log holds past the last delivered seq to the listeners, in log order. Delivery is
   * level-based: it reads the log, never an in-memory buffer, so a rolled-back transaction cannot
   * leave anything behind that blocks later deliveries. A listener may itself write (and commit);
   * its changes are delivered by the loop below after the batch being delivered, never overtaking it.
   */
  private flush(): void {
    if (this.flushing) return;
    this.flushing = true;
    try {
      for (;;) {
        const from = this.delivered ?? this.head();
        const batch = this.since(from, 1000);
        if (batch.length === 0) break;
        this.delivered = batch[batch.length - 1]!.seq;
        for (const l of this.listeners) {
          try {
            l(batch);
          } catch (e) {
            this.log.error({ err: String(e) }, 'change listener failed');
          }
        }
      }
    } finally {
      this.flushing = false;
    }
  }

  head(): number {
    const r = this.stmt('SELECT max(seq) AS s FROM changes').get() as { s: number | null };
    return r.s ?? 0;
  }

  /** This site's own changes after `from`, at most `limit` of them. */
  since(from: number, limit: number): Change[] {
    const rows = this.stmt(
      'SELECT seq, kind, id, op, row, at FROM changes WHERE seq > ? ORDER BY seq LIMIT ?',
    ).all(from, limit) as {
      seq: number;
      kind: string;
      id: string;
      op: 'put' | 'del';
      row: string | null;
      at: number;
    }[];
    return rows.map((r) => ({ ...r, row: r.row ? (JSON.parse(r.row) as Row) : null }));
  }

  /** How far this site applied `origin`'s log. Asked on every probe and hint, so kept in memory once
   * committed (applyRemote drops the entry it changes; a read inside a transaction is not kept). */
  cursor(origin: string): number {
    const hit = this.cursorCache.get(origin);
    if (hit !== undefined) return hit;
    const r = this.stmt('SELECT seq FROM cursors WHERE origin = ?').get(origin) as
      { seq: number } | undefined;
    const seq = r?.seq ?? 0;
    if (!this.store.inTransaction) {
      if (this.cursorCache.size >= 100_000) this.cursorCache.clear();
      this.cursorCache.set(origin, seq);
    }
    return seq;
  }
  private cursorCache = new Map<string, number>();

  cursors(): { origin: string; seq: number; applied_at: number }[] {
    return this.store.db.prepare('SELECT origin, seq, applied_at FROM cursors ORDER BY origin').all() as {
      origin: string;
      seq: number;
      applied_at: number;
    }[];
  }

  /**
   * Applies another site's changes, in order, each at most once. A change that breaks the rules (a row
   * not owned by its origin, a malformed row) is rejected and logged, and the cursor moves past it, so
   * one bad message never wedges the applier.
   */
  applyRemote(origin: string, changes: readonly Change[]): ApplyResult {
    if (origin === this.site) throw new Error('a site does not apply its own log');
    return this.store.tx(() => {
      let cursor = this.cursor(origin);
      const res: ApplyResult = { applied: 0, skipped: 0, rejected: 0, cursor };
      for (const c of changes) {
        if (c.seq <= cursor) {
          res.skipped++;
          continue;
        }
        if (c.seq !== cursor + 1) {
          res.gapFrom = cursor;
          break;
        }
        const why = this.applyOne(origin, c);
        if (why) {
          res.rejected++;
          this.log.warn({ origin, seq: c.seq, kind: c.kind, id: c.id, why }, 'rejected replicated change');
        } else res.applied++;
        cursor = c.seq;
      }
      if (cursor !== res.cursor) {
        this.stmt(
          'INSERT INTO cursors (origin, seq, applied_at) VALUES (?, ?, ?) ON CONFLICT(origin) DO UPDATE SET seq = excluded.seq, applied_at = excluded.applied_at',
        ).run(origin, cursor, this.now());
        this.cursorCache.delete(origin);
        this.store.onCommit(() => this.cursorCache.delete(origin));
        res.cursor = cursor;
      }
      return res;
    });
  }

  /** Returns why the change was rejected, or undefined once applied. */
  private applyOne(origin: string, c: Change): string | undefined {
    const spec = this.kinds.get(c.kind);
    if (!spec) {
      this.stmt('INSERT OR IGNORE INTO parked_changes (origin, seq, change) VALUES (?, ?, ?)').run(
        origin,
        c.seq,
        JSON.stringify(c),
      );
      return undefined;
    }
    if (typeof c.id !== 'string' || (c.op !== 'put' && c.op !== 'del')) return 'malformed change';
    const cur = this.ownerOf(spec.table, c.id);
    // Two sites made rows with one id (a 'first' kind): the same winner everywhere (unique.ts).
    const contested = cur !== undefined && cur !== origin;
    if (contested && spec.unique?.by !== 'first') return `row is owned by ${cur}, not by ${origin}`;
    if (c.op === 'del') {
      if (!contested) this.stmt(`DELETE FROM ${spec.table} WHERE id = ?`).run(c.id);
      return undefined;
    }
    if (!c.row || typeof c.row !== 'object' || c.row.id !== c.id) return 'malformed row';
    if (c.row.owner !== origin) return `row names owner ${String(c.row.owner)}, sent by ${origin}`;
    const refused = this.originRefusal(spec, c.row, origin);
    if (refused) return refused;
    if (contested) {
      const held = this.stmt(`SELECT * FROM ${spec.table} WHERE id = ?`).get(c.id) as Row;
      if (!outranks(c.row, held)) return undefined; // its owner drops it when it learns of ours
      // This site's row lost its id: its log says so, so replicas holding it drop it too.
      if (cur === this.site) this.append(spec, { kind: c.kind, id: c.id, op: 'del', row: null });
      this.stmt(`DELETE FROM ${spec.table} WHERE id = ?`).run(c.id);
    }
    try {
      this.upsert(spec, c.row);
    } catch (e) {
      return `row does not fit table ${spec.table}: ${String(e)}`;
    }
    this.yieldName(spec, c.row);
    return undefined;
  }

  /** Why `origin` may not write `row` under its kind's origin rule (origin.ts), or undefined. */
  private originRefusal(spec: KindSpec, row: Row, origin: string): string | undefined {
    if (!spec.origin) return undefined;
    return originRefusal(spec.origin, spec.kind, row, origin, (sql, args) =>
      this.value(sql, args.map(toSql)),
    );
  }

  /**
   * The home site of the namespace a new row of a `home` kind goes in (undefined for other kinds, or
   * when the namespace is unknown here): creates run there (unique.ts).
   */
  homeOf(kind: KindRef, row: Record<string, unknown>): string | undefined {
    const u = this.spec(kindName(kind)).unique;
    if (u?.by !== 'home') return undefined;
    const home = this.value(
      u.home.sql,
      u.home.args.map((a) => toSql(row[a])),
    );
    return typeof home === 'string' ? home : undefined;
  }

  /** A replicated row of a `first` kind took a name one of this site's rows holds: the loser is renamed. */
  private yieldName(spec: KindSpec, won: Row): void {
    const u = spec.unique;
    if (u?.by !== 'first' || u.key.length === 0 || !u.rename) return;
    const column = u.rename;
    const mine = this.stmt(
      `SELECT * FROM ${spec.table} WHERE ${sameKeySql(u.key)} AND id != ? AND owner = ?`,
    ).all(...u.key.map((k) => toSql(won[k])), won.id, this.site) as Row[];
    for (const r of mine) {
      if (!outranks(won, r)) continue; // ours keeps it; the other owner renames its row
      const name = conflictName(r, column);
      this.log.warn({ kind: spec.kind, id: r.id, winner: won.id, name }, 'renamed a row that lost its name');
      try {
        this.store.tx(() => this.put(spec.kind, { ...r, [column]: name }));
      } catch (e) {
        // (A row at the size cap cannot take the suffix.) Never fail the replicated batch for it:
        // the clash stays visible here, and its owner is told in the log.
        this.log.error(
          { kind: spec.kind, id: r.id, err: String(e) },
          'could not rename a row that lost its name',
        );
      }
    }
  }
}

function toSql(v: unknown): unknown {
  if (v === undefined) return null;
  if (typeof v === 'boolean') return v ? 1 : 0;
  if (v !== null && typeof v === 'object') return JSON.stringify(v);
  return v;
}
