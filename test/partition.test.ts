/**
 * @module Partitions with whole sites (every service, in-process, in-memory fabric): a site cut off
 * keeps serving what it owns (auth, boot, delete; lists show the others' last state, marked stale);
 * writes elsewhere go on; after the heal every site converges to the same state with no acknowledged
 * write lost. Randomized over several partition schedules.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { startLocalCloud, eventually, passwordToken } from './support/cloud.ts';
import type { LocalCloud } from './support/cloud.ts';

type Json = Record<string, any>;

describe('partitions with whole sites', () => {
  let cloud: LocalCloud;
  let imageId: string;
  const tokens: string[] = [];

  const call = async (i: number, method: string, path: string, body?: unknown, token = tokens[i]!) => {
    const r = await fetch(`${cloud.url(i)}${path}`, {
      method,
      headers: { 'x-auth-token': token, ...(body ? { 'content-type': 'application/json' } : {}) },
      ...(body ? { body: JSON.stringify(body) } : {}),
    });
    const text = await r.text();
    return { status: r.status, body: (text ? JSON.parse(text) : {}) as Json };
  };
  const token = (i: number) => passwordToken(cloud.url(i));
  const boot = async (i: number, az: string, name: string) => {
    const r = await call(i, 'POST', '/compute/v2.1/servers', {
      server: { name, flavorRef: 'p.tiny', imageRef: imageId, availability_zone: az, networks: 'none' },
    });
    return r;
  };
  const serverIds = async (i: number) =>
    ((await call(i, 'GET', '/compute/v2.1/servers/detail?all_tenants=1')).body.servers as Json[])
      .map((s) => s.id as string)
      .sort();

  before(async () => {
    cloud = await startLocalCloud({ sites: 3 });
    for (let i = 0; i < 3; i++) tokens.push(await token(i));
    const f = await call(0, 'POST', '/compute/v2.1/flavors', {
      flavor: { name: 'p.tiny', id: 'p.tiny', ram: 64, vcpus: 1, disk: 1 },
    });
    assert.equal(f.status, 200, JSON.stringify(f.body));
    const img = await call(0, 'POST', '/image/v2/images', {
      name: 'p-img',
      disk_format: 'raw',
      container_format: 'bare',
      visibility: 'public',
    });
    imageId = img.body.id as string;
    const up = await fetch(`${cloud.url(0)}/image/v2/images/${imageId}/file`, {
      method: 'PUT',
      headers: { 'x-auth-token': tokens[0]!, 'content-type': 'application/octet-stream' },
      body: Buffer.alloc(1024, 1),
    });
    assert.equal(up.status, 204);
    await cloud.converged();
  });
  after(async () => cloud?.close());

  it('an isolated site keeps authenticating, booting and deleting what it owns; the rest converge after the heal', async () => {
    const before1 = await boot(2, 'site-c', 'c-before');
    assert.equal(before1.status, 202);
    await cloud.converged();
    cloud.fed.network.isolate('site-c');
    await eventually(
      () => !cloud.fed.sites[2]!.ctx.replicator.isUp('site-a'),
      5000,
      'site-c to see site-a down',
    );

    // Auth at the isolated site, with a password it only has as a replica.
    tokens[2] = await token(2);
    // Boot and delete on what it owns.
    const during = await boot(2, 'site-c', 'c-during');
    assert.equal(during.status, 202, JSON.stringify(during.body));
    const del = await call(2, 'DELETE', `/compute/v2.1/servers/${before1.body.server.id}`);
    assert.equal(del.status, 204);
    // A write for another site's server fails fast with a 503 naming it.
    const elsewhere = await boot(0, 'site-a', 'a-during');
    assert.equal(elsewhere.status, 202);
    const t0 = Date.now();
    const fwd = await boot(2, 'site-a', 'c-to-a');
    assert.equal(fwd.status, 503);
    assert.match(JSON.stringify(fwd.body), /site-a/);
    assert.ok(Date.now() - t0 < 2000, 'fails fast');
    // Lists at the isolated site show what it knew of the others, marked stale.
    const listC = (await call(2, 'GET', '/compute/v2.1/servers/detail?all_tenants=1')).body.servers as Json[];
    const mine = listC.find((s) => s.id === during.body.server.id);
    assert.ok(mine && !mine['atoll:stale']);
    const b = await boot(1, 'site-b', 'b-before-heal');
    assert.equal(b.status, 202);

    cloud.fed.network.heal();
    await cloud.converged(20_000);
    const views = await Promise.all([0, 1, 2].map(serverIds));
    assert.deepEqual(views[1], views[0]);
    assert.deepEqual(views[2], views[0]);
    for (const id of [during.body.server.id, elsewhere.body.server.id, b.body.server.id])
      assert.ok(views[0]!.includes(id), `acknowledged ${id} lost`);
    assert.ok(!views[0]!.includes(before1.body.server.id), 'the delete made while cut off holds');
  });

  it('lists at an isolated site mark the unreachable sites\u2019 servers stale', async () => {
    const onA = await boot(0, 'site-a', 'stale-check');
    assert.equal(onA.status, 202);
    await cloud.converged();
    cloud.fed.network.isolate('site-b');
    try {
      await eventually(
        () => !cloud.fed.sites[1]!.ctx.replicator.isUp('site-a'),
        5000,
        'site-b to see site-a down',
      );
      const r = await call(1, 'GET', `/compute/v2.1/servers/${onA.body.server.id}`);
      assert.equal(r.status, 200);
      assert.equal(r.body.server['atoll:stale'], true);
    } finally {
      cloud.fed.network.heal();
    }
    await cloud.converged(20_000);
  });

  it('randomized partition schedules converge with no acknowledged boot or delete lost', async () => {
    let seed = 11;
    const rand = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
    const names = ['site-a', 'site-b', 'site-c'];
    const alive = new Set<string>();
    const deleted = new Set<string>();
    for (let step = 0; step < 30; step++) {
      const r = rand();
      if (r < 0.15) cloud.fed.network.isolate(names[Math.floor(rand() * 3)]!);
      else if (r < 0.25) cloud.fed.network.heal();
      else {
        const i = Math.floor(rand() * 3);
        const mineIds = [...alive].filter((id) =>
          cloud.fed.sites[i]!.ctx.store.db.prepare('SELECT 1 FROM servers WHERE id = ? AND owner = ?').get(
            id,
            names[i],
          ),
        );
        if (rand() < 0.3 && mineIds.length > 0) {
          const id = mineIds[Math.floor(rand() * mineIds.length)]!;
          const d = await call(i, 'DELETE', `/compute/v2.1/servers/${id}`);
          if (d.status === 204) {
            alive.delete(id);
            deleted.add(id);
          }
        } else {
          const res = await boot(i, names[i]!, `r-${step}`);
          if (res.status === 202) alive.add(res.body.server.id as string);
        }
      }
      await new Promise((res) => setTimeout(res, 20 + Math.floor(rand() * 150)));
    }
    cloud.fed.network.heal();
    await cloud.converged(30_000);
    await eventually(
      async () => {
        const views = await Promise.all([0, 1, 2].map(serverIds));
        return views.every((v) => JSON.stringify(v) === JSON.stringify(views[0]));
      },
      20_000,
      'identical server lists',
    );
    const ids = new Set(await serverIds(0));
    for (const id of alive) assert.ok(ids.has(id), `acknowledged boot ${id} lost`);
    for (const id of deleted) assert.ok(!ids.has(id), `acknowledged delete ${id} undone`);
  });
});
