/**
 * @module Address blocks sized to the subnet and the sites using it (docs/network.md, "Address blocks"):
 * on /28 and /26 subnets used by 2, 5 and 10 in-process sites over real HTTP, ports created round-robin
 * until the pool is full use every address of the pool exactly once, and the subnet's owner is refused
 * only when every free address lies in a block another site is using. Under random partitions during
 * concurrent creates no address is ever held twice, and after the heal the pool still fills completely.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { eventually, startLocalCloud } from './support/cloud.ts';
import type { LocalCloud } from './support/cloud.ts';
import { apiFor, checkAddressInvariants, makeNetwork, sleep, waitDown } from './support/network.ts';
import type { Api } from './support/network.ts';
import { seededRandom } from '../src/core/random.ts';

const OWNER = 0;
/** Addresses in the default pool of an IPv4 prefix: all but network, broadcast and gateway. */
const poolSize = (prefix: number) => 2 ** (32 - prefix) - 3;

interface Fill {
  ips: string[];
  /** Addresses the subnet's owner got. */
  atOwner: number;
}

const allocated = (cloud: LocalCloud, subnetId: string) =>
  cloud.fed.sites[OWNER]!.ctx.store.db.prepare('SELECT count(*) FROM net_ip_allocations WHERE subnet_id = ?')
    .pluck()
    .get(subnetId) as number;

/**
 * The owner may refuse only when no address is free for it: every address of the pool that is not
 * allocated lies in a block leased to another site that has allocations in it (an empty lease of a
 * reachable lessee is recalled). Checked on the owner's converged replica right after a refusal.
 */
function assertOwnerMayRefuse(cloud: LocalCloud, subnetId: string): void {
  const db = cloud.fed.sites[OWNER]!.ctx.store.db;
  const owner = cloud.fed.sites[OWNER]!.ctx.name;
  const body = JSON.parse(
    db.prepare('SELECT body FROM net_subnets WHERE id = ?').pluck().get(subnetId) as string,
  ) as { allocation_pools: { start: string; end: string }[] };
  const num = (ip: string) => ip.split('.').reduce((a, o) => a * 256 + Number(o), 0);
  const used = new Set(
    (
      db.prepare('SELECT ip FROM net_ip_allocations WHERE subnet_id = ?').pluck().all(subnetId) as string[]
    ).map(num),
  );
  const blocks = (
    db
      .prepare(
        'SELECT first, last, leased_to_site FROM net_ip_blocks WHERE subnet_id = ? AND leased_to_site != ?',
      )
      .all(subnetId, owner) as { first: string; last: string; leased_to_site: string }[]
  ).map((b) => ({ ...b, lo: Number(`0x${b.first}`), hi: Number(`0x${b.last}`) }));
  for (const p of body.allocation_pools)
    for (let n = num(p.start); n <= num(p.end); n++) {
      if (used.has(n)) continue;
      const b = blocks.find((x) => x.lo <= n && n <= x.hi);
      assert.ok(b, `the owner was refused while address #${n} was free and in no lease`);
      const inUse = [...used].some((u) => b.lo <= u && u <= b.hi);
      assert.ok(inUse, `the owner was refused while ${b.leased_to_site} held an empty block ${b.first}`);
    }
}

/**
 * Creates ports one at a time, round-robin over `sites` (starting with the second, so a lessee leases
 * before the owner asks), until every site in a row is refused with 409. Every other answer is a bug.
 */
async function fillRoundRobin(
  cloud: LocalCloud,
  api: Api,
  sites: number[],
  networkId: string,
  subnetId: string,
  limit: number,
): Promise<Fill> {
  const out: Fill = { ips: [], atOwner: 0 };
  let refusedInARow = 0;
  for (let k = 1; refusedInARow < sites.length && k < limit; k++) {
    const site = sites[k % sites.length]!;
    const r = await api(site, 'POST', '/ports', { port: { network_id: networkId, name: `rr${k}` } });
    if (r.status === 201) {
      out.ips.push(r.body.port.fixed_ips[0].ip_address as string);
      if (site === OWNER) out.atOwner++;
      refusedInARow = 0;
      continue;
    }
    assert.equal(
      `${r.status} ${r.body?.NeutronError?.type}`,
      '409 IpAddressGenerationFailure',
      `site ${site}: ${JSON.stringify(r.body)}`,
    );
    refusedInARow++;
    if (site === OWNER) {
      await cloud.converged();
      assertOwnerMayRefuse(cloud, subnetId);
    }
  }
  return out;
}

