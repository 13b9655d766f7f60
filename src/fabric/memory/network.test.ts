/**
 * @module Unit tests of the WAN model under a VirtualClock: latency, round trips, bandwidth queueing, loss,
 * partitions, FIFO order under jitter, and the stats the lab reports.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Clock, TimerHandle } from '../../core/ports.ts';
import { VirtualClock } from '../../core/ports.ts';
import { FabricError, FabricErrorCode } from '../fabric.ts';
import type { Fabric } from '../fabric.ts';
import { MemoryNetwork } from './network.ts';
import { seededRandom } from '../../core/random.ts';

/** Lets promise callbacks (a responder's reply, a microtask delivery) run. */
const tick = () => new Promise<void>((r) => setImmediate(r));

/** Advances virtual time 1 ms at a time, letting async work scheduled at each instant run. */
async function advance(clock: VirtualClock, ms: number): Promise<void> {
  for (let i = 0; i < ms; i++) {
    clock.advance(1);
    await tick();
  }
}

const bytes = (n: number) => new Uint8Array(n);
const text = (s: string) => new TextEncoder().encode(s);

function setup(opts: ConstructorParameters<typeof MemoryNetwork>[1] = {}) {
  const clock = new VirtualClock(0);
  const net = new MemoryNetwork(clock, opts);
  const [a, b, c]: Fabric[] = [net.connect('a'), net.connect('b'), net.connect('c')];
  return { clock, net, a: a!, b: b!, c: c! };
}

/** Records the virtual time at which each message arrives. */
function arrivals(clock: Clock, f: Fabric, pattern: string): { at: number; data: string }[] {
  const out: { at: number; data: string }[] = [];
  f.subscribe(pattern, (m) => out.push({ at: clock.now(), data: new TextDecoder().decode(m.data) }));
  return out;
}

