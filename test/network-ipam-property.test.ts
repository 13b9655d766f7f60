/**
 * @module IPAM property: thousands of concurrent port creations over HTTP on a /26 never hand out an
 * address twice, and once the pool is exhausted every further request fails cleanly with 409
 * IpAddressGenerationFailure (or IpAddressAlreadyAllocated for a chosen address): successes == pool size.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { startLocalCloud } from './support/cloud.ts';
import type { LocalCloud } from './support/cloud.ts';

async function pool<T>(n: number, limit: number, fn: (i: number) => Promise<T>): Promise<T[]> {
  const out: T[] = new Array<T>(n);
  let next = 0;
  await Promise.all(
    Array.from({ length: limit }, async () => {
      for (;;) {
        const i = next++;
        if (i >= n) return;
        out[i] = await fn(i);
      }
    }),
  );
  return out;
}

describe('IPAM under concurrent port creation', () => {
  let cloud: LocalCloud;
  let token: string;
  const api = (path: string, init: { method?: string; body?: unknown } = {}) =>
    fetch(`${cloud.url()}/network/v2.0${path}`, {
      method: init.method ?? 'GET',
      headers: { 'x-auth-token': token, 'content-type': 'application/json' },
      ...(init.body !== undefined ? { body: JSON.stringify(init.body) } : {}),
    });

  before(async () => {
    // small blocks (they only matter once another site uses the subnet)
    cloud = await startLocalCloud({ sites: 1, site: { services: { network: { ipBlockSize: 16 } } } });
    token = await cloud.adminToken();
  });
  after(async () => cloud?.close());

  it('2,000 concurrent creates on a /26: 61 distinct addresses, the rest 409', async () => {
    const project = cloud.fed.sites[0]!.ctx.store.db.prepare("SELECT id FROM projects WHERE name = 'admin'")
      .pluck()
      .get() as string;
    assert.equal(
      (await api(`/quotas/${project}`, { method: 'PUT', body: { quota: { port: -1 } } })).status,
      200,
    );
    const net = (await (
      await api('/networks', { method: 'POST', body: { network: { name: 'prop' } } })
    ).json()) as {
      network: { id: string };
    };
    const sub = await api('/subnets', {
      method: 'POST',
      body: { subnet: { network_id: net.network.id, cidr: '10.77.0.0/26', ip_version: 4 } },
    });
    assert.equal(sub.status, 201);
    const subnetId = ((await sub.json()) as { subnet: { id: string } }).subnet.id;

    const N = 2000;
    const results = await pool(N, 64, async (i) => {
      // one request in four asks for a particular address of the pool
      const chosen = i % 4 === 0 ? `10.77.0.${2 + ((i * 7) % 61)}` : undefined;
      const res = await api('/ports', {
        method: 'POST',
        body: {
          port: {
            network_id: net.network.id,
            name: `p${i}`,
            ...(chosen ? { fixed_ips: [{ subnet_id: subnetId, ip_address: chosen }] } : {}),
          },
        },
      });
      const body = (await res.json()) as {
        port?: { fixed_ips: { ip_address: string }[] };
        NeutronError?: { type: string };
      };
      return {
        status: res.status,
        ip: body.port?.fixed_ips[0]?.ip_address,
        type: body.NeutronError?.type,
        chosen,
      };
    });

    const ok = results.filter((r) => r.status === 201);
    const ips = ok.map((r) => r.ip!);
    assert.equal(new Set(ips).size, ips.length, 'an address was handed out twice');
    assert.equal(ok.length, 61, 'successes must equal the pool size (64 - network - broadcast - gateway)');
    for (const ip of ips) {
      const last = Number(ip.split('.')[3]);
      assert.ok(ip.startsWith('10.77.0.') && last >= 2 && last <= 62, `address ${ip} outside the pool`);
    }
    for (const r of results.filter((x) => x.status !== 201)) {
      assert.equal(r.status, 409);
      assert.ok(
        r.chosen ? r.type === 'IpAddressAlreadyAllocated' : r.type === 'IpAddressGenerationFailure',
        `unexpected fault ${String(r.type)} (chosen ${String(r.chosen)})`,
      );
    }
    const db = cloud.fed.sites[0]!.ctx.store.db;
    const rows = db
      .prepare('SELECT count(*) FROM net_ip_allocations WHERE subnet_id = ?')
      .pluck()
      .get(subnetId);
    assert.equal(rows, 61);
    const blocks = db.prepare('SELECT count(*) FROM net_ip_blocks WHERE subnet_id = ?').pluck().get(subnetId);
    assert.equal(blocks, 0, 'the owner allocates outside blocks: a subnet used at one site leases none');

    // deleting a port frees exactly its address, which the next create gets
    const victim = ok[10]!;
    const list = (await (await api(`/ports?fixed_ips=ip_address=${victim.ip}`)).json()) as {
      ports: { id: string }[];
    };
    assert.equal(list.ports.length, 1);
    assert.equal((await api(`/ports/${list.ports[0]!.id}`, { method: 'DELETE' })).status, 204);
    const again = await api('/ports', { method: 'POST', body: { port: { network_id: net.network.id } } });
    assert.equal(again.status, 201);
    const got = ((await again.json()) as { port: { fixed_ips: { ip_address: string }[] } }).port.fixed_ips[0]!
      .ip_address;
    assert.equal(got, victim.ip);
  });

  it('a network with ports is NetworkInUse; a subnet with ports is SubnetInUse', async () => {
    const nets = (await (await api('/networks?name=prop')).json()) as {
      networks: { id: string; subnets: string[] }[];
    };
    const n = nets.networks[0]!;
    const del = await api(`/networks/${n.id}`, { method: 'DELETE' });
    assert.equal(del.status, 409);
    assert.equal(
      ((await del.json()) as { NeutronError: { type: string } }).NeutronError.type,
      'NetworkInUse',
    );
    const delSub = await api(`/subnets/${n.subnets[0]!}`, { method: 'DELETE' });
    assert.equal(delSub.status, 409);
    assert.equal(
      ((await delSub.json()) as { NeutronError: { type: string } }).NeutronError.type,
      'SubnetInUse',
    );
  });

  it('lists page with limit/marker and links, sort and fields', async () => {
    const first = (await (
      await api('/ports?limit=10&sort_key=name&sort_dir=asc&fields=id&fields=name')
    ).json()) as {
      ports: { id: string; name: string }[];
      ports_links: { rel: string; href: string }[];
    };
    assert.equal(first.ports.length, 10);
    assert.deepEqual(Object.keys(first.ports[0]!).sort(), ['id', 'name']);
    const names = first.ports.map((p) => p.name);
    assert.deepEqual(names, [...names].sort());
    const next = first.ports_links.find((l) => l.rel === 'next');
    assert.ok(next);
    const url = new URL(next.href);
    const second = (await (await api(`/ports${url.search}`)).json()) as {
      ports: { id: string; name: string }[];
    };
    assert.equal(second.ports.length, 10);
    assert.ok(second.ports[0]!.name > names[9]!);
  });
});
