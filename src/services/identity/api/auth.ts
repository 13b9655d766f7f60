/**
 * @module Identity v3 authentication: POST/GET/HEAD/DELETE /v3/auth/tokens, /v3/auth/catalog,
 * /v3/auth/projects, /v3/auth/domains, /v3/auth/system. Scopes: a project, a domain, or the system
 * (`{"system": {"all": true}}`, for a user with a role on the system). Methods: password, token (rescope), application_credential.
 * Any site issues tokens for any user it has a replica of, so an isolated site keeps authenticating.
 * https://docs.openstack.org/api-ref/identity/v3/#authentication-and-token-management
 */
import type { FastifyInstance } from 'fastify';
import type { AuthContext } from '../../../core/auth.ts';
import { BadRequest, CloudError, Forbidden, NotFound, Unauthorized } from '../../../core/errors.ts';
import { hexId } from '../../../core/ports.ts';
import type { Obj } from '../../common/input.ts';
import { isObj, keystoneTime, reqStr, wrapped } from '../../common/input.ts';
import type { IdentityContext } from '../context.ts';
import type { TokenClaims } from '../domain/tokens.ts';
import type { UserRow } from '../store/schema.ts';
import { buildCatalog } from '../domain/catalog.ts';
import { revokeAudit } from '../domain/revocations.ts';

