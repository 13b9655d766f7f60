/**
 * @module Least privilege on the fabric (src/fabric/permissions.ts), against real nats-servers running the
 * generated deployment configuration (users per site, authenticated routes, mutual TLS) and against the
 * MemoryNetwork with enforcePermissions: the same cases must hold on both. Each site is on its own server,
 * so every case crosses a route.
 */
import assert from 'node:assert/strict';
import { after, afterEach, before, describe, it } from 'node:test';
import { connect, ErrorCode, NatsError, nkeyAuthenticator, nkeys } from 'nats';
import { systemClock } from '../src/core/ports.ts';
import type { Fabric } from '../src/fabric/fabric.ts';
import { FabricError, FabricErrorCode, subjects } from '../src/fabric/fabric.ts';
import { MemoryNetwork } from '../src/fabric/memory/network.ts';
import { NatsFabric } from '../src/fabric/nats/nats-fabric.ts';
import { natsServerConfig } from '../src/fabric/nats/server-config.ts';
import { maySubscribe, patternWithin, sitePermissions } from '../src/fabric/permissions.ts';
import { startNatsCluster } from './support/nats.ts';
import type { NatsCluster } from './support/nats.ts';

const T = { timeout: 20_000 };
const SITES = ['site-a', 'site-b', 'site-c'];
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

async function rejectsWith(p: Promise<unknown>, code: FabricErrorCode): Promise<void> {
  await assert.rejects(p, (e: unknown) => {
    assert.ok(e instanceof FabricError, `expected FabricError ${code}, got ${String(e)}`);
    assert.equal(e.code, code);
    return true;
  });
}

