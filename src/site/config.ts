/**
 * @module A site's configuration: its settings, their defaults and the rule for site names.
 */
import type { TrustMode } from '../federation/sealer.ts';
import type { MetricsAccess } from './metrics.ts';

export const ATOLL_VERSION = '0.1.0';

export interface SiteConfig {
  /** Site name: also its region and availability zone. [a-z0-9-], at most 63 characters. */
  name: string;
  host: string;
  port: number;
  /** The URL clients use to reach this site's APIs (defaults to http://host:port). */
  publicUrl?: string;
  /** Directory for the site's database and image store; ':memory:' keeps everything in memory (lab). */
  dataDir: string;
  logLevel: 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';
  heartbeatMs: number;
  downAfterMs: number;
  /**
   * How sites learn that a peer is up: 'broadcast' (every site's heartbeat reaches every other site
   * every heartbeatMs) or 'gossip' (each site probes one peer a period; see docs/federation.md).
   */
  liveness: 'broadcast' | 'gossip';
  forwardTimeoutMs: number;
  tokenTtlSeconds: number;
  /** scrypt cost parameter N (2^n) for password hashes. */
  passwordHashCost: number;
  /** Serve the APIs over HTTPS with this PEM certificate (chain) and key; plain HTTP when absent. */
  tlsCertFile?: string;
  tlsKeyFile?: string;
  /** Which sites' changes are accepted: 'open' trusts a new site on first use, 'admitted' only invited ones. */
  trust: TrustMode;
  /** Who may read /metrics: 'local' (loopback, or a cloud admin token), 'admin' or 'open' (metrics.ts). */
  metricsAccess: MetricsAccess;
  /** What invites made here carry so that a newcomer's own nats-server can link to this site's as a
   * leaf node (set by `atoll site --nats managed --nats-leaf ...`). */
  natsLeafInvite?: { url: string; user: string; password: string; ca?: string };
  /** Free-form per-service settings (compute hosts, drivers, ...). */
  services: Record<string, Record<string, unknown>>;
}

export const defaultSiteConfig: Omit<SiteConfig, 'name'> = {
  host: '127.0.0.1',
  port: 0,
  dataDir: ':memory:',
  logLevel: 'warn',
  heartbeatMs: 1000,
  downAfterMs: 3500,
  liveness: 'broadcast',
  forwardTimeoutMs: 3000,
  tokenTtlSeconds: 3600,
  passwordHashCost: 14,
  trust: 'open',
  metricsAccess: 'local',
  services: {},
};

export const SITE_NAME = /^[a-z0-9][a-z0-9-]{0,62}$/;
