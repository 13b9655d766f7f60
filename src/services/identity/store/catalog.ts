/**
 * @module The catalog's rows: regions, services and endpoints.
 */
import type { Db } from '../../../store/db.ts';
import type { EndpointRow, OwnedRef, RegionRow, ServiceRow } from './schema.ts';
import { TableRows } from './sql.ts';

export class CatalogRepo {
  private regionRows;
  private serviceRows;
  private endpointRows;
  private q;
  constructor(db: Db) {
    this.regionRows = new TableRows<RegionRow>(db, 'regions', 'id');
    this.serviceRows = new TableRows<ServiceRow>(db, 'services', 'type');
    this.endpointRows = new TableRows<EndpointRow>(db, 'endpoints', 'region_id, service_id, interface');
    this.q = {
      childRegion: db.prepare('SELECT 1 FROM regions WHERE parent_region_id = ?'),
      enabledServices: db.prepare('SELECT * FROM services WHERE enabled = 1 ORDER BY type'),
      enabledEndpoints: db.prepare('SELECT * FROM endpoints WHERE enabled = 1 ORDER BY region_id, interface'),
      endpointsOf: db.prepare('SELECT id, owner FROM endpoints WHERE service_id = ?'),
    };
  }

  region(id: string): RegionRow | undefined {
    return this.regionRows.get(id);
  }
  regions(): RegionRow[] {
    return this.regionRows.all();
  }
  hasChildRegions(id: string): boolean {
    return !!this.q.childRegion.get(id);
  }
  service(id: string): ServiceRow | undefined {
    return this.serviceRows.get(id);
  }
  services(): ServiceRow[] {
    return this.serviceRows.all();
  }
  enabledServices(): ServiceRow[] {
    return this.q.enabledServices.all() as ServiceRow[];
  }
  endpoint(id: string): EndpointRow | undefined {
    return this.endpointRows.get(id);
  }
  endpoints(): EndpointRow[] {
    return this.endpointRows.all();
  }
  enabledEndpoints(): EndpointRow[] {
    return this.q.enabledEndpoints.all() as EndpointRow[];
  }
  endpointsOfService(serviceId: string): OwnedRef[] {
    return this.q.endpointsOf.all(serviceId) as OwnedRef[];
  }
}
