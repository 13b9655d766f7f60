/**
 * @module Federation benchmark on the in-process fabric (real sites: Fastify via inject, SQLite, the
 * real replication and forwarding code; only the WAN is modelled).
 *   1. Forwarded write: site-b creates a project in a domain homed on site-a, across a 50 ms one-way
 *      link; cost against the round trip (100 ms) and against the same write made locally at site-a.
 *   2. Login everywhere: with 100 sites and random one-way delays, a user created at its home site can
 *      log in at every site within (largest one-way delay + 100 ms)?
 *   3. Cost per replicated change: fabric messages and bytes per change, pushes and pulls, 100 sites.
 *   4. WAN sweep: forwarded-write latency and replication delay against one-way latency (SVG plot).
 *   5. Scale (--scale 100,300,1000 [--liveness broadcast,gossip]): per N and liveness mode, start-up,
 *      idle messages, bytes and CPU per site per second, propagation of a new user to every site,
 *      bytes per change per site and heap per site; JSON, markdown and one SVG per metric against N.
 *      Real time (systemClock), not the VirtualClock: CPU and propagation must be what the sites cost.
 * Usage: node --import tsx bench/federation.ts [--sites 100]
 *        node --expose-gc --import tsx bench/federation.ts --scale 100,300 [--liveness broadcast,gossip]
 */
import { parseArgs } from 'node:util';
import { systemClock } from '../src/core/ports.ts';
import { MemoryNetwork } from '../src/fabric/memory/network.ts';
import { bootstrapIdentity } from '../src/services/identity/bootstrap.ts';
import { siteModules } from '../src/site/modules.ts';
import { createSite } from '../src/site/site.ts';
import type { Site } from '../src/site/site.ts';
import { lineChart, round, save, saveSvg, summarize, table } from './lib/report.ts';

const { values } = parseArgs({
  options: {
    sites: { type: 'string', default: '100' },
    quick: { type: 'boolean', default: false },
    scale: { type: 'string' },
    liveness: { type: 'string', default: 'broadcast' },
    'idle-s': { type: 'string', default: '5' },
    'max-startup-s': { type: 'string', default: '400' },
    tag: { type: 'string', default: '' },
  },
});
const N = Number(values.sites);
const ADMIN = { adminUser: 'admin', adminPassword: 'bench-admin', adminProject: 'admin' };
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

type Liveness = 'broadcast' | 'gossip';

async function federation(
  n: number,
  net: MemoryNetwork,
  heartbeatMs = 1000,
  liveness: Liveness = 'broadcast',
  maxStartupMs = Infinity,
): Promise<Site[]> {
  const sites: Site[] = [];
  const t0 = performance.now();
  for (let i = 0; i < n; i++) {
    if (i > 0 && i % 50 === 0) {
      process.stdout.write(` ${i}@${round((performance.now() - t0) / 1000, 1)}s`);
      if (performance.now() - t0 > maxStartupMs) {
        await Promise.all(sites.map((s) => s.close()));
        throw new StartupTooSlow(i, performance.now() - t0);
      }
    }
    const name = `s${String(i).padStart(3, '0')}`;
    const site = await createSite(
      {
        name,
        dataDir: ':memory:',
        logLevel: 'silent',
        passwordHashCost: 10,
        heartbeatMs,
        downAfterMs: heartbeatMs * 3.5,
        liveness,
        publicUrl: `http://${name}.invalid`,
      },
      { fabric: net.connect(name), modules: siteModules() },
    );
    await site.app.ready();
    sites.push(site);
  }
  await bootstrapIdentity(sites[0]!.ctx, ADMIN);
  return sites;
}

class StartupTooSlow extends Error {
  constructor(
    readonly started: number,
    readonly ms: number,
  ) {
    super(`start-up too slow: ${started} sites in ${round(ms / 1000, 1)} s`);
  }
}

