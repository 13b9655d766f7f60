/**
 * @module The Fabric contract, run unchanged against both implementations: the in-process MemoryNetwork
 * (real clock, a few ms of WAN latency and jitter) and NatsFabric over a 3-server nats-server cluster, each
 * site on its own server so that every case crosses a route.
 */
import assert from 'node:assert/strict';
import { after, afterEach, before, describe, it } from 'node:test';
import { systemClock } from '../src/core/ports.ts';
import type { Fabric, FabricMessage } from '../src/fabric/fabric.ts';
import { FabricError, FabricErrorCode, RemoteHandlerError } from '../src/fabric/fabric.ts';
import { CloudError, NotFound } from '../src/core/errors.ts';
import { RemoteCloudError, RpcVersionMismatch, defineRpc } from '../src/fabric/rpc.ts';
import { MemoryNetwork } from '../src/fabric/memory/network.ts';
import { NatsFabric } from '../src/fabric/nats/nats-fabric.ts';
import { Events } from 'nats';
import { startNatsCluster } from './support/nats.ts';
import type { NatsCluster } from './support/nats.ts';

interface Harness {
  name: string;
  setup(): Promise<void>;
  teardown(): Promise<void>;
  /** A new fabric for `site`; the i-th site of a test lands on the i-th server where there are several. */
  connect(site: string, index: number): Promise<Fabric>;
  /** Resolves once every subscribe/serve/unsubscribe made so far is in effect at every site. */
  settle(fabrics: Fabric[]): Promise<void>;
  /** Long enough that a message that was going to arrive has arrived. */
  quietMs: number;
}

const memoryHarness = (): Harness => {
  let net: MemoryNetwork;
  return {
    name: 'memory fabric (systemClock, 5 ms + 0-5 ms jitter)',
    async setup() {
      net = new MemoryNetwork(systemClock, { defaultLink: { latencyMs: 5, jitterMs: 5 } });
    },
    async teardown() {},
    async connect(site) {
      return net.connect(site);
    },
    async settle() {},
    quietMs: 100,
  };
};

const natsHarness = (): Harness => {
  let cluster: NatsCluster | undefined;
  return {
    name: 'NatsFabric (3 routed nats-servers)',
    async setup() {
      cluster = await startNatsCluster(3);
    },
    async teardown() {
      await cluster?.stop();
    },
    async connect(site, index) {
      const url = cluster!.urls[index % cluster!.urls.length]!;
      // A short grace: the close() case leaves a responder that never answers.
      return NatsFabric.connect(site, { servers: url, closeGraceMs: 300 });
    },
    async settle(fabrics) {
      await Promise.all(fabrics.map((f) => (f as NatsFabric).flush()));
      await cluster!.waitForInterest();
    },
    quietMs: 200,
  };
};

/** No case may hang the run: a stuck one fails, and the hooks still close fabrics and stop servers. */
const T = { timeout: 15_000 };

const enc = new TextEncoder();
const dec = new TextDecoder();
const bytes = (s: string) => enc.encode(s);
const text = (b: Uint8Array) => dec.decode(b);
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

