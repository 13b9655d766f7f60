/**
 * @module Tokens: compact JWS (RFC 7515) signed with the issuing site's Ed25519 key (alg EdDSA), as
 * Keystone's JWS provider signs with per-node ES256 keys. Any site verifies a token offline with the
 * issuer's public key from the replicated site registry. Like Keystone's JWS and Fernet tokens, the
 * token carries ids only; roles are resolved from the (replicated) assignments at validation time.
 *
 * Validation results are cached (Keystone caches token validation too): the cache is dropped whenever
 * anything that could change the answer changes (revocations, assignments, users, projects, site keys),
 * locally or by replication, so a revocation takes effect at once. Verified signatures are kept apart
 * (bounded, LRU): a change of grants drops the validations but not them, since a signature's verdict
 * depends on the token and the issuer's key only; a change of site keys drops them too.
 *
 * The verifier does not take the signer's word for time: a token lives at most this site's configured
 * TTL (`exp - iat`), may not be issued more than CLOCK_SKEW_MS in the future (it would outlive a
 * revocation, which covers tokens issued before it), and a retired key verifies only tokens issued
 * before it retired. Only the canonical base64url form is accepted, so one token has one spelling and
 * the bounded (LRU) cache cannot be filled with variants of it.
 */
import { createPrivateKey, createPublicKey, sign, verify } from 'node:crypto';
import type { KeyObject } from 'node:crypto';
import type { AccessRule, AuthContext, TokenValidator } from '../../../core/auth.ts';
import { impliedRoles, isAdminProject } from '../../../core/auth.ts';
import { Unauthorized } from '../../../core/errors.ts';

/** What the token says (short claim names keep tokens small). */
export interface TokenClaims {
  /** user id */
  sub: string;
  /** issuing site */
  iss: string;
  /** issued at, ms */
  iat: number;
  /** expires at, ms */
  exp: number;
  /** authentication methods */
  m: string[];
  /** audit ids: this token's, then the chain's first (Keystone's audit_ids) */
  ai: string[];
  /** project scope */
  p?: string;
  /** domain scope */
  d?: string;
  /** system scope (Keystone's `system: {all: true}`) */
  sys?: 'all';
  /** application credential */
  ac?: string;
  /** trust (OS-TRUST): the token acts under this trust, on its project */
  tr?: string;
}

/** What validation reads of a trust (store/schema.ts TrustRow). */
export interface TrustRef {
  id: string;
  trustor_user_id: string;
  trustee_user_id: string;
  project_id: string | null;
  impersonation: number;
  roles: string;
  expires_at: number | null;
  redelegated_trust_id: string | null;
}

/** How many trusts a redelegation chain may hold (Keystone's max_redelegation_count is 3). */
export const MAX_TRUST_CHAIN = 10;

/** Where roles are held: a project, a domain, or the system (`system: true`). */
export interface RoleTarget {
  projectId?: string;
  domainId?: string;
  system?: boolean;
}

/** What token validation needs to read: the port a store (or a lab fake) implements. */
export interface IdentityReader {
  /** `retiredAt` (ms) when the key was rotated out: it verifies only tokens issued before. */
  publicKey(kid: string): { publicKey: string; site: string; retiredAt?: number } | undefined;
  signingKey(): { kid: string; privateKey: string } | undefined;
  user(id: string): { id: string; name: string; domain_id: string; enabled: number } | undefined;
  domain(id: string): { id: string; name: string; enabled: number } | undefined;
  project(id: string): { id: string; name: string; domain_id: string; enabled: number } | undefined;
  /** Effective roles (direct, through groups, inherited) of a user on a project, a domain or the system. */
  roles(userId: string, target: RoleTarget): { id: string; name: string }[];
  appCredRoles(appCredId: string): { id: string; name: string }[] | undefined;
  /** The credential's access rules (none: no limit beyond its roles). */
  appCredAccessRules?(appCredId: string): AccessRule[];
  /** The roles with every role they imply by the inference rules (implied roles), transitively. */
  withImplied?(refs: { id: string; name: string }[]): { id: string; name: string }[];
  isRevoked(claims: TokenClaims, projectId: string | undefined): boolean;
  /** A trust by id (trust-scoped tokens). */
  trust?(id: string): TrustRef | undefined;
  /** Drops memoized lookups (called with the validation cache). */
  clear?(): void;
}

const b64 = (b: Buffer | string) => Buffer.from(b).toString('base64url');

