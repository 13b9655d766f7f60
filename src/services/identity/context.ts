/**
 * @module What every identity route file gets: the site, the identity reader, the token service, and
 * the rules for who owns a new identity object (the home site of its domain).
 */
import type { SiteContext } from '../common/module.ts';
import { hexId } from '../../core/ports.ts';
import { PasswordChecker } from './domain/passwords.ts';
import type { TokenService } from './domain/tokens.ts';
import type { SqlIdentityReader } from './store/reader.ts';

export interface IdentityContext {
  site: SiteContext;
  reader: SqlIdentityReader;
  tokens: TokenService;
  /** Password and secret checks with equal work for unknown users (no user enumeration by timing). */
  passwords: PasswordChecker;
  newId(): string;
  /** The site that owns objects in this domain (the domain's home site). */
  domainOwner(domainId: string): string | undefined;
  /** Bumped on every change (local or replicated) that can change the service catalog. */
  catalogEpoch(): number;
}

/** Kinds a token's catalog is built from: services, endpoints, and the sites whose eviction hides theirs. */
const CATALOG_KINDS = ['service', 'endpoint', 'region', 'site', 'eviction'];

export function makeIdentityContext(
  site: SiteContext,
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
    tokens,
    passwords: new PasswordChecker(() => site.config.passwordHashCost),
    newId: () => hexId(site.ids),
    domainOwner: (domainId) => reader.domain(domainId)?.owner,
    catalogEpoch: () => epoch,
  };
}
