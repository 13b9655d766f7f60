/**
 * @module Fabric spoofing: a heartbeat's sender is the site of its subject (which only that site may
 * publish on), never the body's claim. A compromised site-b cannot make a down site-c look up or change
 * its version, and 20,000 fake names leave every peer table and /metrics bounded.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { encodeJson, subjects } from '../src/fabric/fabric.ts';
import type { ForwardedRequest } from '../src/federation/forward.ts';
import { startLocalCloud, eventually } from './support/cloud.ts';
import { signedForward } from './support/compromised-site.ts';
import type { LocalCloud } from './support/cloud.ts';

describe('heartbeats are bound to their subject', () => {
  let cloud: LocalCloud;
  before(async () => {
    cloud = await startLocalCloud({ sites: 3 });
    await cloud.converged();
  });
  after(async () => cloud?.close());

  const rep = (i: number) => cloud.fed.sites[i]!.ctx.replicator;
  const hb = (site: string, version = '6.6.6-evil') =>
    encodeJson({ v: 1, site, version, head: 0, endpoint: 'http://evil.example', sentAt: Date.now() });

  it('a heartbeat forged for a down site does not make it look up nor change its version', async () => {
    // site-c goes down (cut off); site-b is compromised and speaks for it.
    cloud.fed.network.isolate('site-c');
    const real = rep(0).peers.get('site-c')!.version;
    await eventually(() => !rep(0).isUp('site-c'), 10_000, 'site-c down at site-a');
    const evil = cloud.fed.sites[1]!.ctx.fabric; // the compromised site's own connection
    for (let i = 0; i < 5; i++) {
      evil.publish(subjects.heartbeat('site-b'), hb('site-c'));
      // Its own subject is all it may publish on; another site's is refused by the fabric.
      evil.publish(subjects.heartbeat('site-c'), hb('site-c'));
      await new Promise((r) => setTimeout(r, 50));
    }
    assert.equal(rep(0).isUp('site-c'), false);
    assert.equal(rep(0).peers.get('site-c')!.version, real);
    assert.notEqual(rep(0).peers.get('site-b')!.version, '6.6.6-evil');
    cloud.fed.network.heal();
  });

  it('20,000 fake names leave the peer table and /metrics bounded', async () => {
    const a = cloud.fed.sites[0]!;
    const metrics = async () => (await a.app.inject({ method: 'GET', url: '/metrics' })).body;
    const before = (await metrics()).length;
    const evil = cloud.fed.sites[1]!.ctx.fabric; // the compromised site's own connection
    for (let i = 0; i < 20_000; i++) {
      evil.publish(subjects.heartbeat('site-b'), hb(`fake-${i}`));
      if (i % 1000 === 0) await new Promise((r) => setImmediate(r));
    }
    await new Promise((r) => setTimeout(r, 200));
    for (let i = 0; i < 3; i++) assert.ok(rep(i).peers.size <= 3, `site ${i}: ${rep(i).peers.size} peers`);
    const text = await metrics();
    assert.ok(!text.includes('fake-'), 'fake names in /metrics');
    assert.ok(text.length < before + 2000, `/metrics grew from ${before} to ${text.length}`);
  });

  it('a forwarded request claiming another site is refused before anything runs', async () => {
    const b = cloud.fed.sites[1]!.ctx;
    const token = await cloud.adminToken(1);
    const send = async (r: Partial<ForwardedRequest>, opts: { sign?: boolean } = {}) =>
      (
        await signedForward(
          b.fabric,
          b.store.db,
          'site-a',
          {
            method: 'POST',
            url: '/identity/v3/projects',
            headers: { 'x-auth-token': token },
            json: { project: { name: `spoof-${randomUUID()}` } },
            ...r,
          },
          opts,
        )
      ).status;
    // Claims site-c, signed with site-b's real identity key: refused. Unsigned: refused.
    assert.equal(await send({ from: 'site-c' }), 403);
    assert.equal(await send({}, { sign: false }), 403);
    // Stale, and replayed: refused. Its own name, fresh and signed: runs (control).
    assert.equal(await send({ at: Date.now() - 120_000 }), 403);
    const once = {
      id: randomUUID(),
      at: Date.now(),
      body: Buffer.from('{"project":{"name":"once"}}').toString('base64'),
    };
    assert.equal(await send(once), 201);
    assert.equal(await send(once), 403);
  });
});
