/**
 * @module One site: its database, change log, replication, forwarding and every API on one Fastify
 * server. `createSite()` builds it (no socket), `listen()` opens the port, `close()` drains: in-flight
 * requests finish, the fabric closes, the database closes. The same object runs in `atoll site`, in the
 * embedded multi-site main job and in the lab.
 */
import Fastify from 'fastify';
import type { FastifyInstance, FastifyReply } from 'fastify';
import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { AuthContext } from '../core/auth.ts';
import { accessRulesAllow } from '../core/auth.ts';
import { CloudError, Unauthorized, apiFlavorOf, faultBody } from '../core/errors.ts';
import type { Clock, Ids, Logger } from '../core/ports.ts';
import { randomIds, sleep, systemClock } from '../core/ports.ts';
import { AsyncLocalStorage } from 'node:async_hooks';
import type { Fabric } from '../fabric/fabric.ts';
import { ChangeLog, changelogMigrations, kindName } from '../federation/changelog.ts';
import { FORWARDED_BY, Forwarder, pickReturnedHeaders } from '../federation/forward.ts';
import type { ForwardedRequest, ForwardedReply } from '../federation/forward.ts';
import {
  SiteRegistry,
  admissionKind,
  evictionKind,
  forgottenKind,
  registryMigrations,
  siteKind,
} from '../federation/registry.ts';
import { SiteSealer } from '../federation/sealer.ts';
import { Membership } from '../federation/membership.ts';
import { Replicator } from '../federation/replicator.ts';
import { Store } from '../store/db.ts';
import { TokensApi } from '../services/common/internal.ts';
import type { ApiToken, ServiceContext, ServiceModule } from '../services/common/module.ts';
import { orderModules } from '../services/common/module.ts';
import { Metrics, requireMetricsAccess } from './metrics.ts';
import { registerAdminApi } from './admin-api.ts';
import type { SiteConfig } from './config.ts';
import { ATOLL_VERSION, SITE_NAME, defaultSiteConfig } from './config.ts';
import type { SiteRuntime } from './context.ts';
import { assertNameFree } from './name-guard.ts';
import { checkSettings } from './settings.ts';
import { ContinuityCheck } from '../federation/continuity.ts';
import { MessageSigner } from '../federation/signed.ts';

export { ATOLL_VERSION, SITE_NAME, defaultSiteConfig };
export type { SiteConfig, SiteRuntime };

export interface SiteDeps {
  fabric: Fabric;
  /** In any order: they register providers first (orderModules), the given order breaking ties. */
  modules: readonly ServiceModule[];
  clock?: Clock;
  ids?: Ids;
  /** Where the site's own components log (Fastify's request logger, per `logLevel`, by default). */
  log?: Logger;
  /**
   * Hold back heartbeats and change batches until `startReplication()`: a site joining with an invite
   * publishes nothing before it is admitted, so a refused join leaves no trace anywhere.
   */
  holdReplication?: boolean;
}

declare module 'fastify' {
  interface FastifyRequest {
    atollAuth?: AuthContext;
  }
}

export interface Site {
  ctx: SiteRuntime;
  app: FastifyInstance;
  /** The modules in the order they registered (providers of an api before its users). */
  modules: readonly ServiceModule[];
  /** Resolves once this site left the federation (POST /atoll/v1/leave): whoever runs it stops it then. */
  readonly left: Promise<void>;
  listen(): Promise<string>;
  /** Starts heartbeats, pushes and pulls (at once unless `holdReplication`); idempotent. */
  startReplication(): void;
  close(): Promise<void>;
}

