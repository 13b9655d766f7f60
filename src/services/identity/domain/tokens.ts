/**
 * @module Tokens: compact JWS (RFC 7515) signed with the issuing site's Ed25519 key (alg EdDSA), as
 * Keystone's JWS provider signs with per-node ES256 keys. Any site verifies a token offline with the
 * issuer's public key from the replicated site registry. Like Keystone's JWS and Fernet tokens, the
 * token carries ids only; roles are resolved from the (replicated) assignments at validation time.
 *
 * Validation results are cached (Keystone caches token validation too): the cache is dropped whenever
 * anything that could change the answer changes (revocations, assignments, users, projects, site keys),
 * locally or by replication, so a revocation takes effect at once.
 */
import { createPrivateKey, createPublicKey, sign, verify } from 'node:crypto';
import type { KeyObject } from 'node:crypto';
import type { AuthContext, TokenValidator } from '../../../core/auth.ts';
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
  /** application credential */
  ac?: string;
}

/** What token validation needs to read: the port a store (or a lab fake) implements. */
export interface IdentityReader {
  publicKey(kid: string): { publicKey: string; site: string } | undefined;
  signingKey(): { kid: string; privateKey: string } | undefined;
  user(id: string): { id: string; name: string; domain_id: string; enabled: number } | undefined;
  domain(id: string): { id: string; name: string; enabled: number } | undefined;
  project(id: string): { id: string; name: string; domain_id: string; enabled: number } | undefined;
  /** Effective roles (direct, through groups, inherited) of a user on a project or domain. */
  roles(userId: string, target: { projectId?: string; domainId?: string }): { id: string; name: string }[];
  appCredRoles(appCredId: string): { id: string; name: string }[] | undefined;
  isRevoked(claims: TokenClaims, projectId: string | undefined): boolean;
  /** Drops memoized lookups (called with the validation cache). */
  clear?(): void;
}

const b64 = (b: Buffer | string) => Buffer.from(b).toString('base64url');

export class TokenService implements TokenValidator {
  private reader: IdentityReader;
  private now: () => number;
  private cache = new Map<string, AuthContext>();
  private keyObjects = new Map<string, KeyObject>();
  private signer: { kid: string; key: KeyObject } | undefined;
  readonly maxCache: number;
  readonly stats = { validations: 0, cacheHits: 0, signatureChecks: 0 };

  constructor(reader: IdentityReader, now: () => number, opts: { maxCache?: number } = {}) {
    this.reader = reader;
    this.now = now;
    this.maxCache = opts.maxCache ?? 100_000;
  }

  /** Drops every cached validation (and cached keys): called when authorization data changes. */
  invalidate(): void {
    this.reader.clear?.();
    this.cache.clear();
    this.keyObjects.clear();
    this.signer = undefined;
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
    const ctx = this.resolve(token, claims);
    if (this.cache.size >= this.maxCache) this.cache.clear();
    this.cache.set(token, ctx);
    return { token, ctx };
  }

  /** Verifies signature and expiry only; returns the claims. */
  verifySignature(token: string): TokenClaims {
    const parts = token.split('.');
    if (parts.length !== 3 || token.length > 8192) throw new Unauthorized('The token is malformed.');
    const [h, p, s] = parts as [string, string, string];
    let header: { alg?: string; kid?: string };
    let claims: TokenClaims;
    try {
      header = JSON.parse(Buffer.from(h, 'base64url').toString()) as { alg?: string; kid?: string };
      claims = JSON.parse(Buffer.from(p, 'base64url').toString()) as TokenClaims;
    } catch {
      throw new Unauthorized('The token is malformed.');
    }
    if (header.alg !== 'EdDSA' || typeof header.kid !== 'string')
      throw new Unauthorized('The token is malformed.');
    let key = this.keyObjects.get(header.kid);
    if (!key) {
      const pk = this.reader.publicKey(header.kid);
      if (!pk) throw new Unauthorized('The token was signed by an unknown or evicted site.');
      key = createPublicKey(pk.publicKey);
      this.keyObjects.set(header.kid, key);
    }
    this.stats.signatureChecks++;
    if (!verify(null, Buffer.from(`${h}.${p}`), key, Buffer.from(s, 'base64url')))
      throw new Unauthorized('The token signature is invalid.');
    if (
      typeof claims.sub !== 'string' ||
      typeof claims.exp !== 'number' ||
      typeof claims.iat !== 'number' ||
      !Array.isArray(claims.ai) ||
      !Array.isArray(claims.m)
    )
      throw new Unauthorized('The token is malformed.');
    if (claims.iss !== header.kid.slice(0, header.kid.lastIndexOf('.')))
      throw new Unauthorized('The token issuer does not match its key.');
    return claims;
  }

  validate(token: string): AuthContext {
    this.stats.validations++;
    const hit = this.cache.get(token);
    const now = this.now();
    if (hit) {
      if (hit.expiresAt > now) {
        this.stats.cacheHits++;
        return hit;
      }
      this.cache.delete(token);
    }
    const claims = this.verifySignature(token);
    if (claims.exp <= now) throw new Unauthorized('The token has expired.');
    const ctx = this.resolve(token, claims);
    if (this.cache.size >= this.maxCache) this.cache.clear();
    this.cache.set(token, ctx);
    return ctx;
  }

  /** Checks the subject, scope and revocations, and looks up the roles. */
  private resolve(token: string, claims: TokenClaims): AuthContext {
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
      refs = this.reader.roles(user.id, { projectId: project.id });
    } else if (claims.d) {
      const d = this.reader.domain(claims.d);
      if (!d || !d.enabled) throw new Unauthorized('The token domain is unknown or disabled.');
      ctx.domainId = d.id;
      ctx.domainName = d.name;
      refs = this.reader.roles(user.id, { domainId: d.id });
    }
    if (claims.ac) {
      const allowed = this.reader.appCredRoles(claims.ac);
      if (!allowed) throw new Unauthorized('The application credential no longer exists.');
      const ids = new Set(allowed.map((r) => r.id));
      refs = refs.filter((r) => ids.has(r.id));
      ctx.applicationCredentialId = claims.ac;
    }
    if ((claims.p || claims.d) && refs.length === 0)
      throw new Unauthorized('The user no longer has a role on the token scope.');
    ctx.roleRefs = refs;
    ctx.roles = impliedRoles(refs.map((r) => r.name));
    // Cloud admin only on the admin project; admin elsewhere is a project or domain admin.
    ctx.isAdmin = adminProject && ctx.roles.includes('admin');
    return ctx;
  }
}
