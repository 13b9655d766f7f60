/**
 * @module TokenService over a fake reader: a cached validation holds until the token (or its trust)
 * expires, a change of grants drops validations but keeps verified signatures, a change of site keys
 * drops those too, and the caches stay within their bound.
 */
import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { describe, it } from 'node:test';
import type { IdentityReader, TokenClaims, TrustRef } from './tokens.ts';
import { TokenService } from './tokens.ts';

function fakeReader() {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  const state = {
    userEnabled: 1,
    revoked: false,
    keyKnown: true,
    trust: undefined as TrustRef | undefined,
  };
  const reader: IdentityReader = {
    publicKey: (kid) =>
      kid === 'site-a.k1' && state.keyKnown
        ? { publicKey: publicKey.export({ type: 'spki', format: 'pem' }).toString(), site: 'site-a' }
        : undefined,
    signingKey: () => ({
      kid: 'site-a.k1',
      privateKey: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
    }),
    user: (id) => ({ id, name: id, domain_id: 'default', enabled: state.userEnabled }),
    domain: (id) => ({ id, name: id, enabled: 1 }),
    project: (id) => ({ id, name: id, domain_id: 'default', enabled: 1 }),
    roles: () => [{ id: 'r-member', name: 'member' }],
    appCredRoles: () => undefined,
    isRevoked: () => state.revoked,
    trust: () => state.trust,
  };
  return { reader, state };
}

const claims = (now: number, extra: Partial<TokenClaims> = {}): TokenClaims => ({
  sub: 'u1',
  iss: 'site-a',
  iat: now,
  exp: now + 60_000,
  m: ['password'],
  ai: ['audit-1'],
  p: 'p1',
  ...extra,
});

describe('TokenService caches', () => {
  it('a change of grants drops validations, not verified signatures; a change of keys drops both', () => {
    let now = 1_000_000;
    const { reader, state } = fakeReader();
    const tokens = new TokenService(reader, () => now);
    const t = tokens.issue(claims(now));
    tokens.validate(t);
    tokens.validate(t);
    assert.equal(tokens.stats.signatureChecks, 1);
    assert.equal(tokens.stats.cacheHits, 1);

    tokens.invalidateGrants();
    assert.equal(tokens.validate(t).userId, 'u1');
    assert.equal(tokens.stats.signatureChecks, 1, 'the signature is not checked again');
    // What a token grants is read again at once: a revocation or a disabled user fails.
    state.revoked = true;
    tokens.invalidateGrants();
    assert.throws(() => tokens.validate(t), /revoked/);
    state.revoked = false;
    state.userEnabled = 0;
    tokens.invalidateGrants();
    assert.throws(() => tokens.validate(t), /disabled/);
    state.userEnabled = 1;

    // A key change (rotation, eviction) drops verified signatures too: an evicted issuer's token fails.
    state.keyKnown = false;
    tokens.invalidate();
    assert.throws(() => tokens.validate(t), /unknown or evicted/);
    state.keyKnown = true;
    tokens.invalidate();
    tokens.validate(t);
    assert.equal(tokens.stats.signatureChecks, 2);

    // Expiry is checked on every validation, cached or not, verified or not.
    now += 60_000;
    assert.throws(() => tokens.validate(t), /expired/);
    tokens.invalidateGrants();
    assert.throws(() => tokens.validate(t), /expired/);
  });

  it('a forged signature is never remembered as verified', () => {
    const now = 1_000_000;
    const { reader } = fakeReader();
    const tokens = new TokenService(reader, () => now);
    const t = tokens.issue(claims(now));
    const [h, p, s] = t.split('.') as [string, string, string];
    const other = Buffer.from(s, 'base64url');
    other[0]! ^= 1;
    const forged = `${h}.${p}.${other.toString('base64url')}`;
    for (let i = 0; i < 2; i++) assert.throws(() => tokens.validate(forged), /signature is invalid/);
    assert.equal(tokens.stats.signatureChecks, 2);
  });

  it('a cached trust-scoped validation ends when its trust expires, before the token', () => {
    let now = 1_000_000;
    const { reader, state } = fakeReader();
    state.trust = {
      id: 'tr1',
      trustor_user_id: 'u0',
      trustee_user_id: 'u1',
      project_id: 'p1',
      impersonation: 0,
      roles: JSON.stringify([{ id: 'r-member', name: 'member' }]),
      expires_at: now + 5_000,
      redelegated_trust_id: null,
    };
    const tokens = new TokenService(reader, () => now);
    const t = tokens.issue(claims(now, { tr: 'tr1' }));
    assert.equal(tokens.validate(t).trustId, 'tr1');
    now += 4_000;
    assert.equal(tokens.validate(t).trustId, 'tr1');
    assert.equal(tokens.stats.cacheHits, 1);
    now += 1_000;
    assert.throws(() => tokens.validate(t), /trust has expired/);
  });

  it('keeps at most maxCache validations and verified signatures', () => {
    const now = 1_000_000;
    const { reader } = fakeReader();
    const tokens = new TokenService(reader, () => now, { maxCache: 3 });
    const all = Array.from({ length: 5 }, (_, i) => tokens.issue(claims(now, { ai: [`a${i}`] })));
    for (const t of all) tokens.validate(t);
    assert.equal(tokens.cacheSize, 3);
    assert.equal(tokens.verifiedSize, 3);
    // The least recently used went first: the first token is checked again, the last is not.
    const checks = tokens.stats.signatureChecks;
    tokens.invalidateGrants();
    tokens.validate(all[4]!);
    assert.equal(tokens.stats.signatureChecks, checks);
    tokens.validate(all[0]!);
    assert.equal(tokens.stats.signatureChecks, checks + 1);
  });
});
