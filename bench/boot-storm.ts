/**
 * @module Boot storm: 1,000 servers on 100 fake hosts (zero delay) created over HTTP at concurrency
 * 8, 32 and 64 against one site; measures servers/s to ACTIVE, create latency p50/p99 and the site's
 * RSS, then RSS with 10,000 servers. The load generator runs in the same process as the site, so RSS
 * and CPU include it (an upper bound). Usage: npm run bench:boot [-- --disk]
 */
import http from 'node:http';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startFederation } from '../src/site/launch.ts';
import { round, save, summarize, table } from './lib/report.ts';

const onDisk = process.argv.includes('--disk');
const PER_ROUND = 1000;
const BIG = 10_000;
const dir = onDisk ? mkdtempSync(join(tmpdir(), 'atoll-boot-')) : ':memory:';

const fed = await startFederation({
  sites: 1,
  basePort: 0,
  host: '127.0.0.1',
  dataDir: dir,
  admin: { adminUser: 'admin', adminPassword: 'bench-secret', adminProject: 'admin' },
  latencyMs: 0,
  logLevel: 'silent',
  site: {
    passwordHashCost: 10,
    services: {
      compute: { hosts: 100, vcpus: 100_000, ramMb: 100_000_000, diskGb: 10_000_000, bootDelayMs: 0 },
    },
  },
});
const site = fed.sites[0]!;
const url = new URL(site.ctx.publicUrl());
const agent = new http.Agent({ keepAlive: true, maxSockets: 128 });

function call(method: string, path: string, body?: unknown, token?: string) {
  return new Promise<{ status: number; headers: http.IncomingHttpHeaders; body: string }>(
    (resolve, reject) => {
      const data = body === undefined ? undefined : JSON.stringify(body);
      const req = http.request(
        {
          host: url.hostname,
          port: url.port,
          method,
          path,
          agent,
          headers: {
            ...(data
              ? { 'content-type': 'application/json', 'content-length': Buffer.byteLength(data) }
              : {}),
            ...(token ? { 'x-auth-token': token } : {}),
          },
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () =>
            resolve({
              status: res.statusCode ?? 0,
              headers: res.headers,
              body: Buffer.concat(chunks).toString(),
            }),
          );
        },
      );
      req.on('error', reject);
      if (data) req.write(data);
      req.end();
    },
  );
}

const auth = await call('POST', '/identity/v3/auth/tokens', {
  auth: {
    identity: {
      methods: ['password'],
      password: { user: { name: 'admin', domain: { id: 'default' }, password: 'bench-secret' } },
    },
    scope: { project: { name: 'admin', domain: { id: 'default' } } },
  },
});
const token = String(auth.headers['x-subject-token']);
const project = (JSON.parse(auth.body) as { token: { project: { id: string } } }).token.project.id;
await call(
  'PUT',
  `/compute/v2.1/os-quota-sets/${project}`,
  { quota_set: { instances: -1, cores: -1, ram: -1 } },
  token,
);
const flavor = JSON.parse(
  (
    await call(
      'POST',
      '/compute/v2.1/flavors',
      { flavor: { name: 'bench', vcpus: 1, ram: 256, disk: 1 } },
      token,
    )
  ).body,
) as { flavor: { id: string } };
const image = JSON.parse(
  (
    await call(
      'POST',
      '/image/v2/images',
      { name: 'bench', disk_format: 'raw', container_format: 'bare', visibility: 'public' },
      token,
    )
  ).body,
) as { id: string };
await new Promise<void>((resolve, reject) => {
  const req = http.request(
    {
      host: url.hostname,
      port: url.port,
      method: 'PUT',
      path: `/image/v2/images/${image.id}/file`,
      agent,
      headers: { 'x-auth-token': token, 'content-type': 'application/octet-stream' },
    },
    (res) => {
      res.resume();
      res.on('end', () => resolve());
    },
  );
  req.on('error', reject);
  req.end(Buffer.alloc(1024));
});

const db = site.ctx.store.db;
const activeCount = () =>
  (
    db
      .prepare("SELECT count(*) AS n FROM servers WHERE vm_state = 'active' AND task_state IS NULL")
      .get() as { n: number }
  ).n;
const rssMb = () => round(process.memoryUsage().rss / 1024 / 1024, 1);

