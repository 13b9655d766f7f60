/**
 * @module The data plane of one site, built from its settings (`services.network.dataplane`:
 * "none", the default, or "linux"; `dataplaneReconcileMs`, default 30 s) over the network rows.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ServiceContext } from '../../common/module.ts';
import type { Vif } from '../../common/vif.ts';
import { bodyOf } from '../domain/records.ts';
import type { SqlNetworkRepository } from '../store/repository.ts';
import type { DataPlane, DataPlaneRows } from './dataplane.ts';
import { DATAPLANES, desiredState, noneDataPlane, vifsOf } from './dataplane.ts';
import { LinuxDataPlane } from './linux.ts';
import { DataPlaneLoop } from './loop.ts';

const portRow = (r: { owner: string; body: string }) => ({
  owner: r.owner,
  body: JSON.parse(r.body) as Record<string, unknown>,
});

export function dataPlaneRows(repo: SqlNetworkRepository): DataPlaneRows {
  return {
    network: (id) => {
      const r = repo.row('network', id);
      return r ? bodyOf(r) : undefined;
    },
    subnetsOf: (id) => repo.subnetsOf(id).map(bodyOf),
    portsOf: (id) => repo.portsOf(id).map(portRow),
    ports: () => repo.all('port').map(portRow),
  };
}

export class SiteDataPlane {
  readonly loop: DataPlaneLoop;
  private readonly rows: DataPlaneRows;

  constructor(
    private readonly ctx: ServiceContext,
    repo: SqlNetworkRepository,
    plane: DataPlane,
    everyMs: number,
  ) {
    this.rows = dataPlaneRows(repo);
    this.loop = new DataPlaneLoop(
      plane,
      () => desiredState(ctx.name, this.rows),
      ctx.clock,
      ctx.log,
      everyMs,
    );
  }

  get name(): string {
    return this.loop.plane.name;
  }

  /** The NICs the data plane plugs for a server's ports (none with the `none` data plane). */
  vifs(ports: { owner: string; body: string }[]): Vif[] {
    if (this.name === 'none') return [];
    return vifsOf(this.ctx.name, this.rows, ports.map(portRow));
  }

  async start(): Promise<void> {
    await this.loop.plane.check();
    await this.loop.start();
  }

  stop(): void {
    this.loop.stop();
  }
}

/** The site's data plane from its settings; a bad name stops the site at start with a message. */
export function siteDataPlane(ctx: ServiceContext, repo: SqlNetworkRepository): SiteDataPlane {
  const cfg = ctx.config.services.network ?? {};
  const name = String(cfg.dataplane ?? 'none');
  if (!(DATAPLANES as readonly string[]).includes(name))
    throw new Error(`services.network.dataplane must be one of ${DATAPLANES.join(', ')} (got ${name})`);
  const every = typeof cfg.dataplaneReconcileMs === 'number' ? cfg.dataplaneReconcileMs : 30_000;
  let plane: DataPlane = noneDataPlane;
  if (name === 'linux') {
    const stateDir =
      ctx.config.dataDir === ':memory:'
        ? mkdtempSync(join(tmpdir(), 'atoll-dataplane-'))
        : join(ctx.config.dataDir, 'dataplane');
    plane = new LinuxDataPlane({ site: ctx.name, stateDir, log: ctx.log });
  }
  return new SiteDataPlane(ctx, repo, plane, every);
}
