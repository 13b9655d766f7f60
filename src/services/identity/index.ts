/**
 * @module The identity service (Keystone v3 compatible) as a site module.
 */
import type { FastifyInstance } from 'fastify';
import { TokensApi } from '../common/internal.ts';
import type { ServiceContext, ServiceModule } from '../common/module.ts';
import { makeIdentityContext } from './context.ts';
import type { IdentityContext } from './context.ts';
import { registerAuthRoutes } from './api/auth.ts';
import { ensureOwnCatalog, ensureServices } from './domain/catalog.ts';
import { registerIdentityRoutes } from './api/routes.ts';
import { TokenService } from './domain/tokens.ts';
import { SqlIdentityReader } from './store/reader.ts';
import { AUTHZ_KINDS, identityKinds, identityMigrations } from './store/schema.ts';

export interface IdentityModule extends ServiceModule {
  /** Set once registered. */
  ic?: IdentityContext;
  /** Creates the catalog's service rows (run by the bootstrapping site). */
  ensureServices(): void;
}

export function identityModule(
  catalog: () => readonly { type: string; name: string; path: string }[],
): IdentityModule {
  const mod: IdentityModule = {
    name: 'identity',
    migrations: identityMigrations,
    kinds: identityKinds,
    catalog: [{ type: 'identity', name: 'keystone', path: '/identity' }],
    provides: [TokensApi],
    register(app: FastifyInstance, site: ServiceContext) {
      const reader = new SqlIdentityReader(site.store.db, site.registry, () => site.clock.now());
      const tokens = new TokenService(reader, () => site.clock.now(), {
        maxTtlMs: site.config.tokenTtlSeconds * 1000,
      });
      site.provide(TokensApi, tokens);
      // A change of grants drops validations; the site drops verified signatures and keys as well when
      // site keys change (site.ts, trustChanged), so a change of either kind never leaves a stale answer.
      const authz = new Set(AUTHZ_KINDS);
      site.onRemoteChange(AUTHZ_KINDS, () => tokens.invalidateGrants());
      site.changelog.onAppend((changes) => {
        if (changes.some((c) => authz.has(c.kind))) tokens.invalidateGrants();
      });
      const ic = makeIdentityContext(site, reader, tokens);
      mod.ic = ic;
      registerAuthRoutes(app, ic);
      registerIdentityRoutes(app, ic);
    },
    start(site: ServiceContext) {
      ensureOwnCatalog(mod.ic!, catalog());
      site.log.debug({}, 'identity ready');
    },
    ensureServices() {
      ensureServices(mod.ic!, catalog());
    },
    listening() {
      ensureOwnCatalog(mod.ic!, catalog());
    },
  };
  return mod;
}
