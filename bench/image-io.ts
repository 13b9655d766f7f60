/**
 * @module Image data I/O: upload and download of a generated ~1 GB file through the Image API of one
 * site (on disk), with the site's RSS sampled every 50 ms (it must stay flat: data is streamed, never
 * held), and MB/s next to a plain `dd` copy of the same file on the same disk as the baseline.
 * Usage: npm run bench:image [-- --mb 1024]
 */
import http from 'node:http';
import { execFileSync } from 'node:child_process';
import { createReadStream, createWriteStream, mkdtempSync, rmSync, statSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { startFederation } from '../src/site/launch.ts';
import { round, save, table } from './lib/report.ts';

const mbArg = process.argv.indexOf('--mb');
const MB = mbArg > 0 ? Number(process.argv[mbArg + 1]) : 1024;
const dir = mkdtempSync(join(tmpdir(), 'atoll-imgio-'));
const src = join(dir, 'source.img');

// A generated file: 1 MiB of random bytes repeated (fast to make, not compressible by the OS cache).
const block = randomBytes(1024 * 1024);
const out = createWriteStream(src);
for (let i = 0; i < MB; i++)
  if (!out.write(block)) await new Promise<void>((r) => out.once('drain', () => r()));
await new Promise<void>((r) => out.end(r));
const bytes = statSync(src).size;

const t0 = performance.now();
execFileSync('dd', [`if=${src}`, `of=${join(dir, 'dd.img')}`, 'bs=1M', 'conv=fsync'], { stdio: 'ignore' });
const ddMBs = round(MB / ((performance.now() - t0) / 1000), 1);
rmSync(join(dir, 'dd.img'));

const fed = await startFederation({
  sites: 1,
  basePort: 0,
  host: '127.0.0.1',
  dataDir: join(dir, 'site'),
  admin: { adminUser: 'admin', adminPassword: 'bench-secret', adminProject: 'admin' },
  latencyMs: 0,
  logLevel: 'silent',
  site: { passwordHashCost: 10 },
});
const url = fed.sites[0]!.ctx.publicUrl();
const res = await fetch(`${url}/identity/v3/auth/tokens`, {
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
const img = (await (
  await fetch(`${url}/image/v2/images`, {
    method: 'POST',
    headers: { 'x-auth-token': token, 'content-type': 'application/json' },
    body: JSON.stringify({ name: 'big', disk_format: 'raw', container_format: 'bare' }),
  })
).json()) as { id: string };

const samples: number[] = [];
const sampler = setInterval(() => samples.push(process.memoryUsage().rss / 1024 / 1024), 50);
const rssIdle = process.memoryUsage().rss / 1024 / 1024;
const u = new URL(`${url}/image/v2/images/${img.id}/file`);

const t1 = performance.now();
await new Promise<void>((resolve, reject) => {
  const req = http.request(
    u,
    { method: 'PUT', headers: { 'x-auth-token': token, 'content-type': 'application/octet-stream' } },
    (r) => {
      r.resume();
      r.on('end', () => (r.statusCode === 204 ? resolve() : reject(new Error(`upload ${r.statusCode}`))));
    },
  );
  req.on('error', reject);
  createReadStream(src).pipe(req);
});
const upMBs = round(MB / ((performance.now() - t1) / 1000), 1);
const upPeak = Math.max(...samples);
samples.length = 0;

const t2 = performance.now();
await new Promise<void>((resolve, reject) => {
  http
    .get(u, { headers: { 'x-auth-token': token } }, (r) => {
      pipeline(r, createWriteStream(join(dir, 'back.img'))).then(resolve, reject);
    })
    .on('error', reject);
});
const downMBs = round(MB / ((performance.now() - t2) / 1000), 1);
const downPeak = Math.max(...samples);
clearInterval(sampler);
const same = statSync(join(dir, 'back.img')).size === bytes;

const data = {
  date: new Date().toISOString(),
  node: process.version,
  megabytes: MB,
  ddMBs,
  uploadMBs: upMBs,
  downloadMBs: downMBs,
  uploadRatioToDd: round(upMBs / ddMBs, 2),
  downloadRatioToDd: round(downMBs / ddMBs, 2),
  rssIdleMb: round(rssIdle, 1),
  rssPeakUploadMb: round(upPeak, 1),
  rssPeakDownloadMb: round(downPeak, 1),
  roundTripSizeMatches: same,
};
process.stdout.write(JSON.stringify(data, null, 2) + '\n');
save(
  'image-io',
  data,
  [
    `# Image data I/O (${MB} MiB)`,
    '',
    `${data.date}, Node ${data.node}; client, site and disk on one machine. Baseline: dd bs=1M conv=fsync.`,
    '',
    table(
      ['operation', 'MB/s', 'ratio to dd', 'peak RSS MB (idle ' + data.rssIdleMb + ')'],
      [
        ['dd copy', ddMBs, 1, '-'],
        [
          'upload (PUT /file: hash md5+sha256+sha512, write)',
          upMBs,
          data.uploadRatioToDd,
          data.rssPeakUploadMb,
        ],
        ['download (GET /file)', downMBs, data.downloadRatioToDd, data.rssPeakDownloadMb],
      ],
    ),
    '',
    'Upload hashes three digests in one pass; that CPU cost, not the disk, bounds its rate.',
  ].join('\n'),
);
await fed.close();
rmSync(dir, { recursive: true, force: true });