/** Sets a key as the most recently used; drops the least recently used (a Map's first keys) over `max`. */
function lruSet<V>(m: Map<string, V>, key: string, v: V, max: number): void {
  m.delete(key);
  m.set(key, v);
  while (m.size > max) m.delete(m.keys().next().value as string);
}

/** How far in the future a token's `iat` may be (clocks of sites differ a little). */
export const CLOCK_SKEW_MS = 60_000;
/** Most validations kept (least recently used dropped first). */
export const TOKEN_CACHE_MAX = 10_000;
/** Lifetime accepted when the site gives none (Keystone's default token expiration). */
const DEFAULT_MAX_TTL_MS = 3600_000;
const B64URL = /^[A-Za-z0-9_-]+$/;

/** Decodes one JWS part, only in its canonical spelling (no padding, no stray bits, no other alphabet). */
function part(s: string): Buffer {
  const b = B64URL.test(s) ? Buffer.from(s, 'base64url') : undefined;
  if (!b || b.toString('base64url') !== s) throw new Unauthorized('The token is malformed.');
  return b;
}

export class TokenService implements TokenValidator {
  private reader: IdentityReader;
  private now: () => number;
  /** Validations by token, with the time each stops holding (the token's, or an earlier trust's, expiry). */
  private cache = new Map<string, { ctx: AuthContext; until: number }>();
  private keyObjects = new Map<string, { key: KeyObject; retiredAt?: number }>();
  /** Claims of tokens whose signature (and time limits) passed, until site keys change. */
  private verified = new Map<string, TokenClaims>();
  private signer: { kid: string; key: KeyObject } | undefined;
  readonly maxCache: number;
  readonly maxTtlMs: number;
  readonly stats = { validations: 0, cacheHits: 0, signatureChecks: 0 };

  constructor(
    reader: IdentityReader,
    now: () => number,
    opts: { maxCache?: number; maxTtlMs?: number } = {},
  ) {
    this.reader = reader;
    this.now = now;
    this.maxCache = opts.maxCache ?? TOKEN_CACHE_MAX;
    this.maxTtlMs = opts.maxTtlMs ?? DEFAULT_MAX_TTL_MS;
  }

  /** Validations held in the cache (never above `maxCache`). */
  get cacheSize(): number {
    return this.cache.size;
  }

  /** Verified signatures held (never above `maxCache`). */
  get verifiedSize(): number {
    return this.verified.size;
  }

  private remember(token: string, v: { ctx: AuthContext; until: number }): void {
    lruSet(this.cache, token, v, this.maxCache);
  }

  /** Drops every cached validation, verified signature and key: called when site keys may have changed. */
  invalidate(): void {
    this.invalidateGrants();
    this.verified.clear();
    this.keyObjects.clear();
    this.signer = undefined;
  }

  /**
   * Drops every cached validation (and the reader's memoized rows), keeping verified signatures:
   * called when users, projects, roles, assignments or revocations change, which alter what a token
   * grants but not whether its issuer signed it.
   */
  invalidateGrants(): void {
    this.reader.clear?.();
    this.cache.clear();
  }

  issue(claims: TokenClaims): string {
    if (!this.signer) {
      const k = this.reader.signingKey();
      if (!k) throw new Error('this site has no signing key');
      this.signer = { kid: k.kid, key: createPrivateKey(k.privateKey) };
    }
    const header = b64(JSON.stringify({ alg: 'EdDSA', typ: 'JWT', kid: this.signer.kid }));
    const payload = b64(JSON.stringify(claims));
    const sig = sign(null, Buffer.from(`${header}.${payload}`), this.signer.key);
    return `${header}.${payload}.${b64(sig)}`;
  }

  /**
   * Signs new claims and returns the token with its validation, cached: the token was signed here a
   * moment ago, so its signature needs no check (issue then validate would verify it again).
   */
  issueValidated(claims: TokenClaims): { token: string; ctx: AuthContext } {
    const token = this.issue(claims);
    const v = this.resolve(token, claims);
    this.remember(token, v);
    return { token, ctx: v.ctx };
  }

  /** Verifies the signature and the time limits (not expiry), once per token; returns the claims. */
  verifySignature(token: string): TokenClaims {
    const known = this.verified.get(token);
    if (known) {
      lruSet(this.verified, token, known, this.maxCache);
      return known;
    }
    const claims = this.checkSignature(token);
    lruSet(this.verified, token, claims, this.maxCache);
    return claims;
  }