describe('MemoryNetwork (WAN model)', () => {
  it('delays a message by the one-way latency of its link, and no more', async () => {
    const { clock, net, a, b, c } = setup();
    net.setLink('a', 'b', { latencyMs: 50 });
    net.setLink('a', 'c', { latencyMs: 120 });
    const atB = arrivals(clock, b, 'atoll.a.changes');
    const atC = arrivals(clock, c, 'atoll.a.changes');
    a.publish('atoll.a.changes', text('x'));
    await advance(clock, 49);
    assert.equal(atB.length, 0, 'arrived before the latency');
    await advance(clock, 1);
    assert.deepEqual(atB, [{ at: 50, data: 'x' }]);
    await advance(clock, 100);
    assert.deepEqual(atC, [{ at: 120, data: 'x' }]);
    assert.deepEqual(net.linkSpec('b', 'a'), { latencyMs: 50, jitterMs: 0, bandwidthBps: 0, loss: 0 });
  });

  it('takes two latencies for a request and its reply', async () => {
    const { clock, net, a, b } = setup();
    net.setLink('a', 'b', { latencyMs: 40 });
    let servedAt = -1;
    b.serve('atoll.b.rpc.echo', (d) => {
      servedAt = clock.now();
      return d;
    });
    let repliedAt = -1;
    const reply = a.request('atoll.b.rpc.echo', text('ping'), 1000).then((d) => {
      repliedAt = clock.now();
      return new TextDecoder().decode(d);
    });
    await advance(clock, 200);
    assert.equal(await reply, 'ping');
    assert.equal(servedAt, 40);
    assert.equal(repliedAt, 80);
  });

  it('queues messages behind each other on a link with limited bandwidth', async () => {
    const { clock, net, a, b } = setup();
    net.setLink('a', 'b', { latencyMs: 10, bandwidthBps: 1_000_000 });
    const atB = arrivals(clock, b, 'atoll.a.>');
    a.publish('atoll.a.changes', bytes(1_000_000)); // 1 MB on a 1 MB/s link: one second on the wire
    a.publish('atoll.a.heartbeat', bytes(1000)); // waits for the big one, then 1 ms of its own
    await advance(clock, 1009);
    assert.equal(atB.length, 0);
    await advance(clock, 1);
    assert.equal(atB[0]?.at, 1010);
    await advance(clock, 1);
    assert.equal(atB[1]?.at, 1011);
    // The queue empties: a message sent later to an idle link pays only its own transmission time.
    await advance(clock, 1000);
    a.publish('atoll.a.changes', bytes(500_000));
    const sentAt = clock.now();
    await advance(clock, 600);
    assert.equal(atB[2]!.at - sentAt, 510);
  });

  it('loses about the configured share of messages, reproducibly with a seeded random', async () => {
    const run = async () => {
      const { clock, net, a, b } = setup({ random: seededRandom(42) });
      net.setLink('a', 'b', { latencyMs: 5, loss: 0.3 });
      const atB = arrivals(clock, b, 'atoll.a.changes');
      for (let i = 0; i < 1000; i++) a.publish('atoll.a.changes', text(String(i)));
      await advance(clock, 10);
      return { got: atB.map((x) => x.data), stats: net.stats };
    };
    const first = await run();
    assert.ok(first.got.length > 640 && first.got.length < 760, `delivered ${first.got.length} of 1000`);
    assert.equal(first.stats.lost, 1000 - first.got.length);
    assert.equal(first.stats.messages, 1000);
    assert.deepEqual((await run()).got, first.got, 'same seed, same losses');
  });

  it('drops everything across a partition and delivers again after heal', async () => {
    const { clock, net, a, b, c } = setup({ defaultLink: { latencyMs: 10 } });
    const atB = arrivals(clock, b, 'atoll.*.changes');
    const atC = arrivals(clock, c, 'atoll.*.changes');
    b.serve('atoll.b.rpc.ping', () => text('pong'));
    net.partition(['a'], ['b', 'c']);
    assert.equal(net.reachable('a', 'b'), false);
    assert.equal(net.reachable('b', 'c'), true);
    a.publish('atoll.a.changes', text('lost'));
    c.publish('atoll.c.changes', text('kept'));
    // Across a partition a request times out: the responder exists but cannot be reached.
    const req = a.request('atoll.b.rpc.ping', text(''), 500);
    const outcome = req.then(
      () => 'answered',
      (e: unknown) => (e instanceof FabricError ? e.code : String(e)),
    );
    await advance(clock, 600);
    assert.equal(await outcome, FabricErrorCode.Timeout);
    assert.deepEqual(
      atB.map((x) => x.data),
      ['kept'],
    );
    assert.deepEqual(
      atC.map((x) => x.data),
      ['kept'], // its own message only
    );
    assert.equal(net.stats.lost, 3); // a's publish to b and to c, and a's request

    net.heal();
    a.publish('atoll.a.changes', text('after heal'));
    assert.equal(
      new TextDecoder().decode(await settle(clock, a.request('atoll.b.rpc.ping', text(''), 500))),
      'pong',
    );
    assert.deepEqual(
      atB.map((x) => x.data),
      ['kept', 'after heal'],
    );
  });

  it('isolates a site from every other, each isolated site alone', async () => {
    const { clock, net, a, b, c } = setup({ defaultLink: { latencyMs: 1 } });
    net.isolate('a');
    net.isolate('a'); // twice: must not put the next isolated site in a's group
    net.isolate('b');
    assert.equal(net.reachable('a', 'b'), false);
    assert.equal(net.reachable('a', 'c'), false);
    assert.equal(net.reachable('b', 'c'), false);
    assert.equal(net.reachable('a', 'a'), true);
    const atA = arrivals(clock, a, 'atoll.*.changes');
    const atC = arrivals(clock, c, 'atoll.*.changes');
    b.publish('atoll.b.changes', text('1'));
    a.publish('atoll.a.changes', text('own')); // a site still hears itself
    await advance(clock, 5);
    assert.deepEqual(
      atA.map((x) => x.data),
      ['own'],
    );
    assert.equal(atC.length, 0);
    net.heal();
    b.publish('atoll.b.changes', text('2'));
    await advance(clock, 5);
    assert.deepEqual(
      atC.map((x) => x.data),
      ['2'],
    );
  });

  it('keeps the order of messages on a link whatever the jitter', async () => {
    const { clock, net, a, b } = setup({ random: seededRandom(7) });
    net.setLink('a', 'b', { latencyMs: 10, jitterMs: 100 });
    const atB = arrivals(clock, b, 'atoll.a.changes');
    const sentAt: number[] = [];
    for (let i = 0; i < 200; i++) {
      sentAt.push(clock.now());
      a.publish('atoll.a.changes', text(String(i)));
      if (i % 2 === 0) await advance(clock, 5); // pairs sent at once, 5 ms apart
    }
    await advance(clock, 200);
    assert.deepEqual(
      atB.map((x) => Number(x.data)),
      Array.from({ length: 200 }, (_, i) => i),
    );
    const delays = atB.map((x, i) => x.at - sentAt[i]!);
    assert.ok(Math.min(...delays) >= 10, 'never faster than the latency');
    assert.ok(Math.max(...delays) > 60, 'jitter adds up to jitterMs');
    assert.ok(new Set(delays).size > 20, 'jitter spreads the arrivals');
  });

  it('keeps the order even when the clock fires due timers out of order', async () => {
    // A real clock may run two timers due at the same time in either order; deliveries must not follow it.
    const timers: (() => void)[] = [];
    const lifo: Clock = {
      now: () => 0,
      setTimeout(fn: () => void): TimerHandle {
        timers.push(fn);
        return { cancel() {} };
      },
    };
    const net = new MemoryNetwork(lifo, { defaultLink: { latencyMs: 5 } });
    const a = net.connect('a');
    const b = net.connect('b');
    const got: string[] = [];
    b.subscribe('atoll.a.changes', (m) => got.push(new TextDecoder().decode(m.data)));
    for (const s of ['1', '2', '3']) a.publish('atoll.a.changes', text(s));
    while (timers.length) timers.pop()!();
    assert.deepEqual(got, ['1', '2', '3']);
  });

  it('applies a changed default link to links that already carried traffic', async () => {
    const { clock, net, a, b } = setup({ defaultLink: { latencyMs: 10 } });
    const atB = arrivals(clock, b, 'atoll.a.changes');
    a.publish('atoll.a.changes', text('1'));
    await advance(clock, 10);
    net.setDefaultLink({ latencyMs: 30 });
    a.publish('atoll.a.changes', text('2'));
    await advance(clock, 40);
    assert.deepEqual(
      atB.map((x) => x.at),
      [10, 40],
    );
  });

  it('counts messages, bytes and losses, per subject family', async () => {
    const { clock, net, a, b, c } = setup({ defaultLink: { latencyMs: 1 } });
    b.subscribe('atoll.*.changes', () => {});
    c.subscribe('atoll.*.changes', () => {});
    c.subscribe('atoll.*.heartbeat', () => {});
    b.serve('atoll.b.rpc.echo', (d) => d);
    a.publish('atoll.a.changes', bytes(100)); // to b and c: 2 messages
    a.publish('atoll.a.heartbeat', bytes(10)); // to c
    const reply = a.request('atoll.b.rpc.echo', bytes(7), 100); // request + reply
    await advance(clock, 5);
    await reply;
    net.isolate('a');
    a.publish('atoll.a.heartbeat', bytes(10)); // counted, and lost
    assert.deepEqual(net.stats, {
      messages: 6,
      bytes: 100 + 100 + 10 + 7 + 7 + 10,
      lost: 1,
      denied: 0,
      bySubject: {
        changes: { messages: 2, bytes: 200 },
        heartbeat: { messages: 2, bytes: 20 },
        rpc: { messages: 1, bytes: 7 },
        reply: { messages: 1, bytes: 7 },
      },
    });
  });

  it("reports NATS's 1 MiB max payload, and enforces one only when given, as a nats-server does", async () => {
    assert.equal(setup().a.maxPayload, 1024 * 1024);
    assert.doesNotThrow(() => setup().a.publish('atoll.a.changes', bytes(2 * 1024 * 1024)));
    const { clock, a, b } = setup({ maxPayload: 1000 });
    assert.equal(a.maxPayload, 1000);
    const got = arrivals(clock, b, 'atoll.a.changes');
    assert.throws(() => a.publish('atoll.a.changes', bytes(1001)), /MAX_PAYLOAD_EXCEEDED/);
    a.publish('atoll.a.changes', bytes(1000));
    await advance(clock, 5);
    assert.equal(got.length, 1);
    await assert.rejects(a.request('atoll.b.rpc.x', bytes(1001), 100), /MAX_PAYLOAD_EXCEEDED/);
    b.serve('atoll.b.rpc.big', () => bytes(1001));
    const lost = a.request('atoll.b.rpc.big', bytes(1), 100).then(
      () => 'answered',
      (e: unknown) => e,
    );
    const e = await settle(clock, lost);
    assert.ok(e instanceof FabricError && e.code === FabricErrorCode.Timeout, 'a reply over it is lost');
  });

  it('fails requests with NoResponders, and with Closed once the site has closed', async () => {
    const { clock, a, b } = setup({ defaultLink: { latencyMs: 10 } });
    await assert.rejects(a.request('atoll.x.rpc.none', text(''), 100), (e: unknown) => {
      return e instanceof FabricError && e.code === FabricErrorCode.NoResponders;
    });
    b.serve('atoll.b.rpc.never', () => new Promise<Uint8Array>(() => {}));
    const pending = a.request('atoll.b.rpc.never', text(''), 10_000);
    await advance(clock, 20);
    await a.close();
    await assert.rejects(
      pending,
      (e: unknown) => e instanceof FabricError && e.code === FabricErrorCode.Closed,
    );
    await assert.rejects(
      a.request('atoll.b.rpc.never', text(''), 100),
      (e: unknown) => e instanceof FabricError && e.code === FabricErrorCode.Closed,
    );
  });
});

/** Advances the clock until `p` settles (at most 10 virtual seconds). */
async function settle<T>(clock: VirtualClock, p: Promise<T>): Promise<T> {
  let done = false;
  const watched = p.finally(() => (done = true));
  for (let i = 0; i < 10_000 && !done; i++) await advance(clock, 1);
  return watched;
}
