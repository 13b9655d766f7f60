/**
 * @module Image bytes across sites: throughput of a download at a site that does not own the image
 * (streamed from the owner in chunks over the in-process fabric, src/services/image/remote-bytes.ts)
 * against the WAN model's link bandwidth, and against a download of the same image at its owner (read
 * from disk). Two sites in this process on disk; the link between them has the bandwidth and one-way
 * latency given. RSS is sampled every 50 ms during the cross-site download (it must stay flat).
 * Usage: npm run bench:image-stream [-- --sizes 64,256,1024 --mbps 50 --latency-ms 20]
 * Saves bench/results/image-stream.{json,md,svg}.
 */
import http from 'node:http';
import { createReadStream, createWriteStream, mkdtempSync, rmSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { startFederation } from '../src/site/launch.ts';
import { lineChart, round, save, saveSvg, table } from './lib/report.ts';

const arg = (name: string, d: string) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? process.argv[i + 1]! : d;
};
const SIZES = arg('sizes', '64,256').split(',').map(Number);
const LINKS = arg('mbps', '12.5,50').split(',').map(Number);
const LATENCY = Number(arg('latency-ms', '20'));
const MiB = 1024 * 1024;
const dir = mkdtempSync(join(tmpdir(), 'atoll-imgstream-'));

const fed = await startFederation({
  sites: 2,
  basePort: 0,
  host: '127.0.0.1',
  dataDir: join(dir, 'sites'),
  admin: { adminUser: 'admin', adminPassword: 'bench-secret', adminProject: 'admin' },
  latencyMs: LATENCY,
  logLevel: 'silent',
  site: { passwordHashCost: 10 },
});
const [a, b] = fed.sites.map((s) => s.ctx.publicUrl());
const res = await fetch(`${a}/identity/v3/auth/tokens`, {
  method: 'POST',
  headers: { 'content-type': 'application/json' },
  body: JSON.stringify({
    auth: {
      identity: {
        methods: ['password'],
        password: { user: { name: 'admin', domain: { id: 'default' }, password: 'bench-secret' } },
      },
      scope: { project: { name: 'admin', domain: { id: 'default' } } },
    },
  }),
});
const token = res.headers.get('x-subject-token')!;

function request(method: string, url: string, body?: string): Promise<{ status: number; bytes: number }> {
  return new Promise((resolve, reject) => {
    const headers: Record<string, string> = { 'x-auth-token': token };
    if (body) headers['content-type'] = 'application/octet-stream';
    const req = http.request(new URL(url), { method, headers }, (r) => {
      let bytes = 0;
      r.on('data', (c: Buffer) => (bytes += c.length));
      r.on('end', () => resolve({ status: r.statusCode ?? 0, bytes }));
      r.on('error', reject);
    });
    req.on('error', reject);
    if (body) createReadStream(body).pipe(req);
    else req.end();
  });
}

async function makeImage(mb: number): Promise<string> {
  const file = join(dir, `src-${mb}.img`);
  const block = randomBytes(MiB);
  const out = createWriteStream(file);
  for (let i = 0; i < mb; i++)
    if (!out.write(block)) await new Promise<void>((r) => out.once('drain', () => r()));
  await new Promise<void>((r) => out.end(r));
  const img = (await (
    await fetch(`${a}/image/v2/images`, {
      method: 'POST',
      headers: { 'x-auth-token': token, 'content-type': 'application/json' },
      body: JSON.stringify({ name: `img-${mb}`, disk_format: 'raw', container_format: 'bare' }),
    })
  ).json()) as { id: string };
  const up = await request('PUT', `${a}/image/v2/images/${img.id}/file`, file);
  if (up.status !== 204) throw new Error(`upload ${up.status}`);
  rmSync(file);
  return img.id;
}

async function timed(url: string, mb: number) {
  const t0 = performance.now();
  const r = await request('GET', url);
  const s = (performance.now() - t0) / 1000;
  if (r.status !== 200 || r.bytes !== mb * MiB) throw new Error(`download ${r.status}, ${r.bytes} bytes`);
  return { seconds: round(s, 2), MiBps: round(mb / s, 1) };
}

