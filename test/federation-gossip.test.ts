/**
 * @module Liveness by gossip (`liveness: 'gossip'`, docs/federation.md "Liveness by gossip"): no
 * periodic heartbeats; each site probes one peer a period (and the peers it needs every period), so a
 * down owner is noticed within its bound, a forwarded write to it is refused at once (503), lost pushes
 * are caught up from the heads carried by probes, and a heal converges.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { startLocalCloud, eventually } from './support/cloud.ts';
import type { LocalCloud } from './support/cloud.ts';
import { encodeJson } from '../src/fabric/fabric.ts';

const PERIOD = 200;

describe('liveness by gossip', () => {
  let cloud: LocalCloud;
  let token: string;
  const project = (i: number, name: string, domain = 'default') =>
    fetch(`${cloud.url(i)}/identity/v3/projects`, {
      method: 'POST',
      headers: { 'x-auth-token': token, 'content-type': 'application/json' },
      body: JSON.stringify({ project: { name, domain_id: domain } }),
    });

  before(async () => {
    cloud = await startLocalCloud({
      sites: 4,
      site: { liveness: 'gossip', heartbeatMs: PERIOD, downAfterMs: 5 * PERIOD },
    });
    token = await cloud.adminToken(0);
  });
  after(async () => cloud?.close());

  it('sends no periodic heartbeats: idle messages per site stay a few per period', async () => {
    await new Promise((r) => setTimeout(r, 3 * PERIOD));
    const stats = cloud.fed.network.stats;
    const hb0 = stats.bySubject.heartbeat?.messages ?? 0;
    const m0 = stats.messages;
    await new Promise((r) => setTimeout(r, 10 * PERIOD));
    assert.equal((stats.bySubject.heartbeat?.messages ?? 0) - hb0, 0, 'no heartbeat while nothing changes');
    // One probe out and its reply, one probe in and its reply: about 4 messages a period per site.
    const perSitePerPeriod = (stats.messages - m0) / 4 / 10;
    assert.ok(perSitePerPeriod <= 6, `idle messages per site per period: ${perSitePerPeriod}`);
    for (const s of cloud.fed.sites)
      for (const o of cloud.fed.sites)
        assert.ok(s.ctx.replicator.isUp(o.ctx.name), `${s.ctx.name} sees ${o.ctx.name}`);
  });

  it('a forged digest naming a live site down is checked, not believed', async () => {
    const intruder = cloud.fed.network.connect('intruder');
    const forged = { v: 1, from: 'site-c', digest: { head: 0, heads: [], down: ['site-c', 'site-a'] } };
    for (let i = 0; i < 5; i++) await intruder.request('atoll.site-b.rpc.ping', encodeJson(forged), 1000);
    await new Promise((r) => setTimeout(r, 3 * PERIOD));
    assert.ok(cloud.fed.sites[1]!.ctx.replicator.isUp('site-c'), 'site-b still sees site-c up');
    assert.ok(cloud.fed.sites[1]!.ctx.replicator.isUp('site-a'), 'site-b still sees site-a up');
    await intruder.close();
  });

  it('a down owner is noticed within its bound, writes it owns fail fast, and a heal converges', async () => {
    // A domain homed on site-d: creating a project in it from site-a is forwarded to site-d.
    const d = await fetch(`${cloud.url(3)}/identity/v3/domains`, {
      method: 'POST',
      headers: { 'x-auth-token': await cloud.adminToken(3), 'content-type': 'application/json' },
      body: JSON.stringify({ domain: { name: 'd-home' } }),
    });
    assert.equal(d.status, 201, await d.clone().text());
    const domainId = ((await d.json()) as { domain: { id: string } }).domain.id;
    await cloud.converged();
    const ok = await project(0, 'fwd-before', domainId);
    assert.equal(ok.status, 201, await ok.text());

    const t0 = Date.now();
    cloud.fed.network.isolate('site-d');
    // site-a needs site-d (it forwarded to it): probed every period, so down after at most
    // P + downAfterMs + T (docs/federation.md), 6.5 periods here; the wait allows for a busy machine.
    await eventually(
      () => !cloud.fed.sites[0]!.ctx.replicator.isUp('site-d'),
      10 * PERIOD,
      'site-a to see site-d down',
    );
    const noticedByNeeder = Date.now() - t0;
    // Every other site: some site probes it within a few periods, or hears the news and probes it
    // itself; down once its own probes have failed for downAfterMs.
    await eventually(
      () => cloud.fed.sites.slice(0, 3).every((s) => !s.ctx.replicator.isUp('site-d')),
      20 * PERIOD,
      'every site to see site-d down',
    );
    const noticedByAll = Date.now() - t0;
    const f0 = Date.now();
    const refused = await project(0, 'fwd-during', domainId);
    assert.equal(refused.status, 503, await refused.text());
    assert.ok(Date.now() - f0 < 1000, 'the 503 is fast');
    assert.ok(noticedByNeeder <= 10 * PERIOD, `noticed by the site that needs it in ${noticedByNeeder} ms`);
    assert.ok(noticedByAll <= 20 * PERIOD, `noticed by all in ${noticedByAll} ms`);
    console.log(
      `down owner noticed: by the site that needs it ${noticedByNeeder} ms, by all ${noticedByAll} ms`,
    );
    // site-d sees the others down too.
    await eventually(
      () => !cloud.fed.sites[3]!.ctx.replicator.isUp('site-a'),
      15 * PERIOD,
      'site-d to see site-a down',
    );

    // Writes at site-a while site-d is cut off: their pushes to site-d are lost.
    const during = await project(0, 'local-during');
    assert.equal(during.status, 201);

    cloud.fed.network.heal();
    await eventually(
      () => cloud.fed.sites.every((s) => cloud.fed.sites.every((o) => s.ctx.replicator.isUp(o.ctx.name))),
      20 * PERIOD,
      'every site to see every other up after the heal',
    );
    // Catch-up with no new push: the heads in the probes' replies prompt the pulls.
    await cloud.converged(20 * PERIOD);
    const after = await project(0, 'fwd-after', domainId);
    assert.equal(after.status, 201, await after.text());
  });
});