export async function createSite(
  partial: Partial<SiteConfig> & { name: string },
  deps: SiteDeps,
): Promise<Site> {
  const config: SiteConfig = { ...defaultSiteConfig, ...partial };
  if (!SITE_NAME.test(config.name))
    throw new Error(`invalid site name ${JSON.stringify(config.name)}: use [a-z0-9-]`);
  checkSettings(config);
  const modules = orderModules(deps.modules);
  const clock = deps.clock ?? systemClock;
  const ids = deps.ids ?? randomIds;
  // Before anything is opened, served or subscribed: refuse a name another live process holds.
  await assertNameFree(deps.fabric, config.name, Math.min(2000, 2 * config.heartbeatMs));

  if (!!config.tlsCertFile !== !!config.tlsKeyFile)
    throw new Error('HTTPS needs both a certificate and a key');
  const https = config.tlsCertFile
    ? { https: { cert: readFileSync(config.tlsCertFile), key: readFileSync(config.tlsKeyFile!) } }
    : {};
  // The HTTPS and HTTP servers differ only in their socket; routes and hooks see the same instance.
  const app = Fastify({
    ...(https as object),
    logger: config.logLevel === 'silent' ? false : { level: config.logLevel, base: { site: config.name } },
    genReqId: () => `req-${ids.uuid()}`,
    bodyLimit: 1024 * 1024,
    // Ids and names (keypairs, extra specs, regions) can be up to 255 characters; the default cap of 100
    // made such a resource impossible to address. Longer segments still get a 414 fault.
    routerOptions: { ignoreTrailingSlash: true, maxParamLength: 1024 },
    // Errors the router raises before any route runs (a malformed %-escape, an over-long path segment)
    // are faults in the API's own shape too, not Fastify's default body.
    frameworkErrors: (err, req, reply) => {
      const status = err.statusCode === 414 ? 414 : 400;
      const message = status === 414 ? 'A path segment is too long.' : 'The request URL is not valid.';
      void (reply as unknown as FastifyReply)
        .code(status)
        .type('application/json')
        .send(faultBody(apiFlavorOf(req.url), status, message));
    },
    forceCloseConnections: false,
    return503OnClosing: true,
  });
  const log = deps.log ?? (app.log as unknown as Logger);

  if (config.dataDir !== ':memory:') mkdirSync(config.dataDir, { recursive: true });
  const store = new Store(config.dataDir === ':memory:' ? ':memory:' : join(config.dataDir, 'site.db'));
  store.migrate([...changelogMigrations, ...registryMigrations, ...modules.flatMap((m) => m.migrations)]);
  const changelog = new ChangeLog(store, config.name, log, () => clock.now());
  /**
   * Resolves once this site has applied `origin`'s log up to `seq`, or after READ_YOUR_WRITES_MS
   * (replication then catches up on its own; the caller is not failed for it).
   */
  const caughtUp = async (origin: string, seq: number): Promise<void> => {
    if (!Number.isSafeInteger(seq)) return;
    const until = clock.now() + READ_YOUR_WRITES_MS;
    while (changelog.cursor(origin) < seq && clock.now() < until) await sleep(clock, 5);
  };
  changelog.register(siteKind);
  changelog.register(admissionKind);
  changelog.register(evictionKind);
  changelog.register(forgottenKind);
  for (const m of modules) for (const k of m.kinds) changelog.register(k);

  const scheme = config.tlsCertFile ? 'https' : 'http';
  let boundUrl = config.publicUrl ?? `${scheme}://${config.host}:${config.port}`;
  /** The endpoint of the site a forwarded request came through, while it runs here. */
  const answeringFor = new AsyncLocalStorage<string>();
  const registry = new SiteRegistry(store, changelog, () => clock.now());
  // An old data directory started under a new name would register the new name with the old site's
  // key and log, and leave a site nobody can reach in every list: refuse before anything is written.
  const former = registry.formerName();
  if (former) {
    store.close();
    throw new Error(
      `the data directory ${config.dataDir} belongs to site ${former}, not ${config.name}: start it as --name ${former}, or start ${config.name} on a new, empty data directory (with an invite)`,
    );
  }
  const replicator = new Replicator(
    deps.fabric,
    changelog,
    clock,
    log,
    {
      heartbeatMs: config.heartbeatMs,
      downAfterMs: config.downAfterMs,
      version: ATOLL_VERSION,
      endpoint: boundUrl,
      identityOf: (s) => registry.identityKeyOf(s),
      knows: (s) => registry.isMember(s),
      liveness: config.liveness,
      members: () =>
        registry
          .list()
          .filter((s) => s.state === 'active' || s.state === 'leaving')
          .map((s) => s.id),
      ids,
    },
    new SiteSealer(registry, config.trust),
  );
  // Site-to-site requests (forwarded HTTP, address leases) are signed by their sender (signed.ts).
  const signer = new MessageSigner({
    privateKey: () => registry.identity().privateKey,
    identityKey: (s) => (registry.isMember(s) ? registry.identityKeyOf(s) : undefined),
    now: () => clock.now(),
    ids,
  });
  const forwarder = new Forwarder(deps.fabric, replicator, {
    timeoutMs: config.forwardTimeoutMs,
    signer,
    isMember: (s) => registry.isMember(s) && registry.identityKeyOf(s) !== undefined,
    now: () => clock.now(),
  });
  const membership = new Membership(store, changelog, registry, clock, ids);
  const metrics = new Metrics();

  const remoteListeners: { kinds: Set<string>; fn: (kind: string, id: string) => void }[] = [];
  const trustKinds = new Set<string>([
    siteKind.kind,
    evictionKind.kind,
    admissionKind.kind,
    forgottenKind.kind,
  ]);
  const trustChanged = (changes: readonly { kind: string }[]) => {
    if (!changes.some((c) => trustKinds.has(c.kind))) return;
    registry.invalidate();
    ctx.tokens?.invalidate();
  };
  changelog.onAppend(trustChanged);
  replicator.onApplied((_origin, changes) => {
    trustChanged(changes);
    for (const c of changes) {
      for (const l of remoteListeners) if (l.kinds.has(c.kind)) l.fn(c.kind, c.id);
    }
  });

  // The in-process apis modules provide each other, by api name (services/common/internal.ts).
  const apis = new Map<string, unknown>();
  const use = <T>(api: ApiToken<T>): T => {
    if (!apis.has(api.name)) throw new Error(`the ${api.name} api is not provided on this site`);
    return apis.get(api.name) as T;
  };
  const ctx: SiteRuntime = {
    name: config.name,
    config,
    store,
    changelog,
    registry,
    membership,
    replicator,
    forwarder,
    signer,
    fabric: deps.fabric,
    clock,
    ids,
    log,
    metrics,
    get tokens() {
      return apis.get(TokensApi.name) as SiteRuntime['tokens'];
    },
    // A request forwarded here by another site is answered as that site would answer it: its links
    // and Location headers name the endpoint the client used (forwarding stays invisible).
    publicUrl: () => answeringFor.getStore() ?? boundUrl,
    authenticate(req) {
      if (req.atollAuth) return req.atollAuth;
      const token = req.headers['x-auth-token'];
      if (typeof token !== 'string' || token === '') throw new Unauthorized();
      if (!ctx.tokens) throw new CloudError(503, 'identity is not available on this site');
      const auth = ctx.tokens.validate(token);
      // A token from an application credential with access rules makes only the requests they allow.
      if (!accessRulesAllow(auth.accessRules, req.method, req.url))
        throw new Unauthorized('The request you have made requires authentication.');
      req.atollAuth = auth;
      return req.atollAuth;
    },
    async forwardTo(owner, req, reply) {
      const body =
        req.body === undefined || req.body === null
          ? undefined
          : Buffer.isBuffer(req.body)
            ? req.body
            : typeof req.body === 'string'
              ? req.body
              : JSON.stringify(req.body);
      const res = await forwarder.forward(owner, {
        method: req.method,
        url: req.url,
        headers: req.headers,
        ...(body !== undefined ? { body } : {}),
      });
      const { [LOG_HEAD]: head, ...headers } = res.headers;
      // Read your writes here too: the answer waits (briefly) until this site has the owner's change
      // log up to where it was once the write ran, so the caller's next read here sees the write.
      if (head !== undefined && req.method !== 'GET' && req.method !== 'HEAD' && res.status < 400)
        await caughtUp(owner, Number(head));
      reply.code(res.status).headers(headers).header('x-atoll-owner', owner);
      return reply.send(Buffer.from(res.body, 'base64'));
    },
    owns: (owner) => owner === config.name,
    freshness(owner) {
      if (owner === config.name || replicator.isUp(owner)) return { stale: false, ageSeconds: 0 };
      const seen = replicator.peers.get(owner)?.lastSeen;
      return { stale: true, ageSeconds: seen ? Math.round((clock.now() - seen) / 1000) : -1 };
    },
    provide(api) {
      throw new Error(`the ${api.name} api can only be provided by a module, in its register()`);
    },
    use,
    onRemoteChange(kinds, fn) {
      remoteListeners.push({ kinds: new Set(kinds.map(kindName)), fn });
    },
  };

  installHttpBasics(app, ctx);
  // A data directory that is not the site the federation knows (lost, replaced, an old backup) serves
  // nothing it could lose: every request gets the reason and the way out (continuity.ts).
  const continuity = new ContinuityCheck(
    deps.fabric,
    { site: config.name, identityKey: () => registry.identity().publicKey, head: () => changelog.head() },
    log,
  );
  app.addHook('onRequest', async (req) => {
    const why = continuity.conflict();
    if (why && req.url !== '/metrics') throw new CloudError(503, why);
  });
  let announceLeft = () => {};
  const left = new Promise<void>((resolve) => (announceLeft = resolve));
  registerAdminApi(app, ctx, { left: () => announceLeft() });
  // The site's own registry row comes first in its log: a site that has never heard of this one
  // learns its identity key from it (docs/federation.md, trust on first use).
  registry.ensureSelf({ endpoint: boundUrl, version: ATOLL_VERSION });
  const views = new Map(modules.map((m) => [m, moduleView(ctx, m, apis)]));
  for (const m of modules) {
    const view = views.get(m)!;
    await m.register(app, view);
    for (const api of m.provides ?? [])
      if (!apis.has(api.name))
        throw new Error(`module ${m.name} declares the ${api.name} api but did not provide it`);
  }

  const local = async (req: ForwardedRequest): Promise<ForwardedReply> => {
    // Another process under this name shares our rpc subjects: a forwarded write might land in either,
    // so none is run here until it stops (reads are harmless). See Replicator.nameConflict.
    const impostor = req.method !== 'GET' && req.method !== 'HEAD' ? replicator.nameConflict() : undefined;
    if (registry.isEvicted(String(req.from)) || impostor) {
      const [status, message] = impostor
        ? [503, `Another process is running as site ${config.name}; writes are refused until it stops.`]
        : [403, `Site ${String(req.from)} was evicted; its requests are refused.`];
      const body = faultBody(apiFlavorOf(req.url), status, message);
      return {
        status,
        headers: { 'content-type': 'application/json' },
        body: Buffer.from(JSON.stringify(body)).toString('base64'),
      };
    }
    const sender = registry.get(String(req.from))?.endpoint;
    // inject's answer is lazy (sent when awaited): awaited inside run, so the request runs in it.
    const res = await answeringFor.run(
      sender ?? boundUrl,
      async () =>
        await app.inject({
          method: req.method as 'GET',
          url: req.url,
          headers: { ...req.headers, [FORWARDED_BY]: req.from },
          ...(req.body !== undefined ? { payload: Buffer.from(req.body, 'base64') } : {}),
        }),
    );
    return {
      status: res.statusCode,
      // This site's log head once the request ran: the sender waits for its replica to get there.
      headers: { ...pickReturnedHeaders(res.headers), [LOG_HEAD]: String(changelog.head()) },
      body: res.rawPayload.toString('base64'),
    };
  };
  const stopServing = forwarder.serve(local, (req, why) => {
    log.warn({ from: String(req.from), why }, 'forwarded request refused');
    return {
      status: 403,
      headers: { 'content-type': 'application/json' },
      body: Buffer.from(
        JSON.stringify(faultBody(apiFlavorOf(String(req.url)), 403, `Forwarded request refused: ${why}.`)),
      ).toString('base64'),
    };
  });
  const stopJoin = membership.serveJoin(deps.fabric);

  let replicating = false;
  const startReplication = () => {
    if (replicating) return;
    replicating = true;
    continuity.start();
    replicator.start();
  };
  if (!deps.holdReplication) startReplication();
  for (const m of modules) await m.start?.(views.get(m)!);

  let closed = false;
  return {
    ctx,
    app,
    modules,
    left,
    startReplication,
    async listen() {
      const addr = await app.listen({ host: config.host, port: config.port });
      if (!config.publicUrl) {
        boundUrl = addr.replace('[::1]', '127.0.0.1');
        registry.ensureSelf({ endpoint: boundUrl, version: ATOLL_VERSION });
        replicator.setEndpoint(boundUrl);
      }
      for (const m of modules) await m.listening?.(views.get(m)!);
      return boundUrl;
    },
    async close() {
      if (closed) return;
      closed = true;
      await app.close();
      stopServing();
      stopJoin();
      continuity.stop();
      replicator.stop();
      // Users close before the modules whose apis they use (a volume upload still writing an image).
      for (const m of [...modules].reverse()) await m.close?.();
      await deps.fabric.close();
      store.close();
    },
  };
}

