/**
 * @module The catalog's rows: regions, services and endpoints.
 */
import type { Db } from '../../../store/db.ts';
import type { EndpointRow, OwnedRef, RegionRow, ServiceRow } from './schema.ts';

export class CatalogRepo {
  private q;
  constructor(db: Db) {
    this.q = {
      region: db.prepare('SELECT * FROM regions WHERE id = ?'),
      regions: db.prepare('SELECT * FROM regions ORDER BY id'),
      childRegion: db.prepare('SELECT 1 FROM regions WHERE parent_region_id = ?'),
      service: db.prepare('SELECT * FROM services WHERE id = ?'),
      services: db.prepare('SELECT * FROM services ORDER BY type'),
      enabledServices: db.prepare('SELECT * FROM services WHERE enabled = 1 ORDER BY type'),
      endpoint: db.prepare('SELECT * FROM endpoints WHERE id = ?'),
      endpoints: db.prepare('SELECT * FROM endpoints ORDER BY region_id, service_id, interface'),
      enabledEndpoints: db.prepare('SELECT * FROM endpoints WHERE enabled = 1 ORDER BY region_id, interface'),
      endpointsOf: db.prepare('SELECT id, owner FROM endpoints WHERE service_id = ?'),
    };
  }

  region(id: string): RegionRow | undefined {
    return this.q.region.get(id) as RegionRow | undefined;
  }
  regions(): RegionRow[] {
    return this.q.regions.all() as RegionRow[];
  }
  hasChildRegions(id: string): boolean {
    return !!this.q.childRegion.get(id);
  }
  service(id: string): ServiceRow | undefined {
    return this.q.service.get(id) as ServiceRow | undefined;
  }
  services(): ServiceRow[] {
    return this.q.services.all() as ServiceRow[];
  }
  enabledServices(): ServiceRow[] {
    return this.q.enabledServices.all() as ServiceRow[];
  }
  endpoint(id: string): EndpointRow | undefined {
    return this.q.endpoint.get(id) as EndpointRow | undefined;
  }
  endpoints(): EndpointRow[] {
    return this.q.endpoints.all() as EndpointRow[];
  }
  enabledEndpoints(): EndpointRow[] {
    return this.q.enabledEndpoints.all() as EndpointRow[];
  }
  endpointsOfService(serviceId: string): OwnedRef[] {
    return this.q.endpointsOf.all(serviceId) as OwnedRef[];
  }
}