async function storm(n: number, concurrency: number) {
  const before = activeCount();
  const lat: number[] = [];
  let errors = 0;
  let next = 0;
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      for (;;) {
        const i = next++;
        if (i >= n) return;
        const s = performance.now();
        const r = await call(
          'POST',
          '/compute/v2.1/servers',
          { server: { name: `b${i}`, flavorRef: flavor.flavor.id, imageRef: image.id, networks: 'none' } },
          token,
        );
        lat.push(performance.now() - s);
        if (r.status !== 202) errors++;
      }
    }),
  );
  const created = performance.now();
  while (activeCount() < before + n - errors) {
    if (performance.now() - t0 > 120_000) break;
    await new Promise((r) => setTimeout(r, 2));
  }
  const seconds = (performance.now() - t0) / 1000;
  const l = summarize(lat);
  return {
    concurrency,
    servers: n,
    errors,
    createSeconds: round((created - t0) / 1000, 3),
    secondsToActive: round(seconds, 3),
    serversPerSecond: round((n - errors) / seconds, 1),
    createP50Ms: l.p50,
    createP99Ms: l.p99,
    rssMb: rssMb(),
  };
}

async function deleteAll() {
  const ids = (db.prepare('SELECT id FROM servers').all() as { id: string }[]).map((r) => r.id);
  let next = 0;
  await Promise.all(
    Array.from({ length: 32 }, async () => {
      for (;;) {
        const i = next++;
        if (i >= ids.length) return;
        await call('DELETE', `/compute/v2.1/servers/${ids[i]}`, undefined, token);
      }
    }),
  );
  while ((db.prepare('SELECT count(*) AS n FROM servers').get() as { n: number }).n > 0)
    await new Promise((r) => setTimeout(r, 10));
}

const rounds = [];
await storm(200, 8); // warm-up (JIT, statement caches), not reported
await deleteAll();
for (const c of [8, 32, 64]) {
  const r = await storm(PER_ROUND, c);
  rounds.push(r);
  process.stdout.write(
    `concurrency ${c}: ${r.serversPerSecond} servers/s to ACTIVE, create p50 ${r.createP50Ms} ms p99 ${r.createP99Ms} ms, RSS ${r.rssMb} MB\n`,
  );
  await deleteAll();
}
const rssBefore = rssMb();
const big = await storm(BIG, 64);
global.gc?.();
const rssBig = rssMb();
process.stdout.write(`${BIG} servers: RSS ${rssBig} MB (${big.serversPerSecond} servers/s)\n`);

const list = performance.now();
const detail = await call('GET', '/compute/v2.1/servers/detail?limit=1000', undefined, token);
const listMs = round(performance.now() - list, 1);

const data = {
  date: new Date().toISOString(),
  node: process.version,
  storage: onDisk ? 'disk (WAL, synchronous=FULL)' : 'memory',
  hosts: 100,
  rounds,
  tenThousand: {
    ...big,
    rssBeforeMb: rssBefore,
    rssAfterMb: rssBig,
    detailListOf1000Ms: listMs,
    detailStatus: detail.status,
  },
  targets: { serversPerSecond: 200, createP99Ms: 50, rssMbAt10k: 300 },
};
const name = onDisk ? 'boot-storm-disk' : 'boot-storm';
save(
  name,
  data,
  [
    `# Boot storm (${data.storage})`,
    '',
    `${data.date}, Node ${data.node}, one site, 100 fake hosts (zero delay), HTTP client in the same process.`,
    '',
    table(
      ['concurrency', 'servers', 'errors', 'servers/s to ACTIVE', 'create p50 ms', 'create p99 ms', 'RSS MB'],
      rounds.map((r) => [
        r.concurrency,
        r.servers,
        r.errors,
        r.serversPerSecond,
        r.createP50Ms,
        r.createP99Ms,
        r.rssMb,
      ]),
    ),
    '',
    `10,000 servers (concurrency 64): ${big.serversPerSecond} servers/s, create p99 ${big.createP99Ms} ms, RSS ${rssBig} MB; ` +
      `GET /servers/detail?limit=1000 took ${listMs} ms.`,
    '',
    'Targets: >= 200 servers/s to ACTIVE, create p99 < 50 ms, < 300 MB with 10,000 servers.',
  ].join('\n'),
);
await fed.close();
agent.destroy();
if (dir !== ':memory:') rmSync(dir, { recursive: true, force: true });
