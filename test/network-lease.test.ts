/**
 * @module Address-block leases across three in-process sites: ports on a network site-a owns are made
 * at site-b and site-c from blocks leased to them (one WAN round trip for the first, none after), a
 * chosen address in another site's block is refused with 409 naming it, an isolated lessee keeps
 * allocating until its blocks are full and then answers 503 naming the owner, and after healing every
 * site agrees and no address was assigned twice. Leases are renewed while used and returned when idle.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { eventually, startLocalCloud } from './support/cloud.ts';
import type { LocalCloud } from './support/cloud.ts';
import { apiFor, checkAddressInvariants, makeNetwork, sleep, waitDown } from './support/network.ts';
import type { Api } from './support/network.ts';
import { seededRandom } from '../src/core/random.ts';

const leaseRows = (cloud: LocalCloud, i: number, subnetId: string) =>
  cloud.fed.sites[i]!.ctx.store.db.prepare('SELECT * FROM net_ip_leases WHERE subnet_id = ?').all(
    subnetId,
  ) as {
    id: string;
    first: string;
    last: string;
    expires_at: number;
    state: string;
  }[];

describe('address leases across three sites', () => {
  let cloud: LocalCloud;
  let api: Api;
  before(async () => {
    cloud = await startLocalCloud({
      sites: 3,
      site: {
        services: {
          network: { ipBlockSize: 16, leaseTtlMs: 600_000, leaseIdleMs: 600_000, leaseLowWater: 4 },
        },
      },
    });
    api = await apiFor(cloud);
  });
  after(async () => cloud?.close());

  it('makes ports at site-b and site-c locally, each from its own leased blocks', async () => {
    const { networkId, subnetId } = await makeNetwork(cloud, api, 0, 'leasenet', '10.60.0.0/24');
    await cloud.converged();
    const made: Record<string, { id: string; ip: string }[]> = { 'site-b': [], 'site-c': [] };
    for (const i of [1, 2, 1, 2, 1, 2]) {
      const r = await api(i, 'POST', '/ports', { port: { network_id: networkId } });
      assert.equal(r.status, 201, JSON.stringify(r.body));
      made[cloud.fed.sites[i]!.ctx.name]!.push({
        id: r.body.port.id,
        ip: r.body.port.fixed_ips[0].ip_address,
      });
    }
    for (const [i, site] of [
      [1, 'site-b'],
      [2, 'site-c'],
    ] as const) {
      const db = cloud.fed.sites[i]!.ctx.store.db;
      for (const p of made[site]!)
        assert.equal(
          db.prepare('SELECT owner FROM net_ports WHERE id = ?').pluck().get(p.id),
          site,
          'owned here',
        );
      const leases = leaseRows(cloud, i, subnetId);
      assert.ok(leases.length >= 1, `${site} holds a lease`);
      for (const p of made[site]!) {
        const key = p.ip.split('.').reduce((a, o) => a * 256 + Number(o), 0);
        assert.ok(
          leases.some((l) => Number(`0x${l.first}`) <= key && key <= Number(`0x${l.last}`)),
          `${p.ip} lies in a block leased to ${site}`,
        );
      }
    }
    // The second and third port at a site needed no lease request: one request (plus prefetch at most).
    const leaseStats = cloud.fed.sites.map(
      (s) => (s.modules.find((m) => m.name === 'network') as any).service.leases.stats,
    );
    assert.ok(leaseStats[1].requested <= 2, `site-b asked at most twice (${leaseStats[1].requested})`);
    assert.equal(cloud.fed.sites[1]!.ctx.forwarder.stats.forwarded, 0, 'nothing was forwarded');

    await cloud.converged();
    const blocks = cloud.fed.sites[0]!.ctx.store.db.prepare(
      'SELECT leased_to_site FROM net_ip_blocks WHERE subnet_id = ? ORDER BY first',
    )
      .pluck()
      .all(subnetId) as string[];
    assert.ok(blocks.includes('site-b') && blocks.includes('site-c'), `blocks: ${blocks.join(',')}`);
    checkAddressInvariants(cloud, subnetId);

    // A chosen address in site-c's block, asked at site-b: refused with 409 naming site-c (a port is
    // owned where it is made, so it is not forwarded to the lessee).
    const cIp = made['site-c']![0]!.ip.replace(/\d+$/, (d) => String(Number(d) + 5));
    const refused = await api(1, 'POST', '/ports', {
      port: { network_id: networkId, fixed_ips: [{ subnet_id: subnetId, ip_address: cIp }] },
    });
    assert.equal(refused.status, 409, JSON.stringify(refused.body));
    assert.match(refused.body.NeutronError.message, /site-c/);
    // A chosen address in a slot nobody holds yet: site-b leases that slot and makes the port.
    const chosen = await api(1, 'POST', '/ports', {
      port: { network_id: networkId, fixed_ips: [{ subnet_id: subnetId, ip_address: '10.60.0.200' }] },
    });
    assert.equal(chosen.status, 201, JSON.stringify(chosen.body));
    assert.equal(chosen.body.port.fixed_ips[0].ip_address, '10.60.0.200');
  });

  it("creates a port at site-c on site-a's network with the openstack CLI", async () => {
    await cloud.osJson(['network', 'create', '--share', 'clinet'], { site: 0 });
    await cloud.osJson(
      ['subnet', 'create', '--network', 'clinet', '--subnet-range', '10.61.0.0/24', 'clisub'],
      {
        site: 0,
      },
    );
    await cloud.converged();
    const port = await cloud.osJson(['port', 'create', '--network', 'clinet', 'cliport'], { site: 2 });
    const db = cloud.fed.sites[2]!.ctx.store.db;
    assert.equal(db.prepare('SELECT owner FROM net_ports WHERE id = ?').pluck().get(port.id), 'site-c');
    assert.equal(cloud.fed.sites[2]!.ctx.forwarder.stats.forwarded, 0, 'made locally, not forwarded');
    await cloud.converged();
    const seen = await cloud.osJson(['port', 'show', port.id], { site: 0 });
    assert.equal(seen.id, port.id);
    assert.equal(
      (await cloud.os(['port', 'delete', port.id], { site: 1 })).code,
      0,
      'delete is forwarded to site-c',
    );
  });

  it('keeps allocating at an isolated lessee until its blocks are full, then 503 naming the owner', async () => {
    const { networkId, subnetId } = await makeNetwork(cloud, api, 0, 'partnet', '10.62.0.0/24');
    await cloud.converged();
    const acked: string[] = [];
    const first = await api(1, 'POST', '/ports', { port: { network_id: networkId } });
    assert.equal(first.status, 201);
    acked.push(first.body.port.id);
    await eventually(() => leaseRows(cloud, 1, subnetId).length >= 1, 2000, 'a lease at site-b');

    cloud.fed.network.isolate('site-b');
    await waitDown(cloud, 1, 'site-a');
    await waitDown(cloud, 0, 'site-b');
    const leased = leaseRows(cloud, 1, subnetId).reduce(
      (a, l) => a + Number(`0x${l.last}`) - Number(`0x${l.first}`) + 1,
      0,
    );
    let okAtB = 1;
    let unavailable: { status: number; body: any } | undefined;
    for (let i = 0; i < 200 && !unavailable; i++) {
      const [b, a, c] = await Promise.all([
        api(1, 'POST', '/ports', { port: { network_id: networkId, name: `b${i}` } }),
        api(0, 'POST', '/ports', { port: { network_id: networkId, name: `a${i}` } }),
        api(2, 'POST', '/ports', { port: { network_id: networkId, name: `c${i}` } }),
      ]);
      for (const r of [a, c]) {
        assert.equal(r.status, 201, JSON.stringify(r.body));
        acked.push(r.body.port.id);
      }
      if (b.status === 201) {
        okAtB++;
        acked.push(b.body.port.id);
      } else unavailable = b;
    }
    assert.ok(unavailable, 'site-b ran out of leased addresses');
    assert.equal(unavailable.status, 503, JSON.stringify(unavailable.body));
    assert.match(unavailable.body.NeutronError.message, /Site site-a is unreachable/);
    assert.equal(okAtB, leased, `site-b used every address of its ${leased} leased (${okAtB})`);

    cloud.fed.network.heal();
    await cloud.converged(15_000);
    const { ports } = checkAddressInvariants(cloud, subnetId);
    for (const s of cloud.fed.sites)
      for (const id of acked)
        assert.equal(
          s.ctx.store.db.prepare('SELECT count(*) FROM net_ports WHERE id = ?').pluck().get(id),
          1,
        );
    assert.ok(ports >= acked.length);
    // And site-b allocates again once it can reach the owner.
    const again = await api(1, 'POST', '/ports', { port: { network_id: networkId } });
    assert.equal(again.status, 201, JSON.stringify(again.body));
  });
});

describe('lease renewal and return', () => {
  let cloud: LocalCloud;
  let api: Api;
  before(async () => {
    cloud = await startLocalCloud({
      sites: 2,
      site: {
        services: {
          network: {
            ipBlockSize: 16,
            leaseTtlMs: 1500,
            leaseIdleMs: 300,
            leaseCheckMs: 100,
            leaseLowWater: 2,
          },
        },
      },
    });
    api = await apiFor(cloud);
  });
  after(async () => cloud?.close());

  it('renews a lease in use past its ttl and returns it once its ports are gone', async () => {
    const { networkId, subnetId } = await makeNetwork(cloud, api, 0, 'renewnet', '10.63.0.0/24');
    await cloud.converged();
    const p = await api(1, 'POST', '/ports', { port: { network_id: networkId } });
    assert.equal(p.status, 201);
    const granted = leaseRows(cloud, 1, subnetId)[0]!;
    await new Promise((r) => setTimeout(r, 2500)); // longer than the ttl
    const renewed = leaseRows(cloud, 1, subnetId).find((l) => l.id === granted.id);
    assert.ok(renewed && renewed.expires_at > granted.expires_at, 'the lease in use was renewed');
    const again = await api(1, 'POST', '/ports', { port: { network_id: networkId } });
    assert.equal(again.status, 201, 'still allocating from it');

    assert.equal((await api(1, 'DELETE', `/ports/${p.body.port.id}`)).status, 204);
    assert.equal((await api(1, 'DELETE', `/ports/${again.body.port.id}`)).status, 204);
    await eventually(() => leaseRows(cloud, 1, subnetId).length === 0, 5000, 'site-b to return its leases');
    await cloud.converged();
    const left = cloud.fed.sites[0]!.ctx.store.db.prepare(
      "SELECT count(*) FROM net_ip_blocks WHERE subnet_id = ? AND leased_to_site = 'site-b'",
    )
      .pluck()
      .get(subnetId);
    assert.equal(left, 0, 'the owner reclaimed the returned blocks');
    // the network can now be deleted from either site
    assert.equal((await api(1, 'DELETE', `/networks/${networkId}`)).status, 204);
  });
});

// ---- randomized: concurrent creates and deletes at every site under random partitions ---------

for (const seed of [1, 2, 3, 4]) {
  describe(`address leases under random partitions (seed ${seed})`, () => {
    let cloud: LocalCloud;
    let api: Api;
    before(async () => {
      cloud = await startLocalCloud({
        sites: 3,
        site: {
          // Short leases and idle times, so grants, renewals, returns, expiry and reclaim all happen
          // while sites are cut off from each other.
          services: {
            network: {
              ipBlockSize: 8,
              leaseTtlMs: 1200,
              leaseIdleMs: 200,
              leaseCheckMs: 100,
              leaseLowWater: 2,
            },
          },
        },
      });
      api = await apiFor(cloud);
    });
    after(async () => cloud?.close());

    it('never assigns an address twice and loses no acknowledged port', async () => {
      const random = seededRandom(seed);
      const pick = <T>(xs: readonly T[]): T => xs[Math.floor(random() * xs.length)]!;
      const names = cloud.fed.sites.map((s) => s.ctx.name);
      // A /26: 61 addresses in 8 blocks, so sites contend for the pool and exhaust it.
      const { networkId, subnetId } = await makeNetwork(cloud, api, 0, `rnd${seed}`, '10.64.0.0/26');
      await cloud.converged();
      const live = new Map<string, number>(); // acknowledged port -> site that made it
      const outcomes: Record<string, number> = {};
      const note = (k: string) => (outcomes[k] = (outcomes[k] ?? 0) + 1);

      for (let round = 0; round < 24; round++) {
        const r = random();
        if (r < 0.2) {
          const s = pick(names);
          cloud.fed.network.isolate(s);
          note(`isolate ${s}`);
        } else if (r < 0.3) {
          const [x, y, z] = [...names].sort(() => random() - 0.5);
          cloud.fed.network.partition([x!], [y!, z!]);
        } else if (r < 0.45) cloud.fed.network.heal();

        const ops: Promise<void>[] = [];
        for (let k = 0; k < 9; k++) {
          const site = Math.floor(random() * names.length);
          const mine = [...live].filter(([, s]) => s === site).map(([id]) => id);
          if (mine.length && random() < 0.35) {
            const id = pick(mine);
            live.delete(id); // not counted while in flight
            ops.push(
              api(site, 'DELETE', `/ports/${id}`).then((res) => {
                note(`delete ${res.status}`);
                if (res.status !== 204) live.set(id, site);
              }),
            );
          } else {
            ops.push(
              api(site, 'POST', '/ports', { port: { network_id: networkId } }).then((res) => {
                note(`create ${res.status}`);
                if (res.status === 201) live.set(res.body.port.id, site);
                else if (res.status === 503)
                  assert.match(
                    res.body.NeutronError.message,
                    /Site site-a is unreachable/,
                    'a 503 names the owner',
                  );
                else
                  assert.equal(
                    `${res.status} ${res.body?.NeutronError?.type}`,
                    '409 IpAddressGenerationFailure',
                    JSON.stringify(res.body),
                  );
              }),
            );
          }
        }
        await Promise.all(ops);
        await sleep(50 + random() * 250);
      }
      cloud.fed.network.heal();
      await cloud.converged(20_000);
      checkAddressInvariants(cloud, subnetId);
      for (const s of cloud.fed.sites) {
        const ids = new Set(
          s.ctx.store.db
            .prepare('SELECT id FROM net_ports WHERE network_id = ?')
            .pluck()
            .all(networkId) as string[],
        );
        for (const id of live.keys())
          assert.ok(ids.has(id), `acknowledged port ${id} exists at ${s.ctx.name}`);
        assert.equal(ids.size, live.size, `${s.ctx.name} holds exactly the acknowledged, undeleted ports`);
      }
      assert.ok((outcomes['create 201'] ?? 0) > 20, JSON.stringify(outcomes));
    });
  });
}