const rows: {
  [k: string]: number;
  mib: number;
  link_MiBps: number;
  local_MiBps: number;
  cross_MiBps: number;
}[] = [];
for (const mb of SIZES) {
  const id = await makeImage(mb);
  // The image row reaches site-b by replication.
  for (let i = 0; i < 200; i++) {
    const r = await fetch(`${b}/image/v2/images/${id}`, { headers: { 'x-auth-token': token } });
    if (r.ok && ((await r.json()) as { status: string }).status === 'active') break;
    await new Promise((r) => setTimeout(r, 50));
  }
  const local = await timed(`${a}/image/v2/images/${id}/file`, mb);
  for (const link of LINKS) {
    fed.network.setLink('site-a', 'site-b', { bandwidthBps: link * MiB, latencyMs: LATENCY });
    const rssBefore = process.memoryUsage().rss / MiB;
    let rssPeak = rssBefore;
    const sampler = setInterval(() => (rssPeak = Math.max(rssPeak, process.memoryUsage().rss / MiB)), 50);
    const bytesBefore = fed.network.stats.bytes;
    const cross = await timed(`${b}/image/v2/images/${id}/file`, mb);
    clearInterval(sampler);
    const wire = fed.network.stats.bytes - bytesBefore;
    const row = {
      mib: mb,
      link_MiBps: link,
      latency_ms: LATENCY,
      local_MiBps: local.MiBps,
      cross_MiBps: cross.MiBps,
      cross_seconds: cross.seconds,
      cross_vs_link: round(cross.MiBps / link, 2),
      cross_vs_local: round(cross.MiBps / local.MiBps, 2),
      time_vs_ideal: round(cross.seconds / (mb / link), 2),
      wire_overhead: round(wire / (mb * MiB), 3),
      rss_growth_MiB: round(rssPeak - rssBefore, 1),
      load_1min: round(loadavg()[0]!, 1),
    };
    console.log(row);
    rows.push(row);
  }
}
await fed.close();
rmSync(dir, { recursive: true, force: true });

const md = [
  '# Image bytes across sites (bench/image-stream.ts)',
  '',
  `Two sites in one process on the in-process fabric; the link site-a <-> site-b has the bandwidth of each row (${LINKS.join(', ')} MiB/s) and ${LATENCY} ms one way.`,
  'An image uploaded at site-a is downloaded over HTTP at site-a (local, from disk) and at site-b (streamed from site-a',
  'in 256 KiB chunks, 16 in flight, each checked by sha256, the whole checked by sha512). `time_vs_ideal` is the',
  'cross-site time over size / link bandwidth; `wire_overhead` is bytes on the fabric (both ways, all traffic) per image byte;',
  '`rss_growth_MiB` is the process RSS peak during the cross-site download minus RSS before it.',
  'One run on a shared 2-core machine (`load_1min`: its load average after the download; other work ran beside it);',
  'both sites, the client and every hash share this process, so a loaded machine lowers the cross-site figure most.',
  '',
  table(
    Object.keys(rows[0]!),
    rows.map((r) => Object.values(r)),
  ),
  '',
].join('\n');
save('image-stream', { links_MiBps: LINKS, latency_ms: LATENCY, rows }, md);
saveSvg(
  'image-stream',
  lineChart('Image download throughput', 'image size (MiB)', 'MiB/s', [
    {
      name: 'local (owner)',
      points: rows.filter((r) => r.link_MiBps === LINKS[0]).map((r) => [r.mib, r.local_MiBps]),
    },
    ...LINKS.flatMap((l) => [
      {
        name: `cross, ${l} MiB/s link`,
        points: rows.filter((r) => r.link_MiBps === l).map((r) => [r.mib, r.cross_MiBps] as [number, number]),
      },
      {
        name: `link ${l} MiB/s`,
        points: rows.filter((r) => r.link_MiBps === l).map((r) => [r.mib, l] as [number, number]),
      },
    ]),
  ]),
);