/** The share of (site, origin) pairs where the site has applied the origin's log up to its head. */
function caughtUp(sites: Site[]): number {
  const heads = sites.map((s) => s.ctx.changelog.head());
  let done = 0;
  for (const a of sites)
    sites.forEach((b, j) => {
      if (a === b || a.ctx.changelog.cursor(b.ctx.name) >= heads[j]!) done++;
    });
  return done / sites.length ** 2;
}

async function waitConverged(sites: Site[], ms = 60_000): Promise<void> {
  const end = Date.now() + ms;
  let said = Date.now();
  while (Date.now() < end) {
    const t0 = performance.now();
    const share = caughtUp(sites);
    if (share === 1) return;
    if (Date.now() - said > 30_000) {
      said = Date.now();
      process.stdout.write(` ${round(share * 100, 1)}%`);
    }
    // N² cursor reads: at 300 sites one check costs a noticeable share of the sites' CPU; check less often.
    await sleep(Math.max(20, 4 * (performance.now() - t0)));
  }
  throw new Error('federation did not converge');
}

/** The burst that bytes per change are measured over: 20 project creates at one site. */
async function projectBurst(home: Site, tok: string): Promise<void> {
  for (let i = 0; i < 20; i++)
    await home.app.inject({
      method: 'POST',
      url: '/identity/v3/projects',
      headers: { 'x-auth-token': tok },
      payload: { project: { name: `burst-${i}`, domain_id: 'default' } },
    });
}

async function token(
  site: Site,
  user = ADMIN.adminUser,
  password = ADMIN.adminPassword,
  project: string | null = 'admin',
) {
  const res = await site.app.inject({
    method: 'POST',
    url: '/identity/v3/auth/tokens?nocatalog',
    payload: {
      auth: {
        identity: {
          methods: ['password'],
          password: { user: { name: user, domain: { id: 'default' }, password } },
        },
        ...(project ? { scope: { project: { name: project, domain: { id: 'default' } } } } : {}),
      },
    },
  });
  return res.statusCode === 201 ? String(res.headers['x-subject-token']) : undefined;
}

async function timedCreateProject(
  site: Site,
  tok: string,
  name: string,
): Promise<{ ms: number; status: number }> {
  const t0 = performance.now();
  const res = await site.app.inject({
    method: 'POST',
    url: '/identity/v3/projects',
    headers: { 'x-auth-token': tok },
    payload: { project: { name, domain_id: 'default' } },
  });
  return { ms: performance.now() - t0, status: res.statusCode };
}

async function forwardedWrite(latencyMs: number, reps: number) {
  const net = new MemoryNetwork(systemClock, { defaultLink: { latencyMs } });
  const sites = await federation(2, net, 200);
  await waitConverged(sites);
  const [a, b] = sites as [Site, Site];
  const tok = (await token(a))!;
  const local: number[] = [];
  const fwd: number[] = [];
  for (let i = 0; i < reps; i++) {
    const l = await timedCreateProject(a, tok, `local-${latencyMs}-${i}`);
    const f = await timedCreateProject(b, tok, `fwd-${latencyMs}-${i}`);
    if (l.status !== 201 || f.status !== 201)
      throw new Error(`project create failed: local ${l.status}, forwarded ${f.status}`);
    local.push(l.ms);
    fwd.push(f.ms);
  }
  // Replication delay of one change from a to b.
  const delays: number[] = [];
  for (let i = 0; i < Math.min(reps, 10); i++) {
    const before = b.ctx.changelog.cursor('s000');
    const t0 = performance.now();
    await timedCreateProject(a, tok, `rep-${latencyMs}-${i}`);
    while (b.ctx.changelog.cursor('s000') <= before) await new Promise((r) => setImmediate(r));
    delays.push(performance.now() - t0);
  }
  await Promise.all(sites.map((s) => s.close()));
  return {
    latencyMs,
    rttMs: 2 * latencyMs,
    local: summarize(local),
    forwarded: summarize(fwd),
    replication: summarize(delays),
  };
}

