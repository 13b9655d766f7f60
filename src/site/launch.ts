/**
 * @module Starting sites: one site on a given fabric, or an embedded federation of several sites on
 * the in-process fabric (the main job). Prints nothing: callers decide what to show.
 */
import { MemoryNetwork } from '../fabric/memory/network.ts';
import type { Fabric } from '../fabric/fabric.ts';
import type { Clock, Ids } from '../core/ports.ts';
import { randomIds, systemClock } from '../core/ports.ts';
import { bootstrapIdentity } from '../services/identity/bootstrap.ts';
import type { BootstrapOptions } from '../services/identity/bootstrap.ts';
import { siteModules } from './modules.ts';
import type { IdentityModule } from '../services/identity/index.ts';
import { createSite } from './site.ts';
import type { Site, SiteConfig } from './site.ts';
import { join } from 'node:path';

export async function startSite(
  config: Partial<SiteConfig> & { name: string },
  fabric: Fabric,
  opts: { bootstrap?: BootstrapOptions; listen?: boolean; invite?: string; clock?: Clock; ids?: Ids } = {},
): Promise<Site> {
  // A joining site publishes nothing before it is admitted: a refused join leaves no trace.
  const site = await createSite(config, {
    fabric,
    modules: siteModules(),
    holdReplication: !!opts.invite,
    clock: opts.clock ?? systemClock,
    ids: opts.ids ?? randomIds,
  });
  if (opts.listen !== false) await site.listen();
  if (opts.invite) {
    try {
      await site.ctx.membership.join(fabric, opts.invite);
    } catch (e) {
      await site.close();
      throw e;
    }
    site.startReplication();
  }
  if (opts.bootstrap) {
    site.ctx.membership.admitSelf();
    await bootstrapIdentity(site.ctx, opts.bootstrap);
    for (const m of site.modules) (m as Partial<IdentityModule>).ensureServices?.();
  }
  return site;
}

export interface FederationOptions {
  sites: number;
  basePort: number;
  host: string;
  /** Parent directory for the sites' data; ':memory:' for none. */
  dataDir: string;
  admin: BootstrapOptions;
  /** One-way latency between any two sites, ms (the WAN model). */
  latencyMs: number;
  logLevel: SiteConfig['logLevel'];
  site?: Partial<SiteConfig>;
  /**
   * Apply the fabric's least-privilege rules (src/fabric/permissions.ts) in the in-process network, as
   * the nats-servers do in a real deployment. On by default; tests that play an attacker on the
   * network itself turn it off.
   */
  enforcePermissions?: boolean;
  /** The sites' and the WAN model's clock (the system clock by default; a VirtualClock in tests). */
  clock?: Clock;
  /** Where the sites' ids come from (random by default). */
  ids?: Ids;
}

export interface Federation {
  network: MemoryNetwork;
  sites: Site[];
  close(): Promise<void>;
}

export const siteName = (i: number) =>
  `site-${String.fromCharCode(97 + (i % 26))}${i >= 26 ? Math.floor(i / 26) : ''}`;

/** The embedded default: N sites in this process, each with its own port and database, one WAN model. */
export async function startFederation(o: FederationOptions): Promise<Federation> {
  const clock = o.clock ?? systemClock;
  const ids = o.ids ?? randomIds;
  const network = new MemoryNetwork(clock, {
    defaultLink: { latencyMs: o.latencyMs },
    enforcePermissions: o.enforcePermissions ?? true,
  });
  const sites: Site[] = [];
  for (let i = 0; i < o.sites; i++) {
    const name = siteName(i);
    const site = await startSite(
      {
        ...o.site,
        name,
        host: o.host,
        port: o.basePort === 0 ? 0 : o.basePort + i,
        dataDir: o.dataDir === ':memory:' ? ':memory:' : join(o.dataDir, name),
        logLevel: o.logLevel,
      },
      network.connect(name),
      i === 0 ? { bootstrap: o.admin, clock, ids } : { clock, ids },
    );
    sites.push(site);
  }
  return {
    network,
    sites,
    async close() {
      await Promise.all(sites.map((s) => s.close()));
    },
  };
}

export function openrc(authUrl: string, region: string, admin: BootstrapOptions): string {
  return [
    `export OS_AUTH_URL=${authUrl}`,
    'export OS_IDENTITY_API_VERSION=3',
    `export OS_USERNAME=${admin.adminUser}`,
    `export OS_PASSWORD='${admin.adminPassword.replace(/'/g, "'\\''")}'`,
    `export OS_PROJECT_NAME=${admin.adminProject}`,
    'export OS_USER_DOMAIN_NAME=Default',
    'export OS_PROJECT_DOMAIN_NAME=Default',
    `export OS_REGION_NAME=${region}`,
    'export OS_INTERFACE=public',
    '',
  ].join('\n');
}
