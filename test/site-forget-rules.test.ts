/**
 * @module `atoll site forget` at the membership authority, in-process (admitted trust): a site admitted
 * by an invite that never registered (it never made it) can be forgotten at once, and is then refused
 * a second admission under that name; forgetting is refused for a site that is not known.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { systemClock } from '../src/core/ports.ts';
import { MemoryNetwork } from '../src/fabric/memory/network.ts';
import { startSite } from '../src/site/launch.ts';
import type { Site } from '../src/site/site.ts';
import { ADMIN } from './support/cloud.ts';

const cfg = (name: string) => ({
  name,
  dataDir: ':memory:',
  logLevel: 'silent' as const,
  passwordHashCost: 10,
  heartbeatMs: 100,
  downAfterMs: 400,
  trust: 'admitted' as const,
});

const pem = () => generateKeyPairSync('ed25519').publicKey.export({ type: 'spki', format: 'pem' }).toString();

describe('forget rules at the membership authority', () => {
  const net = new MemoryNetwork(systemClock);
  let a: Site;
  before(async () => {
    a = await startSite(cfg('site-a'), net.connect('site-a'), { listen: false, bootstrap: ADMIN });
  });
  after(async () => a?.close());

  const redeem = (site: string) => {
    const { token } = a.ctx.membership.createInvite({ siteName: site, ttlSeconds: 60 });
    const t = JSON.parse(Buffer.from(token, 'base64url').toString()) as { i: string; k: string };
    return a.ctx.membership.redeem({ invite: t.i, secret: t.k, site, identityKey: pem() });
  };
  const forget = (site: string) =>
    a.ctx.membership.forget(site, 'test', { isUp: () => false, admittedOnly: true });

  it('an admitted site that never registered is forgotten, and its name is not handed out again', () => {
    redeem('site-n');
    assert.ok(a.ctx.registry.admittedKey('site-n'));
    assert.deepEqual(forget('site-n'), { already: false });
    assert.ok(a.ctx.registry.isForgotten('site-n'));
    assert.ok(a.ctx.registry.isEvicted('site-n'), 'refused as an evicted site is');
    assert.throws(() => redeem('site-n'), /was evicted/);
    assert.deepEqual(forget('site-n'), { already: true });
  });

  it('an unknown site is a 404, the authority itself a 400', () => {
    assert.throws(
      () => forget('site-zz'),
      (e: { status?: number }) => e.status === 404,
    );
    assert.throws(
      () => forget('site-a'),
      (e: { status?: number }) => e.status === 400,
    );
  });

  it('an admitted site that is up is refused with a 409', () => {
    redeem('site-u');
    assert.throws(
      () => a.ctx.membership.forget('site-u', 't', { isUp: () => true, admittedOnly: true }),
      (e: { status?: number; message: string }) => e.status === 409 && /is up/.test(e.message),
    );
  });
});
