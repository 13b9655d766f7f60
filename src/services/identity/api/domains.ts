/**
 * @module Domains: /v3/domains. A domain is homed on the site that created it (its owner); every user,
 * group, project and role assignment inside it belongs to that site too, so writes go there.
 * https://docs.openstack.org/api-ref/identity/v3/#domains
 */
import type { FastifyInstance } from 'fastify';
import { BadRequest, Forbidden } from '../../../core/errors.ts';
import type { Obj } from '../../common/input.ts';
import { optBool, optStr, reqStr, wrapped } from '../../common/input.ts';
import type { IdentityContext } from '../context.ts';
import { notFound } from '../domain/common.ts';
import { createDomain, deleteDomain, updateDomain } from '../domain/domains.ts';
import type { DomainRow } from '../store/schema.ts';
import {
  extraOf,
  filteredCollection,
  forwardIfRemote,
  param,
  parseExtra,
  requireUnchanged,
  selfLinks,
} from './common.ts';
import { isCloudAdmin, listableDomain, requireCloudAdmin } from './policy.ts';

const KNOWN = ['id', 'name', 'description', 'enabled', 'tags', 'options', 'explicit_domain_id'];

export function domainView(ic: IdentityContext, d: DomainRow): Obj {
  return {
    ...parseExtra(d.extra),
    id: d.id,
    name: d.name,
    description: d.description,
    enabled: !!d.enabled,
    tags: [],
    options: {},
    links: selfLinks(ic, `domains/${d.id}`),
  };
}

export function registerDomainRoutes(app: FastifyInstance, ic: IdentityContext): void {
  const { site, reader, repos } = ic;

  const load = (id: string): DomainRow => {
    const d = reader.domain(id);
    if (!d) throw notFound('domain', id);
    return d;
  };

  app.get('/identity/v3/domains', async (req) => {
    const ctx = site.authenticate(req);
    const only = listableDomain(ctx);
    let rows = repos.domains.all();
    if (only !== undefined) rows = rows.filter((d) => d.id === only);
    return filteredCollection(ic, req, 'domains', rows, ['name', 'enabled', 'id'], domainView);
  });

  app.get('/identity/v3/domains/:domain_id', async (req) => {
    const ctx = site.authenticate(req);
    const d = load(param(req, 'domain_id'));
    // identity:get_domain: admin, or a token scoped to the domain or to a project in it.
    if (!isCloudAdmin(ctx) && ctx.domainId !== d.id && ctx.projectDomainId !== d.id) throw new Forbidden();
    return { domain: domainView(ic, d) };
  });

  app.post('/identity/v3/domains', async (req, reply) => {
    requireCloudAdmin(site.authenticate(req));
    const b = wrapped(req.body, 'domain');
    const name = reqStr(b, 'name', { max: 64 });
    const description = optStr(b, 'description', { max: 65535 }) ?? '';
    const enabled = optBool(b, 'enabled');
    const explicit = optStr(b, 'explicit_domain_id', { max: 64, pattern: /^[a-zA-Z0-9_-]+$/ });
    const tags = b.tags;
    if (tags !== undefined && (!Array.isArray(tags) || tags.length > 0))
      throw new BadRequest('Domain tags are not supported.');
    const row = createDomain(ic, {
      explicitId: explicit,
      name,
      description,
      enabled,
      extra: extraOf(b, KNOWN, undefined),
    });
    reply.code(201);
    return { domain: domainView(ic, row) };
  });

  app.patch('/identity/v3/domains/:domain_id', async (req, reply) => {
    requireCloudAdmin(site.authenticate(req));
    const d = load(param(req, 'domain_id'));
    const fwd = forwardIfRemote(ic.site, d.owner, req, reply);
    if (fwd) return fwd;
    const b = wrapped(req.body, 'domain');
    requireUnchanged(b, 'id', d.id, 'The domain id cannot be changed.');
    const row = updateDomain(ic, d, {
      name: optStr(b, 'name', { max: 64, min: 1 }),
      description: optStr(b, 'description', { max: 65535 }),
      enabled: optBool(b, 'enabled'),
      extra: (current) => extraOf(b, KNOWN, current),
    });
    return { domain: domainView(ic, row) };
  });

  app.delete('/identity/v3/domains/:domain_id', async (req, reply) => {
    requireCloudAdmin(site.authenticate(req));
    const d = load(param(req, 'domain_id'));
    const fwd = forwardIfRemote(ic.site, d.owner, req, reply);
    if (fwd) return fwd;
    deleteDomain(ic, d);
    return reply.code(204).send();
  });
}