for (const sites of [2, 5, 10]) {
  describe(`address blocks on small subnets across ${sites} sites`, () => {
    let cloud: LocalCloud;
    let api: Api;
    const all = Array.from({ length: sites }, (_x, i) => i);
    before(async () => {
      cloud = await startLocalCloud({ sites });
      api = await apiFor(cloud);
    });
    after(async () => cloud?.close());

    for (const prefix of [28, 26]) {
      it(`a /${prefix} filled round-robin uses every address of its pool once`, async () => {
        const { networkId, subnetId } = await makeNetwork(
          cloud,
          api,
          OWNER,
          `rr${prefix}`,
          `10.${100 + prefix}.${sites}.0/${prefix}`,
        );
        await cloud.converged();
        const fill = await fillRoundRobin(cloud, api, all, networkId, subnetId, 20 * poolSize(prefix));
        assert.equal(new Set(fill.ips).size, fill.ips.length, 'no address handed out twice');
        assert.equal(fill.ips.length, poolSize(prefix), 'every address of the pool was used');
        // Blocks are a fraction of what is free, so the owner gets about its share, not nothing.
        const share = Math.max(1, Math.floor(poolSize(prefix) / (2 * sites)));
        assert.ok(fill.atOwner >= share, `the owner got ${fill.atOwner} addresses, fewer than ${share}`);
        await cloud.converged();
        assert.equal(allocated(cloud, subnetId), poolSize(prefix));
        checkAddressInvariants(cloud, subnetId);
      });
    }

    it('the owner keeps allocating after every other site leased at its first port', async () => {
      // The report of issue 13: a /26 used at one other site, a /24 at five.
      const cidr = sites === 2 ? `10.99.${sites}.0/26` : `10.99.${sites}.0/24`;
      const { networkId, subnetId } = await makeNetwork(cloud, api, OWNER, 'first', cidr);
      await cloud.converged();
      for (const i of all.slice(1)) {
        const r = await api(i, 'POST', '/ports', { port: { network_id: networkId } });
        assert.equal(r.status, 201, JSON.stringify(r.body));
      }
      for (let k = 0; k < 20; k++) {
        const r = await api(OWNER, 'POST', '/ports', { port: { network_id: networkId } });
        assert.equal(r.status, 201, `owner create ${k}: ${JSON.stringify(r.body)}`);
      }
      await cloud.converged();
      checkAddressInvariants(cloud, subnetId);
    });
  });
}

describe('the owner takes back empty blocks only through their lessee', () => {
  let cloud: LocalCloud;
  let api: Api;
  before(async () => {
    cloud = await startLocalCloud({ sites: 2 });
    api = await apiFor(cloud);
  });
  after(async () => cloud?.close());

  it('recalls an empty block from a reachable lessee, never from a cut-off one', async () => {
    const { networkId, subnetId } = await makeNetwork(cloud, api, OWNER, 'recall', '10.98.0.0/28');
    await cloud.converged();
    const made: string[] = [];
    for (let k = 0; k < 3; k++) {
      const r = await api(1, 'POST', '/ports', { port: { network_id: networkId } });
      assert.equal(r.status, 201, JSON.stringify(r.body));
      made.push(r.body.port.id as string);
    }
    for (const id of made) assert.equal((await api(1, 'DELETE', `/ports/${id}`)).status, 204);
    await cloud.converged();
    const db = cloud.fed.sites[OWNER]!.ctx.store.db;
    const leasedToB = (
      db
        .prepare("SELECT first, last FROM net_ip_blocks WHERE subnet_id = ? AND leased_to_site = 'site-b'")
        .all(subnetId) as { first: string; last: string }[]
    ).reduce((a, b) => a + Number(`0x${b.last}`) - Number(`0x${b.first}`) + 1, 0);
    assert.ok(leasedToB > 0 && leasedToB < poolSize(28), `site-b holds ${leasedToB} empty addresses`);

    // Cut off, site-b may still allocate from its leases: the owner must not take them.
    cloud.fed.network.isolate('site-b');
    await waitDown(cloud, OWNER, 'site-b');
    let atOwner = 0;
    for (;;) {
      const r = await api(OWNER, 'POST', '/ports', { port: { network_id: networkId } });
      if (r.status !== 201) {
        assert.equal(`${r.status} ${r.body.NeutronError.type}`, '409 IpAddressGenerationFailure');
        break;
      }
      atOwner++;
    }
    assert.equal(atOwner, poolSize(28) - leasedToB, 'the owner used every address outside site-b blocks');

    // Reachable again: site-b gives its empty blocks back when asked, and the owner fills the pool.
    cloud.fed.network.heal();
    await cloud.converged();
    await eventually(() => cloud.fed.sites[OWNER]!.ctx.replicator.isUp('site-b'), 5000, 'site-b up');
    for (let k = 0; k < leasedToB; k++) {
      const r = await api(OWNER, 'POST', '/ports', { port: { network_id: networkId } });
      assert.equal(r.status, 201, `owner create ${k} after the heal: ${JSON.stringify(r.body)}`);
    }
    const leases = (cloud.fed.sites[OWNER]!.modules.find((m) => m.name === 'network') as any).service.leases
      .stats;
    assert.ok(leases.recalled >= 1, `blocks were recalled (${JSON.stringify(leases)})`);
    await cloud.converged();
    assert.equal(allocated(cloud, subnetId), poolSize(28));
    checkAddressInvariants(cloud, subnetId);
  });
});

