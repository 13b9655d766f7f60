/**
 * @module Helpers for the multi-site network tests: HTTP against any site of an in-process cloud, a
 * network with one IPv4 subnet, and the cross-site address invariants checked once the cloud converged
 * (the same rows everywhere, no address twice, every lessee allocation inside a block leased to it).
 */
import assert from 'node:assert/strict';
import type { LocalCloud } from './cloud.ts';

export interface Api {
  (site: number, method: string, path: string, body?: unknown): Promise<{ status: number; body: any }>;
}

export async function apiFor(cloud: LocalCloud): Promise<Api> {
  const tokens = await Promise.all(cloud.fed.sites.map((_s, i) => cloud.adminToken(i)));
  return async (site, method, path, body) => {
    const res = await fetch(`${cloud.url(site)}/network/v2.0${path}`, {
      method,
      headers: { 'x-auth-token': tokens[site]!, 'content-type': 'application/json' },
      ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
    });
    const text = await res.text();
    return { status: res.status, body: text ? JSON.parse(text) : undefined };
  };
}

/** Makes a network and one IPv4 subnet at `site` with unlimited port quota; returns their ids. */
export async function makeNetwork(
  cloud: LocalCloud,
  api: Api,
  site: number,
  name: string,
  cidr: string,
): Promise<{ networkId: string; subnetId: string }> {
  const project = cloud.fed.sites[site]!.ctx.store.db.prepare("SELECT id FROM projects WHERE name = 'admin'")
    .pluck()
    .get() as string;
  assert.equal((await api(site, 'PUT', `/quotas/${project}`, { quota: { port: -1 } })).status, 200);
  const net = await api(site, 'POST', '/networks', { network: { name, shared: true } });
  assert.equal(net.status, 201, JSON.stringify(net.body));
  const sub = await api(site, 'POST', '/subnets', {
    subnet: { network_id: net.body.network.id, cidr, ip_version: 4, name: `${name}-sub` },
  });
  assert.equal(sub.status, 201, JSON.stringify(sub.body));
  return { networkId: net.body.network.id, subnetId: sub.body.subnet.id };
}

const keyNum = (k: string) => BigInt(`0x${k}`);

/**
 * Checks, once the cloud has converged: every site holds the same allocations and ports; no address
 * of the subnet is held by two ports; every allocation made by a site other than the subnet's owner lies
 * in a block the owner leased to that site; every port's addresses are its allocation rows.
 */
export function checkAddressInvariants(
  cloud: LocalCloud,
  subnetId: string,
): { ports: number; allocations: number } {
  const dbs = cloud.fed.sites.map((s) => s.ctx.store.db);
  const allocs = dbs.map(
    (db) =>
      db
        .prepare(
          'SELECT id, owner, ip, ip_key, port_id FROM net_ip_allocations WHERE subnet_id = ? ORDER BY id',
        )
        .all(subnetId) as { id: string; owner: string; ip: string; ip_key: string; port_id: string }[],
  );
  for (let i = 1; i < dbs.length; i++)
    assert.deepEqual(allocs[i], allocs[0], `site ${i} has the same allocations as site 0`);
  const ips = allocs[0]!.map((a) => a.ip);
  assert.equal(new Set(ips).size, ips.length, 'no address assigned twice');

  const ports = dbs.map(
    (db) =>
      db.prepare('SELECT id, owner, body FROM net_ports ORDER BY id').all() as {
        id: string;
        owner: string;
        body: string;
      }[],
  );
  for (let i = 1; i < dbs.length; i++)
    assert.deepEqual(
      ports[i]!.map((p) => [p.id, p.owner]),
      ports[0]!.map((p) => [p.id, p.owner]),
      `site ${i} has the same ports as site 0`,
    );
  const byPort = new Map<string, string[]>();
  for (const a of allocs[0]!) byPort.set(a.port_id, [...(byPort.get(a.port_id) ?? []), a.ip]);
  for (const p of ports[0]!) {
    const fixed = (JSON.parse(p.body) as { fixed_ips: { subnet_id: string; ip_address: string }[] }).fixed_ips
      .filter((f) => f.subnet_id === subnetId)
      .map((f) => f.ip_address)
      .sort();
    assert.deepEqual(fixed, (byPort.get(p.id) ?? []).sort(), `port ${p.id} holds exactly its allocations`);
  }
  for (const a of allocs[0]!) {
    const port = ports[0]!.find((p) => p.id === a.port_id);
    assert.ok(port, `allocation ${a.id} belongs to an existing port`);
    assert.equal(port.owner, a.owner, `allocation ${a.id} is owned by its port's site`);
  }

  const subnetOwner = dbs[0]!
    .prepare('SELECT owner FROM net_subnets WHERE id = ?')
    .pluck()
    .get(subnetId) as string;
  const blocks = dbs[0]!
    .prepare('SELECT first, last, leased_to_site FROM net_ip_blocks WHERE subnet_id = ?')
    .all(subnetId) as { first: string; last: string; leased_to_site: string }[];
  for (const a of allocs[0]!) {
    if (a.owner === subnetOwner) continue;
    const n = keyNum(a.ip_key);
    const b = blocks.find((x) => keyNum(x.first) <= n && n <= keyNum(x.last));
    assert.ok(b, `allocation ${a.ip} of ${a.owner} lies in a block`);
    assert.equal(
      b.leased_to_site,
      a.owner,
      `allocation ${a.ip} lies in a block leased to its site ${a.owner}`,
    );
  }
  return { ports: ports[0]!.length, allocations: allocs[0]!.length };
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Resolves once site `i` considers `other` down (and vice versa, when both are given). */
export async function waitDown(cloud: LocalCloud, i: number, other: string, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (cloud.fed.sites[i]!.ctx.replicator.isUp(other)) {
    if (Date.now() > end) throw new Error(`site ${i} still sees ${other} up`);
    await sleep(25);
  }
}
