/**
 * @module A real site (`createSite`, src/site/site.ts) over the in-process fabric under a VirtualClock,
 * with only a test service: a table `items` replicated to every site. Everything else is the site as
 * it runs: its registry, sealer, continuity check, forwarder and replicator. Cheap enough for
 * randomized schedules over many sites; a site restarted from the same `dataDir` keeps its identity
 * and its log.
 */
import type { ServiceModule } from '../../src/services/common/module.ts';
import type { Site } from '../../src/site/site.ts';
import { createSite } from '../../src/site/site.ts';
import type { Clock, Logger } from '../../src/core/ports.ts';
import { silentLogger } from '../../src/core/ports.ts';
import { anySite } from '../../src/federation/origin.ts';
import type { ChangeLog } from '../../src/federation/changelog.ts';
import type { Replicator } from '../../src/federation/replicator.ts';
import type { MemoryNetwork } from '../../src/fabric/memory/network.ts';
import type { Store } from '../../src/store/db.ts';
import { existsSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/**
 * A fresh directory for sites' data directories, in memory (/dev/shm) where there is one: the sites
 * sync every commit (synchronous = FULL), which on a busy disk made the restart schedules I/O bound.
 */
export function scratchDir(prefix = 'atoll-mini-'): string {
  const shm = '/dev/shm';
  return mkdtempSync(join(existsSync(shm) ? shm : tmpdir(), prefix));
}

export interface MiniSite {
  name: string;
  site: Site;
  /** ':memory:' or the directory a restart reopens. */
  dataDir: string;
  store: Store;
  log: ChangeLog;
  rep: Replicator;
  rows(): { id: string; owner: string; v: number }[];
  /** Closes the site (its database too: a restart reopens `dataDir`). */
  stop(): Promise<void>;
}

/** The test service: one table, one kind any site may write (each its own rows). */
const itemsModule = (): ServiceModule => ({
  name: 'items',
  migrations: [
    {
      id: 'test/items',
      sql: 'CREATE TABLE items (id TEXT PRIMARY KEY, owner TEXT NOT NULL, v INTEGER NOT NULL)',
    },
  ],
  kinds: [{ kind: 'item', table: 'items', replicate: 'all', origin: anySite }],
  catalog: [],
  register() {},
});

export interface MiniSiteOptions {
  /** ':memory:' (the default) or a directory to keep the site's database in across restarts. */
  dataDir?: string;
  logger?: Logger;
}

export async function miniSite(
  net: MemoryNetwork,
  name: string,
  clock: Clock,
  opts: MiniSiteOptions = {},
): Promise<MiniSite> {
  const dataDir = opts.dataDir ?? ':memory:';
  const site = await createSite(
    { name, dataDir, logLevel: 'silent', heartbeatMs: 100, downAfterMs: 350 },
    { fabric: net.connect(name), modules: [itemsModule()], clock, log: opts.logger ?? silentLogger },
  );
  const { store, changelog, replicator } = site.ctx;
  const rows = store.db.prepare('SELECT id, owner, v FROM items ORDER BY id');
  return {
    name,
    site,
    dataDir,
    store,
    log: changelog,
    rep: replicator,
    rows: () => rows.all() as { id: string; owner: string; v: number }[],
    stop: () => site.close(),
  };
}

/** Moves virtual time forward in steps, letting promise callbacks run between steps. */
export async function runFor(clock: { advance(ms: number): void }, ms: number, step = 5): Promise<void> {
  for (let t = 0; t < ms; t += step) {
    clock.advance(step);
    await new Promise((r) => setImmediate(r));
  }
}
