/**
 * @module The soak, short: three site processes over real NATS (40 ms WAN proxies on the routes) for
 * about a minute of mixed writes, with one kill -9 (and restart) and one partition; then every site
 * must hold the same rows, no acknowledged write may be lost and no address held twice
 * (bench/soak.ts checks these and lists what it found).
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { runSoak } from '../bench/soak.ts';

describe('soak, short', () => {
  it('3 sites, one kill -9 and one partition: same rows everywhere, no acked write lost, no address twice', async () => {
    const lines: string[] = [];
    const r = await runSoak({
      sites: 3,
      minutes: 1,
      faultEverySec: 24,
      faultPlan: ['kill', 'partition'],
      log: (l) => lines.push(l),
    });
    assert.deepEqual(r.violations, [], lines.join('\n'));
    assert.deepEqual(
      r.faults.map((f) => f.kind),
      ['kill', 'partition'],
      'both faults happened',
    );
    const acked = Object.values(r.acked).reduce((a, b) => a + b, 0);
    assert.ok(acked > 20, `the workload got writes acknowledged (${acked})`);
    for (const kind of ['server', 'port', 'volume', 'project'])
      assert.ok((r.acked[kind] ?? 0) > 0, `some ${kind} creates were acknowledged`);
    assert.ok(r.addresses > 0, 'ports hold addresses');
    assert.ok(r.convergeMs !== null, 'the sites converged after the heal');
    assert.ok(
      r.samples.some((s) => s.rssMb.some((v) => v !== null && v > 0)),
      'RSS was sampled',
    );
  });
});
