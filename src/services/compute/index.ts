/**
 * @module The compute service (Nova v2.1 compatible) as a site module: API, scheduler, claims and this
 * site's compute host agents (fake driver, configured by config.services.compute).
 */
import type { FastifyInstance } from 'fastify';
import { ImageApi, NetworkApi, TokensApi, VolumeApi } from '../common/internal.ts';
import type { ServiceContext, ServiceModule } from '../common/module.ts';
import { registerAggregateRoutes } from './api/aggregates.ts';
import { registerExtensionRoutes } from './api/extensions.ts';
import { registerImageProxyRoutes } from './api/images.ts';
import { negotiate } from './api/microversion.ts';
import { registerNetworkProxyRoutes } from './api/network-proxy.ts';
import { registerQuotaRoutes } from './api/quotas.ts';
import { registerDiscovery, registerResourceRoutes } from './api/resources.ts';
import { registerSecurityGroupProxyRoutes } from './api/security-groups.ts';
import { registerServerInfoRoutes } from './api/server-info.ts';
import { registerServerEventRoutes } from './api/server-events.ts';
import { registerServerTagRoutes } from './api/server-tags.ts';
import { registerServerRoutes } from './api/servers.ts';
import { registerUsageRoutes } from './api/usage.ts';
import { registerVolumeProxyRoutes } from './api/volume-proxy.ts';
import { registerVolumeAttachmentRoutes } from './api/volume-attachments.ts';
import { ComputeService } from './service.ts';
import { computeKinds, computeMigrations } from './store/schema.ts';

export function computeModule(): ServiceModule & { service?: ComputeService } {
  const mod: ServiceModule & { service?: ComputeService } = {
    name: 'compute',
    migrations: computeMigrations,
    kinds: computeKinds,
    catalog: [{ type: 'compute', name: 'nova', path: '/compute/v2.1' }],
    requires: [TokensApi, NetworkApi, VolumeApi, ImageApi],
    register(app: FastifyInstance, ctx: ServiceContext) {
      const svc = new ComputeService(ctx);
      mod.service = svc;
      registerDiscovery(app, svc);
      // Microversions apply to /compute/v2.1 only; the hook and routes live in their own scope.
      void app.register(async (scoped) => {
        scoped.addHook('onRequest', async (req, reply) => {
          // Nova's own request id header, beside the x-openstack-request-id every service sends.
          reply.header('x-compute-request-id', req.id);
          negotiate(req, reply);
        });
        registerServerRoutes(scoped, svc);
        registerServerTagRoutes(scoped, svc);
        registerServerEventRoutes(scoped, svc);
        registerVolumeAttachmentRoutes(scoped, svc);
        registerResourceRoutes(scoped, svc);
        registerQuotaRoutes(scoped, svc);
        registerExtensionRoutes(scoped, svc);
        registerImageProxyRoutes(scoped, svc);
        registerAggregateRoutes(scoped, svc);
        registerSecurityGroupProxyRoutes(scoped, svc);
        registerNetworkProxyRoutes(scoped, svc);
        registerVolumeProxyRoutes(scoped, svc);
        registerUsageRoutes(scoped, svc);
        registerServerInfoRoutes(scoped, svc);
      });
    },
    async start() {
      await mod.service!.startDriver();
      mod.service!.startHosts();
      mod.service!.startReconciler();
      mod.service!.startPowerSync();
    },
    async close() {
      await mod.service?.close();
    },
  };
  return mod;
}
