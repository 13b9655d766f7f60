/**
 * @module Replication over the in-process fabric under a virtual clock: convergence, catch-up after
 * partitions and loss, restarts that lose nothing, and a randomized test over many partition and crash
 * schedules checking that every site converges to the same rows and no acknowledged write is lost.
 */
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { VirtualClock } from '../src/core/ports.ts';
import type { Logger } from '../src/core/ports.ts';
import { MemoryNetwork } from '../src/fabric/memory/network.ts';
import { miniSite, runFor, scratchDir } from './support/mini-site.ts';
import type { MiniSite } from './support/mini-site.ts';
import { seededRandom } from '../src/core/random.ts';

function assertConverged(sites: MiniSite[], acked: Map<string, { owner: string; v: number } | null>) {
  const first = JSON.stringify(sites[0]!.rows());
  for (const s of sites)
    assert.equal(JSON.stringify(s.rows()), first, `site ${s.name} differs from ${sites[0]!.name}`);
  const rows = new Map(sites[0]!.rows().map((r) => [r.id, r]));
  for (const [id, want] of acked) {
    if (want === null) assert.equal(rows.get(id), undefined, `deleted ${id} came back`);
    else assert.deepEqual(rows.get(id), { id, ...want }, `acknowledged write to ${id} lost`);
  }
}

