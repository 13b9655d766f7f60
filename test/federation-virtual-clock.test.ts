/**
 * @module The embedded federation (`startFederation`, what `atoll up` runs) on a VirtualClock: the
 * sites, their replication and the WAN model all take the clock they are given, so virtual time alone
 * moves them (nothing waits on the system clock).
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { VirtualClock } from '../src/core/ports.ts';
import { startFederation } from '../src/site/launch.ts';
import { ADMIN, federationConverged } from './support/cloud.ts';
import { runFor } from './support/mini-site.ts';

describe('startFederation under a virtual clock', () => {
  it('three sites meet and converge as virtual time passes, and not before', async () => {
    const clock = new VirtualClock();
    const fed = await startFederation({
      sites: 3,
      basePort: 0,
      host: '127.0.0.1',
      dataDir: ':memory:',
      admin: ADMIN,
      latencyMs: 40,
      logLevel: 'silent',
      site: { passwordHashCost: 10, heartbeatMs: 200, downAfterMs: 1000 },
      clock,
    });
    try {
      const a = fed.sites[0]!.ctx;
      assert.equal(a.clock, clock);
      assert.equal(fed.network.clock, clock);
      // No virtual time has passed: nothing crossed the 40 ms links yet.
      assert.equal(federationConverged(fed), false);
      assert.equal(a.replicator.isUp('site-b'), false);
      await runFor(clock, 3000, 10);
      assert.equal(federationConverged(fed), true, 'converged after 3 s of virtual time');
      assert.equal(a.replicator.isUp('site-b'), true);
      assert.equal(a.replicator.isUp('site-c'), true);
    } finally {
      await fed.close();
    }
  });
});
