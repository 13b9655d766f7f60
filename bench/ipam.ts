/**
 * @module IPAM benchmark: ports created per second over HTTP on one site, sequential and with 64 in
 * flight, on a /20 (4093 addresses) in blocks of 64. Prints the figures and saves them to
 * bench/results/ipam-<date>.json. Never passes or fails on time.
 * Run: node --import tsx bench/ipam.ts [ports]
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { startLocalCloud } from '../test/support/cloud.ts';

const total = Number(process.argv[2] ?? 2000);
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
  const dir = join(import.meta.dirname, 'results');
  mkdirSync(dir, { recursive: true });
  writeFileSync(
    join(dir, `ipam-${new Date().toISOString().slice(0, 10)}.json`),
    JSON.stringify({ total, results }, null, 2) + '\n',
  );
} finally {
  await cloud.close();
}