async function loginEverywhere(n: number) {
  const net = new MemoryNetwork(systemClock);
  const rand = (() => {
    let x = 42;
    return () => (x = (x * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
  })();
  process.stdout.write(`starting ${n} sites...`);
  const t0 = performance.now();
  const sites = await federation(n, net, 2000);
  const startup = performance.now() - t0;
  const home = sites[0]!;
  const delays = new Map<string, number>();
  for (const s of sites.slice(1)) {
    const d = 10 + Math.floor(rand() * 90);
    delays.set(s.ctx.name, d);
    net.setLink(home.ctx.name, s.ctx.name, { latencyMs: d });
  }
  process.stdout.write(` ${round(startup / 1000, 1)} s; converging...`);
  await waitConverged(sites, 120_000);
  const rss = process.memoryUsage().rss / 2 ** 20;
  process.stdout.write(' done\n');
  const tok = (await token(home))!;
  const statsBefore = structuredClone(net.stats);
  const tCreate = performance.now();
  const res = await home.app.inject({
    method: 'POST',
    url: '/identity/v3/users',
    headers: { 'x-auth-token': tok },
    payload: { user: { name: 'roamer', password: 'roamer-pw', domain_id: 'default' } },
  });
  if (res.statusCode !== 201) throw new Error(`user create: ${res.statusCode} ${res.body}`);
  const userId = (JSON.parse(res.body) as { user: { id: string } }).user.id;
  // The user row may already be at a site that applied it during the create call.
  const arrival = new Map<string, number>();
  const login = new Map<string, number>();
  // Event-driven (no polling): each site notes when the user's row is applied, then logs in at once.
  await Promise.all(
    sites.slice(1).map(
      (s) =>
        new Promise<void>((resolve) => {
          let done = false;
          const attempt = async () => {
            if (done) return;
            done = true;
            arrival.set(s.ctx.name, performance.now() - tCreate);
            if (await token(s, 'roamer', 'roamer-pw', null))
              login.set(s.ctx.name, performance.now() - tCreate);
            resolve();
          };
          if (s.ctx.store.db.prepare('SELECT 1 FROM users WHERE id = ?').get(userId)) void attempt();
          s.ctx.replicator.onApplied((_o, changes) => {
            if (changes.some((c) => c.kind === 'user' && c.id === userId)) void attempt();
          });
          setTimeout(() => resolve(), 30_000);
        }),
    ),
  );
  // One process runs all the sites, so the 99 logins above compete for two cores. A site alone does one
  // login at a time: measure that, uncontended, at one site, and add it to each site's arrival time.
  const solo: number[] = [];
  for (let i = 0; i < 20; i++) {
    const t0 = performance.now();
    if (!(await token(sites[1]!, 'roamer', 'roamer-pw', null))) throw new Error('login failed');
    solo.push(performance.now() - t0);
  }
  const soloLogin = summarize(solo);
  const perSite = [...arrival.values()].map((a) => a + soloLogin.p50);
  const statsAfter = net.stats;
  const maxDelay = Math.max(...delays.values());
  const loginTimes = [...login.values()];
  const changesCount = home.ctx.changelog.head();
  const perFamily = Object.fromEntries(
    Object.entries(statsAfter.bySubject).map(([k, v]) => [
      k,
      {
        messages: v.messages - (statsBefore.bySubject[k]?.messages ?? 0),
        bytes: v.bytes - (statsBefore.bySubject[k]?.bytes ?? 0),
      },
    ]),
  );
  // Cost per change over a burst of 20 writes (pushes + any pulls), heartbeats excluded.
  const before2 = structuredClone(net.stats.bySubject);
  await projectBurst(home, tok);
  await waitConverged(sites, 60_000);
  const fam = (k: string) => ({
    messages: (net.stats.bySubject[k]?.messages ?? 0) - (before2[k]?.messages ?? 0),
    bytes: (net.stats.bySubject[k]?.bytes ?? 0) - (before2[k]?.bytes ?? 0),
  });
  const burstChanges = home.ctx.changelog.head() - changesCount;
  const ch = fam('changes');
  const rpc = fam('rpc');
  await Promise.all(sites.map((s) => s.close()));
  return {
    sites: n,
    startupSeconds: round(startup / 1000, 1),
    rssMbWithAllSites: round(rss, 0),
    rssMbPerSite: round(rss / n, 1),
    maxOneWayDelayMs: maxDelay,
    budgetMs: maxDelay + 100,
    reached: login.size,
    of: n - 1,
    arrival: summarize([...arrival.values()]),
    login: summarize(loginTimes),
    withinBudgetContended: loginTimes.length === n - 1 && Math.max(...loginTimes) <= maxDelay + 100,
    soloLogin,
    perSiteLogin: summarize(perSite),
    withinBudget: perSite.length === n - 1 && Math.max(...perSite) <= maxDelay + 100,
    userCreate: perFamily,
    perChange: {
      changes: burstChanges,
      pushMessages: round(ch.messages / burstChanges, 1),
      pushBytes: round(ch.bytes / burstChanges, 0),
      pullMessages: round(rpc.messages / burstChanges, 2),
      pullBytes: round(rpc.bytes / burstChanges, 0),
      perReceiverBytes: round(ch.bytes / burstChanges / (n - 1), 0),
    },
  };
}

interface GaveUp {
  sites: number;
  liveness: Liveness;
  gaveUp: string;
  startedSites: number;
  startupSeconds: number;
}
interface Measured {
  sites: number;
  liveness: Liveness;
  startupSeconds: number;
  /** Process CPU over start-up and convergence (robust to the machine's other load). */
  startupCpuSeconds: number;
  startupPullsPerSite: number;
  startupMessagesPerSite: number;
  idle: {
    messagesPerSitePerSecond: number;
    bytesPerSitePerSecond: number;
    cpuMsPerSitePerSecond: number;
    processCpuPercent: number;
    bySubject: Record<string, number>;
    replicator: Record<string, number>;
  };
  propagation: { reached: number; of: number } & ReturnType<typeof summarize>;
  perChange: { changes: number; pushBytesPerSite: number; allBytesPerSite: number };
  heapMbPerSite: number;
  rssMbPerSite: number;
  heapMeasuredAfterGc: boolean;
}
type ScalePoint = GaveUp | Measured;

/** One federation of `n` sites in one liveness mode: what each site costs idle and per change. */
async function scalePoint(
  n: number,
  liveness: Liveness,
  idleMs: number,
  maxStartupMs: number,
): Promise<ScalePoint> {
  const net = new MemoryNetwork(systemClock, { defaultLink: { latencyMs: 20 } });
  process.stdout.write(`  [${liveness} ${n}] starting`);
  const t0 = performance.now();
  const cpu0 = process.cpuUsage();
  let sites: Site[];
  try {
    sites = await federation(n, net, 1000, liveness, maxStartupMs);
  } catch (e) {
    if (!(e instanceof StartupTooSlow)) throw e;
    process.stdout.write(` gave up: ${e.message}\n`);
    return {
      sites: n,
      liveness,
      gaveUp: e.message,
      startedSites: e.started,
      startupSeconds: round(e.ms / 1000, 1),
    };
  }
  try {
    await waitConverged(sites, maxStartupMs);
  } catch {
    const ms = performance.now() - t0;
    const share = round(caughtUp(sites) * 100, 1);
    const cpu = process.cpuUsage(cpu0);
    await Promise.all(sites.map((s) => s.close()));
    const e = new StartupTooSlow(n, ms);
    e.message = `all ${n} sites started but did not converge within ${round(ms / 1000, 1)} s, ${round((cpu.user + cpu.system) / 1e6, 1)} CPU s (${share}% of site pairs caught up)`;
    process.stdout.write(` gave up: ${e.message}\n`);
    return {
      sites: n,
      liveness,
      gaveUp: e.message,
      startedSites: e.started,
      startupSeconds: round(e.ms / 1000, 1),
    };
  }
  const startup = performance.now() - t0;
  // CPU seconds of start-up: what the sites cost, whatever else the machine was running meanwhile.
  const startupCpu = process.cpuUsage(cpu0);
  const startupCpuSeconds = round((startupCpu.user + startupCpu.system) / 1e6, 1);
  const startupPulls = sites.reduce((a, s) => a + s.ctx.replicator.stats.pulls, 0);
  const startupMessages = net.stats.messages;
  process.stdout.write(
    ` ${round(startup / 1000, 1)} s (${startupCpuSeconds} CPU s, ${round(startupPulls / n, 1)} pulls/site, ${round(startupMessages / n, 0)} msg/site); idle`,
  );
  // Settle one detection period, then measure an idle window.
  await sleep(2000);
  const gc = (globalThis as { gc?: () => void }).gc;
  gc?.();
  const heap = process.memoryUsage().heapUsed;
  const rss = process.memoryUsage().rss;
  const m0 = { messages: net.stats.messages, bytes: net.stats.bytes };
  const fams0 = structuredClone(net.stats.bySubject);
  const counters = () => {
    const sum: Record<string, number> = {};
    for (const s of sites)
      for (const [k, v] of Object.entries(s.ctx.replicator.stats)) sum[k] = (sum[k] ?? 0) + v;
    return sum;
  };
  const r0 = counters();
  const c0 = process.cpuUsage();
  const w0 = performance.now();
  await sleep(idleMs);
  const cpu = process.cpuUsage(c0);
  const wall = (performance.now() - w0) / 1000;
  const idle = {
    messagesPerSitePerSecond: round((net.stats.messages - m0.messages) / n / wall, 2),
    bytesPerSitePerSecond: round((net.stats.bytes - m0.bytes) / n / wall, 0),
    cpuMsPerSitePerSecond: round((cpu.user + cpu.system) / 1000 / n / wall, 3),
    processCpuPercent: round(((cpu.user + cpu.system) / 1e6 / wall) * 100, 1),
    /** Messages per site per second by subject family (ping, changes, heartbeat, reply, ...). */
    bySubject: Object.fromEntries(
      Object.entries(net.stats.bySubject).map(([k, v]) => [
        k,
        round((v.messages - (fams0[k]?.messages ?? 0)) / n / wall, 2),
      ]),
    ),
    /** Replicator counters (probes, indirect probes, pulls, ...) per site per second. */
    replicator: Object.fromEntries(
      Object.entries(counters()).map(([k, v]) => [k, round((v - (r0[k] ?? 0)) / n / wall, 3)]),
    ),
  };
  process.stdout.write(
    ` ${idle.messagesPerSitePerSecond} msg/site/s ${JSON.stringify(idle.bySubject)} ${JSON.stringify(idle.replicator)}; propagation`,
  );
  // A new user at the first site: until every other site has applied its row.
  const home = sites[0]!;
  const tok = (await token(home))!;
  const tCreate = performance.now();
  const arrivals: number[] = [];
  let userId = '';
  const all = Promise.all(
    sites.slice(1).map(
      (s) =>
        new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, 60_000);
          s.ctx.replicator.onApplied((_o, changes) => {
            if (userId && changes.some((c) => c.kind === 'user' && c.id === userId)) {
              arrivals.push(performance.now() - tCreate);
              clearTimeout(timer);
              resolve();
            }
          });
        }),
    ),
  );
  const res = await home.app.inject({
    method: 'POST',
    url: '/identity/v3/users',
    headers: { 'x-auth-token': tok },
    payload: { user: { name: 'roamer', password: 'roamer-pw', domain_id: 'default' } },
  });
  if (res.statusCode !== 201) throw new Error(`user create: ${res.statusCode} ${res.body}`);
  userId = (JSON.parse(res.body) as { user: { id: string } }).user.id;
  // (Every link has 20 ms of latency, so no site applies the row before userId is known.)
  await all;
  const propagation = summarize(arrivals);
  // Bytes per change per receiving site, over a burst of 20 project creates (pushes and pulls).
  const before = { messages: net.stats.messages, bytes: net.stats.bytes };
  const fam0 = structuredClone(net.stats.bySubject);
  const head0 = home.ctx.changelog.head();
  await projectBurst(home, tok);
  await waitConverged(sites, 120_000);
  const changes = home.ctx.changelog.head() - head0;
  const fam = (k: string) => (net.stats.bySubject[k]?.bytes ?? 0) - (fam0[k]?.bytes ?? 0);
  const perChange = {
    changes,
    pushBytesPerSite: round(fam('changes') / changes / (n - 1), 0),
    // Includes the idle traffic of the burst's duration (liveness), so it is an upper bound.
    allBytesPerSite: round((net.stats.bytes - before.bytes) / changes / (n - 1), 0),
  };
  process.stdout.write(` p50 ${propagation.p50} / max ${propagation.max} ms; done\n`);
  await Promise.all(sites.map((s) => s.close()));
  return {
    sites: n,
    liveness,
    startupSeconds: round(startup / 1000, 1),
    startupCpuSeconds,
    startupPullsPerSite: round(startupPulls / n, 1),
    startupMessagesPerSite: round(startupMessages / n, 0),
    idle,
    propagation: { reached: arrivals.length, of: n - 1, ...propagation },
    perChange,
    heapMbPerSite: round(heap / 2 ** 20 / n, 2),
    rssMbPerSite: round(rss / 2 ** 20 / n, 2),
    heapMeasuredAfterGc: !!gc,
  };
}

