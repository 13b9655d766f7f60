/**
 * @module What every identity route file gets: the site, the identity reader and repositories, the
 * token service, the ports the domain actions see, and the rules for who owns a new identity object
 * (the home site of its domain).
 */
import type { ServiceContext } from '../common/module.ts';
import { hexId } from '../../core/ports.ts';
import { PasswordChecker } from './domain/passwords.ts';
import type { CatalogPorts } from './domain/ports.ts';
import type { TokenService } from './domain/tokens.ts';
import type { SqlIdentityReader } from './store/reader.ts';
import { identityRepos } from './store/repos.ts';
import { endpointKind, regionKind, serviceKind } from './store/schema.ts';
import { kindName } from '../../federation/changelog.ts';
import { evictionKind, forgottenKind, siteKind } from '../../federation/registry.ts';

export interface IdentityContext extends CatalogPorts {
  site: ServiceContext;
  tokens: TokenService;
  /** The site that owns objects in this domain (the domain's home site). */
  domainOwner(domainId: string): string | undefined;
}

/** Kinds a token's catalog is built from: services, endpoints, and the sites whose eviction hides theirs. */
const CATALOG_KINDS: readonly string[] = [
  serviceKind,
  endpointKind,
  regionKind,
  siteKind,
  evictionKind,
  forgottenKind,
].map(kindName);

export function makeIdentityContext(
  site: ServiceContext,
  reader: SqlIdentityReader,
  tokens: TokenService,
): IdentityContext {
  let epoch = 0;
  site.onRemoteChange(CATALOG_KINDS, () => epoch++);
  site.changelog.onAppend((changes) => {
    if (changes.some((c) => CATALOG_KINDS.includes(c.kind))) epoch++;
  });
  return {
    site,
    reader,
    repos: identityRepos(site.store.db),
    changes: site.changelog,
    tokens,
    passwords: new PasswordChecker(() => site.config.passwordHashCost),
    tx: (fn) => site.store.tx(fn),
    owns: (owner) => site.owns(owner),
    now: () => site.clock.now(),
    newId: () => hexId(site.ids),
    hashCost: () => site.config.passwordHashCost,
    tokenTtlMs: () => site.config.tokenTtlSeconds * 1000,
    siteName: site.name,
    publicUrl: () => site.publicUrl(),
    hasLeft: () => site.registry.get(site.name)?.state === 'left',
    isEvicted: (name) => site.registry.isEvicted(name),
    domainOwner: (domainId) => reader.domain(domainId)?.owner,
    catalogEpoch: () => epoch,
  };
}
