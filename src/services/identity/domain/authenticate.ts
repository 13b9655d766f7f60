/**
 * @module Authentication (Keystone's POST /v3/auth/tokens, without HTTP): the methods password, token
 * (rescope) and application_credential, and the scope asked for (a project, a domain, or the system),
 * resolved to the claims of a new token. Any site issues tokens for any user it has a replica of, so
 * an isolated site keeps authenticating. An unknown user runs the same hash work as a wrong password.
 */
import type { AuthContext } from '../../../core/auth.ts';
import { BadRequest, Forbidden, Unauthorized } from '../../../core/errors.ts';
import type { Obj } from '../../common/input.ts';
import { isObj, reqStr } from '../../common/input.ts';
import type { UserRow } from '../store/schema.ts';
import { trustKind } from '../store/schema.ts';
import type { IdentityPorts } from './ports.ts';
import type { TokenClaims } from './tokens.ts';

/** What authentication needs beyond the identity ports: the issuer's name and token validation. */
export interface AuthPorts extends IdentityPorts {
  readonly siteName: string;
  readonly tokens: { validate(token: string): AuthContext };
}

function findDomain(p: IdentityPorts, ref: unknown): { id: string; name: string; enabled: number } {
  const { reader } = p;
  if (!isObj(ref)) throw new BadRequest('A domain (id or name) is required.');
  const d =
    typeof ref.id === 'string'
      ? reader.domain(ref.id)
      : typeof ref.name === 'string'
        ? reader.domainByName(ref.name)
        : undefined;
  if (!d) throw new Unauthorized('Could not find domain.');
  return d;
}

function findUser(p: IdentityPorts, u: Obj): UserRow {
  const { reader } = p;
  let user: UserRow | undefined;
  if (typeof u.id === 'string') user = reader.user(u.id);
  else if (typeof u.name === 'string') user = reader.userByName(findDomain(p, u.domain).id, u.name);
  else throw new BadRequest('The user must be given by id, or by name and domain.');
  if (!user) throw new Unauthorized('The request you have made requires authentication.');
  return user;
}

/** The trust a scope names (`{"OS-TRUST:trust": {"id": ...}}`), or undefined for any other scope. */
export function trustOfScope(scope: unknown): string | undefined {
  if (!isObj(scope) || scope['OS-TRUST:trust'] === undefined) return undefined;
  const t = scope['OS-TRUST:trust'];
  if (!isObj(t) || typeof t.id !== 'string' || t.id === '')
    throw new BadRequest('A trust scope needs an id.');
  return t.id;
}

/**
 * A trust-scoped token for `userId` (the trustee): the claims sub (the trustor when the trust
 * impersonates), p and tr. 401 when the trust is unknown, expired, used up, or not the caller's.
 * A limited-use trust is consumed here: the route forwards such requests to the trust's home.
 */
function trustScope(
  ports: IdentityPorts,
  trustId: string,
  userId: string,
): Pick<TokenClaims, 'sub' | 'p' | 'tr'> {
  return ports.tx(() => {
    const t = ports.repos.trusts.get(trustId);
    if (!t || t.trustee_user_id !== userId) throw new Unauthorized('Could not find the trust for this user.');
    if (t.expires_at !== null && t.expires_at <= ports.now())
      throw new Unauthorized('The trust has expired.');
    if (!t.project_id) throw new Unauthorized('The trust has no project to scope to.');
    if (t.remaining_uses !== null) {
      if (t.remaining_uses <= 0) throw new Unauthorized('The trust has no uses left.');
      if (!ports.owns(t.owner)) throw new Unauthorized('A limited-use trust is redeemed at its home site.');
      ports.changes.put(trustKind, { ...t, remaining_uses: t.remaining_uses - 1 });
    }
    return { sub: t.impersonation ? t.trustor_user_id : userId, p: t.project_id, tr: t.id };
  });
}

/** Resolves the requested scope to claims p/d/sys; 401 when the user has no role there. */
function resolveScope(
  ports: IdentityPorts,
  scope: unknown,
  userId: string,
  fallbackProject: string | null,
): Pick<TokenClaims, 'p' | 'd' | 'sys'> {
  const { reader } = ports;
  if (scope === undefined || scope === 'unscoped') {
    if (scope === undefined && fallbackProject) {
      const p = reader.project(fallbackProject);
      if (p && p.enabled && reader.roles(userId, { projectId: p.id }).length > 0) return { p: p.id };
    }
    return {};
  }
  if (!isObj(scope)) throw new BadRequest('Invalid scope.');
  if (isObj(scope.project)) {
    const pr = scope.project;
    const p =
      typeof pr.id === 'string'
        ? reader.project(pr.id)
        : typeof pr.name === 'string'
          ? reader.projectByName(findDomain(ports, pr.domain).id, pr.name)
          : undefined;
    if (!p) throw new Unauthorized(`Could not find project.`);
    if (!p.enabled) throw new Unauthorized('The project is disabled.');
    if (reader.roles(userId, { projectId: p.id }).length === 0)
      throw new Unauthorized(`User ${userId} has no access to project ${p.id}`);
    return { p: p.id };
  }
  if (isObj(scope.domain)) {
    const d = findDomain(ports, scope.domain);
    if (!d.enabled) throw new Unauthorized('The domain is disabled.');
    if (reader.roles(userId, { domainId: d.id }).length === 0)
      throw new Unauthorized(`User ${userId} has no access to domain ${d.id}`);
    return { d: d.id };
  }
  if (isObj(scope.system)) {
    if (scope.system.all !== true) throw new BadRequest('The only system scope is {"all": true}.');
    if (reader.roles(userId, { system: true }).length === 0)
      throw new Unauthorized(`User ${userId} has no access to the system`);
    return { sys: 'all' };
  }
  throw new BadRequest('Invalid scope: give a project, a domain or the system.');
}

