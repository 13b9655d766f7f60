/**
 * @module Regions, services and endpoints: /v3/regions, /v3/services, /v3/endpoints. Each belongs to the
 * site that made it (every site makes its own region, named after it, and its own endpoints; see
 * domain/catalog.ts); updates and deletes go to that site. Anyone authenticated reads regions (Keystone's
 * default); services and endpoints are read and written by cloud admins.
 * https://docs.openstack.org/api-ref/identity/v3/#service-catalog-and-endpoints
 */
import type { FastifyInstance } from 'fastify';
import { BadRequest } from '../../../core/errors.ts';
import type { Obj } from '../../common/input.ts';
import { optBool, optStr, reqStr, wrapped } from '../../common/input.ts';
import type { IdentityContext } from '../context.ts';
import {
  createEndpoint,
  createService,
  deleteEndpoint,
  deleteRegion,
  deleteService,
  createRegion as storeRegion,
  updateEndpoint,
  updateRegion,
  updateService,
} from '../domain/catalog.ts';
import { bool01, notFound } from '../domain/common.ts';
import type { EndpointRow, RegionRow, ServiceRow } from '../store/schema.ts';
import { filteredCollection, forwardIfRemote, param, selfLinks } from './common.ts';
import { requireCloudAdmin } from './policy.ts';

const regionView = (ic: IdentityContext, r: RegionRow): Obj => ({
  id: r.id,
  description: r.description,
  parent_region_id: r.parent_region_id,
  links: selfLinks(ic, `regions/${r.id}`),
});
const serviceView = (ic: IdentityContext, s: ServiceRow): Obj => ({
  id: s.id,
  type: s.type,
  name: s.name,
  description: s.description,
  enabled: !!s.enabled,
  links: selfLinks(ic, `services/${s.id}`),
});
export const endpointView = (ic: IdentityContext, e: EndpointRow): Obj => ({
  id: e.id,
  interface: e.interface,
  region_id: e.region_id,
  region: e.region_id,
  service_id: e.service_id,
  url: e.url,
  enabled: !!e.enabled,
  links: selfLinks(ic, `endpoints/${e.id}`),
});

const INTERFACES = ['public', 'internal', 'admin'];
const URL_RE = /^[a-zA-Z][a-zA-Z0-9+.-]*:\/\/\S+$/;

