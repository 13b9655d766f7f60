/**
 * @module OS-EP-FILTER endpoint groups (/v3/OS-EP-FILTER/endpoint_groups): named filters over the
 * catalog's endpoints (by `service_id`, `region_id` and `interface`), kept by a cloud admin, with the
 * endpoints each one matches. Not done: associating groups or endpoints with projects, so tokens'
 * catalogs are not filtered by them. A group belongs to the site that made it; changes are forwarded.
 * https://docs.openstack.org/api-ref/identity/v3-ext/#os-ep-filter-api
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { BadRequest } from '../../../core/errors.ts';
import type { Obj } from '../../common/input.ts';
import { isObj, optStr, reqStr, wrapped } from '../../common/input.ts';
import type { IdentityContext } from '../context.ts';
import { notFound } from '../domain/common.ts';
import { deleteEndpointGroup, putEndpointGroup } from '../domain/credentials.ts';
import type { EndpointGroupRow, EndpointRow } from '../store/schema.ts';
import { collection, forwardIfRemote, param, q, selfLinks } from './common.ts';
import { requireCloudAdmin } from './policy.ts';
import { endpointView } from './regions.ts';

/** The endpoint attributes a group may filter on (Keystone's list). */
const FILTERS = ['service_id', 'region_id', 'interface'] as const;

function parseFilters(v: unknown): Record<string, string> {
  if (!isObj(v)) throw new BadRequest('"filters" must be an object.');
  const out: Record<string, string> = {};
  for (const [k, x] of Object.entries(v)) {
    if (!(FILTERS as readonly string[]).includes(k))
      throw new BadRequest(`Invalid endpoint group filter ${k}: use ${FILTERS.join(', ')}.`);
    if (typeof x !== 'string' || x.length > 255) throw new BadRequest(`Filter ${k} must be a string.`);
    out[k] = x;
  }
  if (Object.keys(out).length === 0) throw new BadRequest('"filters" must name at least one attribute.');
  return out;
}

export function registerEndpointGroupRoutes(app: FastifyInstance, ic: IdentityContext): void {
  const { site, repos } = ic;
  const base = '/identity/v3/OS-EP-FILTER/endpoint_groups';
  const view = (g: EndpointGroupRow): Obj => ({
    id: g.id,
    name: g.name,
    description: g.description,
    filters: JSON.parse(g.filters) as Obj,
    links: selfLinks(ic, `OS-EP-FILTER/endpoint_groups/${g.id}`),
  });
  const load = (req: FastifyRequest): EndpointGroupRow => {
    requireCloudAdmin(site.authenticate(req));
    const id = param(req, 'endpoint_group_id');
    const g = repos.endpointGroups.get(id);
    if (!g) throw notFound('endpoint group', id);
    return g;
  };
  const matches = (g: EndpointGroupRow, e: EndpointRow): boolean =>
    Object.entries(JSON.parse(g.filters) as Record<string, string>).every(
      ([k, v]) => String((e as unknown as Record<string, unknown>)[k] ?? '') === v,
    );

  app.get(base, async (req) => {
    requireCloudAdmin(site.authenticate(req));
    const name = q(req).name;
    const rows = repos.endpointGroups.all().filter((g) => name === undefined || g.name === name);
    return collection(ic, req, 'endpoint_groups', rows.map(view));
  });
  app.get(`${base}/:endpoint_group_id`, { exposeHeadRoute: false }, async (req) => ({
    endpoint_group: view(load(req)),
  }));
  app.head(`${base}/:endpoint_group_id`, async (req, reply) => {
    load(req);
    return reply.code(200).send();
  });
  app.get(`${base}/:endpoint_group_id/endpoints`, async (req) => {
    const g = load(req);
    const rows = repos.catalog.endpoints().filter((e) => matches(g, e));
    return collection(
      ic,
      req,
      'endpoints',
      rows.map((e) => endpointView(ic, e)),
    );
  });
  app.post(base, async (req, reply) => {
    requireCloudAdmin(site.authenticate(req));
    const b = wrapped(req.body, 'endpoint_group');
    const row = putEndpointGroup(ic, {
      name: reqStr(b, 'name', { max: 255 }),
      description: optStr(b, 'description', { max: 65_535 }) ?? '',
      filters: JSON.stringify(parseFilters(b.filters)),
    });
    reply.code(201);
    return { endpoint_group: view(row) };
  });
  app.patch(`${base}/:endpoint_group_id`, async (req, reply) => {
    const g = load(req);
    const b = wrapped(req.body, 'endpoint_group');
    const name = optStr(b, 'name', { max: 255, min: 1 }) ?? g.name;
    const description = optStr(b, 'description', { max: 65_535 }) ?? g.description;
    const filters = b.filters === undefined ? g.filters : JSON.stringify(parseFilters(b.filters));
    const fwd = forwardIfRemote(site, g.owner, req, reply);
    if (fwd) return fwd;
    return { endpoint_group: view(putEndpointGroup(ic, { ...g, name, description, filters })) };
  });
  app.delete(`${base}/:endpoint_group_id`, async (req, reply) => {
    const g = load(req);
    const fwd = forwardIfRemote(site, g.owner, req, reply);
    if (fwd) return fwd;
    deleteEndpointGroup(ic, g.id);
    return reply.code(204).send();
  });
}
