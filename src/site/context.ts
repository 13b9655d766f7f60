/**
 * @module What the site itself holds beside what its service modules see: the full configuration,
 * membership, forwarding and metrics. The admin API and the callers of createSite use it; services
 * see only ServiceContext (services/common/module.ts).
 */
import type { TokenValidator } from '../core/auth.ts';
import type { Forwarder } from '../federation/forward.ts';
import type { Membership } from '../federation/membership.ts';
import type { ServiceContext } from '../services/common/module.ts';
import type { SiteConfig } from './config.ts';
import type { Metrics } from './metrics.ts';

export interface SiteRuntime extends ServiceContext {
  readonly config: SiteConfig;
  readonly membership: Membership;
  readonly forwarder: Forwarder;
  readonly metrics: Metrics;
  /** Identity's token validator (the module providing TokensApi), undefined on a site without one. */
  readonly tokens: TokenValidator | undefined;
}