export function registerCatalogRoutes(app: FastifyInstance, ic: IdentityContext): void {
  const { site, repos } = ic;
  const found = <T>(kind: string, id: string, row: T | undefined): T => {
    if (!row) throw notFound(kind, id);
    return row;
  };
  const loadRegion = (id: string): RegionRow => found('region', id, repos.catalog.region(id));
  const loadService = (id: string): ServiceRow => found('service', id, repos.catalog.service(id));
  const loadEndpoint = (id: string): EndpointRow => found('endpoint', id, repos.catalog.endpoint(id));

  // --- regions
  app.get('/identity/v3/regions', async (req) => {
    site.authenticate(req);
    // A forgotten site's region leaves the list (atoll site forget); its row stays, owned by it.
    const rows = repos.catalog.regions().filter((r) => !site.registry.isForgotten(r.id));
    return filteredCollection(ic, req, 'regions', rows, ['parent_region_id'], regionView);
  });
  app.get('/identity/v3/regions/:region_id', async (req) => {
    site.authenticate(req);
    return { region: regionView(ic, loadRegion(param(req, 'region_id'))) };
  });
  const createRegion = (b: Obj, id: string): RegionRow => {
    const description = optStr(b, 'description', { max: 255 }) ?? '';
    const parent = optStr(b, 'parent_region_id', { max: 255 }) ?? null;
    if (parent !== null) loadRegion(parent);
    return storeRegion(ic, { id, description, parent_region_id: parent });
  };
  app.post('/identity/v3/regions', async (req, reply) => {
    requireCloudAdmin(site.authenticate(req));
    const b = wrapped(req.body, 'region');
    const id = optStr(b, 'id', { max: 255, min: 1 }) ?? ic.newId();
    reply.code(201);
    return { region: regionView(ic, createRegion(b, id)) };
  });
  app.put('/identity/v3/regions/:region_id', async (req, reply) => {
    requireCloudAdmin(site.authenticate(req));
    const b = wrapped(req.body, 'region');
    const id = param(req, 'region_id');
    if (b.id !== undefined && b.id !== id) throw new BadRequest('The region id in the body and URL differ.');
    reply.code(201);
    return { region: regionView(ic, createRegion(b, id)) };
  });
  app.patch('/identity/v3/regions/:region_id', async (req, reply) => {
    requireCloudAdmin(site.authenticate(req));
    const r = loadRegion(param(req, 'region_id'));
    const fwd = forwardIfRemote(ic.site, r.owner, req, reply);
    if (fwd) return fwd;
    const b = wrapped(req.body, 'region');
    const description = optStr(b, 'description', { max: 255 });
    const parent = b.parent_region_id === null ? null : optStr(b, 'parent_region_id', { max: 255 });
    if (parent) {
      if (parent === r.id) throw new BadRequest('A region cannot be its own parent.');
      loadRegion(parent);
    }
    const row = updateRegion(ic, r, { description, parent_region_id: parent });
    return { region: regionView(ic, row) };
  });
  app.delete('/identity/v3/regions/:region_id', async (req, reply) => {
    requireCloudAdmin(site.authenticate(req));
    const r = loadRegion(param(req, 'region_id'));
    const fwd = forwardIfRemote(ic.site, r.owner, req, reply);
    if (fwd) return fwd;
    deleteRegion(ic, r.id);
    return reply.code(204).send();
  });

  // --- services
  app.get('/identity/v3/services', async (req) => {
    requireCloudAdmin(site.authenticate(req));
    const rows = repos.catalog.services();
    return filteredCollection(ic, req, 'services', rows, ['type', 'name', 'enabled'], serviceView);
  });
  app.get('/identity/v3/services/:service_id', async (req) => {
    requireCloudAdmin(site.authenticate(req));
    return { service: serviceView(ic, loadService(param(req, 'service_id'))) };
  });
  app.post('/identity/v3/services', async (req, reply) => {
    requireCloudAdmin(site.authenticate(req));
    const b = wrapped(req.body, 'service');
    const row = createService(ic, {
      type: reqStr(b, 'type', { max: 255 }),
      name: optStr(b, 'name', { max: 255 }) ?? '',
      description: optStr(b, 'description', { max: 65535 }) ?? '',
      enabled: bool01(optBool(b, 'enabled'), 1),
    });
    reply.code(201);
    return { service: serviceView(ic, row) };
  });
  app.patch('/identity/v3/services/:service_id', async (req, reply) => {
    requireCloudAdmin(site.authenticate(req));
    const s = loadService(param(req, 'service_id'));
    const fwd = forwardIfRemote(ic.site, s.owner, req, reply);
    if (fwd) return fwd;
    const b = wrapped(req.body, 'service');
    const row = updateService(ic, s, {
      type: optStr(b, 'type', { max: 255, min: 1 }) ?? s.type,
      name: optStr(b, 'name', { max: 255 }) ?? s.name,
      description: optStr(b, 'description', { max: 65535 }) ?? s.description,
      enabled: bool01(optBool(b, 'enabled'), s.enabled),
    });
    return { service: serviceView(ic, row) };
  });
  app.delete('/identity/v3/services/:service_id', async (req, reply) => {
    requireCloudAdmin(site.authenticate(req));
    const s = loadService(param(req, 'service_id'));
    const fwd = forwardIfRemote(ic.site, s.owner, req, reply);
    if (fwd) return fwd;
    deleteService(ic, s.id);
    return reply.code(204).send();
  });

  // --- endpoints
  const endpointFields = (b: Obj, cur: EndpointRow | undefined) => {
    const serviceId = cur
      ? (optStr(b, 'service_id', { max: 64, min: 1 }) ?? cur.service_id)
      : reqStr(b, 'service_id', { max: 64 });
    loadService(serviceId);
    const iface = cur ? (optStr(b, 'interface', { min: 1 }) ?? cur.interface) : reqStr(b, 'interface');
    if (!INTERFACES.includes(iface)) throw new BadRequest('"interface" must be public, internal or admin.');
    const url = cur ? (optStr(b, 'url', { max: 2048, min: 1 }) ?? cur.url) : reqStr(b, 'url', { max: 2048 });
    if (!URL_RE.test(url)) throw new BadRequest('"url" must be an absolute URL.');
    const regionIn =
      b.region_id === null
        ? null
        : (optStr(b, 'region_id', { max: 255 }) ?? optStr(b, 'region', { max: 255 }));
    const region = regionIn === undefined ? (cur?.region_id ?? null) : regionIn;
    // The v2-style `region` (without region_id) names a region that is made when missing, as Keystone
    // does for clients that use v3 the way they used v2; an unknown region_id is still a 404.
    const legacy = b.region_id === undefined && b.region !== undefined;
    if (region !== null && legacy && !repos.catalog.region(region)) createRegion({}, region);
    if (region !== null) loadRegion(region);
    const enabled = bool01(optBool(b, 'enabled'), cur?.enabled ?? 1);
    return { service_id: serviceId, interface: iface, url, region_id: region, enabled };
  };
  app.get('/identity/v3/endpoints', async (req) => {
    requireCloudAdmin(site.authenticate(req));
    const rows = repos.catalog.endpoints();
    const fields = ['service_id', 'interface', 'region_id', 'enabled'] as const;
    return filteredCollection(ic, req, 'endpoints', rows, fields, endpointView);
  });
  app.get('/identity/v3/endpoints/:endpoint_id', async (req) => {
    requireCloudAdmin(site.authenticate(req));
    return {
      endpoint: endpointView(ic, loadEndpoint(param(req, 'endpoint_id'))),
    };
  });
  app.post('/identity/v3/endpoints', async (req, reply) => {
    requireCloudAdmin(site.authenticate(req));
    const b = wrapped(req.body, 'endpoint');
    const row = createEndpoint(ic, endpointFields(b, undefined));
    reply.code(201);
    return { endpoint: endpointView(ic, row) };
  });
  app.patch('/identity/v3/endpoints/:endpoint_id', async (req, reply) => {
    requireCloudAdmin(site.authenticate(req));
    const e = loadEndpoint(param(req, 'endpoint_id'));
    const fwd = forwardIfRemote(ic.site, e.owner, req, reply);
    if (fwd) return fwd;
    const b = wrapped(req.body, 'endpoint');
    const row = updateEndpoint(ic, e, endpointFields(b, e));
    return { endpoint: endpointView(ic, row) };
  });
  app.delete('/identity/v3/endpoints/:endpoint_id', async (req, reply) => {
    requireCloudAdmin(site.authenticate(req));
    const e = loadEndpoint(param(req, 'endpoint_id'));
    const fwd = forwardIfRemote(ic.site, e.owner, req, reply);
    if (fwd) return fwd;
    deleteEndpoint(ic, e.id);
    return reply.code(204).send();
  });
}
