/**
 * @module The service catalog. Each site registers its own region (named after the site), and one
 * public endpoint per service on it; the rows replicate, so every site's catalog lists every region.
 * Service rows have ids derived from their type, so every site makes the same ones.
 */
import { createHash } from 'node:crypto';
import type { IdentityContext } from '../context.ts';

const stableId = (...parts: string[]) =>
  createHash('sha256').update(parts.join('\0')).digest('hex').slice(0, 32);

export function serviceId(type: string): string {
  return stableId('service', type);
}

/** Service rows are made once, by the bootstrapping site (their ids are the same everywhere). */
export function ensureServices(
  ic: IdentityContext,
  entries: readonly { type: string; name: string }[],
): void {
  const { site } = ic;
  site.store.tx(() => {
    for (const e of entries) {
      const sid = serviceId(e.type);
      if (!site.store.db.prepare('SELECT 1 FROM services WHERE id = ?').get(sid))
        site.changelog.put('service', {
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
  ic: IdentityContext,
  entries: readonly { type: string; name: string; path: string }[],
): void {
  const { site } = ic;
  const db = site.store.db;
  if (site.registry.get(site.name)?.state === 'left') return;
  site.store.tx(() => {
    const region = db.prepare('SELECT * FROM regions WHERE id = ?').get(site.name) as
      { owner: string; description: string } | undefined;
    if (!region)
      site.changelog.put('region', {
        id: site.name,
        description: `Atoll site ${site.name}`,
        parent_region_id: null,
      });
    for (const e of entries) {
      const sid = serviceId(e.type);
      for (const iface of ['public', 'internal']) {
        const eid = stableId('endpoint', site.name, e.type, iface);
        const url = site.publicUrl() + e.path;
        const cur = db.prepare('SELECT url, owner FROM endpoints WHERE id = ?').get(eid) as
          { url: string; owner: string } | undefined;
        if (!cur || (cur.url !== url && cur.owner === site.name))
          site.changelog.put('endpoint', {
            id: eid,
            service_id: sid,
            region_id: site.name,
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

/** Keystone's catalog: one entry per service with its endpoints in every region. */
/**
 * Catalogs as built, per project, until the catalog epoch moves (a service, endpoint, region, site or
 * eviction changed here or in a replica): every token validation with its catalog used to run two
 * queries and rebuild the whole list.
 */
const builtCatalogs = new WeakMap<IdentityContext, { epoch: number; byProject: Map<string, Catalog> }>();
const MAX_CACHED_CATALOGS = 1000;
type Catalog = ReturnType<typeof freshCatalog>;

export function buildCatalog(ic: IdentityContext, projectId: string | undefined): Catalog {
  let cache = builtCatalogs.get(ic);
  if (!cache || cache.epoch !== ic.catalogEpoch()) {
    cache = { epoch: ic.catalogEpoch(), byProject: new Map() };
    builtCatalogs.set(ic, cache);
  }
  const key = projectId ?? '';
  let c = cache.byProject.get(key);
  if (!c) {
    if (cache.byProject.size >= MAX_CACHED_CATALOGS) cache.byProject.clear();
    c = freshCatalog(ic, projectId);
    cache.byProject.set(key, c);
  }
  return c;
}

function freshCatalog(ic: IdentityContext, projectId: string | undefined) {
  const db = ic.site.store.db;
  const services = db.prepare('SELECT * FROM services WHERE enabled = 1 ORDER BY type').all() as {
    id: string;
    type: string;
    name: string;
  }[];
  // An evicted site's region leaves the catalog: no client sends a token there any more.
  const evicted = (region: string | null) => region !== null && ic.site.registry.isEvicted(region);
  const eps = db.prepare('SELECT * FROM endpoints WHERE enabled = 1 ORDER BY region_id, interface').all() as {
    id: string;
    service_id: string;
    region_id: string | null;
    interface: string;
    url: string;
  }[];
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
