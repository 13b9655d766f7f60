/**
 * @module Catch-up is paced (docs/federation.md, "Delivery and ordering guarantees"): a site that comes
 * back behind many origins pulls at most 8 of them at a time, the others wait their turn, and it still
 * converges. In-process fabric, virtual clock.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { VirtualClock } from '../src/core/ports.ts';
import { MemoryNetwork } from '../src/fabric/memory/network.ts';
import { miniSite, runFor } from './support/mini-site.ts';

describe('paced catch-up', () => {
  it('a site behind 23 origins pulls at most 8 at a time and catches up with all of them', async () => {
    const clock = new VirtualClock();
    const net = new MemoryNetwork(clock, { defaultLink: { latencyMs: 20 } });
    const names = Array.from({ length: 24 }, (_, i) => `p${String(i).padStart(2, '0')}`);
    const sites = [];
    for (const n of names) sites.push(await miniSite(net, n, clock));
    await runFor(clock, 1500);
    const late = sites[0]!;
    // Count the pulls `late` has in flight (requests on another site's rpc.changes).
    const fabric = late.site.ctx.fabric;
    const request = fabric.request.bind(fabric);
    let inFlight = 0;
    let most = 0;
    fabric.request = async (subject, data, timeoutMs) => {
      const pull = subject.endsWith('.rpc.changes');
      if (pull) most = Math.max(most, ++inFlight);
      try {
        return await request(subject, data, timeoutMs);
      } finally {
        if (pull) inFlight--;
      }
    };
    // Cut off while every other site writes: their pushes to it are lost.
    net.isolate(late.name);
    for (const s of sites.slice(1))
      for (let i = 0; i < 3; i++) s.log.put('item', { id: `${s.name}-${i}`, v: i });
    await runFor(clock, 500);
    assert.equal(late.rows().length, 0, 'nothing reached the cut-off site');
    most = 0;
    net.heal();
    await runFor(clock, 3000);
    assert.equal(late.rows().length, 3 * 23, 'the site caught up with every origin');
    assert.ok(most > 1 && most <= 8, `pulls in flight at once: ${most}`);
    await Promise.all(sites.map((s) => s.stop()));
  });
});