async function scaleMain(ns: number[], modes: Liveness[]) {
  const idleMs = Number(values['idle-s']) * 1000;
  const maxStartupMs = Number(values['max-startup-s']) * 1000;
  const points: ScalePoint[] = [];
  console.log(`5. scale: N = ${ns.join(', ')}; liveness ${modes.join(', ')}; idle window ${idleMs / 1000} s`);
  for (const n of ns)
    for (const mode of modes) {
      points.push(await scalePoint(n, mode, idleMs, maxStartupMs));
      const tag = values.tag ? `-${values.tag}` : '';
      save(
        `federation-scale${tag}`,
        { measured: new Date().toISOString(), clock: 'system (real time)', points },
        scaleMarkdown(points),
      );
    }
  const tag = values.tag ? `-${values.tag}` : '';
  const done = (p: ScalePoint): p is Measured => 'idle' in p;
  const metric = (file: string, title: string, unit: string, get: (p: Measured) => number) =>
    saveSvg(
      `federation-scale${tag}-${file}`,
      lineChart(
        title,
        'sites (N)',
        unit,
        modes.map((mode) => ({
          name: mode,
          points: points
            .filter(done)
            .filter((p) => p.liveness === mode)
            .map((p) => [p.sites, get(p)] as [number, number]),
        })),
      ),
    );
  metric('startup', 'Start-up of N sites', 's', (p) => p.startupSeconds);
  metric('startup-cpu', 'CPU of the start-up of N sites', 'CPU s', (p) => p.startupCpuSeconds);
  metric(
    'idle-messages',
    'Idle messages received per site per second',
    'messages/s',
    (p) => p.idle.messagesPerSitePerSecond,
  );
  metric(
    'idle-bytes',
    'Idle bytes received per site per second',
    'bytes/s',
    (p) => p.idle.bytesPerSitePerSecond,
  );
  metric('idle-cpu', 'Idle CPU per site', 'CPU ms per s', (p) => p.idle.cpuMsPerSitePerSecond);
  metric('propagation', 'A new user reaches every site (max)', 'ms', (p) => p.propagation.max);
  metric(
    'bytes-per-change',
    'Push bytes per change per receiving site',
    'bytes',
    (p) => p.perChange.pushBytesPerSite,
  );
  metric('heap', 'Heap per site', 'MB', (p) => p.heapMbPerSite);
}

