/**
 * @module Unit tests of the virtual clock: timers fire in (due time, order set) order, timers set while
 * running fire in the same advance when due, cancelled ones never fire, and a large random schedule
 * fires exactly as a sorted reference says.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { VirtualClock, every, sleep } from './ports.ts';
import { seededRandom } from './random.ts';

describe('VirtualClock', () => {
  it('fires due timers in due-time order, ties in the order they were set', () => {
    const c = new VirtualClock(0);
    const fired: string[] = [];
    c.setTimeout(() => fired.push('b@20'), 20);
    c.setTimeout(() => fired.push('a@10'), 10);
    c.setTimeout(() => fired.push('c@20'), 20);
    c.setTimeout(() => fired.push('late'), 100);
    c.advance(50);
    assert.deepEqual(fired, ['a@10', 'b@20', 'c@20']);
    assert.equal(c.now(), 50);
    assert.equal(c.pending(), 1);
  });

  it('runs timers set while running when they fall due in the same advance, with their own time', () => {
    const c = new VirtualClock(0);
    const seen: number[] = [];
    c.setTimeout(() => {
      seen.push(c.now());
      c.setTimeout(() => seen.push(c.now()), 5);
      c.setTimeout(() => seen.push(c.now()), 0);
    }, 10);
    c.advance(12);
    assert.deepEqual(seen, [10, 10]);
    c.advance(3);
    assert.deepEqual(seen, [10, 10, 15]);
  });

  it('never fires a cancelled timer and does not count it as pending', () => {
    const c = new VirtualClock(0);
    let fired = 0;
    const h = c.setTimeout(() => fired++, 10);
    c.setTimeout(() => fired++, 20);
    h.cancel();
    h.cancel();
    assert.equal(c.pending(), 1);
    c.runAll();
    assert.equal(fired, 1);
    assert.equal(c.pending(), 0);
  });

  it('fires a large random schedule exactly in sorted order', () => {
    const c = new VirtualClock(0);
    const rnd = seededRandom(7);
    const want: { at: number; n: number }[] = [];
    const got: number[] = [];
    for (let n = 0; n < 20_000; n++) {
      const at = Math.floor(rnd() * 5_000);
      const h = c.setTimeout(() => got.push(n), at);
      if (n % 7 === 0) h.cancel();
      else want.push({ at, n });
    }
    want.sort((x, y) => x.at - y.at || x.n - y.n);
    c.advance(2_500);
    c.runAll();
    assert.deepEqual(
      got,
      want.map((w) => w.n),
    );
  });

  it('fires many timers in time linear-logarithmic in their number (not a scan per timer fired)', () => {
    // 200,000 timers: a heap fires them in well under a second; scanning every timer per timer fired
    // would take 2e10 steps.
    const c = new VirtualClock(0);
    const n = 200_000;
    let fired = 0;
    for (let i = 0; i < n; i++) c.setTimeout(() => fired++, (i * 7919) % 10_000);
    const t0 = performance.now();
    c.advance(10_000);
    const ms = performance.now() - t0;
    assert.equal(fired, n);
    assert.ok(ms < 5_000, `advance took ${Math.round(ms)} ms for ${n} timers`);
  });
});

describe('sleep and every (timers through the clock port)', () => {
  it('sleep resolves only once virtual time passed', async () => {
    const c = new VirtualClock(0);
    let done = false;
    const p = sleep(c, 10).then(() => (done = true));
    c.advance(9);
    await Promise.resolve();
    assert.equal(done, false);
    c.advance(1);
    await p;
    assert.equal(done, true);
  });

  it('every runs at each period until cancelled, even when the callback throws', () => {
    const c = new VirtualClock(0);
    const at: number[] = [];
    const h = every(c, 10, () => {
      at.push(c.now());
      if (at.length === 2) throw new Error('boom');
    });
    c.advance(15);
    assert.throws(() => c.advance(10), /boom/); // stops at 20, where the callback threw
    c.advance(20);
    assert.deepEqual(at, [10, 20, 30, 40]);
    h.cancel();
    c.advance(100);
    assert.deepEqual(at, [10, 20, 30, 40]);
    assert.equal(c.pending(), 0);
  });
});