describe('replication (in-process fabric, virtual clock)', () => {
  it('converges across three sites with 50 ms links', async () => {
    const clock = new VirtualClock();
    const net = new MemoryNetwork(clock, { defaultLink: { latencyMs: 50 } });
    const sites = await Promise.all(['a', 'b', 'c'].map((n) => miniSite(net, n, clock)));
    // The sites meet first (each learns the others' identity keys from their first rows).
    await runFor(clock, 300);
    sites[0]!.log.put('item', { id: 'a1', v: 1 });
    sites[1]!.log.put('item', { id: 'b1', v: 2 });
    await runFor(clock, 60);
    assert.equal(sites[2]!.rows().length, 2, 'one one-way delay later, both changes are at c');
    await Promise.all(sites.map((s) => s.stop()));
  });

  it('a partitioned site keeps writing what it owns and catches up after the heal', async () => {
    const clock = new VirtualClock();
    const net = new MemoryNetwork(clock, { defaultLink: { latencyMs: 20 } });
    const [a, b, c] = (await Promise.all(['a', 'b', 'c'].map((n) => miniSite(net, n, clock)))) as [
      MiniSite,
      MiniSite,
      MiniSite,
    ];
    await runFor(clock, 200);
    net.isolate('c');
    for (let i = 0; i < 20; i++) {
      a.log.put('item', { id: `a${i}`, v: i });
      c.log.put('item', { id: `c${i}`, v: i });
    }
    await runFor(clock, 500);
    assert.equal(b.rows().length, 20, 'b has a but not c');
    assert.equal(c.rows().length, 20, 'c has only its own');
    assert.equal(a.rep.isUp('c'), false, 'a judges c down within seconds');
    net.heal();
    await runFor(clock, 500);
    assertConverged([a, b, c], new Map());
    assert.equal(a.rows().length, 40);
    await Promise.all([a, b, c].map((s) => s.stop()));
  });

  it('repairs lost pushes through heartbeats and pulls (30% loss)', async () => {
    const clock = new VirtualClock();
    const net = new MemoryNetwork(clock, {
      defaultLink: { latencyMs: 10, loss: 0.3 },
      random: seededRandom(7),
    });
    const sites = await Promise.all(['a', 'b', 'c', 'd'].map((n) => miniSite(net, n, clock)));
    for (let i = 0; i < 100; i++) sites[i % 4]!.log.put('item', { id: `k${i}`, v: i });
    await runFor(clock, 3000);
    net.setDefaultLink({ loss: 0 });
    await runFor(clock, 1000);
    assertConverged(sites, new Map());
    assert.equal(sites[0]!.rows().length, 100);
    await Promise.all(sites.map((s) => s.stop()));
  });

  it('a restarted site loses nothing it acknowledged and resumes from its cursors', async () => {
    const dir = scratchDir('atoll-rep-');
    try {
      const clock = new VirtualClock();
      const net = new MemoryNetwork(clock, { defaultLink: { latencyMs: 5 } });
      const a = await miniSite(net, 'a', clock);
      let b = await miniSite(net, 'b', clock, { dataDir: join(dir, 'b') });
      for (let i = 0; i < 10; i++) b.log.put('item', { id: `b${i}`, v: i });
      a.log.put('item', { id: 'a0', v: 0 });
      await runFor(clock, 100);
      // Crash b: its database file is all that survives.
      await b.stop();
      for (let i = 1; i < 5; i++) a.log.put('item', { id: `a${i}`, v: i });
      await runFor(clock, 50);
      b = await miniSite(net, 'b', clock, { dataDir: b.dataDir });
      assert.equal(b.rows().filter((r) => r.owner === 'b').length, 10, 'b kept its acknowledged writes');
      await runFor(clock, 500);
      assertConverged([a, b], new Map());
      assert.equal(a.rows().length, 15);
      await a.stop();
      await b.stop();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('randomized partition and crash schedules always converge with no acknowledged write lost', async () => {
    const seeds = Number(process.env.ATOLL_SCHEDULES ?? 25);
    const dir = scratchDir('atoll-rep-');
    after(() => rmSync(dir, { recursive: true, force: true }));
    for (let seed = 1; seed <= seeds; seed++) {
      const rand = seededRandom(seed);
      const clock = new VirtualClock();
      const net = new MemoryNetwork(clock, {
        defaultLink: { latencyMs: 5 + Math.floor(rand() * 40), jitterMs: 10, loss: rand() * 0.2 },
        random: rand,
      });
      const names = ['a', 'b', 'c', 'd', 'e'];
      const sites = await Promise.all(
        names.map((n) => miniSite(net, n, clock, { dataDir: join(dir, `${seed}-${n}`) })),
      );
      const acked = new Map<string, { owner: string; v: number } | null>();
      for (let step = 0; step < 40; step++) {
        const r = rand();
        if (r < 0.1) {
          const cut = names.filter(() => rand() < 0.4);
          net.partition(cut);
        } else if (r < 0.15) {
          net.heal();
        } else if (r < 0.2) {
          // Crash and restart a site: its data directory is all that survives.
          const i = Math.floor(rand() * sites.length);
          const old = sites[i]!;
          await old.stop();
          sites[i] = await miniSite(net, old.name, clock, { dataDir: old.dataDir });
        } else {
          const s = sites[Math.floor(rand() * sites.length)]!;
          const id = `${s.name}-${Math.floor(rand() * 8)}`;
          if (rand() < 0.2) {
            s.log.remove('item', id);
            acked.set(id, null);
          } else {
            const v = Math.floor(rand() * 1000);
            s.log.put('item', { id, v });
            acked.set(id, { owner: s.name, v });
          }
        }
        await runFor(clock, 20 + Math.floor(rand() * 200), 10);
      }
      net.heal();
      net.setDefaultLink({ loss: 0 });
      await runFor(clock, 3000, 20);
      try {
        assertConverged(sites, acked);
      } catch (e) {
        throw new Error(`schedule with seed ${seed}: ${(e as Error).message}`);
      }
      await Promise.all(sites.map((s) => s.stop()));
    }
  });
});

describe('replication over a slow link', () => {
  it('converges when the round trip is longer than the first pull timeout guess', async () => {
    const clock = new VirtualClock();
    // 400 ms one way: a round trip of 800 ms, four times the heartbeat interval of the mini sites.
    const net = new MemoryNetwork(clock, { defaultLink: { latencyMs: 400 } });
    const [a, b] = (await Promise.all(['a', 'b'].map((n) => miniSite(net, n, clock)))) as [
      MiniSite,
      MiniSite,
    ];
    // Lose the pushes: b must pull.
    net.isolate('b');
    for (let i = 0; i < 5; i++) a.log.put('item', { id: `k${i}`, v: i });
    await runFor(clock, 1000);
    net.heal();
    await runFor(clock, 20_000, 20);
    assert.equal(b.rows().length, 5);
    await a.stop();
    await b.stop();
  });
});

describe('peer state in the log', () => {
  it('says each change of a peer’s state once: up, down after a cut, up again after the heal', async () => {
    const clock = new VirtualClock();
    const net = new MemoryNetwork(clock, { defaultLink: { latencyMs: 5 } });
    const lines: string[] = [];
    const capture: Logger = {
      info: (o, m) => lines.push(`info ${String(m)} ${JSON.stringify(o)}`),
      warn: (o, m) => lines.push(`warn ${String(m)} ${JSON.stringify(o)}`),
      error: () => {},
      debug: () => {},
      child: () => capture,
    };
    const a = await miniSite(net, 'a', clock, { logger: capture });
    const b = await miniSite(net, 'b', clock);
    await runFor(clock, 300);
    net.isolate('b');
    await runFor(clock, 3000);
    net.heal();
    await runFor(clock, 3000);
    const about = lines.filter((l) => l.includes('"peer":"b"')).map((l) => l.split(':')[0]);
    assert.deepEqual(about, [
      'info peer is up {"peer"',
      'warn peer is down',
      'warn peer is up again {"peer"',
    ]);
    await Promise.all([a, b].map((s) => s.stop()));
  });

  it('a site just started does not call a peer down before it could have heard it', async () => {
    const clock = new VirtualClock();
    const net = new MemoryNetwork(clock, { defaultLink: { latencyMs: 5 } });
    const b = await miniSite(net, 'b', clock);
    const a = await miniSite(net, 'a', clock);
    // Right after start: not heard yet, so a forward to b is tried rather than refused with a 503.
    assert.equal(a.rep.isUp('b'), false);
    assert.equal(a.rep.notHeardYet('b'), true);
    await runFor(clock, 300);
    assert.equal(a.rep.isUp('b'), true);
    assert.equal(a.rep.notHeardYet('b'), false);
    // A peer never heard within downAfterMs is down, as before.
    assert.equal(a.rep.notHeardYet('z'), true);
    await runFor(clock, 400);
    assert.equal(a.rep.notHeardYet('z'), false);
    await Promise.all([a, b].map((s) => s.stop()));
  });
});