for (const seed of [7, 8]) {
  describe(`address blocks under partitions during allocation (seed ${seed})`, () => {
    let cloud: LocalCloud;
    let api: Api;
    before(async () => {
      cloud = await startLocalCloud({
        sites: 5,
        site: {
          // Short leases, so grants, renewals, expiry, returns and recalls happen while sites are cut off.
          services: { network: { leaseTtlMs: 1500, leaseIdleMs: 300, leaseCheckMs: 100 } },
        },
      });
      api = await apiFor(cloud);
    });
    after(async () => cloud?.close());

    for (const prefix of [28, 26]) {
      it(`a /${prefix}: no address twice after the heal, and the pool then fills completely`, async () => {
        const random = seededRandom(seed * 100 + prefix);
        const names = cloud.fed.sites.map((s) => s.ctx.name);
        const all = names.map((_n, i) => i);
        const { networkId, subnetId } = await makeNetwork(
          cloud,
          api,
          OWNER,
          `part${prefix}`,
          `10.${150 + prefix}.${seed}.0/${prefix}`,
        );
        await cloud.converged();
        const live = new Map<string, number>(); // acknowledged, undeleted port -> its site
        for (let round = 0; round < 16; round++) {
          const r = random();
          if (r < 0.25) cloud.fed.network.isolate(names[Math.floor(random() * names.length)]!);
          else if (r < 0.45) {
            const shuffled = [...names].sort(() => random() - 0.5);
            cloud.fed.network.partition(shuffled.slice(0, 2), shuffled.slice(2));
          } else if (r < 0.6) cloud.fed.network.heal();
          const ops = all.map(async (site) => {
            const mine = [...live].filter(([, s]) => s === site).map(([id]) => id);
            if (mine.length && random() < 0.3) {
              const id = mine[Math.floor(random() * mine.length)]!;
              live.delete(id);
              const res = await api(site, 'DELETE', `/ports/${id}`);
              if (res.status !== 204) live.set(id, site);
              return;
            }
            const res = await api(site, 'POST', '/ports', { port: { network_id: networkId } });
            if (res.status === 201) live.set(res.body.port.id as string, site);
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
          });
          await Promise.all(ops);
          await sleep(50 + random() * 200);
        }
        cloud.fed.network.heal();
        await cloud.converged(20_000);
        checkAddressInvariants(cloud, subnetId);
        for (const s of cloud.fed.sites) {
          const ids = s.ctx.store.db
            .prepare('SELECT id FROM net_ports WHERE network_id = ?')
            .pluck()
            .all(networkId) as string[];
          assert.deepEqual(new Set(ids), new Set(live.keys()), `${s.ctx.name} holds the acknowledged ports`);
        }
        // Healed: the pool fills up completely, whatever blocks the partitions left where. Blocks
        // given back during the partitions are taken back once the owner applied their lessees' logs,
        // so on a loaded machine a pass may stop early: a later pass, after convergence, goes on.
        let used = live.size;
        for (let pass = 0; pass < 3 && used < poolSize(prefix); pass++) {
          if (pass > 0) {
            await cloud.converged(20_000);
            await sleep(1000);
          }
          used += (await fillRoundRobin(cloud, api, all, networkId, subnetId, 40 * poolSize(prefix))).ips
            .length;
        }
        assert.equal(used, poolSize(prefix), 'every address of the pool was used');
        await cloud.converged(20_000);
        assert.equal(allocated(cloud, subnetId), poolSize(prefix));
        checkAddressInvariants(cloud, subnetId);
      });
    }
  });
}