  private checkSignature(token: string): TokenClaims {
    const parts = token.split('.');
    if (parts.length !== 3 || token.length > 8192) throw new Unauthorized('The token is malformed.');
    const [h, p, s] = parts as [string, string, string];
    let header: { alg?: string; kid?: string };
    let claims: TokenClaims;
    try {
      header = JSON.parse(part(h).toString()) as { alg?: string; kid?: string };
      claims = JSON.parse(part(p).toString()) as TokenClaims;
    } catch {
      throw new Unauthorized('The token is malformed.');
    }
    const sig = part(s);
    if (header.alg !== 'EdDSA' || typeof header.kid !== 'string')
      throw new Unauthorized('The token is malformed.');
    let key = this.keyObjects.get(header.kid);
    if (!key) {
      const pk = this.reader.publicKey(header.kid);
      if (!pk) throw new Unauthorized('The token was signed by an unknown or evicted site.');
      key = {
        key: createPublicKey(pk.publicKey),
        ...(pk.retiredAt !== undefined ? { retiredAt: pk.retiredAt } : {}),
      };
      this.keyObjects.set(header.kid, key);
    }
    this.stats.signatureChecks++;
    if (!verify(null, Buffer.from(`${h}.${p}`), key.key, sig))
      throw new Unauthorized('The token signature is invalid.');
    if (
      typeof claims.sub !== 'string' ||
      !Number.isFinite(claims.exp) ||
      !Number.isFinite(claims.iat) ||
      !Array.isArray(claims.ai) ||
      !Array.isArray(claims.m)
    )
      throw new Unauthorized('The token is malformed.');
    // Time claims are the signer's word: hold them to this site's limits (Keystone: invalid, 401).
    if (claims.iat > this.now() + CLOCK_SKEW_MS) throw new Unauthorized('The token is issued in the future.');
    if (claims.exp - claims.iat > this.maxTtlMs)
      throw new Unauthorized('The token lifetime exceeds the allowed maximum.');
    if (key.retiredAt !== undefined && claims.iat >= key.retiredAt)
      throw new Unauthorized('The token was signed by a retired key after its retirement.');
    if (claims.iss !== header.kid.slice(0, header.kid.lastIndexOf('.')))
      throw new Unauthorized('The token issuer does not match its key.');
    return claims;
  }

  validate(token: string): AuthContext {
    this.stats.validations++;
    const hit = this.cache.get(token);
    const now = this.now();
    if (hit) {
      if (hit.until > now) {
        this.stats.cacheHits++;
        this.remember(token, hit);
        return hit.ctx;
      }
      this.cache.delete(token);
    }
    const claims = this.verifySignature(token);
    if (claims.exp <= now) throw new Unauthorized('The token has expired.');
    const v = this.resolve(token, claims);
    this.remember(token, v);
    return v.ctx;
  }

