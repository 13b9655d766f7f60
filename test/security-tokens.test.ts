/**
 * @module Token validation does not take the signer's word for time or spelling: tokens forged with a
 * site's real signing key (read from its database, as a compromised site holds it) with a lifetime
 * beyond the TTL, an `iat` in the future, or signed by a retired key after it retired get 401 at every
 * site; a token's non-canonical spellings are refused and cannot grow the validation cache.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { startLocalCloud, eventually } from './support/cloud.ts';
import { signToken } from './support/compromised-site.ts';
import type { LocalCloud } from './support/cloud.ts';
import { TOKEN_CACHE_MAX } from '../src/services/identity/domain/tokens.ts';
import type { TokenClaims } from '../src/services/identity/domain/tokens.ts';

describe('token validation holds the signer to the verifier’s limits', () => {
  let cloud: LocalCloud;
  let admin: string;
  before(async () => {
    cloud = await startLocalCloud({ sites: 2 });
    admin = await cloud.adminToken(0);
    await cloud.converged();
  });
  after(async () => cloud?.close());

  const siteA = () => cloud.fed.sites[0]!;
  /** The compromised site's keys, straight from its database. */
  const keyRows = () =>
    siteA()
      .ctx.store.db.prepare('SELECT kid, private_key, active FROM site_private_keys ORDER BY created_at')
      .all() as {
      kid: string;
      private_key: string;
      active: number;
    }[];
  const claimsOf = (t: string) =>
    JSON.parse(Buffer.from(t.split('.')[1]!, 'base64url').toString()) as TokenClaims;
  const forge = signToken;
  const status = async (i: number, token: string) =>
    (
      await cloud.fed.sites[i]!.app.inject({
        method: 'GET',
        url: '/identity/v3/auth/tokens',
        headers: { 'x-auth-token': token, 'x-subject-token': token },
      })
    ).statusCode;
  const everywhere = async (token: string) => Promise.all([0, 1].map((i) => status(i, token)));

  it('a correctly forged token is accepted (control), so the refusals below are about the claim', async () => {
    const k = keyRows().find((r) => r.active)!;
    const now = Date.now();
    const t = forge(k.kid, k.private_key, { ...claimsOf(admin), iat: now, exp: now + 600_000 });
    assert.deepEqual(await everywhere(t), [200, 200]);
  });

  it('a 10-year lifetime is refused everywhere (401)', async () => {
    const k = keyRows().find((r) => r.active)!;
    const now = Date.now();
    const t = forge(k.kid, k.private_key, { ...claimsOf(admin), iat: now, exp: now + 10 * 365 * 86400_000 });
    assert.deepEqual(await everywhere(t), [401, 401]);
  });

  it('an iat in the future is refused everywhere (401)', async () => {
    const k = keyRows().find((r) => r.active)!;
    const now = Date.now() + 3 * 86400_000;
    const t = forge(k.kid, k.private_key, { ...claimsOf(admin), iat: now, exp: now + 600_000 });
    assert.deepEqual(await everywhere(t), [401, 401]);
  });

  it('a retired key verifies only tokens issued before it retired', async () => {
    const old = keyRows().find((r) => r.active)!;
    const before = forge(old.kid, old.private_key, {
      ...claimsOf(admin),
      iat: Date.now() - 1000,
      exp: Date.now() + 600_000,
    });
    const r = await siteA().app.inject({
      method: 'POST',
      url: '/atoll/v1/keys/rotate',
      headers: { 'x-auth-token': admin },
    });
    assert.equal(r.statusCode, 201, r.body);
    await cloud.converged();
    const later = Date.now() + 5;
    await new Promise((res) => setTimeout(res, 10));
    const after = forge(old.kid, old.private_key, { ...claimsOf(admin), iat: later, exp: later + 600_000 });
    await eventually(async () => (await status(1, after)) === 401, 5000, 'site-b sees the retirement');
    assert.deepEqual(await everywhere(after), [401, 401]);
    assert.deepEqual(await everywhere(before), [200, 200]);
  });

  it('non-canonical spellings are refused and 30,000 of them leave the cache bounded', async () => {
    const tokens = siteA().ctx.tokens as unknown as { cacheSize: number; cache?: Map<string, unknown> };
    assert.equal(await status(0, `${admin}=`), 401);
    assert.equal(await status(0, `${admin}==x`), 401);
    const [h, p, s] = admin.split('.') as [string, string, string];
    assert.equal(await status(0, `${h}.${p}.${s.slice(0, -1)}${s.endsWith('A') ? 'B' : 'A'}`), 401);
    assert.equal(await status(0, `${h}.${p}+.${s}`), 401);
    for (let i = 0; i < 30_000; i++) {
      const r = await siteA().app.inject({
        method: 'GET',
        url: '/identity/v3/auth/tokens',
        headers: { 'x-auth-token': `${admin}=${i}`, 'x-subject-token': admin },
      });
      assert.equal(r.statusCode, 401);
    }
    const size = tokens.cacheSize ?? tokens.cache?.size;
    assert.ok(size! <= TOKEN_CACHE_MAX, `cache holds ${size}`);
    assert.ok(size! < 1000, `variants were cached: ${size}`);
    assert.equal(await status(0, admin), 200);
  });
});
