/**
 * @module Federation benchmark on the in-process fabric (real sites: Fastify via inject, SQLite, the
 * real replication and forwarding code; only the WAN is modelled).
 *   1. Forwarded write: site-b creates a project in a domain homed on site-a, across a 50 ms one-way
 *      link; cost against the round trip (100 ms) and against the same write made locally at site-a.
 *   2. Login everywhere: with 100 sites and random one-way delays, a user created at its home site can
 *      log in at every site within (largest one-way delay + 100 ms)?
 *   3. Cost per replicated change: fabric messages and bytes per change, pushes and pulls, 100 sites.
 *   4. WAN sweep: forwarded-write latency and replication delay against one-way latency (SVG plot).
 * Usage: node --import tsx bench/federation.ts [--sites 100]
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
  options: { sites: { type: 'string', default: '100' }, quick: { type: 'boolean', default: false } },
});
const N = Number(values.sites);
const ADMIN = { adminUser: 'admin', adminPassword: 'bench-admin', adminProject: 'admin' };
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function federation(n: number, net: MemoryNetwork, heartbeatMs = 1000): Promise<Site[]> {
  const sites: Site[] = [];
  for (let i = 0; i < n; i++) {
    const name = `s${String(i).padStart(3, '0')}`;
    const site = await createSite(
      {
        name,
        dataDir: ':memory:',
        logLevel: 'silent',
        passwordHashCost: 10,
        heartbeatMs,
        downAfterMs: heartbeatMs * 3.5,
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

async function waitConverged(sites: Site[], ms = 60_000): Promise<void> {
  const end = Date.now() + ms;
  const head = (s: Site) => s.ctx.changelog.head();
  while (Date.now() < end) {
    const heads = sites.map(head);
    if (sites.every((a) => sites.every((b, j) => a === b || a.ctx.changelog.cursor(b.ctx.name) >= heads[j]!)))
      return;
    await sleep(20);
  }
  throw new Error('federation did not converge');
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
  for (let i = 0; i < 20; i++)
    await home.app.inject({
      method: 'POST',
      url: '/identity/v3/projects',
      headers: { 'x-auth-token': tok },
      payload: { project: { name: `burst-${i}`, domain_id: 'default' } },
    });
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

async function main() {
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