  /**
   * Checks the subject, scope and revocations, and looks up the roles; `until` is when this answer
   * stops holding by time alone: the token's expiry, or an earlier one of its trust chain (a cached
   * validation must not outlive the trust it rests on).
   */
  private resolve(token: string, claims: TokenClaims): { ctx: AuthContext; until: number } {
    const user = this.reader.user(claims.sub);
    if (!user || !user.enabled) throw new Unauthorized('The token user is unknown or disabled.');
    const userDomain = this.reader.domain(user.domain_id);
    if (!userDomain || !userDomain.enabled) throw new Unauthorized('The token user domain is disabled.');
    if (this.reader.isRevoked(claims, claims.p)) throw new Unauthorized('The token has been revoked.');
    const ctx: AuthContext = {
      token,
      userId: user.id,
      userName: user.name,
      userDomainId: userDomain.id,
      userDomainName: userDomain.name,
      roles: [],
      roleRefs: [],
      isAdmin: false,
      methods: claims.m,
      issuedAt: claims.iat,
      expiresAt: claims.exp,
      auditIds: claims.ai,
      issuer: claims.iss,
    };
    let refs: { id: string; name: string }[] = [];
    let adminProject = false;
    let until = claims.exp;
    if (claims.p) {
      const project = this.reader.project(claims.p);
      if (!project || !project.enabled) throw new Unauthorized('The token project is unknown or disabled.');
      const pd = this.reader.domain(project.domain_id);
      if (!pd || !pd.enabled) throw new Unauthorized('The token project domain is disabled.');
      ctx.projectId = project.id;
      ctx.projectName = project.name;
      ctx.projectDomainId = pd.id;
      ctx.projectDomainName = pd.name;
      adminProject = isAdminProject(project);
      const holder = claims.tr ? trustRoot(this.reader, claims.tr).trustor_user_id : user.id;
      refs = this.reader.roles(holder, { projectId: project.id });
    } else if (claims.d) {
      const d = this.reader.domain(claims.d);
      if (!d || !d.enabled) throw new Unauthorized('The token domain is unknown or disabled.');
      ctx.domainId = d.id;
      ctx.domainName = d.name;
      refs = this.reader.roles(user.id, { domainId: d.id });
    } else if (claims.sys === 'all') {
      ctx.system = true;
      refs = this.reader.roles(user.id, { system: true });
    }
    if (claims.tr) {
      const t = trustRoles(this.reader, claims.tr, claims, this.now());
      // The roles are the trust's (with what they imply) that the original trustor still holds.
      const held = new Set((this.reader.withImplied?.(refs) ?? refs).map((r) => r.id));
      refs = t.roles.filter((r) => held.has(r.id));
      if (refs.length === 0) throw new Unauthorized('The trustor no longer holds the delegated roles.');
      ctx.trustId = t.trust.id;
      ctx.trusteeUserId = t.trust.trustee_user_id;
      ctx.trustorUserId = t.trust.trustor_user_id;
      ctx.trustImpersonation = !!t.trust.impersonation;
      until = Math.min(until, t.expiresAt);
    }
    if (claims.ac) {
      const allowed = this.reader.appCredRoles(claims.ac);
      if (!allowed) throw new Unauthorized('The application credential no longer exists.');
      const ids = new Set(allowed.map((r) => r.id));
      refs = refs.filter((r) => ids.has(r.id));
      ctx.applicationCredentialId = claims.ac;
      const rules = this.reader.appCredAccessRules?.(claims.ac) ?? [];
      if (rules.length > 0) ctx.accessRules = rules;
    }
    if ((claims.p || claims.d || claims.sys) && refs.length === 0)
      throw new Unauthorized('The user no longer has a role on the token scope.');
    ctx.roleRefs = this.reader.withImplied?.(refs) ?? refs;
    ctx.roles = impliedRoles(ctx.roleRefs.map((r) => r.name));
    // Cloud admin only on the system or the admin project; admin elsewhere is a project or domain admin.
    ctx.isAdmin = (adminProject || ctx.system === true) && ctx.roles.includes('admin');
    return { ctx, until };
  }
}

/** The first trust of a redelegation chain (its trustor is the one whose roles are delegated). */
export function trustRoot(reader: IdentityReader, trustId: string): TrustRef {
  let t = reader.trust?.(trustId);
  for (let i = 0; t?.redelegated_trust_id && i < MAX_TRUST_CHAIN; i++)
    t = reader.trust?.(t.redelegated_trust_id);
  if (!t || t.redelegated_trust_id) throw new Unauthorized('The trust is unknown or its chain is broken.');
  return t;
}

/**
 * The trust of a trust-scoped token, checked against the token (its user is the trustee, or the
 * trustor when the trust impersonates; its project is the trust's) and its expiry, with the roles it
 * delegates and every role they imply.
 */
function trustRoles(
  reader: IdentityReader,
  trustId: string,
  claims: TokenClaims,
  now: number,
): { trust: TrustRef; roles: { id: string; name: string }[]; expiresAt: number } {
  const t = reader.trust?.(trustId);
  if (!t) throw new Unauthorized('The trust no longer exists.');
  if (t.expires_at !== null && t.expires_at <= now) throw new Unauthorized('The trust has expired.');
  const acting = t.impersonation ? t.trustor_user_id : t.trustee_user_id;
  if (claims.sub !== acting || (t.project_id ?? undefined) !== claims.p)
    throw new Unauthorized('The token does not match its trust.');
  const trustee = reader.user(t.trustee_user_id);
  if (!trustee?.enabled) throw new Unauthorized('The trustee is unknown or disabled.');
  const trustor = reader.user(t.trustor_user_id);
  if (!trustor?.enabled) throw new Unauthorized('The trustor is unknown or disabled.');
  // Every trust up the chain must still exist and be in force; the first of them to expire ends it.
  let expiresAt = t.expires_at ?? Infinity;
  for (let p = t, i = 0; p.redelegated_trust_id; i++) {
    const parent = i < MAX_TRUST_CHAIN ? reader.trust?.(p.redelegated_trust_id) : undefined;
    if (!parent || (parent.expires_at !== null && parent.expires_at <= now))
      throw new Unauthorized('A trust this one was redelegated from no longer holds.');
    expiresAt = Math.min(expiresAt, parent.expires_at ?? Infinity);
    p = parent;
  }
  const delegated = JSON.parse(t.roles) as { id: string; name: string }[];
  return { trust: t, roles: reader.withImplied?.(delegated) ?? delegated, expiresAt };
}
