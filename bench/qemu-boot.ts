/**
 * @module Real-guest boots (QEMU driver): the time from create to the guest's boot banner in its
 * console log, per server, at 1, 2, 4 ... concurrent boots on one site with one compute host sized
 * to hold `--cap` guests of the bench flavor; one more boot than that must end in ERROR (NoValidHost),
 * which shows the host full. Beside each round: the RSS of this process (the site and the load
 * generator: an upper bound for the site) and the guests' RSS (qemu processes, from /proc). The tiny
 * guest (scripts/build-guest.sh); TCG unless `--accel kvm|auto`.
 * Usage: npm run bench:qemu [-- --cap 6 --accel tcg]
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startFederation } from '../src/site/launch.ts';
import { defaultGuestDir } from '../src/services/compute/service.ts';
import { GuestApi, buildGuest, qemuPids } from '../test/support/guests.ts';
import { lineChart, round, save, saveSvg, summarize, table } from './lib/report.ts';

const arg = (name: string, dflt: string) => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? (process.argv[i + 1] ?? dflt) : dflt;
};
const CAP = Number(arg('cap', '6'));
const ACCEL = arg('accel', 'tcg');
const RAM = 128;
const BANNER = 'atoll-guest: booted';

await buildGuest();
const dir = mkdtempSync(join(tmpdir(), 'atoll-qemu-boot-'));
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
      compute: {
        driver: 'qemu',
        accel: ACCEL,
        hosts: 1,
        vcpus: 64,
        ramMb: RAM * CAP,
        diskGb: 100,
        shutdownTimeoutMs: 1000,
      },
    },
  },
});
const url = fed.sites[0]!.ctx.publicUrl();
const login = await fetch(`${url}/identity/v3/auth/tokens`, {
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
const g = new GuestApi(url, login.headers.get('x-subject-token') ?? '');
const hv = (await g.call('GET', '/compute/v2.1/os-hypervisors/detail')).body.hypervisors[0];
const cpuInfo = hv.cpu_info as string | { accel?: string };
const accel = String((typeof cpuInfo === 'string' ? JSON.parse(cpuInfo) : cpuInfo).accel);
const { root } = await g.tinyImage(defaultGuestDir());
const flavor = await g.flavor('bench', RAM, 1);

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const rssKb = (pid: number | 'self') => {
  const m = /VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) : 0;
};

/** Boots `n` servers at once; each one's ms from create to its banner, then the RSS figures. */
async function round_(n: number) {
  const t0 = performance.now();
  const ids = await Promise.all(Array.from({ length: n }, (_, i) => g.create(`b${n}-${i}`, root, flavor)));
  const ms = await Promise.all(
    ids.map(async (id) => {
      for (;;) {
        const st = await g.status(id);
        if (st === 'ERROR') throw new Error(`server ${id} went to ERROR`);
        if (st === 'ACTIVE' && (await g.consoleLog(id)).includes(BANNER)) return performance.now() - t0;
        await sleep(200);
      }
    }),
  );
  const guestsKb = ids.flatMap((id) => qemuPids(id)).reduce((a, p) => a + rssKb(p), 0);
  const siteKb = rssKb('self');
  for (const id of ids) await g.call('DELETE', `/compute/v2.1/servers/${id}`);
  for (const id of ids)
    while ((await g.call('GET', `/compute/v2.1/servers/${id}`)).status !== 404) await sleep(200);
  const s = summarize(ms);
  return {
    concurrency: n,
    p50Ms: s.p50,
    maxMs: s.max,
    meanMs: s.mean,
    siteRssMb: round(siteKb / 1024, 1),
    guestsRssMb: round(guestsKb / 1024, 1),
    perGuestRssMb: round(guestsKb / 1024 / n, 1),
  };
}

const levels = [...new Set([1, 2, 4, CAP].filter((n) => n <= CAP))].sort((a, b) => a - b);
const rounds = [];
for (const n of levels) {
  const r = await round_(n);
  rounds.push(r);
  process.stdout.write(`${JSON.stringify(r)}\n`);
}

// Full: CAP guests fit, one more is refused by the scheduler (ERROR, NoValidHost).
const full = await Promise.all(Array.from({ length: CAP }, (_, i) => g.create(`full-${i}`, root, flavor)));
for (const id of full) while ((await g.status(id)) !== 'ACTIVE') await sleep(200);
const extra = await g.create('one-too-many', root, flavor);
let extraStatus: string | undefined;
while ((extraStatus = await g.status(extra)) === 'BUILD') await sleep(200);
const fault = (await g.call('GET', `/compute/v2.1/servers/${extra}`)).body.server.fault?.message as
  string | undefined;
for (const id of [...full, extra]) await g.call('DELETE', `/compute/v2.1/servers/${id}`);
for (const id of [...full, extra])
  while ((await g.call('GET', `/compute/v2.1/servers/${id}`)).status !== 404) await sleep(200);
await fed.close();
rmSync(dir, { recursive: true, force: true });

const data = {
  accel,
  hostRamMb: RAM * CAP,
  flavor: { ramMb: RAM, vcpus: 1, diskGb: 1 },
  cap: CAP,
  rounds,
  full: { booted: full.length, extraStatus, extraFault: fault ?? null },
};
const md = [
  `# Real-guest boots (QEMU, ${accel.toUpperCase()})`,
  '',
  `One site, one compute host with ${RAM * CAP} MiB for guests, flavor ${RAM} MiB / 1 vCPU / 1 GB, the tiny`,
  'guest (direct kernel boot). Boot time: create to the boot banner in the console log (ms). Site RSS:',
  'this process (site and load generator). Guests RSS: the qemu processes of the round.',
  '',
  table(
    ['concurrent boots', 'p50 ms', 'max ms', 'site RSS MiB', 'guests RSS MiB', 'per guest MiB'],
    rounds.map((r) => [r.concurrency, r.p50Ms, r.maxMs, r.siteRssMb, r.guestsRssMb, r.perGuestRssMb]),
  ),
  '',
  `Host full: ${full.length} guests ACTIVE at once; one more ended ${extraStatus ?? '?'}` +
    (fault ? ` (${fault})` : '') +
    '.',
  '',
  '![boot time against concurrency](qemu-boot.svg)',
].join('\n');
save('qemu-boot', data, md);
saveSvg(
  'qemu-boot',
  lineChart(`Boot to banner (${accel.toUpperCase()})`, 'concurrent boots', 'ms', [
    { name: 'p50', points: rounds.map((r) => [r.concurrency, r.p50Ms]) },
    { name: 'max', points: rounds.map((r) => [r.concurrency, r.maxMs]) },
  ]),
);
process.exit(0);
