/**
 * @module Unit tests of ownership and the change log: writes are logged in the same transaction,
 * a rolled-back write leaves no change, replicas apply in order and at most once, and a site cannot
 * write (or replicate) what another site owns.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Store } from '../store/db.ts';
import { silentLogger } from '../core/ports.ts';
import { ChangeLog, changelogMigrations, defineKind } from './changelog.ts';
import { anySite } from './origin.ts';

function node(site: string) {
  const store = new Store(':memory:');
  store.migrate([
    ...changelogMigrations,
    {
      id: 'test/items',
      sql: 'CREATE TABLE items (id TEXT PRIMARY KEY, owner TEXT NOT NULL, v INTEGER NOT NULL)',
    },
  ]);
  const log = new ChangeLog(store, site, silentLogger, () => 1000);
  log.register({ kind: 'item', table: 'items', replicate: 'all', origin: anySite });
  const rows = () => store.db.prepare('SELECT id, owner, v FROM items ORDER BY id').all();
  return { store, log, rows };
}

describe('change log', () => {
  it('logs a write in the same transaction, and nothing when the transaction rolls back', () => {
    const a = node('a');
    a.log.put('item', { id: 'x', v: 1 });
    assert.equal(a.log.head(), 1);
    assert.throws(() =>
      a.store.tx(() => {
        a.log.put('item', { id: 'y', v: 2 });
        throw new Error('boom');
      }),
    );
    assert.equal(a.log.head(), 1);
    assert.deepEqual(a.rows(), [{ id: 'x', owner: 'a', v: 1 }]);
  });

  it('notifies listeners only after commit, once per transaction, in order', () => {
    const a = node('a');
    const seen: number[][] = [];
    a.log.onAppend((cs) => seen.push(cs.map((c) => c.seq)));
    a.store.tx(() => {
      a.log.put('item', { id: 'x', v: 1 });
      a.log.put('item', { id: 'y', v: 1 });
      assert.equal(seen.length, 0);
    });
    a.log.remove('item', 'x');
    assert.deepEqual(seen, [[1, 2], [3]]);
  });

  it('applies remote changes in order, once, and asks for a pull on a gap', () => {
    const a = node('a');
    const b = node('b');
    a.log.put('item', { id: 'x', v: 1 });
    a.log.put('item', { id: 'x', v: 2 });
    a.log.put('item', { id: 'y', v: 3 });
    const all = a.log.since(0, 100);
    const gap = b.log.applyRemote('a', all.slice(1));
    assert.equal(gap.gapFrom, 0);
    assert.equal(gap.applied, 0);
    const r1 = b.log.applyRemote('a', all);
    assert.equal(r1.applied, 3);
    const r2 = b.log.applyRemote('a', all);
    assert.equal(r2.applied, 0);
    assert.equal(r2.skipped, 3);
    assert.deepEqual(b.rows(), a.rows());
    a.log.remove('item', 'x');
    b.log.applyRemote('a', a.log.since(b.log.cursor('a'), 100));
    assert.deepEqual(b.rows(), [{ id: 'y', owner: 'a', v: 3 }]);
  });

  it('refuses local writes to rows another site owns', () => {
    const a = node('a');
    const b = node('b');
    a.log.put('item', { id: 'x', v: 1 });
    b.log.applyRemote('a', a.log.since(0, 10));
    assert.throws(() => b.log.put('item', { id: 'x', v: 9 }), /owned by site a/);
    assert.throws(() => b.log.remove('item', 'x'), /owned by site a/);
    assert.equal(b.log.head(), 0);
  });

  it('rejects a replicated change for a row the origin does not own, and moves on', () => {
    const a = node('a');
    const b = node('b');
    const c = node('c');
    a.log.put('item', { id: 'x', v: 1 });
    c.log.applyRemote('a', a.log.since(0, 10));
    // b claims a's row: rejected at c, but c's applier is not wedged.
    b.log.put('item', { id: 'x', v: 666 });
    b.log.put('item', { id: 'z', v: 2 });
    const r = c.log.applyRemote('b', b.log.since(0, 10));
    assert.equal(r.rejected, 1);
    assert.equal(r.applied, 1);
    assert.deepEqual(c.rows(), [
      { id: 'x', owner: 'a', v: 1 },
      { id: 'z', owner: 'b', v: 2 },
    ]);
    // A row that names another owner than its origin is rejected too.
    const forged = {
      seq: 3,
      kind: 'item',
      id: 'w',
      op: 'put' as const,
      row: { id: 'w', owner: 'a', v: 1 },
      at: 1,
    };
    assert.equal(c.log.applyRemote('b', [forged]).rejected, 1);
  });

  it('parks changes of unknown kinds instead of losing them', () => {
    const b = node('b');
    const r = b.log.applyRemote('a', [
      { seq: 1, kind: 'future_kind', id: 'q', op: 'put', row: { id: 'q', owner: 'a' }, at: 1 },
    ]);
    assert.equal(r.cursor, 1);
    const parked = b.store.db.prepare('SELECT count(*) AS n FROM parked_changes').get() as { n: number };
    assert.equal(parked.n, 1);
  });
});

describe('change log listeners', () => {
  it('see batches in log order even when a listener writes', () => {
    const a = node('a');
    const seen: number[] = [];
    a.log.onAppend((cs) => {
      if (cs.some((c) => c.id === 'x')) a.log.put('item', { id: 'y', v: 2 });
    });
    a.log.onAppend((cs) => seen.push(...cs.map((c) => c.seq)));
    a.log.put('item', { id: 'x', v: 1 });
    assert.deepEqual(seen, [1, 2]);
  });

  it('keep hearing of commits after a transaction that appended and then rolled back', () => {
    const a = node('a');
    const seen: number[] = [];
    a.log.onAppend((cs) => seen.push(...cs.map((c) => c.seq)));
    assert.throws(() =>
      a.store.tx(() => {
        a.log.put('item', { id: 'x', v: 1 });
        throw new Error('invalid input found after the first write');
      }),
    );
    a.log.put('item', { id: 'y', v: 2 });
    a.log.put('item', { id: 'z', v: 3 });
    assert.deepEqual(seen, [1, 2], 'both later commits are delivered, the rolled-back one never');
    assert.deepEqual(
      a.log.since(0, 10).map((c) => c.id),
      ['y', 'z'],
    );
  });

  it('treat a nested transaction as a savepoint: its failure undoes only its own writes', () => {
    const a = node('a');
    const seen: string[] = [];
    a.log.onAppend((cs) => seen.push(...cs.map((c) => c.id)));
    a.store.tx(() => {
      a.log.put('item', { id: 'x', v: 1 });
      try {
        a.store.tx(() => {
          a.log.put('item', { id: 'y', v: 2 });
          throw new Error('inner fails');
        });
      } catch {
        // the outer transaction goes on
      }
      a.log.put('item', { id: 'z', v: 3 });
    });
    assert.deepEqual(a.rows(), [
      { id: 'x', owner: 'a', v: 1 },
      { id: 'z', owner: 'a', v: 3 },
    ]);
    assert.deepEqual(seen, ['x', 'z']);
    assert.deepEqual(
      a.log.since(0, 10).map((c) => c.id),
      ['x', 'z'],
    );
  });

  it('writes through a typed kind handle exactly as through its name', () => {
    const items = defineKind<{ id: string; owner: string; v: number }>({
      kind: 'item',
      table: 'items',
      replicate: 'all',
      origin: anySite,
    });
    const a = node('a');
    const b = node('b');
    const put = a.log.put(items, { id: 'x', v: 1 });
    assert.deepEqual(put, { id: 'x', v: 1, owner: 'a' });
    a.log.put('item', { id: 'y', v: 2 });
    a.log.remove(items, 'y');
    // @ts-expect-error a row of another shape does not type-check against the handle
    assert.throws(() => a.log.put(items, { id: 'z' }));
    assert.deepEqual(
      a.log.since(0, 10).map((c) => [c.kind, c.id, c.op]),
      [
        ['item', 'x', 'put'],
        ['item', 'y', 'put'],
        ['item', 'y', 'del'],
      ],
    );
    b.log.applyRemote('a', a.log.since(0, 10));
    assert.deepEqual(b.rows(), [{ id: 'x', owner: 'a', v: 1 }]);
  });
});
