/**
 * @module Regions, services and endpoints: /v3/regions, /v3/services, /v3/endpoints. Each belongs to the
 * site that made it (every site makes its own region, named after it, and its own endpoints; see
 * catalog.ts); updates and deletes go to that site. Anyone authenticated reads regions (Keystone's
 * default); services and endpoints are read and written by cloud admins.
 * https://docs.openstack.org/api-ref/identity/v3/#service-catalog-and-endpoints
 */
import type { FastifyInstance } from 'fastify';
import { BadRequest, Conflict } from '../../../core/errors.ts';
import type { Obj } from '../../common/input.ts';
import { optBool, optStr, reqStr, wrapped } from '../../common/input.ts';
import type { IdentityContext } from '../context.ts';
import { bool01, filteredCollection, notFound, param, removeOwned, selfLinks } from './common.ts';
import { forwardIfRemote } from '../../common/owner.ts';
import { requireCloudAdmin } from './policy.ts';

interface RegionRow {
  id: string;
  owner: string;
  description: string;
  parent_region_id: string | null;
}
interface ServiceRow {
  id: string;
  owner: string;
  type: string;
  name: string;
  description: string;
  enabled: number;
}
interface EndpointRow {
  id: string;
  owner: string;
  service_id: string;
  region_id: string | null;
  interface: string;
  url: string;
  enabled: number;
}

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
const endpointView = (ic: IdentityContext, e: EndpointRow): Obj => ({
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
  const { site } = ic;
  const db = site.store.db;
  const getRow = <T>(table: string, kind: string, id: string): T => {
    const r = db.prepare(`SELECT * FROM ${table} WHERE id = ?`).get(id) as T | undefined;
    if (!r) throw notFound(kind, id);
    return r;
  };

  // --- regions
  app.get('/identity/v3/regions', async (req) => {
    site.authenticate(req);
    const rows = db.prepare('SELECT * FROM regions ORDER BY id').all() as RegionRow[];
    return filteredCollection(ic, req, 'regions', rows, ['parent_region_id'], regionView);
  });
  app.get('/identity/v3/regions/:region_id', async (req) => {
    site.authenticate(req);
    return { region: regionView(ic, getRow<RegionRow>('regions', 'region', param(req, 'region_id'))) };
  });
  const createRegion = (b: Obj, id: string): RegionRow => {
    const description = optStr(b, 'description', { max: 255 }) ?? '';
    const parent = optStr(b, 'parent_region_id', { max: 255 }) ?? null;
    if (parent !== null) getRow<RegionRow>('regions', 'region', parent);
    return site.store.tx(() => {
      if (db.prepare('SELECT 1 FROM regions WHERE id = ?').get(id))
        throw new Conflict(`Conflict occurred attempting to store region - Duplicate ID, ${id}.`);
      return site.changelog.put('region', {
        id,
        description,
        parent_region_id: parent,
      }) as unknown as RegionRow;
    });
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
    const r = getRow<RegionRow>('regions', 'region', param(req, 'region_id'));
    const fwd = forwardIfRemote(ic.site, r.owner, req, reply);
    if (fwd) return fwd;
    const b = wrapped(req.body, 'region');
    const description = optStr(b, 'description', { max: 255 });
    const parent = b.parent_region_id === null ? null : optStr(b, 'parent_region_id', { max: 255 });
    if (parent) {
      if (parent === r.id) throw new BadRequest('A region cannot be its own parent.');
      getRow<RegionRow>('regions', 'region', parent);
    }
    const row = site.changelog.put('region', {
      ...r,
      description: description ?? r.description,
      parent_region_id: parent === undefined ? r.parent_region_id : parent,
    }) as unknown as RegionRow;
    return { region: regionView(ic, row) };
  });
  app.delete('/identity/v3/regions/:region_id', async (req, reply) => {
    requireCloudAdmin(site.authenticate(req));
    const r = getRow<RegionRow>('regions', 'region', param(req, 'region_id'));
    const fwd = forwardIfRemote(ic.site, r.owner, req, reply);
    if (fwd) return fwd;
    if (db.prepare('SELECT 1 FROM regions WHERE parent_region_id = ?').get(r.id))
      throw new Conflict('Cannot delete a region that has child regions.');
    site.changelog.remove('region', r.id);
    return reply.code(204).send();
  });

  // --- services
  app.get('/identity/v3/services', async (req) => {
    requireCloudAdmin(site.authenticate(req));
    const rows = db.prepare('SELECT * FROM services ORDER BY type').all() as ServiceRow[];
    return filteredCollection(ic, req, 'services', rows, ['type', 'name', 'enabled'], serviceView);
  });
  app.get('/identity/v3/services/:service_id', async (req) => {
    requireCloudAdmin(site.authenticate(req));
    return { service: serviceView(ic, getRow<ServiceRow>('services', 'service', param(req, 'service_id'))) };
  });
  app.post('/identity/v3/services', async (req, reply) => {
    requireCloudAdmin(site.authenticate(req));
    const b = wrapped(req.body, 'service');
    const row = site.changelog.put('service', {
      id: ic.newId(),
      type: reqStr(b, 'type', { max: 255 }),
      name: optStr(b, 'name', { max: 255 }) ?? '',
      description: optStr(b, 'description', { max: 65535 }) ?? '',
      enabled: bool01(optBool(b, 'enabled'), 1),
    }) as unknown as ServiceRow;
    reply.code(201);
    return { service: serviceView(ic, row) };
  });
  app.patch('/identity/v3/services/:service_id', async (req, reply) => {
    requireCloudAdmin(site.authenticate(req));
    const s = getRow<ServiceRow>('services', 'service', param(req, 'service_id'));
    const fwd = forwardIfRemote(ic.site, s.owner, req, reply);
    if (fwd) return fwd;
    const b = wrapped(req.body, 'service');
    const row = site.changelog.put('service', {
      ...s,
      type: optStr(b, 'type', { max: 255, min: 1 }) ?? s.type,
      name: optStr(b, 'name', { max: 255 }) ?? s.name,
      description: optStr(b, 'description', { max: 65535 }) ?? s.description,
      enabled: bool01(optBool(b, 'enabled'), s.enabled),
    }) as unknown as ServiceRow;
    return { service: serviceView(ic, row) };
  });
  app.delete('/identity/v3/services/:service_id', async (req, reply) => {
    requireCloudAdmin(site.authenticate(req));
    const s = getRow<ServiceRow>('services', 'service', param(req, 'service_id'));
    const fwd = forwardIfRemote(ic.site, s.owner, req, reply);
    if (fwd) return fwd;
    site.store.tx(() => {
      removeOwned(ic, 'endpoint', 'SELECT id, owner FROM endpoints WHERE service_id = ?', s.id);
      site.changelog.remove('service', s.id);
    });
    return reply.code(204).send();
  });

  // --- endpoints
  const endpointFields = (b: Obj, cur: EndpointRow | undefined) => {
    const serviceId = cur
      ? (optStr(b, 'service_id', { max: 64, min: 1 }) ?? cur.service_id)
      : reqStr(b, 'service_id', { max: 64 });
    getRow<ServiceRow>('services', 'service', serviceId);
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
    if (region !== null && legacy && !db.prepare('SELECT 1 FROM regions WHERE id = ?').get(region))
      createRegion({}, region);
    if (region !== null) getRow<RegionRow>('regions', 'region', region);
    const enabled = bool01(optBool(b, 'enabled'), cur?.enabled ?? 1);
    return { service_id: serviceId, interface: iface, url, region_id: region, enabled };
  };
  app.get('/identity/v3/endpoints', async (req) => {
    requireCloudAdmin(site.authenticate(req));
    const rows = db
      .prepare('SELECT * FROM endpoints ORDER BY region_id, service_id, interface')
      .all() as EndpointRow[];
    const fields = ['service_id', 'interface', 'region_id', 'enabled'] as const;
    return filteredCollection(ic, req, 'endpoints', rows, fields, endpointView);
  });
  app.get('/identity/v3/endpoints/:endpoint_id', async (req) => {
    requireCloudAdmin(site.authenticate(req));
    return {
      endpoint: endpointView(ic, getRow<EndpointRow>('endpoints', 'endpoint', param(req, 'endpoint_id'))),
    };
  });
  app.post('/identity/v3/endpoints', async (req, reply) => {
    requireCloudAdmin(site.authenticate(req));
    const b = wrapped(req.body, 'endpoint');
    const row = site.changelog.put('endpoint', {
      id: ic.newId(),
      ...endpointFields(b, undefined),
    }) as unknown as EndpointRow;
    reply.code(201);
    return { endpoint: endpointView(ic, row) };
  });
  app.patch('/identity/v3/endpoints/:endpoint_id', async (req, reply) => {
    requireCloudAdmin(site.authenticate(req));
    const e = getRow<EndpointRow>('endpoints', 'endpoint', param(req, 'endpoint_id'));
    const fwd = forwardIfRemote(ic.site, e.owner, req, reply);
    if (fwd) return fwd;
    const b = wrapped(req.body, 'endpoint');
    const row = site.changelog.put('endpoint', { ...e, ...endpointFields(b, e) }) as unknown as EndpointRow;
    return { endpoint: endpointView(ic, row) };
  });
  app.delete('/identity/v3/endpoints/:endpoint_id', async (req, reply) => {
    requireCloudAdmin(site.authenticate(req));
    const e = getRow<EndpointRow>('endpoints', 'endpoint', param(req, 'endpoint_id'));
    const fwd = forwardIfRemote(ic.site, e.owner, req, reply);
    if (fwd) return fwd;
    site.changelog.remove('endpoint', e.id);
    return reply.code(204).send();
  });
}