export function registerAuthRoutes(app: FastifyInstance, ic: IdentityContext): void {
  const { site, reader, tokens, repos } = ic;
  const renderedNoCatalog = new WeakMap<AuthContext, string>();

  const findDomain = (ref: unknown): { id: string; name: string; enabled: number } => {
    if (!isObj(ref)) throw new BadRequest('A domain (id or name) is required.');
    const d =
      typeof ref.id === 'string'
        ? reader.domain(ref.id)
        : typeof ref.name === 'string'
          ? reader.domainByName(ref.name)
          : undefined;
    if (!d) throw new Unauthorized('Could not find domain.');
    return d;
  };

  const findUser = (u: Obj): UserRow => {
    let user: UserRow | undefined;
    if (typeof u.id === 'string') user = reader.user(u.id);
    else if (typeof u.name === 'string') user = reader.userByName(findDomain(u.domain).id, u.name);
    else throw new BadRequest('The user must be given by id, or by name and domain.');
    if (!user) throw new Unauthorized('The request you have made requires authentication.');
    return user;
  };

  /** Resolves the requested scope to claims p/d/sys; 401 when the user has no role there. */
  const resolveScope = (
    scope: unknown,
    userId: string,
    fallbackProject: string | null,
  ): Pick<TokenClaims, 'p' | 'd' | 'sys'> => {
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
            ? reader.projectByName(findDomain(pr.domain).id, pr.name)
            : undefined;
      if (!p) throw new Unauthorized(`Could not find project.`);
      if (!p.enabled) throw new Unauthorized('The project is disabled.');
      if (reader.roles(userId, { projectId: p.id }).length === 0)
        throw new Unauthorized(`User ${userId} has no access to project ${p.id}`);
      return { p: p.id };
    }
    if (isObj(scope.domain)) {
      const d = findDomain(scope.domain);
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
  };

  app.post('/identity/v3/auth/tokens', async (req, reply) => {
    const auth = wrapped(req.body, 'auth');
    const identity = auth.identity;
    if (!isObj(identity) || !Array.isArray(identity.methods) || identity.methods.length === 0)
      throw new BadRequest('auth.identity.methods is required.');
    const methods = identity.methods.filter((m): m is string => typeof m === 'string');
    const now = site.clock.now();
    const ttl = site.config.tokenTtlSeconds * 1000;
    let claims: TokenClaims;

    if (methods.includes('password')) {
      const pw = identity.password;
      if (!isObj(pw) || !isObj(pw.user)) throw new BadRequest('auth.identity.password.user is required.');
      const password = reqStr(pw.user, 'password', { max: 4096 });
      // An unknown user (or domain) runs the same hash work as a wrong password: no enumeration.
      let found: UserRow | undefined;
      try {
        found = findUser(pw.user);
      } catch (e) {
        if (!(e instanceof Unauthorized)) throw e;
      }
      const matches = await ic.passwords.verify(password, found?.password_hash);
      if (!found || !matches) throw new Unauthorized('The request you have made requires authentication.');
      const user = found;
      if (!user.enabled) throw new Unauthorized('The account is disabled for user: ' + user.id);
      const dom = reader.domain(user.domain_id);
      if (!dom?.enabled) throw new Unauthorized('The user domain is disabled.');
      const audit = hexId(site.ids).slice(0, 22);
      claims = {
        sub: user.id,
        iss: site.name,
        iat: now,
        exp: now + ttl,
        m: ['password'],
        ai: [audit],
        ...resolveScope(auth.scope, user.id, user.default_project_id),
      };
    } else if (methods.includes('token')) {
      const t = identity.token;
      if (!isObj(t)) throw new BadRequest('auth.identity.token.id is required.');
      const old = tokens.validate(reqStr(t, 'id', { max: 8192 }));
      if (old.applicationCredentialId)
        throw new Forbidden('An application credential token cannot be rescoped.');
      const audit = hexId(site.ids).slice(0, 22);
      claims = {
        sub: old.userId,
        iss: site.name,
        iat: now,
        exp: old.expiresAt,
        m: [...new Set([...old.methods, 'token'])],
        ai: [audit, old.auditIds[old.auditIds.length - 1] ?? old.auditIds[0] ?? audit],
        ...resolveScope(auth.scope ?? 'unscoped', old.userId, null),
      };
    } else if (methods.includes('application_credential')) {
      const a = identity.application_credential;
      if (!isObj(a)) throw new BadRequest('auth.identity.application_credential is required.');
      const secret = reqStr(a, 'secret', { max: 4096 });
      let ac = typeof a.id === 'string' ? reader.appCred(a.id) : undefined;
      if (!ac && typeof a.name === 'string' && isObj(a.user)) {
        const u = findUser(a.user);
        ac = repos.appCreds.byName(u.id, a.name);
      }
      if (!(await ic.passwords.verify(secret, ac?.secret_hash)) || !ac)
        throw new Unauthorized('Invalid application credential.');
      if (ac.expires_at !== null && ac.expires_at <= now)
        throw new Unauthorized('The application credential has expired.');
      const user = reader.user(ac.user_id);
      if (!user?.enabled) throw new Unauthorized('The user is disabled.');
      const audit = hexId(site.ids).slice(0, 22);
      claims = {
        sub: user.id,
        iss: site.name,
        iat: now,
        exp: Math.floor(Math.min(now + ttl, ac.expires_at ?? Infinity)),
        m: ['application_credential'],
        ai: [audit],
        p: ac.project_id,
        ac: ac.id,
      };
    } else {
      throw new Unauthorized(`Unsupported authentication method: ${methods.join(', ')}`);
    }

    const { token, ctx } = tokens.issueValidated(claims);
    const noCatalog = (req.query as Obj | undefined)?.nocatalog !== undefined;
    reply.code(201).header('x-subject-token', token);
    return { token: tokenBody(ic, ctx, !noCatalog) };
  });

  const subject = (req: { headers: Record<string, unknown> }): string => {
    const t = req.headers['x-subject-token'];
    if (typeof t !== 'string' || !t) throw new NotFound('X-Subject-Token is required.');
    return t;
  };

  /** Anyone may check their own token; checking another's needs admin (identity:validate_token). */
  const checkSubject = (caller: AuthContext, subj: AuthContext) => {
    if (caller.userId !== subj.userId && !caller.isAdmin) throw new Forbidden();
  };

  const validateSubject = (t: string): AuthContext => {
    try {
      return tokens.validate(t);
    } catch (e) {
      if (e instanceof CloudError && e.status === 401)
        throw new NotFound(`Could not find token: ${e.message}`);
      throw e;
    }
  };

  app.get('/identity/v3/auth/tokens', { exposeHeadRoute: false }, async (req, reply) => {
    const caller = site.authenticate(req);
    const t = subject(req);
    const ctx = validateSubject(t);
    checkSubject(caller, ctx);
    reply.header('x-subject-token', t);
    const noCatalog = (req.query as Obj | undefined)?.nocatalog !== undefined;
    if (!noCatalog) return { token: tokenBody(ic, ctx, true) };
    // The hot path (services validating their callers' tokens): the body without a catalog depends
    // only on the validation, so it is rendered once per cached validation. A change that could alter
    // it replaces the validation object, which drops this entry with it.
    let body = renderedNoCatalog.get(ctx);
    if (body === undefined) {
      body = JSON.stringify({ token: tokenBody(ic, ctx, false) });
      renderedNoCatalog.set(ctx, body);
    }
    return reply.type('application/json; charset=utf-8').send(body);
  });

  app.head('/identity/v3/auth/tokens', async (req, reply) => {
    const caller = site.authenticate(req);
    const ctx = validateSubject(subject(req));
    checkSubject(caller, ctx);
    return reply.code(200).send();
  });

  app.delete('/identity/v3/auth/tokens', async (req, reply) => {
    const caller = site.authenticate(req);
    const ctx = validateSubject(subject(req));
    checkSubject(caller, ctx);
    revokeAudit(ic, ctx.auditIds[0]!, ctx.expiresAt);
    return reply.code(204).send();
  });

  app.get('/identity/v3/auth/catalog', async (req) => {
    const ctx = site.authenticate(req);
    return {
      catalog: buildCatalog(ic, ctx.projectId),
      links: { self: `${site.publicUrl()}/identity/v3/auth/catalog` },
    };
  });

  app.get('/identity/v3/auth/projects', async (req) => {
    const ctx = site.authenticate(req);
    const projects = repos.projects
      .all()
      .filter((p) => p.enabled && reader.roles(ctx.userId, { projectId: p.id }).length > 0)
      .map((p) => ({
        id: p.id,
        name: p.name,
        domain_id: p.domain_id,
        enabled: true,
        description: p.description,
        parent_id: p.parent_id ?? p.domain_id,
        is_domain: false,
        links: { self: `${site.publicUrl()}/identity/v3/projects/${p.id}` },
      }));
    return {
      projects,
      links: { self: `${site.publicUrl()}/identity/v3/auth/projects`, next: null, previous: null },
    };
  });

  // The system scopes the caller can ask for: the one, when it holds a role on the system.
  app.get('/identity/v3/auth/system', async (req) => {
    const ctx = site.authenticate(req);
    const held = reader.roles(ctx.userId, { system: true }).length > 0;
    return {
      system: held ? [{ all: true }] : [],
      links: { self: `${site.publicUrl()}/identity/v3/auth/system`, next: null, previous: null },
    };
  });

  app.get('/identity/v3/auth/domains', async (req) => {
    const ctx = site.authenticate(req);
    const domains = repos.domains
      .all()
      .filter((d) => d.enabled && reader.roles(ctx.userId, { domainId: d.id }).length > 0)
      .map((d) => ({
        id: d.id,
        name: d.name,
        enabled: true,
        description: d.description,
        links: { self: `${site.publicUrl()}/identity/v3/domains/${d.id}` },
      }));
    return {
      domains,
      links: { self: `${site.publicUrl()}/identity/v3/auth/domains`, next: null, previous: null },
    };
  });
}

