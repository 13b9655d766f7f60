/**
 * @module OS-OAUTH1 consumers (/v3/OS-OAUTH1/consumers): a cloud admin registers the consumers that
 * may ask for OAuth1 request tokens. The secret is shown once, at create. Not done: the OAuth1 flow
 * itself (request tokens, authorize, access tokens), so a consumer is stored and listed but cannot
 * authenticate yet. A consumer belongs to the site that made it; changes are forwarded there.
 * https://docs.openstack.org/api-ref/identity/v3-ext/#os-oauth1-api
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { randomBytes } from 'node:crypto';
import { BadRequest } from '../../../core/errors.ts';
import type { Obj } from '../../common/input.ts';
import { isObj, optStr, wrapped } from '../../common/input.ts';
import type { IdentityContext } from '../context.ts';
import { notFound } from '../domain/common.ts';
import { deleteOAuthConsumer, putOAuthConsumer } from '../domain/credentials.ts';
import type { OAuthConsumerRow } from '../store/schema.ts';
import { collection, extraOf, forwardIfRemote, param, parseExtra, selfLinks } from './common.ts';
import { requireCloudAdmin } from './policy.ts';

const KNOWN = ['id', 'description', 'secret'];

export function registerOAuthConsumerRoutes(app: FastifyInstance, ic: IdentityContext): void {
  const { site, repos } = ic;
  const base = '/identity/v3/OS-OAUTH1/consumers';
  const view = (c: OAuthConsumerRow): Obj => ({
    ...parseExtra(c.extra),
    id: c.id,
    description: c.description,
    links: selfLinks(ic, `OS-OAUTH1/consumers/${c.id}`),
  });
  const load = (req: FastifyRequest): OAuthConsumerRow => {
    requireCloudAdmin(site.authenticate(req));
    const id = param(req, 'consumer_id');
    const c = repos.oauthConsumers.get(id);
    if (!c) throw notFound('consumer', id);
    return c;
  };

  app.get(base, async (req) => {
    requireCloudAdmin(site.authenticate(req));
    return collection(ic, req, 'consumers', repos.oauthConsumers.all().map(view));
  });
  app.get(`${base}/:consumer_id`, async (req) => ({ consumer: view(load(req)) }));
  app.post(base, async (req, reply) => {
    requireCloudAdmin(site.authenticate(req));
    const b = isObj(req.body) && req.body.consumer === undefined ? {} : wrapped(req.body, 'consumer');
    const secret = randomBytes(24).toString('base64url');
    const row = putOAuthConsumer(ic, {
      description: optStr(b, 'description', { max: 64_000 }) ?? null,
      secret,
      extra: extraOf(b, KNOWN, undefined),
    });
    reply.code(201);
    return { consumer: { ...view(row), secret } };
  });
  app.patch(`${base}/:consumer_id`, async (req, reply) => {
    const c = load(req);
    const b = wrapped(req.body, 'consumer');
    if (b.secret !== undefined) throw new BadRequest('A consumer secret cannot be changed.');
    if (b.id !== undefined && b.id !== c.id) throw new BadRequest('A consumer id cannot be changed.');
    const fwd = forwardIfRemote(site, c.owner, req, reply);
    if (fwd) return fwd;
    const description =
      b.description === null ? null : (optStr(b, 'description', { max: 64_000 }) ?? c.description);
    const row = putOAuthConsumer(ic, { ...c, description, extra: extraOf(b, KNOWN, c.extra) });
    return { consumer: view(row) };
  });
  app.delete(`${base}/:consumer_id`, async (req, reply) => {
    const c = load(req);
    const fwd = forwardIfRemote(site, c.owner, req, reply);
    if (fwd) return fwd;
    deleteOAuthConsumer(ic, c.id);
    return reply.code(204).send();
  });
}