/**
 * What one module sees: the site's context with `provide` and `use` limited to the apis the module
 * declares, so an undeclared dependency fails at once instead of depending on registration order.
 */
function moduleView(ctx: SiteRuntime, m: ServiceModule, apis: Map<string, unknown>): ServiceContext {
  const provides = new Set((m.provides ?? []).map((a) => a.name));
  const requires = new Set((m.requires ?? []).map((a) => a.name));
  const view: ServiceContext = Object.create(ctx) as ServiceContext;
  return Object.assign(view, {
    provide<T>(api: ApiToken<T>, impl: T) {
      if (!provides.has(api.name))
        throw new Error(`module ${m.name} provides the ${api.name} api without declaring it in provides`);
      apis.set(api.name, impl);
    },
    use<T>(api: ApiToken<T>): T {
      if (!requires.has(api.name) && !provides.has(api.name))
        throw new Error(`module ${m.name} uses the ${api.name} api without declaring it in requires`);
      return ctx.use(api);
    },
  });
}

/**
 * No OpenStack body nests more than a handful of levels. A body nested thousands deep parses, but
 * overflows the stack later (JSON.stringify when it is forwarded to the owner site), so it is refused
 * at the door with a 400.
 */
const MAX_JSON_DEPTH = 64;
/** The owner's change-log head after a forwarded request ran (owner to sender only, never to clients). */
const LOG_HEAD = 'x-atoll-log-head';
/** The longest a forwarded write's answer waits for this site to replicate it (read your writes). */
const READ_YOUR_WRITES_MS = 2000;

