/**
 * @module Membership and keys, in-process sites in `admitted` trust mode: joining needs a one-time,
 * expiring invite; a site nobody admitted is ignored; an evicted site's tokens, changes and forwarded
 * requests are refused everywhere; a rotated token-signing key keeps old tokens valid until expiry.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { generateKeyPairSync, randomUUID } from 'node:crypto';
import { systemClock } from '../src/core/ports.ts';
import { decodeJson, encodeJson, subjects } from '../src/fabric/fabric.ts';
import { MemoryNetwork } from '../src/fabric/memory/network.ts';
import { joinRpc } from '../src/federation/membership.ts';
import { startSite } from '../src/site/launch.ts';
import type { Site } from '../src/site/site.ts';
import { ADMIN, eventually } from './support/cloud.ts';

const cfg = (name: string) => ({
  name,
  dataDir: ':memory:',
  logLevel: 'silent' as const,
  passwordHashCost: 10,
  heartbeatMs: 100,
  downAfterMs: 400,
  trust: 'admitted' as const,
});

async function tokenAt(site: Site): Promise<string | undefined> {
  const r = await site.app.inject({
    method: 'POST',
    url: '/identity/v3/auth/tokens?nocatalog',
    payload: {
      auth: {
        identity: {
          methods: ['password'],
          password: { user: { name: 'admin', domain: { id: 'default' }, password: ADMIN.adminPassword } },
        },
        scope: { project: { name: 'admin', domain: { id: 'default' } } },
      },
    },
  });
  return r.statusCode === 201 ? String(r.headers['x-subject-token']) : undefined;
}

async function validAt(site: Site, token: string): Promise<number> {
  const r = await site.app.inject({
    method: 'GET',
    url: '/identity/v3/auth/tokens?nocatalog',
    headers: { 'x-auth-token': token, 'x-subject-token': token },
  });
  return r.statusCode;
}

async function invite(site: Site, token: string, name?: string, ttl = 600): Promise<string> {
  const r = await site.app.inject({
    method: 'POST',
    url: '/atoll/v1/invites',
    headers: { 'x-auth-token': token },
    payload: { invite: { site_name: name ?? null, ttl_seconds: ttl } },
  });
  assert.equal(r.statusCode, 201, r.body);
  return (JSON.parse(r.body) as { invite: { token: string } }).invite.token;
}

describe('membership: invites, admission, eviction, key rotation', () => {
  const net = new MemoryNetwork(systemClock, { defaultLink: { latencyMs: 2 } });
  const sites: Site[] = [];
  let a: Site, b: Site, c: Site;
  before(async () => {
    a = await startSite(cfg('site-a'), net.connect('site-a'), { listen: false, bootstrap: ADMIN });
    const t = (await tokenAt(a))!;
    b = await startSite(cfg('site-b'), net.connect('site-b'), {
      listen: false,
      invite: await invite(a, t, 'site-b'),
    });
    await eventually(() => tokenAt(b), 5000, 'site-b to have the admin user');
    const tb = (await tokenAt(b))!;
    // site-c is invited by site-b, not by the founder: trust follows admissions.
    c = await startSite(cfg('site-c'), net.connect('site-c'), { listen: false, invite: await invite(b, tb) });
    sites.push(a, b, c);
    await eventually(() => tokenAt(c), 5000, 'site-c to have the admin user');
  });
  after(async () => {
    for (const s of sites) await s.close();
  });

  it('every admitted site accepts every other admitted site’s tokens', async () => {
    for (const issuer of [a, b, c]) {
      const t = (await tokenAt(issuer))!;
      for (const v of [a, b, c])
        assert.equal(await validAt(v, t), 200, `${issuer.ctx.name} token at ${v.ctx.name}`);
    }
  });

  it('an invite works once, for the named site only, and not after it expires', async () => {
    const t = (await tokenAt(a))!;
    const inv = await invite(a, t, 'site-x');
    const wrongName = await startSite(cfg('site-y'), net.connect('site-y'), { listen: false }).then(
      async (y) => {
        sites.push(y);
        return y.ctx.membership.join(y.ctx.fabric, inv).then(
          () => 'joined',
          (e: Error) => e.message,
        );
      },
    );
    assert.match(wrongName, /invite is for site site-x/);
    const x = await startSite(cfg('site-x'), net.connect('site-x'), { listen: false });
    sites.push(x);
    assert.equal(await x.ctx.membership.join(x.ctx.fabric, inv), 'site-a');
    await assert.rejects(x.ctx.membership.join(x.ctx.fabric, inv), /already used/);
    const short = await invite(a, t, undefined, 1);
    await new Promise((r) => setTimeout(r, 1100));
    const z = await startSite(cfg('site-z'), net.connect('site-z'), { listen: false });
    sites.push(z);
    await assert.rejects(z.ctx.membership.join(z.ctx.fabric, short), /expired/);
  });

  it('a site nobody admitted is ignored: its changes are not applied anywhere', async () => {
    const y = sites.find((s) => s.ctx.name === 'site-y')!;
    await new Promise((r) => setTimeout(r, 500));
    for (const s of [a, b, c]) {
      assert.equal(s.ctx.registry.get('site-y'), undefined, `${s.ctx.name} applied site-y's registry row`);
      assert.ok(s.ctx.replicator.stats.forged > 0);
    }
    assert.ok(y);
  });

  it('rotation: new tokens use the new key, old tokens stay valid everywhere', async () => {
    const t = (await tokenAt(b))!;
    const old = await tokenAt(b);
    const r = await b.app.inject({
      method: 'POST',
      url: '/atoll/v1/keys/rotate',
      headers: { 'x-auth-token': t },
    });
    assert.equal(r.statusCode, 201, r.body);
    const newer = (await tokenAt(b))!;
    const kid = (tok: string) =>
      (JSON.parse(Buffer.from(tok.split('.')[0]!, 'base64url').toString()) as { kid: string }).kid;
    assert.notEqual(kid(newer), kid(old!));
    await eventually(async () => (await validAt(a, newer)) === 200, 5000, 'new key at site-a');
    for (const v of [a, b, c]) assert.equal(await validAt(v, old!), 200);
  });

  it('eviction: the evicted site’s tokens, changes and forwarded requests are refused everywhere', async () => {
    const tc = (await tokenAt(c))!;
    const ta = (await tokenAt(a))!;
    assert.equal(await validAt(a, tc), 200);
    const r = await a.app.inject({
      method: 'POST',
      url: '/atoll/v1/sites/site-c/evict',
      headers: { 'x-auth-token': ta },
      payload: { evict: { reason: 'test' } },
    });
    assert.equal(r.statusCode, 202, r.body);
    await eventually(async () => (await validAt(b, tc)) === 401, 5000, 'site-b to refuse site-c tokens');
    assert.equal(await validAt(a, tc), 401);
    // A change made at site-c is not applied at a or b.
    const forgedBefore = a.ctx.replicator.stats.forged;
    c.ctx.changelog.put('region', { id: 'from-evicted', description: 'x', parent_region_id: null });
    await eventually(
      () => a.ctx.replicator.stats.forged > forgedBefore,
      5000,
      'site-a to refuse site-c changes',
    );
    assert.equal(a.ctx.store.db.prepare("SELECT 1 FROM regions WHERE id = 'from-evicted'").get(), undefined);
    // A request site-c forwards to site-a is refused by site-a.
    const tac = (await tokenAt(a))!;
    const fwd = await c.ctx.forwarder.forward('site-a', {
      method: 'GET',
      url: '/identity/v3/projects',
      headers: { 'x-auth-token': tac },
    });
    assert.equal(fwd.status, 403);
    // The sites list shows it as evicted.
    const list = await b.app.inject({
      method: 'GET',
      url: '/atoll/v1/sites',
      headers: { 'x-auth-token': (await tokenAt(b))! },
    });
    const row = (JSON.parse(list.body) as { sites: { name: string; registered_state: string }[] }).sites.find(
      (s) => s.name === 'site-c',
    );
    assert.equal(row?.registered_state, 'evicted');
  });
});

describe('names: a site name belongs to one site for good (issue 11, class 5)', () => {
  const net = new MemoryNetwork(systemClock, { defaultLink: { latencyMs: 2 } });
  const open = (name: string) => ({ ...cfg(name), trust: 'open' as const });
  const sites: Site[] = [];
  let a: Site, b: Site;
  before(async () => {
    a = await startSite(open('site-a'), net.connect('site-a'), { listen: false, bootstrap: ADMIN });
    b = await startSite(open('site-b'), net.connect('site-b'), { listen: false });
    sites.push(a, b);
    await eventually(() => tokenAt(b), 5000, 'site-b to have the admin user');
  });
  after(async () => {
    for (const s of sites) await s.close();
  });

  /** Presents an invite on the join RPC as a newcomer would, under `name`, with a key of its own; the
   * inviter's answer in the RPC envelope (src/fabric/rpc.ts). */
  async function redeemAs(
    token: string,
    name: string,
  ): Promise<{ ok: boolean; error?: { message: string } }> {
    const t = JSON.parse(Buffer.from(token, 'base64url').toString()) as { s: string; i: string; k: string };
    const key = generateKeyPairSync('ed25519').publicKey.export({ type: 'spki', format: 'pem' }).toString();
    const f = net.connect(`imp-${randomUUID().slice(0, 8)}`);
    try {
      const req = { v: joinRpc.version, invite: t.i, secret: t.k, site: name, identityKey: key };
      return decodeJson(await f.request(subjects.rpc(t.s, 'join'), encodeJson(req), 2000));
    } finally {
      await f.close();
    }
  }

  it('a nameless invite cannot be redeemed under a live site’s name; the real site keeps working', async () => {
    const ta = (await tokenAt(a))!;
    const reply = await redeemAs(await invite(a, ta), 'site-b');
    assert.equal(reply.ok, false);
    assert.match(reply.error?.message ?? '', /site name site-b is taken/);
    assert.equal(a.ctx.registry.admittedKey('site-b'), undefined);
    // site-b's new tokens and changes are still accepted at site-a.
    b.ctx.changelog.put('region', { id: 'b-after', description: 'x', parent_region_id: null });
    await eventually(
      () => a.ctx.store.db.prepare("SELECT 1 FROM regions WHERE id = 'b-after'").get(),
      5000,
      'site-a to apply site-b’s change',
    );
    assert.equal(await validAt(a, (await tokenAt(b))!), 200);
  });

  it('a site that hears another instance under its own name refuses forwarded writes (503)', async () => {
    const f = net.connect('hb-forger');
    const hb = {
      v: 1,
      site: 'site-b',
      version: 'x',
      head: 0,
      endpoint: '',
      sentAt: Date.now(),
      instance: 'other',
    };
    f.publish(subjects.heartbeat('site-b'), encodeJson(hb));
    await eventually(() => b.ctx.replicator.nameConflict() === 'other', 2000, 'site-b to notice');
    const ta = (await tokenAt(a))!;
    const fwd = await a.ctx.forwarder.forward('site-b', {
      method: 'POST',
      url: '/identity/v3/regions',
      headers: { 'x-auth-token': ta, 'content-type': 'application/json' },
      body: JSON.stringify({ region: { id: 'nope' } }),
    });
    assert.equal(fwd.status, 503);
    await f.close();
    await eventually(() => b.ctx.replicator.nameConflict() === undefined, 3000, 'the conflict to expire');
  });

  it('a named invite binds once: a second redemption under its name is refused', async () => {
    const ta = (await tokenAt(a))!;
    const inv = await invite(a, ta, 'site-n');
    assert.equal((await redeemAs(inv, 'site-n')).ok, true);
    const again = await redeemAs(inv, 'site-n');
    assert.equal(again.ok, false);
    assert.match(again.error?.message ?? '', /already used/);
    const other = await redeemAs(await invite(a, ta), 'site-n');
    assert.equal(other.ok, false);
    assert.match(other.error?.message ?? '', /site name site-n is taken/);
  });
});

describe('a refused join leaves no trace (open trust)', () => {
  const net = new MemoryNetwork(systemClock, { defaultLink: { latencyMs: 2 } });
  const open = (name: string) => ({ ...cfg(name), trust: 'open' as const });
  let a: Site;
  before(async () => {
    a = await startSite(open('site-a'), net.connect('site-a'), { listen: false, bootstrap: ADMIN });
  });
  after(async () => a?.close());

  it('a site whose invite is refused publishes nothing: no registry row, AZ or region appears anywhere', async () => {
    const t = (await tokenAt(a))!;
    const inv = await invite(a, t, 'site-x');
    await assert.rejects(
      startSite(open('site-g'), net.connect('site-g'), { listen: false, invite: inv }),
      /invite is for site site-x/,
    );
    // Heartbeats (every 100 ms) and pulls would have carried its registry row by now.
    await new Promise((r) => setTimeout(r, 600));
    assert.equal(a.ctx.registry.get('site-g'), undefined);
    const zones = await a.app.inject({
      method: 'GET',
      url: '/compute/v2.1/os-availability-zone',
      headers: { 'x-auth-token': t },
    });
    assert.doesNotMatch(zones.body, /site-g/);
  });
});