function scaleMarkdown(points: ScalePoint[]): string {
  return [
    '# Federation at scale on the in-process fabric',
    '',
    `Measured ${new Date().toISOString().slice(0, 16)}Z; real sites in one process (Fastify inject, SQLite in memory), in-process fabric with a 20 ms one-way link, real time (systemClock). Heartbeat / probe period 1 s. "per site" = process total / N; the process shares 2 cores with other work.`,
    '',
    table(
      [
        'liveness',
        'N',
        'start-up s',
        'start-up CPU s',
        'idle msg/site/s',
        'idle bytes/site/s',
        'idle CPU ms/site/s',
        'process CPU %',
        'new user at all sites p50 / max ms',
        'push bytes/change/site',
        'all bytes/change/site',
        'heap MB/site',
      ],
      points.map((p) =>
        'idle' in p
          ? [
              p.liveness,
              p.sites,
              p.startupSeconds,
              p.startupCpuSeconds,
              p.idle.messagesPerSitePerSecond,
              p.idle.bytesPerSitePerSecond,
              p.idle.cpuMsPerSitePerSecond,
              p.idle.processCpuPercent,
              `${p.propagation.p50} / ${p.propagation.max} (${p.propagation.reached}/${p.propagation.of})`,
              p.perChange.pushBytesPerSite,
              p.perChange.allBytesPerSite,
              p.heapMbPerSite,
            ]
          : [p.liveness, p.sites, `gave up (${p.gaveUp})`, '-', '-', '-', '-', '-', '-', '-', '-', '-'],
      ),
    ),
  ].join('\n');
}

