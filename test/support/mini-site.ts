/**
 * @module A site reduced to its federation core (store, change log, replicator) over the in-process
 * fabric, with a test table `items`. Cheap enough for randomized schedules over many sites under a
 * VirtualClock; the full site (HTTP and services) uses exactly these parts.
 */
import { Store } from '../../src/store/db.ts';
import type { Clock, Logger } from '../../src/core/ports.ts';
import { anySite } from '../../src/federation/origin.ts';
import { silentLogger } from '../../src/core/ports.ts';
import { ChangeLog, changelogMigrations } from '../../src/federation/changelog.ts';
import { Replicator } from '../../src/federation/replicator.ts';
import type { MemoryNetwork } from '../../src/fabric/memory/network.ts';

export interface MiniSite {
  name: string;
  store: Store;
  log: ChangeLog;
  rep: Replicator;
  rows(): { id: string; owner: string; v: number }[];
  stop(): void;
}

export function miniSite(
  net: MemoryNetwork,
  name: string,
  clock: Clock,
  file = ':memory:',
  store?: Store,
  logger: Logger = silentLogger,
): MiniSite {
  const s = store ?? new Store(file);
  s.migrate([
    ...changelogMigrations,
    {
      id: 'test/items',
      sql: 'CREATE TABLE items (id TEXT PRIMARY KEY, owner TEXT NOT NULL, v INTEGER NOT NULL)',
    },
  ]);
  const log = new ChangeLog(s, name, silentLogger, () => clock.now());
  log.register({ kind: 'item', table: 'items', replicate: 'all', origin: anySite });
  const fabric = net.connect(name);
  const rep = new Replicator(fabric, log, clock, logger, {
    heartbeatMs: 100,
    downAfterMs: 350,
    pullLimit: 50,
  });
  rep.start();
  return {
    name,
    store: s,
    log,
    rep,
    rows: () =>
      s.db.prepare('SELECT id, owner, v FROM items ORDER BY id').all() as {
        id: string;
        owner: string;
        v: number;
      }[],
    stop() {
      rep.stop();
      void fabric.close();
    },
  };
}

/** Moves virtual time forward in steps, letting promise callbacks run between steps. */
export async function runFor(clock: { advance(ms: number): void }, ms: number, step = 5): Promise<void> {
  for (let t = 0; t < ms; t += step) {
    clock.advance(step);
    await new Promise((r) => setImmediate(r));
  }
}
