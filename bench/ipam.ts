/**
 * @module IPAM benchmark: ports created per second over HTTP on one site, sequential and with 64 in
 * flight, on a /20 (4093 addresses; the owner allocates outside blocks); then a /24 filled round-robin
 * from five in-process sites: ports per site, lease round trips and recalls, and how many addresses of
 * the pool were used. Prints the figures and saves them to bench/results/ipam-<date>.json. Never passes
 * or fails on time.
 * Run: node --import tsx bench/ipam.ts [ports]
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { startLocalCloud } from '../test/support/cloud.ts';
import { apiFor, makeNetwork } from '../test/support/network.ts';

const total = Number(process.argv[2] ?? 2000);

/** A /24 of site 0 filled one port at a time round-robin from `n` sites until every site is refused. */
async function roundRobin(n: number) {
  const fed = await startLocalCloud({ sites: n });
  try {
    const api = await apiFor(fed);
    const { networkId } = await makeNetwork(fed, api, 0, 'spread', '10.129.0.0/24');
    await fed.converged();
    const got = new Array<number>(n).fill(0);
    const t0 = performance.now();
    for (let k = 0, refused = 0; refused < n; k++) {
      const r = await api(k % n, 'POST', '/ports', { port: { network_id: networkId } });
      if (r.status === 201) {
        got[k % n]!++;
        refused = 0;
      } else refused++;
    }
    const seconds = Number(((performance.now() - t0) / 1000).toFixed(2));
    const sites = fed.fed.sites.map((s, i) => {
      const leases = (s.modules.find((m) => m.name === 'network') as any).service.leases.stats;
      return { site: s.ctx.name, ports: got[i], leaseRequests: leases.requested, recalled: leases.recalled };
    });
    return { pool: 253, used: got.reduce((a, x) => a + x, 0), seconds, sites };
  } finally {
    await fed.close();
  }
}

let spread: Awaited<ReturnType<typeof roundRobin>> | undefined;
const cloud = await startLocalCloud({ sites: 1 });
try {
  const token = await cloud.adminToken();
  const api = async (path: string, method = 'GET', body?: unknown) => {
    const res = await fetch(`${cloud.url()}/network/v2.0${path}`, {
      method,
      headers: { 'x-auth-token': token, 'content-type': 'application/json' },
      ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
    });
    return { status: res.status, body: (await res.json()) as any };
  };
  const project = cloud.fed.sites[0]!.ctx.store.db.prepare("SELECT id FROM projects WHERE name = 'admin'")
    .pluck()
    .get() as string;
  await api(`/quotas/${project}`, 'PUT', { quota: { port: -1 } });
  const run = async (label: string, inFlight: number) => {
    const net = (await api('/networks', 'POST', { network: { name: label } })).body.network.id as string;
    await api('/subnets', 'POST', { subnet: { network_id: net, cidr: '10.128.0.0/20', ip_version: 4 } });
    let next = 0;
    let ok = 0;
    const t0 = performance.now();
    await Promise.all(
      Array.from({ length: inFlight }, async () => {
        while (next++ < total)
          if ((await api('/ports', 'POST', { port: { network_id: net } })).status === 201) ok++;
      }),
    );
    const s = (performance.now() - t0) / 1000;
    return { label, inFlight, ports: ok, seconds: Number(s.toFixed(2)), portsPerSecond: Math.round(ok / s) };
  };
  const results = [await run('sequential', 1), await run('concurrent', 64)];
  console.table(results);
  spread = await roundRobin(5);
  console.table(spread.sites);
  const dir = join(import.meta.dirname, 'results');
  mkdirSync(dir, { recursive: true });
  writeFileSync(
    join(dir, `ipam-${new Date().toISOString().slice(0, 10)}.json`),
    JSON.stringify({ total, results, roundRobin: spread }, null, 2) + '\n',
  );
} finally {
  await cloud.close();
}
