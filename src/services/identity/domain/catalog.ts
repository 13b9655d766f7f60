/**
 * @module The service catalog. Each site registers its own region (named after the site), and one
 * public endpoint per service on it; the rows replicate, so every site's catalog lists every region.
 * Service rows have ids derived from their type, so every site makes the same ones.
 */
import { createHash } from 'node:crypto';
import { Conflict } from '../../../core/errors.ts';
import type { EndpointRow, RegionRow, ServiceRow } from '../store/schema.ts';
import { removeOwned } from './common.ts';
import type { CatalogPorts, IdentityPorts } from './ports.ts';
import { endpointKind, regionKind, serviceKind } from '../store/schema.ts';

const stableId = (...parts: string[]) =>
  createHash('sha256').update(parts.join('\0')).digest('hex').slice(0, 32);

export function serviceId(type: string): string {
  return stableId('service', type);
}

/** Service rows are made once, by the bootstrapping site (their ids are the same everywhere). */
export function ensureServices(p: IdentityPorts, entries: readonly { type: string; name: string }[]): void {
  p.tx(() => {
    for (const e of entries) {
      const sid = serviceId(e.type);
      if (!p.repos.catalog.service(sid))
        p.changes.put(serviceKind, {
          id: sid,
          type: e.type,
          name: e.name,
          description: `${e.name} (${e.type})`,
          enabled: 1,
        });
    }
  });
}

/** Makes this site's region, service and endpoint rows match what it serves now. */
export function ensureOwnCatalog(
  p: CatalogPorts,
  entries: readonly { type: string; name: string; path: string }[],
): void {
  if (p.hasLeft()) return;
  const site = p.siteName;
  p.tx(() => {
    if (!p.repos.catalog.region(site))
      p.changes.put(regionKind, {
        id: site,
        description: `Atoll site ${site}`,
        parent_region_id: null,
      });
    for (const e of entries) {
      const sid = serviceId(e.type);
      for (const iface of ['public', 'internal']) {
        const eid = stableId('endpoint', site, e.type, iface);
        const url = p.publicUrl() + e.path;
        const cur = p.repos.catalog.endpoint(eid);
        if (!cur || (cur.url !== url && cur.owner === site))
          p.changes.put(endpointKind, {
            id: eid,
            service_id: sid,
            region_id: site,
            interface: iface,
            url,
            enabled: 1,
          });
      }
    }
  });
}

interface CatalogEndpoint {
  id: string;
  interface: string;
  region: string;
  region_id: string;
  url: string;
}

/**
 * Catalogs as built, per project, until the catalog epoch moves (a service, endpoint, region, site or
 * eviction changed here or in a replica): every token validation with its catalog used to run two
 * queries and rebuild the whole list. Each is kept with its JSON too, made on first use: serializing
 * the catalog (every service's endpoints in every region) was most of the cost of a validation with it.
 */
const builtCatalogs = new WeakMap<CatalogPorts, { epoch: number; byProject: Map<string, BuiltCatalog> }>();
const MAX_CACHED_CATALOGS = 1000;
type Catalog = ReturnType<typeof freshCatalog>;
interface BuiltCatalog {
  catalog: Catalog;
  json?: Buffer;
}

function built(ic: CatalogPorts, projectId: string | undefined): BuiltCatalog {
  let cache = builtCatalogs.get(ic);
  if (!cache || cache.epoch !== ic.catalogEpoch()) {
    cache = { epoch: ic.catalogEpoch(), byProject: new Map() };
    builtCatalogs.set(ic, cache);
  }
  const key = projectId ?? '';
  let c = cache.byProject.get(key);
  if (!c) {
    if (cache.byProject.size >= MAX_CACHED_CATALOGS) cache.byProject.clear();
    c = { catalog: freshCatalog(ic, projectId) };
    cache.byProject.set(key, c);
  }
  return c;
}

/** Keystone's catalog: one entry per service with its endpoints in every region. */
export function buildCatalog(ic: CatalogPorts, projectId: string | undefined): Catalog {
  return built(ic, projectId).catalog;
}

/** The same catalog as JSON (UTF-8), serialized once per catalog epoch and project. */
export function catalogJson(ic: CatalogPorts, projectId: string | undefined): Buffer {
  const c = built(ic, projectId);
  c.json ??= Buffer.from(JSON.stringify(c.catalog));
  return c.json;
}

function freshCatalog(p: CatalogPorts, projectId: string | undefined) {
  const services = p.repos.catalog.enabledServices();
  // An evicted site's region leaves the catalog: no client sends a token there any more.
  const evicted = (region: string | null) => region !== null && p.isEvicted(region);
  const eps = p.repos.catalog.enabledEndpoints();
  return services.map((s) => ({
    id: s.id,
    type: s.type,
    name: s.name,
    endpoints: eps
      .filter((e) => e.service_id === s.id && !evicted(e.region_id))
      .map((e): CatalogEndpoint => ({
        id: e.id,
        interface: e.interface,
        region: e.region_id ?? '',
        region_id: e.region_id ?? '',
        url: projectId
          ? e.url.replace('$(project_id)s', projectId).replace('%(project_id)s', projectId)
          : e.url,
      })),
  }));
}

/** A region with a caller-chosen id (409 when it exists); its parent, if any, must exist (the caller checks). */
export function createRegion(
  p: IdentityPorts,
  r: { id: string; description: string; parent_region_id: string | null },
): RegionRow {
  return p.tx(() => {
    if (p.repos.catalog.region(r.id))
      throw new Conflict(`Conflict occurred attempting to store region - Duplicate ID, ${r.id}.`);
    return p.changes.put(regionKind, r);
  });
}

export function deleteRegion(p: IdentityPorts, id: string): void {
  if (p.repos.catalog.hasChildRegions(id))
    throw new Conflict('Cannot delete a region that has child regions.');
  p.changes.remove(regionKind, id);
}

/** Deletes a service with its endpoints (those owned here; their owners remove the others). */
export function deleteService(p: IdentityPorts, id: string): void {
  p.tx(() => {
    removeOwned(p, endpointKind, p.repos.catalog.endpointsOfService(id));
    p.changes.remove(serviceKind, id);
  });
}

/** Absent fields are left as they are; a null parent makes the region top-level. */
export function updateRegion(
  p: IdentityPorts,
  cur: RegionRow,
  c: { description: string | undefined; parent_region_id: string | null | undefined },
): RegionRow {
  return p.changes.put(regionKind, {
    ...cur,
    description: c.description ?? cur.description,
    parent_region_id: c.parent_region_id === undefined ? cur.parent_region_id : c.parent_region_id,
  });
}

type ServiceFields = Omit<ServiceRow, 'id' | 'owner'>;

export function createService(p: IdentityPorts, c: ServiceFields): ServiceRow {
  return p.changes.put(serviceKind, { id: p.newId(), ...c });
}

export function updateService(p: IdentityPorts, cur: ServiceRow, c: ServiceFields): ServiceRow {
  return p.changes.put(serviceKind, { ...cur, ...c });
}

type EndpointFields = Omit<EndpointRow, 'id' | 'owner'>;

export function createEndpoint(p: IdentityPorts, c: EndpointFields): EndpointRow {
  return p.changes.put(endpointKind, { id: p.newId(), ...c });
}

export function updateEndpoint(p: IdentityPorts, cur: EndpointRow, c: EndpointFields): EndpointRow {
  return p.changes.put(endpointKind, { ...cur, ...c });
}

export function deleteEndpoint(p: IdentityPorts, id: string): void {
  p.changes.remove(endpointKind, id);
}
