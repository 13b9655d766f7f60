/**
 * @module Identity v3 routes other than authentication: version discovery and the CRUD resources.
 * https://docs.openstack.org/api-ref/identity/v3/
 */
import type { FastifyInstance } from 'fastify';
import type { IdentityContext } from '../context.ts';

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
}