export function tokenBody(ic: IdentityContext, ctx: AuthContext, withCatalog: boolean): Obj {
  const user = ic.reader.user(ctx.userId);
  const body: Obj = {
    methods: ctx.methods,
    user: {
      id: ctx.userId,
      name: ctx.userName,
      domain: { id: ctx.userDomainId, name: ctx.userDomainName },
      password_expires_at: user?.password_expires_at ? keystoneTime(user.password_expires_at) : null,
    },
    audit_ids: ctx.auditIds,
    expires_at: keystoneTime(ctx.expiresAt),
    issued_at: keystoneTime(ctx.issuedAt),
  };
  const impliedOnly = ctx.roles.filter((n) => !ctx.roleRefs.some((r) => r.name === n));
  const roles = [
    ...ctx.roleRefs,
    ...impliedOnly.map((n) => {
      const r = ic.reader.roleByName(n);
      return { id: r?.id ?? n, name: n };
    }),
  ];
  if (ctx.projectId) {
    body.project = {
      id: ctx.projectId,
      name: ctx.projectName,
      domain: { id: ctx.projectDomainId, name: ctx.projectDomainName },
    };
    body.is_domain = false;
    body.roles = roles;
  } else if (ctx.domainId) {
    body.domain = { id: ctx.domainId, name: ctx.domainName };
    body.roles = roles;
  } else if (ctx.system) {
    body.system = { all: true };
    body.roles = roles;
  }
  if (ctx.applicationCredentialId) {
    const ac = ic.reader.appCred(ctx.applicationCredentialId);
    body.application_credential = {
      id: ctx.applicationCredentialId,
      name: ac?.name,
      restricted: !ac?.unrestricted,
    };
  }
  if (withCatalog && (ctx.projectId || ctx.domainId || ctx.system))
    body.catalog = buildCatalog(ic, ctx.projectId);
  return body;
}
