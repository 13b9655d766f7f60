/**
 * @module Identity v3 authentication: POST/GET/HEAD/DELETE /v3/auth/tokens, /v3/auth/catalog,
 * /v3/auth/projects, /v3/auth/domains, /v3/auth/system. Scopes: a project, a domain, or the system
 * (`{"system": {"all": true}}`, for a user with a role on the system). Methods: password, token (rescope), application_credential.
 * Any site issues tokens for any user it has a replica of, so an isolated site keeps authenticating.
 * The methods and scopes are resolved to a token's claims in domain/authenticate.ts.
 * https://docs.openstack.org/api-ref/identity/v3/#authentication-and-token-management
 */
import type { FastifyInstance, FastifyReply } from 'fastify';
import type { AuthContext } from '../../../core/auth.ts';
import { CloudError, Forbidden, NotFound } from '../../../core/errors.ts';
import type { Obj } from '../../common/input.ts';
import { keystoneTime, wrapped } from '../../common/input.ts';
import type { IdentityContext } from '../context.ts';
import { authenticate, trustOfScope } from '../domain/authenticate.ts';
import { forwardIfRemote } from './common.ts';
import { buildCatalog, catalogJson } from '../domain/catalog.ts';
import { revokeAudit } from '../domain/revocations.ts';

export function registerAuthRoutes(app: FastifyInstance, ic: IdentityContext): void {
  const { site, reader, tokens, repos } = ic;
  const render = tokenRenderer(ic);
  const sendToken = (reply: FastifyReply, ctx: AuthContext, withCatalog: boolean) =>
    reply.type('application/json; charset=utf-8').send(render(ctx, withCatalog));

  app.post('/identity/v3/auth/tokens', async (req, reply) => {
    const auth = wrapped(req.body, 'auth');
    // A limited-use trust is counted at its home, the one writer of its row.
    const trustId = trustOfScope(auth.scope);
    const limited = trustId ? repos.trusts.get(trustId) : undefined;
    if (limited && limited.remaining_uses !== null) {
      const fwd = forwardIfRemote(site, limited.owner, req, reply);
      if (fwd) return fwd;
    }
    const claims = await authenticate(ic, auth.identity, auth.scope);
    const { token, ctx } = tokens.issueValidated(claims);
    const noCatalog = (req.query as Obj | undefined)?.nocatalog !== undefined;
    reply.code(201).header('x-subject-token', token);
    return sendToken(reply, ctx, !noCatalog);
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
    // The hot path (clients and services validating tokens): bytes rendered once (tokenRenderer).
    return sendToken(reply, ctx, !noCatalog);
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

  app.get('/identity/v3/auth/catalog', async (req, reply) => {
    const ctx = site.authenticate(req);
    const links = JSON.stringify({ self: `${site.publicUrl()}/identity/v3/auth/catalog` });
    return reply
      .type('application/json; charset=utf-8')
      .send(
        Buffer.concat([
          Buffer.from('{"catalog":'),
          catalogJson(ic, ctx.projectId),
          Buffer.from(`,"links":${links}}`),
        ]),
      );
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

const CATALOG_KEY = Buffer.from(',"catalog":');
const CLOSE_TOKEN = Buffer.from('}}');

/**
 * Token answers as bytes, the same as `JSON.stringify({ token: tokenBody(ic, ctx, withCatalog) })`, made
 * without serializing on every request: serializing and encoding the catalog was most of the cost of a
 * validation with it (bench/token-bench.ts, profiled). The part without the catalog depends only on the
 * validation: everything tokenBody reads besides the AuthContext (the user, roles, application
 * credential, trust) is of a kind that drops the validation cache when it changes (AUTHZ_KINDS), so
 * such a change replaces the context and its rendering goes with it. The catalog is spliced in as the
 * JSON kept per catalog epoch and project (domain/catalog.ts catalogJson), last, where tokenBody puts it.
 */
export function tokenRenderer(ic: IdentityContext): (ctx: AuthContext, withCatalog: boolean) => Buffer {
  const rendered = new WeakMap<AuthContext, Buffer>();
  return (ctx, withCatalog) => {
    let head = rendered.get(ctx);
    if (head === undefined) {
      head = Buffer.from(JSON.stringify({ token: tokenBody(ic, ctx, false) }));
      rendered.set(ctx, head);
    }
    if (!withCatalog || !hasCatalog(ctx)) return head;
    // The answer ends with the braces closing the token and the answer: the catalog goes before them.
    return Buffer.concat([
      head.subarray(0, head.length - CLOSE_TOKEN.length),
      CATALOG_KEY,
      catalogJson(ic, ctx.projectId),
      CLOSE_TOKEN,
    ]);
  };
}

/** A scoped token carries a catalog; an unscoped one has none (Keystone). */
const hasCatalog = (ctx: AuthContext): boolean => !!(ctx.projectId || ctx.domainId || ctx.system);

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
      // Keystone shows the credential's access rules in the token, for the services to enforce.
      ...(ctx.accessRules ? { access_rules: ctx.accessRules } : {}),
    };
  }
  if (ctx.trustId) {
    const t = ic.repos.trusts.get(ctx.trustId);
    body['OS-TRUST:trust'] = {
      id: ctx.trustId,
      impersonation: !!ctx.trustImpersonation,
      trustee_user: { id: ctx.trusteeUserId },
      trustor_user: { id: ctx.trustorUserId },
      ...(t?.redelegated_trust_id ? { redelegated_trust_id: t.redelegated_trust_id } : {}),
      ...(t?.redelegation_count !== null && t?.redelegation_count !== undefined
        ? { redelegation_count: t.redelegation_count }
        : {}),
    };
  }
  if (withCatalog && hasCatalog(ctx)) body.catalog = buildCatalog(ic, ctx.projectId);
  return body;
}
