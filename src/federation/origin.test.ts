/**
 * @module Unit tests of origin rules (issue 11, class 2): a site that signs whatever it likes into its
 * own log still cannot make rows its kind's rule gives to another site: a child of another site's
 * row, another site's registry row, an admission or an eviction when it is not the membership
 * authority, or an eviction of the authority. The same rules hold for the site's own writes.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Store } from '../store/db.ts';
import { silentLogger } from '../core/ports.ts';
import type { Change, Row } from './changelog.ts';
import { ChangeLog, changelogMigrations } from './changelog.ts';
import { anySite, ownerOf } from './origin.ts';
import { SiteRegistry, admissionKind, evictionKind, registryMigrations, siteKind } from './registry.ts';

function node(site: string) {
  const store = new Store(':memory:');
  store.migrate([
    ...changelogMigrations,
    ...registryMigrations,
    {
      id: 'test/tree',
      sql: `CREATE TABLE parents (id TEXT PRIMARY KEY, owner TEXT NOT NULL);
            CREATE TABLE children (id TEXT PRIMARY KEY, owner TEXT NOT NULL, parent_id TEXT NOT NULL);`,
    },
  ]);
  const log = new ChangeLog(store, site, silentLogger, () => 1000);
  log.register({ kind: 'parent', table: 'parents', replicate: 'all', origin: anySite });
  log.register({
    kind: 'child',
    table: 'children',
    replicate: 'all',
    origin: ownerOf('the owner of its parent', 'parents', 'parent_id'),
  });
  log.register(siteKind);
  log.register(admissionKind);
  log.register(evictionKind);
  const registry = new SiteRegistry(store, log, () => 1000);
  const has = (table: string, id: string) =>
    !!store.db.prepare(`SELECT 1 FROM ${table} WHERE id = ?`).get(id);
  return { store, log, registry, has };
}

/** What a compromised site's log says: changes numbered from 1, as it signs them. */
function forged(origin: string, rows: { kind: string; row: Row }[]): Change[] {
  return rows.map((r, i) => ({
    seq: i + 1,
    kind: r.kind,
    id: r.row.id,
    op: 'put',
    row: { ...r.row, owner: origin },
    at: 1,
  }));
}

describe('origin rules', () => {
  it('a child row is accepted only from the owner of its parent', () => {
    const a = node('a');
    a.log.put('parent', { id: 'p' });
    const b = node('b');
    b.log.applyRemote('a', a.log.since(0, 10));
    // Site c makes a child of a's parent, and a child of a parent it never made.
    const res = b.log.applyRemote(
      'c',
      forged('c', [
        { kind: 'child', row: { id: 'x', parent_id: 'p' } },
        { kind: 'child', row: { id: 'y', parent_id: 'nowhere' } },
      ]),
    );
    assert.equal(res.rejected, 2);
    assert.equal(b.has('children', 'x'), false);
    assert.equal(b.has('children', 'y'), false);
    // The owner of the parent may; and b itself may not write a child of a's parent either.
    a.log.put('child', { id: 'z', parent_id: 'p' });
    assert.equal(b.log.applyRemote('a', a.log.since(0, 10)).rejected, 0);
    assert.equal(b.has('children', 'z'), true);
    assert.throws(() => b.log.put('child', { id: 'w', parent_id: 'p' }), /may be written only by a/);
  });

  it('checking a rule leaves the log able to read owners (the rule and the owner lookup share SQL text)', () => {
    const a = node('a');
    a.log.put('parent', { id: 'p' });
    a.log.put('child', { id: 'c', parent_id: 'p' });
    a.log.remove('child', 'c');
    a.log.remove('parent', 'p');
    assert.equal(a.has('parents', 'p'), false);
  });

  it('a site row is accepted only from that site', () => {
    const b = node('b');
    const row = { id: 'site-z', region: 'site-z', endpoint: 'http://x', version: '1', state: 'active' };
    const extra = { keys: '[]', joined_at: 1, updated_at: 1, identity_key: 'k' };
    const res = b.log.applyRemote('c', forged('c', [{ kind: 'site', row: { ...row, ...extra } }]));
    assert.equal(res.rejected, 1);
    assert.equal(b.has('sites', 'site-z'), false);
  });

  it('only the membership authority admits and evicts, and nobody evicts it', () => {
    // The founder admits itself, then c; every other site learns the authority from that.
    const a = node('a');
    a.log.put('admission', { id: 'a', identity_key: 'ka', admitted_at: 1 });
    a.log.put('admission', { id: 'c', identity_key: 'kc', admitted_at: 1 });
    const b = node('b');
    b.log.applyRemote('a', a.log.since(0, 10));
    assert.equal(b.registry.authority(), 'a');
    const res = b.log.applyRemote(
      'c',
      forged('c', [
        { kind: 'admission', row: { id: 'site-z', identity_key: 'kz', admitted_at: 1 } },
        { kind: 'admission', row: { id: 'c', identity_key: 'kc', admitted_at: 1 } },
        { kind: 'eviction', row: { id: 'b:c', site: 'b', reason: 'x', at: 1 } },
        { kind: 'eviction', row: { id: 'c:a', site: 'c', reason: 'squat the key', at: 1 } },
        { kind: 'eviction', row: { id: 'a:c', site: 'a', reason: 'evict the authority', at: 1 } },
      ]),
    );
    assert.equal(res.rejected, 5);
    assert.equal(b.has('site_admissions', 'site-z'), false);
    assert.equal(b.registry.isEvicted('b'), false);
    assert.equal(b.registry.isEvicted('a'), false);
    // The real eviction of c by the authority still lands (its key was not squatted).
    a.log.put('eviction', { id: 'c:a', site: 'c', reason: 'compromised', at: 2 });
    assert.equal(b.log.applyRemote('a', a.log.since(2, 10)).rejected, 0);
    assert.equal(b.registry.isEvicted('c'), true);
    // The authority cannot evict itself, nor key an eviction as another site's.
    assert.throws(
      () => a.log.put('eviction', { id: 'a:a', site: 'a', reason: 'x', at: 3 }),
      /cannot be evicted/,
    );
    assert.throws(() => a.log.put('eviction', { id: 'b:c', site: 'b', reason: 'x', at: 3 }), /keyed b:a/);
  });

  it('before any authority is known, only a self-admission is accepted, and it names the authority', () => {
    const b = node('b');
    const res = b.log.applyRemote(
      'c',
      forged('c', [{ kind: 'admission', row: { id: 'site-z', identity_key: 'kz', admitted_at: 1 } }]),
    );
    assert.equal(res.rejected, 1);
    assert.equal(b.registry.authority(), undefined);
    // A joining site pins the authority its inviter names, whatever arrives first.
    b.registry.pinAuthority('a');
    const self = b.log.applyRemote(
      'c',
      forged('c', [
        { kind: 'admission', row: { id: 'site-z', identity_key: 'kz', admitted_at: 1 } },
        { kind: 'admission', row: { id: 'c', identity_key: 'kc', admitted_at: 1 } },
      ]).map((c, i) => ({ ...c, seq: i + 2 })),
    );
    assert.equal(self.rejected, 2);
    assert.equal(b.registry.authority(), 'a');
  });

  it('a replicated kind must declare its origin rule', () => {
    const b = node('b');
    b.store.db.exec('CREATE TABLE loose (id TEXT PRIMARY KEY, owner TEXT NOT NULL)');
    assert.throws(() => b.log.register({ kind: 'loose', table: 'loose', replicate: 'all' }), /origin/);
    b.log.register({ kind: 'local', table: 'loose', replicate: 'none' });
  });
});
