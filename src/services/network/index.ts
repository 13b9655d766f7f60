/**
 * @module The network service (Neutron v2.0 compatible) as a site module: its tables, routes, the
 * NetworkForCompute contract, the address-block lease agent (serves atoll.<site>.rpc.ipam, renews and
 * returns leases) and the data-plane driver (config.services.network.driver; only 'noop') and the
 * site's data plane (services.network.dataplane: none or linux, dataplane/).
 */
import type { FastifyInstance } from 'fastify';
import { NetworkApi, TokensApi } from '../common/internal.ts';
import type { ServiceContext, ServiceModule } from '../common/module.ts';
import { registerNetworkRoutes } from './api/routes.ts';
import type { NetworkDriver } from './domain/driver.ts';
import { noopNetworkDriver } from './domain/driver.ts';
import { ensureDefaultGroup } from './domain/security-groups.ts';
import { siteDataPlane } from './dataplane/site.ts';
import type { SiteDataPlane } from './dataplane/site.ts';
import { networkForCompute } from './internal.ts';
import { NetworkService } from './service.ts';
import { networkKinds, networkMigrations } from './store/schema.ts';

export function networkModule(): ServiceModule & { service?: NetworkService; dataplane?: SiteDataPlane } {
  const mod: ServiceModule & { service?: NetworkService; dataplane?: SiteDataPlane } = {
    name: 'network',
    migrations: networkMigrations,
    kinds: networkKinds,
    catalog: [{ type: 'network', name: 'neutron', path: '/network' }],
    provides: [NetworkApi],
    requires: [TokensApi],
    register(app: FastifyInstance, ctx: ServiceContext) {
      const driverName = ctx.config.services.network?.driver ?? 'noop';
      const drivers: Record<string, NetworkDriver> = { noop: noopNetworkDriver };
      const api = drivers[String(driverName)];
      if (!api) throw new Error(`unknown network driver ${String(driverName)}`);
      // The data plane follows the rows; a binding change only kicks its reconcile loop.
      const kick = () => mod.dataplane?.loop.kick();
      const driver: NetworkDriver = {
        ...api,
        portBound: (p) => (api.portBound(p), kick()),
        portUnbound: (id) => (api.portUnbound(id), kick()),
      };
      const svc = new NetworkService(ctx, driver);
      mod.service = svc;
      mod.dataplane = siteDataPlane(ctx, svc.repo);
      ctx.provide(NetworkApi, networkForCompute(svc, mod.dataplane));
      // A project's default security group is made by the project's home site when the project is.
      ctx.changelog.onAppend((changes) => {
        for (const c of changes)
          if (c.kind === 'project' && c.op === 'put' && c.row?.owner === ctx.name) {
            try {
              ensureDefaultGroup(svc.deps, c.id);
            } catch (e) {
              ctx.log.warn({ project: c.id, err: String(e) }, 'default security group not created');
            }
          }
      });
      registerNetworkRoutes(app, ctx, svc);
    },
    async start() {
      mod.service?.leases.start();
      await mod.dataplane?.start();
    },
    close() {
      mod.service?.leases.stop();
      // Devices, dnsmasq and guests outlive the site: the next start reconciles them.
      mod.dataplane?.stop();
    },
  };
  return mod;
}