/**
 * The claims of the token `identity` (auth.identity of the request) earns, scoped as `scope`
 * (auth.scope) asks: 400 for a malformed request, 401 when the credentials or the scope do not hold.
 */
export async function authenticate(p: AuthPorts, identity: unknown, scope: unknown): Promise<TokenClaims> {
  if (!isObj(identity) || !Array.isArray(identity.methods) || identity.methods.length === 0)
    throw new BadRequest('auth.identity.methods is required.');
  const methods = identity.methods.filter((m): m is string => typeof m === 'string');
  const now = p.now();
  const ttl = p.tokenTtlMs();

  if (methods.includes('password')) {
    const pw = identity.password;
    if (!isObj(pw) || !isObj(pw.user)) throw new BadRequest('auth.identity.password.user is required.');
    const password = reqStr(pw.user, 'password', { max: 4096 });
    // An unknown user (or domain) runs the same hash work as a wrong password: no enumeration.
    let found: UserRow | undefined;
    try {
      found = findUser(p, pw.user);
    } catch (e) {
      if (!(e instanceof Unauthorized)) throw e;
    }
    const matches = await p.passwords.verify(password, found?.password_hash);
    if (!found || !matches) throw new Unauthorized('The request you have made requires authentication.');
    const user = found;
    if (!user.enabled) throw new Unauthorized('The account is disabled for user: ' + user.id);
    const dom = p.reader.domain(user.domain_id);
    if (!dom?.enabled) throw new Unauthorized('The user domain is disabled.');
    const audit = p.newId().slice(0, 22);
    const trustId = trustOfScope(scope);
    return {
      sub: user.id,
      iss: p.siteName,
      iat: now,
      exp: now + ttl,
      m: ['password'],
      ai: [audit],
      ...(trustId
        ? trustScope(p, trustId, user.id)
        : resolveScope(p, scope, user.id, user.default_project_id)),
    };
  }
  if (methods.includes('token')) {
    const t = identity.token;
    if (!isObj(t)) throw new BadRequest('auth.identity.token.id is required.');
    const old = p.tokens.validate(reqStr(t, 'id', { max: 8192 }));
    if (old.applicationCredentialId)
      throw new Forbidden('An application credential token cannot be rescoped.');
    if (old.trustId) throw new Forbidden('A trust-scoped token cannot be rescoped.');
    const audit = p.newId().slice(0, 22);
    const trustId = trustOfScope(scope);
    return {
      sub: old.userId,
      iss: p.siteName,
      iat: now,
      exp: old.expiresAt,
      m: [...new Set([...old.methods, 'token'])],
      ai: [audit, old.auditIds[old.auditIds.length - 1] ?? old.auditIds[0] ?? audit],
      ...(trustId
        ? trustScope(p, trustId, old.userId)
        : resolveScope(p, scope ?? 'unscoped', old.userId, null)),
    };
  }
  if (methods.includes('application_credential')) {
    const a = identity.application_credential;
    if (!isObj(a)) throw new BadRequest('auth.identity.application_credential is required.');
    const secret = reqStr(a, 'secret', { max: 4096 });
    let ac = typeof a.id === 'string' ? p.reader.appCred(a.id) : undefined;
    if (!ac && typeof a.name === 'string' && isObj(a.user)) {
      const u = findUser(p, a.user);
      ac = p.repos.appCreds.byName(u.id, a.name);
    }
    if (!(await p.passwords.verify(secret, ac?.secret_hash)) || !ac)
      throw new Unauthorized('Invalid application credential.');
    if (ac.expires_at !== null && ac.expires_at <= now)
      throw new Unauthorized('The application credential has expired.');
    const user = p.reader.user(ac.user_id);
    if (!user?.enabled) throw new Unauthorized('The user is disabled.');
    const audit = p.newId().slice(0, 22);
    return {
      sub: user.id,
      iss: p.siteName,
      iat: now,
      exp: Math.floor(Math.min(now + ttl, ac.expires_at ?? Infinity)),
      m: ['application_credential'],
      ai: [audit],
      p: ac.project_id,
      ac: ac.id,
    };
  }
  throw new Unauthorized(`Unsupported authentication method: ${methods.join(', ')}`);
}