async function waitFor(what: string, cond: () => boolean, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`);
    await sleep(5);
  }
}

/** Subscribes and records what arrives, as `subject=payload` strings. */
function collect(f: Fabric, pattern: string): { got: string[]; unsubscribe: () => void } {
  const got: string[] = [];
  const unsubscribe = f.subscribe(pattern, (m: FabricMessage) => got.push(`${m.subject}=${text(m.data)}`));
  return { got, unsubscribe };
}

/** Settles within `ms` or fails the test: "not a hang". */
async function settlesWithin<T>(p: Promise<T>, ms: number): Promise<PromiseSettledResult<T>> {
  let timer: NodeJS.Timeout | undefined;
  const hang = new Promise<'hang'>((r) => (timer = setTimeout(() => r('hang'), ms)));
  const res = await Promise.race([
    p.then(
      (value): PromiseSettledResult<T> => ({ status: 'fulfilled', value }),
      (reason: unknown): PromiseSettledResult<T> => ({ status: 'rejected', reason }),
    ),
    hang,
  ]);
  clearTimeout(timer);
  if (res === 'hang') assert.fail(`still pending after ${ms} ms`);
  return res;
}

function assertFabricError(reason: unknown, code: FabricErrorCode): void {
  assert.ok(reason instanceof FabricError, `expected a FabricError ${code}, got ${String(reason)}`);
  assert.equal(reason.code, code);
}

for (const make of [memoryHarness, natsHarness]) {
  const h = make();
  describe(`Fabric conformance: ${h.name}`, () => {
    let open: Fabric[] = [];
    let testNo = 0;
    /** `n` fresh sites for one test, on distinct servers where there are several. */
    const sites = async (n: number): Promise<Fabric[]> => {
      testNo++;
      const fs = await Promise.all(
        Array.from({ length: n }, (_, i) => h.connect(`t${testNo}${String.fromCharCode(97 + i)}`, i)),
      );
      open.push(...fs);
      return fs;
    };

    before(() => h.setup(), T);
    afterEach(async () => {
      const closing = open;
      open = [];
      await Promise.all(closing.map((f) => f.close()));
    }, T);
    after(() => h.teardown(), T);

    it('delivers a publish to a subscriber at another site, and only to matching ones', T, async () => {
      const [a, b, c] = await sites(3);
      const atB = collect(b!, `atoll.${a!.site}.changes`);
      const atC = collect(c!, `atoll.${a!.site}.heartbeat`);
      await h.settle([a!, b!, c!]);
      a!.publish(`atoll.${a!.site}.changes`, bytes('batch-1'));
      await waitFor('the message at b', () => atB.got.length === 1);
      await sleep(h.quietMs);
      assert.deepEqual(atB.got, [`atoll.${a!.site}.changes=batch-1`]);
      assert.deepEqual(atC.got, []);
    });

    it('keeps delivering to a subscriber that threw', T, async () => {
      const [a, b] = await sites(2);
      const got: string[] = [];
      b!.subscribe(`atoll.${a!.site}.changes`, (m) => {
        got.push(text(m.data));
        if (got.length === 1) throw new Error('subscriber bug');
      });
      await h.settle([a!, b!]);
      a!.publish(`atoll.${a!.site}.changes`, bytes('1'));
      await waitFor('the first message', () => got.length === 1);
      a!.publish(`atoll.${a!.site}.changes`, bytes('2'));
      await waitFor('the second message', () => got.length === 2);
      assert.deepEqual(got, ['1', '2']);
    });

    it('matches `*` as one token and `>` as the rest', T, async () => {
      const [a, b, c] = await sites(3);
      const star = collect(c!, 'atoll.*.changes');
      const all = collect(c!, 'atoll.>');
      const aOnly = collect(b!, `atoll.${a!.site}.>`);
      await h.settle([a!, b!, c!]);
      a!.publish(`atoll.${a!.site}.changes`, bytes('1'));
      b!.publish(`atoll.${b!.site}.changes`, bytes('2'));
      a!.publish(`atoll.${a!.site}.heartbeat`, bytes('3'));
      a!.publish(`atoll.${a!.site}.rpc.x.y`, bytes('4'));
      a!.publish('other.a.changes', bytes('5'));
      await waitFor('all four at `atoll.>`', () => all.got.length === 4);
      await sleep(h.quietMs);
      assert.deepEqual(star.got.sort(), [`atoll.${a!.site}.changes=1`, `atoll.${b!.site}.changes=2`]);
      assert.deepEqual(all.got.sort(), [
        `atoll.${a!.site}.changes=1`,
        `atoll.${a!.site}.heartbeat=3`,
        `atoll.${a!.site}.rpc.x.y=4`,
        `atoll.${b!.site}.changes=2`,
      ]);
      assert.deepEqual(aOnly.got.sort(), [
        `atoll.${a!.site}.changes=1`,
        `atoll.${a!.site}.heartbeat=3`,
        `atoll.${a!.site}.rpc.x.y=4`,
      ]);
    });

    it('stops delivering after unsubscribe, while other subscribers still get the message', T, async () => {
      const [a, b, c] = await sites(3);
      const leaving = collect(b!, 'atoll.*.changes');
      const staying = collect(c!, 'atoll.*.changes');
      await h.settle([a!, b!, c!]);
      a!.publish(`atoll.${a!.site}.changes`, bytes('before'));
      await waitFor('the first message at both', () => leaving.got.length === 1 && staying.got.length === 1);
      leaving.unsubscribe();
      leaving.unsubscribe(); // idempotent
      await h.settle([a!, b!, c!]);
      a!.publish(`atoll.${a!.site}.changes`, bytes('after'));
      await waitFor('the second message at the staying subscriber', () => staying.got.length === 2);
      await sleep(h.quietMs);
      assert.deepEqual(leaving.got, [`atoll.${a!.site}.changes=before`]);
    });

    it('answers a request from another site', T, async () => {
      const [a, b] = await sites(2);
      b!.serve(`atoll.${b!.site}.rpc.echo`, (d) => bytes(`${b!.site} says ${text(d)}`));
      await h.settle([a!, b!]);
      const reply = await a!.request(`atoll.${b!.site}.rpc.echo`, bytes('hello'), 2000);
      assert.equal(text(reply), `${b!.site} says hello`);
    });

    it('serves with an async responder, many requests at once', T, async () => {
      const [a, b] = await sites(2);
      b!.serve(`atoll.${b!.site}.rpc.*`, async (d) => {
        await sleep(20);
        return bytes(`slow ${text(d)}`);
      });
      await h.settle([a!, b!]);
      const replies = await Promise.all(
        [1, 2, 3, 4, 5].map((i) => a!.request(`atoll.${b!.site}.rpc.work`, bytes(String(i)), 2000)),
      );
      assert.deepEqual(replies.map(text), ['slow 1', 'slow 2', 'slow 3', 'slow 4', 'slow 5']);
    });

    it("turns a responder's exception into an error for the caller, and keeps serving", T, async () => {
      const [a, b] = await sites(2);
      let calls = 0;
      b!.serve(`atoll.${b!.site}.rpc.flaky`, async (d) => {
        calls++;
        if (text(d) === 'throw') throw new Error('boom');
        if (text(d) === 'reject') return Promise.reject(new Error('async boom'));
        return bytes('fine');
      });
      await h.settle([a!, b!]);
      for (const payload of ['throw', 'reject']) {
        // The failure comes back as an error at once, not as a timeout the caller has to sit through.
        const res = await settlesWithin(a!.request(`atoll.${b!.site}.rpc.flaky`, bytes(payload), 5000), 1000);
        assert.equal(res.status, 'rejected', `a responder that fails with ${payload} must not answer`);
        if (res.status === 'rejected') {
          // The same error on both fabrics: the message as data, never the responder's own object.
          assert.ok(res.reason instanceof RemoteHandlerError, `got ${String(res.reason)}`);
          assert.equal(res.reason.message, payload === 'throw' ? 'boom' : 'async boom');
          assert.equal(res.reason.status, 500);
        }
      }
      assert.equal(text(await a!.request(`atoll.${b!.site}.rpc.flaky`, bytes('ok'), 2000)), 'fine');
      assert.equal(calls, 3);
    });

    it(
      'rejects with NoResponders when nobody serves the subject, without waiting for the timeout',
      T,
      async () => {
        const [a] = await sites(1);
        const started = Date.now();
        const res = await settlesWithin(a!.request('atoll.nowhere.rpc.nothing', bytes('?'), 3000), 2000);
        assert.equal(res.status, 'rejected');
        if (res.status === 'rejected') assertFabricError(res.reason, FabricErrorCode.NoResponders);
        assert.ok(Date.now() - started < 1000);
      },
    );

    it('rejects with Timeout when the responder is slower than timeoutMs', T, async () => {
      const [a, b] = await sites(2);
      b!.serve(`atoll.${b!.site}.rpc.slow`, async () => {
        await sleep(800);
        return bytes('too late');
      });
      await h.settle([a!, b!]);
      const started = Date.now();
      const res = await settlesWithin(a!.request(`atoll.${b!.site}.rpc.slow`, bytes(''), 150), 700);
      const elapsed = Date.now() - started;
      assert.equal(res.status, 'rejected');
      if (res.status === 'rejected') assertFabricError(res.reason, FabricErrorCode.Timeout);
      assert.ok(elapsed >= 140, `timed out after ${elapsed} ms, before timeoutMs`);
    });

    it("keeps each publisher's messages in order", T, async () => {
      const [a, b, c] = await sites(3);
      const got = collect(c!, 'atoll.*.changes');
      await h.settle([a!, b!, c!]);
      const n = 300;
      for (let i = 0; i < n; i++) {
        a!.publish(`atoll.${a!.site}.changes`, bytes(String(i)));
        b!.publish(`atoll.${b!.site}.changes`, bytes(String(i)));
        if (i % 50 === 0) await sleep(1); // spread over time, so jitter draws differ
      }
      await waitFor('every message', () => got.got.length === 2 * n);
      for (const f of [a!, b!]) {
        const seq = got.got
          .filter((s) => s.startsWith(`atoll.${f.site}.`))
          .map((s) => Number(s.split('=')[1]));
        assert.deepEqual(
          seq,
          Array.from({ length: n }, (_, i) => i),
        );
      }
    });

    /** What a caller of defineRpc sees, as plain data: the same on both fabrics. */
    const outcome = async (p: Promise<unknown>): Promise<Record<string, unknown>> => {
      const res = await settlesWithin(p, 2000);
      if (res.status === 'fulfilled') return { ok: res.value };
      const e = res.reason as CloudError & { site?: string };
      assert.ok(e instanceof CloudError, `expected a CloudError, got ${String(e)}`);
      return {
        class: e.constructor.name,
        status: e.status,
        message: e.message,
        site: e.site,
        detailType: e.detailType,
      };
    };

    it('defineRpc: a result, a thrown CloudError and a thrown bug reach the caller alike', T, async () => {
      const [a, b] = await sites(2);
      const echo = defineRpc<{ say: string }, { heard: string }>({ name: 'echo', version: 1 });
      echo.serve(b!, (req) => {
        if (req.say === 'missing') throw new NotFound('No such thing.', 'ThingNotFound');
        if (req.say === 'bug') throw new TypeError('x is undefined');
        return { heard: `${req.say} (v${req.v})` };
      });
      await h.settle([a!, b!]);
      const call = (say: string) => echo.call(a!, b!.site, { say }, { timeoutMs: 2000 });
      assert.deepEqual(await outcome(call('hi')), { ok: { heard: 'hi (v1)' } });
      assert.deepEqual(await outcome(call('missing')), {
        class: RemoteCloudError.name,
        status: 404,
        message: 'No such thing.',
        site: b!.site,
        detailType: 'ThingNotFound',
      });
      assert.deepEqual(await outcome(call('bug')), {
        class: RemoteCloudError.name,
        status: 500,
        message: `echo request failed at ${b!.site}: TypeError: x is undefined`,
        site: b!.site,
        detailType: undefined,
      });
      assert.deepEqual(await outcome(call('again')), { ok: { heard: 'again (v1)' } });
    });

    it(
      'defineRpc: a version mismatch is refused at either end with a 503 naming the other site',
      T,
      async () => {
        const [a, b] = await sites(2);
        const v1 = defineRpc<{ n: number }, number>({ name: 'count', version: 1 });
        const v2 = defineRpc<{ n: number }, number>({ name: 'count', version: 2 });
        let ran = 0;
        v2.serve(b!, (req) => ++ran + req.n);
        v1.serve(a!, (req) => ++ran + req.n);
        await h.settle([a!, b!]);
        /** The refusal a caller of version `asked` gets from `site`, which serves version `served`. */
        const mismatch = (site: string, served: number, asked: number) => ({
          class: RpcVersionMismatch.name,
          status: 503,
          message: `Site ${site} speaks version ${served} of the count protocol, not version ${asked}.`,
          site,
          detailType: undefined,
        });
        // An old caller of a new server: the server refuses it without running the handler.
        assert.deepEqual(
          await outcome(v1.call(a!, b!.site, { n: 1 }, { timeoutMs: 2000 })),
          mismatch(b!.site, 2, 1),
        );
        // A new caller of an old server: the old one refuses it too.
        assert.deepEqual(
          await outcome(v2.call(b!, a!.site, { n: 1 }, { timeoutMs: 2000 })),
          mismatch(a!.site, 1, 2),
        );
        // A server that answers in another envelope version is refused by the caller.
        b!.serve(`atoll.${b!.site}.rpc.old`, () => bytes(JSON.stringify({ v: 7, ok: true, result: 1 })));
        await h.settle([a!, b!]);
        const old = defineRpc<{ n: number }, number>({ name: 'old', version: 1 });
        assert.deepEqual(await outcome(old.call(a!, b!.site, { n: 1 }, { timeoutMs: 2000 })), {
          class: RpcVersionMismatch.name,
          status: 503,
          message: `Site ${b!.site} answered in version 7 of the old protocol; this site speaks version 1.`,
          site: b!.site,
          detailType: undefined,
        });
        assert.equal(ran, 0);
      },
    );

    it('defineRpc: a timeout and a missing responder are a 503 naming the target', T, async () => {
      const [a, b] = await sites(2);
      const slow = defineRpc<object, string>({ name: 'slow', version: 1 });
      slow.serve(b!, async () => {
        await sleep(800);
        return 'too late';
      });
      await h.settle([a!, b!]);
      assert.deepEqual(await outcome(slow.call(a!, b!.site, {}, { timeoutMs: 150 })), {
        class: 'SiteUnavailable',
        status: 503,
        message: `Site ${b!.site} is unreachable: slow request timeout`,
        site: b!.site,
        detailType: undefined,
      });
      assert.deepEqual(
        await outcome(
          slow.call(
            a!,
            'nowhere',
            {},
            { timeoutMs: 1000, unreachable: (why) => `it did not answer (${why})` },
          ),
        ),
        {
          class: 'SiteUnavailable',
          status: 503,
          message: 'Site nowhere is unreachable: it did not answer (no_responders)',
          site: 'nowhere',
          detailType: undefined,
        },
      );
    });

    it('close() stops subscriptions, responders and requests, and fails pending requests', T, async () => {
      const [a, b, c] = await sites(3);
      const atB = collect(b!, 'atoll.*.changes');
      const control = collect(c!, 'atoll.*.changes');
      b!.serve(`atoll.${b!.site}.rpc.echo`, (d) => d);
      c!.serve(`atoll.${c!.site}.rpc.never`, () => new Promise<Uint8Array>(() => {}));
      await h.settle([a!, b!, c!]);
      assert.equal(text(await a!.request(`atoll.${b!.site}.rpc.echo`, bytes('x'), 2000)), 'x');

      await b!.close();
      await h.settle([a!, c!]);
      a!.publish(`atoll.${a!.site}.changes`, bytes('after close'));
      await waitFor('the control subscriber', () => control.got.length === 1);
      await sleep(h.quietMs);
      assert.deepEqual(atB.got, []);
      const toClosed = await settlesWithin(a!.request(`atoll.${b!.site}.rpc.echo`, bytes('x'), 3000), 2000);
      assert.equal(toClosed.status, 'rejected');
      if (toClosed.status === 'rejected') assertFabricError(toClosed.reason, FabricErrorCode.NoResponders);
      // The closed site itself: publish is a no-op, request fails with Closed.
      assert.doesNotThrow(() => b!.publish(`atoll.${b!.site}.changes`, bytes('ghost')));
      await assert.rejects(b!.request(`atoll.${c!.site}.rpc.never`, bytes(''), 500), (e) => {
        assertFabricError(e, FabricErrorCode.Closed);
        return true;
      });
      await b!.close(); // idempotent

      // A request still waiting when its own site closes fails with Closed, not after its timeout.
      const pending = a!.request(`atoll.${c!.site}.rpc.never`, bytes(''), 10_000);
      await sleep(20);
      const closing = a!.close();
      const res = await settlesWithin(pending, 3000);
      await closing;
      assert.equal(res.status, 'rejected');
      if (res.status === 'rejected') assertFabricError(res.reason, FabricErrorCode.Closed);
    });
  });
}

describe('NatsFabric specifics', () => {
  let cluster: NatsCluster | undefined;
  const open: Fabric[] = [];
  before(async () => {
    cluster = await startNatsCluster(2, { users: [{ user: 'site-a', pass: 's3cret' }] });
  }, T);
  after(async () => {
    await Promise.all(open.map((f) => f.close()));
    await cluster?.stop();
  }, T);

  it('authenticates with the user and password of its site, and refuses a wrong password', T, async () => {
    const ok = await NatsFabric.connect('a', { servers: cluster!.urls[0]!, user: 'site-a', pass: 's3cret' });
    open.push(ok);
    await ok.flush();
    await assert.rejects(
      NatsFabric.connect('a', { servers: cluster!.urls[0]!, user: 'site-a', pass: 'wrong' }),
      /AUTHORIZATION_VIOLATION|Authorization/i,
    );
    await assert.rejects(NatsFabric.connect('a', { servers: cluster!.urls[0]! }));
  });

  it('reconnects after its server restarts, and its subscriptions work again', T, async () => {
    const auth = { user: 'site-a', pass: 's3cret', reconnectTimeWaitMs: 50 };
    const a = await NatsFabric.connect('ra', { servers: cluster!.urls[0]!, ...auth });
    const b = await NatsFabric.connect('rb', { servers: cluster!.urls[1]!, ...auth });
    open.push(a, b);
    const atB = collect(b, 'atoll.ra.changes');
    await b.flush();
    await cluster!.waitForInterest();
    a.publish('atoll.ra.changes', bytes('1'));
    await waitFor('the first message', () => atB.got.length === 1);

    let reconnects = 0;
    void (async () => {
      for await (const st of b.nc.status()) if (st.type === Events.Reconnect) reconnects++;
    })();
    await cluster!.kill(1);
    await cluster!.restart(1);
    // Messages sent while b is away are lost: nothing here promises redelivery.
    await waitFor('b to reconnect', () => reconnects > 0);
    const deadline = Date.now() + 10_000;
    for (let i = 2; atB.got.length < 2; i++) {
      if (Date.now() > deadline) assert.fail('no delivery after the restart');
      await b.flush().catch(() => {});
      a.publish('atoll.ra.changes', bytes(String(i)));
      await sleep(50);
    }
    assert.equal(b.nc.isClosed(), false);
  });
});