/** True when brackets outside strings nest deeper than `max` (one pass, no parse). */
function nestedDeeperThan(text: string, max: number): boolean {
  let depth = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 0x5c)
        i++; // backslash: skip the escaped character
      else if (c === 0x22) inString = false;
    } else if (c === 0x22) inString = true;
    else if (c === 0x5b || c === 0x7b) {
      if (++depth > max) return true;
    } else if (c === 0x5d || c === 0x7d) depth--;
  }
  return false;
}

/** Content parsing, faults, request ids, metrics, health: the parts every API shares. */
function installHttpBasics(app: FastifyInstance, ctx: SiteRuntime): void {
  const { metrics } = ctx;
  app.removeContentTypeParser('application/json');
  app.addContentTypeParser(
    [
      'application/json',
      'application/openstack-images-v2.1-json-patch',
      'application/openstack-images-v2.0-json-patch',
    ],
    { parseAs: 'string' },
    (_req, body, done) => {
      const text = String(body);
      if (text.trim() === '') return done(null, undefined);
      if (nestedDeeperThan(text, MAX_JSON_DEPTH))
        return done(
          new CloudError(400, `Malformed request body: JSON nested deeper than ${MAX_JSON_DEPTH} levels.`),
          undefined,
        );
      try {
        done(null, JSON.parse(text));
      } catch {
        done(new CloudError(400, 'Malformed request body: the body is not valid JSON.'), undefined);
      }
    },
  );

  app.addHook('onRequest', async (req, reply) => {
    reply.header('x-openstack-request-id', req.id);
  });
  app.addHook('onResponse', async (req, reply) => {
    const route = req.routeOptions.url ?? 'unknown';
    metrics.inc('atoll_http_requests_total', 'HTTP requests by route and status', {
      method: req.method,
      route,
      status: String(reply.statusCode),
    });
    metrics.observeSeconds({ method: req.method, route }, reply.elapsedTime / 1000);
  });

  app.setErrorHandler(
    (err: Error & { statusCode?: number; code?: string; validation?: unknown }, req, reply) => {
      const flavor = apiFlavorOf(req.url);
      let status: number;
      let message: string;
      let detailType: string | undefined;
      if (err instanceof CloudError) {
        status = err.status;
        message = err.message;
        detailType = err.detailType;
      } else if (err.validation) {
        status = 400;
        message = `Invalid input: ${err.message}`;
      } else if (err.code === 'FST_ERR_CTP_BODY_TOO_LARGE') {
        status = 413;
        message = 'Request body is too large.';
      } else if (err.code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE') {
        status = 415;
        message = `Unsupported content type ${String(req.headers['content-type'])}.`;
      } else if (typeof err.statusCode === 'number' && err.statusCode >= 400 && err.statusCode < 500) {
        status = err.statusCode;
        message = err.message;
      } else {
        status = 500;
        message = `An unexpected error prevented the request from being fulfilled (request ${req.id}).`;
        req.log.error({ err }, 'unexpected error');
      }
      if (status >= 500 && status !== 503) req.log.error({ err: err.message }, 'server fault');
      void reply
        .code(status)
        .type('application/json')
        .send(faultBody(flavor, status, message, detailType));
    },
  );

  app.setNotFoundHandler((req, reply) => {
    void reply
      .code(404)
      .type('application/json')
      .send(
        faultBody(
          apiFlavorOf(req.url),
          404,
          `The resource could not be found: ${req.method} ${req.url.split('?')[0]}`,
        ),
      );
  });

  app.get('/healthz', async () => ({ status: 'ok', site: ctx.name, head: ctx.changelog.head() }));
  app.get('/metrics', async (req, reply) => {
    requireMetricsAccess(ctx.config.metricsAccess, req, FORWARDED_BY, () => ctx.authenticate(req));
    reply.type('text/plain; version=0.0.4');
    return metrics.render();
  });
  metrics.gauge('atoll_changelog_head', 'Sequence number of the last change this site wrote', () =>
    ctx.changelog.head(),
  );
  metrics.gauge('atoll_replication_lag_changes', 'Changes of each origin not applied here yet', () =>
    [...ctx.replicator.peers.keys()].map(
      (s) => [{ origin: s }, ctx.replicator.lag(s)] as [Record<string, string>, number],
    ),
  );
  metrics.gauge('atoll_peer_up', 'Whether each peer site was heard from recently', () =>
    [...ctx.replicator.peers.keys()].map(
      (s) => [{ site: s }, ctx.replicator.isUp(s) ? 1 : 0] as [Record<string, string>, number],
    ),
  );
  metrics.gauge(
    'atoll_heartbeats_dropped_total',
    'Heartbeats dropped: from a name not in the registry (or evicted), or naming another site than their subject',
    () => ctx.replicator.stats.unknownSenders + ctx.replicator.stats.spoofedHeartbeats,
  );
  metrics.gauge('atoll_changes_applied_total', 'Remote changes applied', () => ctx.replicator.stats.applied);
  metrics.gauge(
    'atoll_change_batches_rejected_total',
    'Change batches refused before applying anything (forged, altered, unknown or evicted origin)',
    () => ctx.replicator.stats.forged,
  );
  metrics.gauge(
    'atoll_changes_rejected_total',
    'Replicated changes refused because the origin does not own the row',
    () => ctx.replicator.stats.rejected,
  );
  metrics.gauge(
    'atoll_changes_oversized_total',
    "This site's changes too large for any fabric message, sent as stubs replicas reject (src/federation/limits.ts)",
    () => ctx.replicator.stats.oversized,
  );
  metrics.gauge(
    'atoll_forwarded_requests_total',
    'Requests forwarded to owner sites',
    () => ctx.forwarder.stats.forwarded,
  );
}
