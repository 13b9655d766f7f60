/**
 * @module Identity v3 routes other than authentication: version discovery, and every CRUD resource
 * (one file per resource, registered here).
 * https://docs.openstack.org/api-ref/identity/v3/
 */
import type { FastifyInstance } from 'fastify';
import type { IdentityContext } from '../context.ts';
import { registerAppCredRoutes } from './app-creds.ts';
import { registerAssignmentRoutes } from './assignments.ts';
import { registerDomainRoutes } from './domains.ts';
import { registerGroupRoutes } from './groups.ts';
import { registerImpliedRoleRoutes } from './implied-roles.ts';
import { registerPolicyRoutes } from './policies.ts';
import { registerCredentialRoutes } from './credentials.ts';
import { registerDomainConfigRoutes } from './domain-config.ts';
import { registerEndpointGroupRoutes } from './endpoint-groups.ts';
import { registerOAuthConsumerRoutes } from './oauth-consumers.ts';
import { registerTrustRoutes } from './trusts.ts';
import { registerProjectTagRoutes } from './project-tags.ts';
import { registerProjectRoutes } from './projects.ts';
import { registerCatalogRoutes } from './regions.ts';
import { registerRoleRoutes } from './roles.ts';
import { registerUserRoutes } from './users.ts';

export function registerIdentityRoutes(app: FastifyInstance, ic: IdentityContext): void {
  const { site } = ic;
  const v3 = () => ({
    id: 'v3.14',
    status: 'stable',
    updated: '2020-04-07T00:00:00Z',
    links: [{ rel: 'self', href: `${site.publicUrl()}/identity/v3/` }],
    'media-types': [{ base: 'application/json', type: 'application/vnd.openstack.identity-v3+json' }],
  });
  app.get('/identity', async (_req, reply) => {
    reply.code(300);
    return { versions: { values: [v3()] } };
  });
  app.get('/identity/v3', async () => ({ version: v3() }));

  registerDomainRoutes(app, ic);
  registerProjectRoutes(app, ic);
  registerProjectTagRoutes(app, ic);
  registerUserRoutes(app, ic);
  registerGroupRoutes(app, ic);
  registerRoleRoutes(app, ic);
  registerImpliedRoleRoutes(app, ic);
  registerAssignmentRoutes(app, ic);
  registerCatalogRoutes(app, ic);
  registerAppCredRoutes(app, ic);
  registerPolicyRoutes(app, ic);
  registerCredentialRoutes(app, ic);
  registerOAuthConsumerRoutes(app, ic);
  registerEndpointGroupRoutes(app, ic);
  registerDomainConfigRoutes(app, ic);
  registerTrustRoutes(app, ic);
}