async function main() {
  if (values.scale) {
    const ns = values.scale.split(',').map(Number);
    const modes = String(values.liveness).split(',') as Liveness[];
    return scaleMain(ns, modes);
  }
  const reps = values.quick ? 5 : 20;
  console.log('1. forwarded write across a 50 ms one-way link');
  const fw = await forwardedWrite(50, reps);
  console.log(
    `   local p50 ${fw.local.p50} ms; forwarded p50 ${fw.forwarded.p50} ms, p99 ${fw.forwarded.p99} ms; RTT ${fw.rttMs} ms; overhead p50 ${round(fw.forwarded.p50 - fw.rttMs)} ms (target <= 10 ms)`,
  );
  console.log(`2-3. login everywhere and cost per change with ${N} sites`);
  const le = await loginEverywhere(N);
  console.log(
    `   user reached ${le.reached}/${le.of} sites; replica arrival max ${le.arrival.max} ms + one login ${le.soloLogin.p50} ms = ${le.perSiteLogin.max} ms; budget ${le.budgetMs} ms -> ${le.withinBudget ? 'within' : 'OVER'}; all ${le.of} logins at once in this one process: max ${le.login.max} ms`,
  );
  console.log(
    `   per change: ${le.perChange.pushMessages} push messages, ${le.perChange.pushBytes} bytes (${le.perChange.perReceiverBytes} per receiver), ${le.perChange.pullMessages} pull messages`,
  );
  console.log('4. WAN sweep');
  const sweep = [];
  for (const lat of values.quick ? [0, 50] : [0, 10, 25, 50, 100, 200]) {
    const r = await forwardedWrite(lat, Math.max(5, Math.floor(reps / 2)));
    sweep.push(r);
    console.log(
      `   one-way ${lat} ms: forwarded p50 ${r.forwarded.p50} ms, replication p50 ${r.replication.p50} ms`,
    );
  }
  const md = [
    '# Federation on the in-process fabric',
    '',
    `Measured ${new Date().toISOString().slice(0, 10)}; real sites (Fastify inject, SQLite in memory), modelled WAN. One process, one core busy.`,
    '',
    '## Forwarded write (project create in a domain homed elsewhere), 50 ms one-way',
    table(
      ['path', 'p50 ms', 'p99 ms', 'n'],
      [
        ['local write at the owner', fw.local.p50, fw.local.p99, fw.local.n],
        ['forwarded from the other site', fw.forwarded.p50, fw.forwarded.p99, fw.forwarded.n],
        ['round trip alone', fw.rttMs, fw.rttMs, '-'],
      ],
    ),
    '',
    `Overhead over one round trip: p50 ${round(fw.forwarded.p50 - fw.rttMs)} ms, p99 ${round(fw.forwarded.p99 - fw.rttMs)} ms (target: at most 10 ms).`,
    '',
    `## A user created at its home site logs in everywhere (${le.sites} sites)`,
    table(
      ['figure', 'value'],
      [
        ['sites reached', `${le.reached}/${le.of}`],
        ['largest one-way delay', `${le.maxOneWayDelayMs} ms`],
        ['budget (largest delay + 100 ms)', `${le.budgetMs} ms`],
        ['replica arrival p50 / max', `${le.arrival.p50} / ${le.arrival.max} ms`],
        ['one login at one site, uncontended (p50)', `${le.soloLogin.p50} ms`],
        ['per site: arrival + one login, p50 / max', `${le.perSiteLogin.p50} / ${le.perSiteLogin.max} ms`],
        ['within budget (per site)', le.withinBudget ? 'yes' : 'no'],
        [
          `all ${le.of} sites logging in at once in this one process, p50 / max`,
          `${le.login.p50} / ${le.login.max} ms`,
        ],
        ['within budget (all at once, one process, 2 cores)', le.withinBudgetContended ? 'yes' : 'no'],
        ['process RSS with all sites', `${le.rssMbWithAllSites} MB (${le.rssMbPerSite} MB per site)`],
        ['start-up of all sites', `${le.startupSeconds} s`],
      ],
    ),
    '',
    '## Cost per replicated change',
    table(
      ['figure', 'value'],
      [
        ['changes in the burst', le.perChange.changes],
        ['push messages per change (one delivery per receiving site)', le.perChange.pushMessages],
        ['push bytes per change (all receivers)', le.perChange.pushBytes],
        ['push bytes per change per receiver', le.perChange.perReceiverBytes],
        ['pull messages per change (repairs; 0 on a lossless WAN)', le.perChange.pullMessages],
      ],
    ),
    '',
    '## WAN sweep: forwarded write and replication delay against one-way latency',
    table(
      ['one-way ms', 'forwarded p50 ms', 'forwarded p99 ms', 'replication p50 ms'],
      sweep.map((r) => [r.latencyMs, r.forwarded.p50, r.forwarded.p99, r.replication.p50]),
    ),
    '',
    '![WAN sweep](federation-wan.svg)',
  ].join('\n');
  save('federation', { forwardedWrite: fw, loginEverywhere: le, sweep }, md);
  saveSvg(
    'federation-wan',
    lineChart('Forwarded write and replication vs WAN latency', 'one-way latency (ms)', 'ms', [
      { name: 'forwarded write p50', points: sweep.map((r) => [r.latencyMs, r.forwarded.p50]) },
      { name: 'round trip (2x)', points: sweep.map((r) => [r.latencyMs, r.rttMs]) },
      { name: 'replication p50', points: sweep.map((r) => [r.latencyMs, r.replication.p50]) },
    ]),
  );
}

main().then(
  () => process.exit(0),
  (e: unknown) => {
    console.error(e);
    process.exit(1);
  },
);