describe('permissions as data', () => {
  it('gives a site its own subjects, the shared feeds, rpc requests to others and its own inbox', () => {
    const p = sitePermissions('site-a');
    assert.ok(maySubscribe(p, 'atoll.*.changes'));
    assert.ok(maySubscribe(p, 'atoll.site-a.rpc.host.*'));
    assert.ok(maySubscribe(p, '_INBOX_site-a.abc.*'));
    assert.ok(!maySubscribe(p, '_INBOX_site-b.>'));
    assert.ok(!maySubscribe(p, '_INBOX_site-a-x.>'));
    assert.ok(!maySubscribe(p, 'atoll.>'));
    assert.ok(!maySubscribe(p, 'atoll.*.rpc.http'));
    assert.ok(!maySubscribe(p, '>'));
    assert.ok(patternWithin('a.b.c', 'a.>'));
    assert.ok(!patternWithin('a', 'a.>'));
    assert.ok(!patternWithin('a.*', 'a.b'));
    assert.throws(() => sitePermissions('a.b'), RangeError);
  });

  it('writes them into the nats-server configuration', () => {
    const conf = natsServerConfig({
      serverName: 's',
      port: 4222,
      users: [{ site: 'site-a', password: 'pw' }],
    });
    assert.match(conf, /user: "site-a", password: "pw"/);
    assert.match(conf, /publish: \{ allow: \["atoll\.site-a\.>", "atoll\.\*\.rpc\.changes"/);
    assert.match(conf, /subscribe: \{ allow: \[.*"_INBOX_site-a\.>"\]/);
    assert.match(conf, /allow_responses: true/);
  });
});

interface Harness {
  name: string;
  setup(): Promise<void>;
  teardown(): Promise<void>;
  /** The site's fabric, on its own server where there are several. */
  connect(site: string): Promise<Fabric>;
  /** Operations of `f` refused so far. */
  denied(f: Fabric): number;
  settle(fabrics: Fabric[]): Promise<void>;
  quietMs: number;
  /** Whether subscribe/serve throw at once (memory) or are refused later by the server (NATS). */
  syncRefusal: boolean;
}

const memoryHarness = (): Harness => {
  let net: MemoryNetwork;
  return {
    name: 'MemoryNetwork with enforcePermissions',
    async setup() {
      net = new MemoryNetwork(systemClock, { defaultLink: { latencyMs: 2 }, enforcePermissions: true });
    },
    async teardown() {},
    async connect(site) {
      return net.connect(site);
    },
    denied: () => net.stats.denied,
    async settle() {},
    quietMs: 100,
    syncRefusal: true,
  };
};

const natsHarness = (): Harness => {
  let cluster: NatsCluster | undefined;
  return {
    name: 'NatsFabric over 3 nats-servers (users per site, site-c by nkey, mutual TLS)',
    async setup() {
      cluster = await startNatsCluster(3, { secure: { sites: SITES, tls: true, nkeySites: ['site-c'] } });
    },
    async teardown() {
      await cluster?.stop();
    },
    async connect(site) {
      const i = SITES.indexOf(site);
      return NatsFabric.connect(site, {
        servers: cluster!.urls[i]!,
        ...cluster!.credentials(site),
        closeGraceMs: 300,
      });
    },
    denied: (f) => (f as NatsFabric).stats.denied,
    async settle(fabrics) {
      await Promise.all(fabrics.map((f) => (f as NatsFabric).flush()));
      await cluster!.waitForInterest();
    },
    quietMs: 300,
    syncRefusal: false,
  };
};

for (const make of [memoryHarness, natsHarness]) {
  const h = make();
  describe(`Fabric least privilege: ${h.name}`, () => {
    let open: Fabric[] = [];
    const sites = async (): Promise<Fabric[]> => {
      const fs = await Promise.all(SITES.map((s) => h.connect(s)));
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

    it('lets a site do everything the protocol needs', T, async () => {
      const [a, b, c] = await sites();
      const feed: string[] = [];
      b!.subscribe(subjects.allChanges, (m) => feed.push(`${m.subject}=${text(m.data)}`));
      b!.subscribe(subjects.allHeartbeats, (m) => feed.push(`${m.subject}=${text(m.data)}`));
      b!.serve(subjects.rpc('site-b', 'changes'), (d) => bytes(`changes since ${text(d)}`));
      a!.serve(subjects.rpc('site-a', 'ping'), () => bytes('pong from a'));
      a!.serve(subjects.rpc('site-a', 'host.*'), (d) => bytes(`host got ${text(d)}`));
      c!.serve(subjects.rpc('site-c', 'http'), () => bytes('c http'));
      await h.settle([a!, b!, c!]);

      a!.publish(subjects.changes('site-a'), bytes('batch'));
      a!.publish(subjects.heartbeat('site-a'), bytes('hb'));
      await waitFor('a change and a heartbeat at b', () => feed.length === 2);
      assert.deepEqual(feed.sort(), ['atoll.site-a.changes=batch', 'atoll.site-a.heartbeat=hb']);
      assert.equal(
        text(await a!.request(subjects.rpc('site-b', 'changes'), bytes('7'), 3000)),
        'changes since 7',
      );
      assert.equal(text(await b!.request(subjects.rpc('site-a', 'ping'), bytes('{}'), 3000)), 'pong from a');
      assert.equal(text(await a!.request(subjects.rpc('site-c', 'http'), bytes('{}'), 3000)), 'c http');
      // Compute hosts are local to their site.
      assert.equal(
        text(await a!.request(subjects.rpc('site-a', 'host.h1'), bytes('op'), 3000)),
        'host got op',
      );
      assert.equal(h.denied(a!), 0);
      assert.equal(h.denied(b!), 0);
    });

    it("does not let site-a publish on site-b's subjects", T, async () => {
      const [a, b, c] = await sites();
      const atB: string[] = [];
      b!.subscribe(subjects.allChanges, (m) => atB.push(`${m.subject}=${text(m.data)}`));
      b!.subscribe(subjects.allHeartbeats, (m) => atB.push(`${m.subject}=${text(m.data)}`));
      await h.settle([a!, b!, c!]);
      a!.publish(subjects.changes('site-b'), bytes('forged'));
      a!.publish(subjects.heartbeat('site-b'), bytes('forged'));
      a!.publish(subjects.changes('site-a'), bytes('genuine'));
      await waitFor('the genuine batch', () => atB.length >= 1);
      await waitFor('the refusals to be counted', () => h.denied(a!) >= 2);
      await sleep(h.quietMs);
      assert.deepEqual(atB, ['atoll.site-a.changes=genuine']);
    });

    it("does not let site-a call site-b's compute hosts", T, async () => {
      const [a, b] = await sites();
      b!.serve(subjects.rpc('site-b', 'host.*'), () => bytes('ran'));
      await h.settle([a!, b!]);
      await rejectsWith(
        a!.request(subjects.rpc('site-b', 'host.h1'), bytes('reboot'), 3000),
        FabricErrorCode.Permission,
      );
      assert.equal(text(await b!.request(subjects.rpc('site-b', 'host.h1'), bytes('x'), 3000)), 'ran');
    });

    it("does not let site-a read site-b's requests or replies", T, async () => {
      const [a, b, c] = await sites();
      const spied: string[] = [];
      const spy = (pattern: string) => {
        try {
          a!.subscribe(pattern, (m) => spied.push(m.subject));
          return 'accepted';
        } catch (e) {
          assert.ok(e instanceof FabricError && e.code === FabricErrorCode.Permission, String(e));
          return 'refused';
        }
      };
      const impersonate = () => {
        try {
          a!.serve(subjects.rpc('site-b', 'http'), () => bytes('a pretending to be b'));
          return 'accepted';
        } catch (e) {
          assert.ok(e instanceof FabricError && e.code === FabricErrorCode.Permission, String(e));
          return 'refused';
        }
      };
      const outcomes = [spy('atoll.site-b.rpc.>'), spy('_INBOX_site-b.>'), spy('>'), impersonate()];
      assert.deepEqual(outcomes, Array(4).fill(h.syncRefusal ? 'refused' : 'accepted'));
      b!.serve(subjects.rpc('site-b', 'http'), () => bytes('b'));
      c!.serve(subjects.rpc('site-c', 'changes'), () => bytes('secret reply for b'));
      await waitFor('the refusals', () => h.denied(a!) >= 4);
      await h.settle([a!, b!, c!]);
      // Several calls: with a's responder in the same queue group, some would have reached it.
      for (let i = 0; i < 6; i++) {
        assert.equal(text(await c!.request(subjects.rpc('site-b', 'http'), bytes('{}'), 3000)), 'b');
        assert.equal(
          text(await b!.request(subjects.rpc('site-c', 'changes'), bytes('{}'), 3000)),
          'secret reply for b',
        );
      }
      await sleep(h.quietMs);
      assert.deepEqual(spied, []);
    });
  });
}

describe('NATS links: authentication and TLS', () => {
  let cluster: NatsCluster | undefined;
  before(async () => {
    cluster = await startNatsCluster(2, {
      secure: { sites: ['site-a', 'site-b', 'site-c'], tls: true, nkeySites: ['site-c'] },
    });
  }, T);
  after(() => cluster?.stop(), T);

  /** The error a raw client gets, or undefined when it connected. */
  const tryConnect = async (opts: Parameters<typeof connect>[0]): Promise<unknown> => {
    try {
      const nc = await connect({ servers: cluster!.urls[0]!, reconnect: false, timeout: 3000, ...opts });
      await nc.close();
      return undefined;
    } catch (e) {
      return e;
    }
  };

  it('accepts a site with its password and certificate (and a per-site inbox)', T, async () => {
    const f = await NatsFabric.connect('site-a', {
      servers: cluster!.urls[0]!,
      ...cluster!.credentials('site-a'),
    });
    try {
      assert.ok(f.nc.info?.tls_required);
      assert.equal(f.nc.info?.tls_verify, true);
      assert.ok(f.nc.getServer());
    } finally {
      await f.close();
    }
  });

  it('accepts a site by its nkey, and refuses another nkey', T, async () => {
    const { nkeySeed, tls } = cluster!.credentials('site-c');
    const f = await NatsFabric.connect('site-c', {
      servers: cluster!.urls[1]!,
      nkeySeed: nkeySeed!,
      tls: tls!,
    });
    await f.close();
    const stranger = new TextDecoder().decode(nkeys.createUser().getSeed());
    const err = await tryConnect({
      authenticator: nkeyAuthenticator(new TextEncoder().encode(stranger)),
      tls: tls!,
    });
    assert.ok(err instanceof NatsError, String(err));
    assert.equal(err.code, ErrorCode.AuthorizationViolation);
  });

  it('with checkPermissions, refuses in the client at once', T, async () => {
    const f = await NatsFabric.connect('site-a', {
      servers: cluster!.urls[0]!,
      ...cluster!.credentials('site-a'),
      checkPermissions: true,
    });
    try {
      const isPermission = (e: unknown) => e instanceof FabricError && e.code === FabricErrorCode.Permission;
      assert.throws(() => f.serve(subjects.rpc('site-b', 'http'), () => new Uint8Array()), isPermission);
      assert.throws(() => f.subscribe('_INBOX_site-b.>', () => {}), isPermission);
      await rejectsWith(
        f.request(subjects.rpc('site-b', 'host.h1'), bytes('x'), 1000),
        FabricErrorCode.Permission,
      );
      f.publish(subjects.changes('site-b'), bytes('forged'));
      assert.equal(f.stats.denied, 4);
      f.serve(subjects.rpc('site-a', 'http'), () => new Uint8Array()); // its own: fine
    } finally {
      await f.close();
    }
  });

  it('refuses a client without credentials', T, async () => {
    const { tls } = cluster!.credentials('site-a');
    const err = await tryConnect({ tls: tls! });
    assert.ok(err instanceof NatsError, String(err));
    assert.equal(err.code, ErrorCode.AuthorizationViolation);
  });

  it('refuses a wrong password', T, async () => {
    const { tls } = cluster!.credentials('site-a');
    const err = await tryConnect({ user: 'site-a', pass: 'not-the-password', tls: tls! });
    assert.ok(err instanceof NatsError, String(err));
    assert.equal(err.code, ErrorCode.AuthorizationViolation);
  });

  it("refuses site-b's password used as site-a", T, async () => {
    const { tls } = cluster!.credentials('site-a');
    const err = await tryConnect({ user: 'site-a', pass: cluster!.credentials('site-b').pass!, tls: tls! });
    assert.ok(err instanceof NatsError, String(err));
  });

  it('refuses a client without a certificate, even with the right password', T, async () => {
    const { user, pass, tls } = cluster!.credentials('site-a');
    const err = await tryConnect({ user: user!, pass: pass!, tls: { caFile: tls!.caFile } });
    assert.ok(err !== undefined, 'connected without a client certificate');
  });

  it('refuses a client that does not speak TLS', T, async () => {
    const { user, pass } = cluster!.credentials('site-a');
    const err = await tryConnect({ user: user!, pass: pass! });
    assert.ok(err !== undefined, 'connected in plain text');
  });
});
