/**
 * @module Names that must be unique across the cloud, created at two sites at the same moment (the
 * sites partitioned by the in-process fabric's WAN model during the creates), then healed: every site
 * ends with the same rows, and the outcome is the designed one (src/federation/unique.ts): for global
 * names one winner everywhere and the loser renamed visibly by its own site; for names with a home
 * (a user's keypairs, a project's quota rows, names inside a domain) the home alone creates, and the
 * other side is told 503 at once during the partition.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { eventually, startLocalCloud } from './support/cloud.ts';
import type { LocalCloud } from './support/cloud.ts';

type Row = Record<string, unknown> & { id: string; owner: string };

describe('unique names created at two sites at once', () => {
  let cloud: LocalCloud;
  const tokens: string[] = [];
  let project = '';
  before(async () => {
    cloud = await startLocalCloud({ sites: 2 });
    tokens.push(await cloud.adminToken(0), await cloud.adminToken(1));
    project = (
      cloud.fed.sites[0]!.ctx.store.db.prepare("SELECT id FROM projects WHERE name = 'admin'").get() as {
        id: string;
      }
    ).id;
  });
  after(async () => cloud?.close());

  const call = async (site: number, method: string, path: string, body?: unknown) => {
    const res = await fetch(`${cloud.url(site)}${path}`, {
      method,
      headers: { 'x-auth-token': tokens[site]!, ...(body ? { 'content-type': 'application/json' } : {}) },
      ...(body ? { body: JSON.stringify(body) } : {}),
    });
    const text = await res.text();
    return { status: res.status, body: text ? JSON.parse(text) : undefined, text };
  };
  const rows = (site: number, table: string, where = '1', ...args: unknown[]) =>
    cloud.fed.sites[site]!.ctx.store.db.prepare(`SELECT * FROM ${table} WHERE ${where} ORDER BY id`).all(
      ...args,
    ) as Row[];
  const rank = (r: Row) => [Number(r.created_at ?? 0), r.id, r.owner] as const;
  const winnerOf = (rs: Row[]) =>
    [...rs].sort((a, b) => {
      const x = rank(a);
      const y = rank(b);
      for (let i = 0; i < 3; i++) if (x[i] !== y[i]) return x[i]! < y[i]! ? -1 : 1;
      return 0;
    })[0]!;

  it('every site converges to one winner per name, the loser renamed by its own site; home kinds refuse at once', async () => {
    const net = cloud.fed.network;
    net.partition(['site-a'], ['site-b']);
    await eventually(
      () =>
        !cloud.fed.sites[0]!.ctx.replicator.isUp('site-b') &&
        !cloud.fed.sites[1]!.ctx.replicator.isUp('site-a'),
      10_000,
      'each side to see the other down',
    );

    // Global names: both sides create, each checking only what it knows.
    const made: Record<string, string[]> = { domain: [], role: [], flavor: [] };
    for (const site of [0, 1]) {
      const d = await call(site, 'POST', '/identity/v3/domains', { domain: { name: 'twin' } });
      assert.equal(d.status, 201, d.text);
      made.domain!.push(d.body.domain.id);
      const r = await call(site, 'POST', '/identity/v3/roles', { role: { name: 'twin-role' } });
      assert.equal(r.status, 201, r.text);
      made.role!.push(r.body.role.id);
      const f = await call(site, 'POST', '/compute/v2.1/flavors', {
        flavor: { name: 'twin.flavor', ram: 64, vcpus: 1, disk: 0 },
      });
      assert.equal(f.status, 200, f.text);
      made.flavor!.push(f.body.flavor.id);
      // A caller-chosen id at both sides (flavor ids, region ids).
      const fi = await call(site, 'POST', '/compute/v2.1/flavors', {
        flavor: { id: 'twin-id', name: `twin-id-${site}`, ram: 64, vcpus: 1, disk: 0 },
      });
      assert.equal(fi.status, 200, fi.text);
      const rg = await call(site, 'POST', '/identity/v3/regions', {
        region: { id: 'twin-region', description: `made at ${site}` },
      });
      assert.equal(rg.status, 201, rg.text);
    }

    // Names with a home (the admin user and project are homed at site-a): site-a creates, site-b is
    // told at once that the home is unreachable.
    const homeWrites = [
      ['POST', '/compute/v2.1/os-keypairs', { keypair: { name: 'twin-kp' } }],
      ['PUT', `/compute/v2.1/os-quota-sets/${project}`, { quota_set: { instances: 7 } }],
      ['PUT', `/network/v2.0/quotas/${project}`, { quota: { port: 77 } }],
      ['PUT', `/volume/v3/${project}/os-quota-sets/${project}`, { quota_set: { volumes: 7 } }],
      ['POST', '/identity/v3/projects', { project: { name: 'twin-project', domain_id: 'default' } }],
    ] as const;
    for (const [method, path, body] of homeWrites) {
      const b = await call(1, method, path, body);
      assert.equal(b.status, 503, `${method} ${path} at site-b: ${b.text}`);
      assert.match(b.text, /site-a/);
      const a = await call(0, method, path, body);
      assert.ok(a.status === 200 || a.status === 201, `${method} ${path} at site-a: ${a.text}`);
    }

    net.heal();
    await cloud.converged(20_000);

    // Same rows everywhere, none rejected for good.
    for (const table of [
      'domains',
      'roles',
      'flavors',
      'regions',
      'keypairs',
      'compute_quotas',
      'net_quotas',
      'vol_quotas',
      'projects',
    ])
      assert.deepEqual(rows(1, table), rows(0, table), `${table} differ between the sites`);

    // One winner per global name; the loser keeps its id and is renamed visibly.
    const named = {
      domain: ['domains', 'twin'],
      role: ['roles', 'twin-role'],
      flavor: ['flavors', 'twin.flavor'],
    };
    for (const [kind, [table, name]] of Object.entries(named) as [string, [string, string]][]) {
      const both = rows(0, table, 'id IN (?, ?)', ...made[kind]!);
      assert.equal(both.length, 2, `${kind}: both rows kept`);
      const win = winnerOf(both);
      const lose = both.find((r) => r.id !== win.id)!;
      assert.equal(win.name, name, `${kind}: the winner keeps the name`);
      assert.equal(lose.name, `${name}--conflict-${lose.id.slice(0, 8)}`, `${kind}: the loser is renamed`);
      assert.equal(lose.owner, lose.owner === 'site-a' ? 'site-a' : 'site-b');
    }
    // The loser's creator sees the rename through the API.
    const loserDomain = rows(0, 'domains', 'id IN (?, ?)', ...made.domain!).find((r) => r.name !== 'twin')!;
    const seen = await call(
      loserDomain.owner === 'site-a' ? 0 : 1,
      'GET',
      `/identity/v3/domains/${loserDomain.id}`,
    );
    assert.equal(seen.body.domain.name, loserDomain.name);
    // Login by the name finds the winner at every site.
    for (const site of [0, 1]) {
      const list = await call(site, 'GET', '/identity/v3/domains?name=twin');
      assert.equal(list.body.domains.length, 1);
    }

    // A contested id: one row, the winner's, everywhere.
    const fid = rows(0, 'flavors', "id = 'twin-id'");
    assert.equal(fid.length, 1);
    assert.equal(fid[0]!.name, fid[0]!.owner === 'site-a' ? 'twin-id-0' : 'twin-id-1');
    assert.equal(rows(0, 'regions', "id = 'twin-region'").length, 1);

    // Home kinds: one row, at the home; after the heal site-b's create is carried there.
    assert.deepEqual(
      rows(0, 'keypairs', "name = 'twin-kp'").map((r) => r.owner),
      ['site-a'],
    );
    for (const t of ['compute_quotas', 'net_quotas', 'vol_quotas'])
      assert.deepEqual(
        rows(0, t, 'id = ?', project).map((r) => r.owner),
        ['site-a'],
        t,
      );
    const again = await call(1, 'POST', '/compute/v2.1/os-keypairs', { keypair: { name: 'twin-kp' } });
    assert.equal(again.status, 409, again.text);
    const q = await call(1, 'PUT', `/compute/v2.1/os-quota-sets/${project}`, { quota_set: { instances: 8 } });
    assert.equal(q.status, 200, q.text);
    const kp = await call(1, 'POST', '/compute/v2.1/os-keypairs', { keypair: { name: 'b-kp' } });
    assert.equal(kp.status, 200, kp.text);
    await cloud.converged();
    assert.deepEqual(
      rows(1, 'keypairs', "name = 'b-kp'").map((r) => r.owner),
      ['site-a'],
    );
  });
});
