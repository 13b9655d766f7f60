/**
 * @module Token benchmark: one site as a child process (`./bin/atoll site`), a keep-alive HTTP load
 * generator here (so the two do not share an event loop), and for each of password issue, token-method
 * rescoping, token validation (GET /v3/auth/tokens, with and without ?nocatalog) and GET /healthz as the baseline: requests
 * per second and p50/p99 latency at 1, 8 and 64 concurrent clients. Also the idle site's RSS.
 * Prints a table and saves bench/results/token-bench.{json,md}. Reports figures; never passes or fails.
 *
 *   npm run bench:tokens [-- --seconds 3 --cost 14 --regions 0 --only 'catalog|healthz' --cpu-prof DIR]
 *
 * `--regions N` adds N regions with an endpoint per service and interface each, so the catalog is the
 * size of an (N+1)-site federation's; `--only` keeps the scenarios whose name matches (healthz always
 * runs: it is the baseline); `--cpu-prof DIR` writes the site's CPU profile there (node --cpu-prof).
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import { Agent, request } from 'node:http';
import { cpus, loadavg, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const { values } = parseArgs({
  options: {
    seconds: { type: 'string', default: '3' },
    cost: { type: 'string', default: '14' },
    concurrency: { type: 'string', default: '1,8,64' },
    regions: { type: 'string', default: '0' },
    only: { type: 'string', default: '' },
    'cpu-prof': { type: 'string' },
  },
});
const SECONDS = Number(values.seconds);
const COST = Number(values.cost);
const LEVELS = values.concurrency.split(',').map(Number);
const REGIONS = Number(values.regions);
const ONLY = values.only ? new RegExp(values.only) : undefined;
const CPU_PROF = values['cpu-prof'];
const PASSWORD = 'bench-admin-secret';

interface Reply {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

function call(
  agent: Agent,
  base: URL,
  method: string,
  path: string,
  headers: Record<string, string>,
  body?: string,
): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = request(
      {
        agent,
        host: base.hostname,
        port: base.port,
        method,
        path,
        headers: body
          ? { ...headers, 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) }
          : headers,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        // The body is decoded only when asked for: the measured scenarios look at the status only, so
        // the load generator (on the same two cores) does not spend its time decoding catalogs.
        res.on('end', () =>
          resolve({
            status: res.statusCode ?? 0,
            headers: res.headers,
            get body() {
              return Buffer.concat(chunks).toString();
            },
          }),
        );
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    if (body) req.write(body);
    req.end();
  });
}

const passwordBody = JSON.stringify({
  auth: {
    identity: {
      methods: ['password'],
      password: { user: { name: 'admin', domain: { id: 'default' }, password: PASSWORD } },
    },
    scope: { project: { name: 'admin', domain: { id: 'default' } } },
  },
});
const rescopeBody = (token: string) =>
  JSON.stringify({
    auth: {
      identity: { methods: ['token'], token: { id: token } },
      scope: { project: { name: 'admin', domain: { id: 'default' } } },
    },
  });

interface Point {
  scenario: string;
  concurrency: number;
  requests: number;
  errors: number;
  rps: number;
  p50_ms: number;
  p99_ms: number;
  /** The site's CPU time (user + system) per answered request, µs: steadier than req/s on a shared machine. */
  site_cpu_us: number;
}

/** Runs `concurrency` closed-loop clients for `seconds` (after a short warm-up) and measures. */
async function measure(
  scenario: string,
  concurrency: number,
  seconds: number,
  one: (agent: Agent) => Promise<boolean>,
  siteCpuMs: () => number,
): Promise<Point> {
  const agent = new Agent({ keepAlive: true, maxSockets: concurrency });
  const lat: number[] = [];
  let errors = 0;
  const run = async (until: number, record: boolean) => {
    await Promise.all(
      Array.from({ length: concurrency }, async () => {
        while (performance.now() < until) {
          const t0 = performance.now();
          const ok = await one(agent).catch(() => false);
          if (!record) continue;
          if (ok) lat.push(performance.now() - t0);
          else errors++;
        }
      }),
    );
  };
  await run(performance.now() + Math.min(500, seconds * 250), false);
  const start = performance.now();
  const cpu0 = siteCpuMs();
  await run(start + seconds * 1000, true);
  const elapsed = (performance.now() - start) / 1000;
  const cpuMs = siteCpuMs() - cpu0;
  agent.destroy();
  lat.sort((a, b) => a - b);
  const pct = (p: number) => (lat.length ? lat[Math.min(lat.length - 1, Math.floor(lat.length * p))]! : NaN);
  return {
    scenario,
    concurrency,
    requests: lat.length,
    errors,
    rps: Math.round(lat.length / elapsed),
    p50_ms: Number(pct(0.5).toFixed(2)),
    p99_ms: Number(pct(0.99).toFixed(2)),
    site_cpu_us: lat.length ? Math.round((cpuMs * 1000) / lat.length) : NaN,
  };
}

/**
 * Adds `n` regions, each with a public and an internal endpoint per service (as an n+1-site federation's
 * catalog has), and returns the catalog's size as a validation answers it.
 */
async function addRegions(
  agent: Agent,
  base: URL,
  admin: string,
  n: number,
): Promise<{ regions: number; endpoints: number; bytes: number }> {
  const h = { 'x-auth-token': admin };
  const services = JSON.parse((await call(agent, base, 'GET', '/identity/v3/services', h)).body) as {
    services: { id: string; type: string }[];
  };
  for (let i = 0; i < n; i++) {
    const region = `bench-region-${i}`;
    const r = await call(
      agent,
      base,
      'POST',
      '/identity/v3/regions',
      h,
      JSON.stringify({ region: { id: region } }),
    );
    if (r.status !== 201) throw new Error(`region create failed: ${r.status} ${r.body}`);
    for (const s of services.services)
      for (const iface of ['public', 'internal']) {
        const endpoint = {
          service_id: s.id,
          region_id: region,
          interface: iface,
          url: `http://${region}.example:8080/${s.type}`,
        };
        const e = await call(agent, base, 'POST', '/identity/v3/endpoints', h, JSON.stringify({ endpoint }));
        if (e.status !== 201) throw new Error(`endpoint create failed: ${e.status} ${e.body}`);
      }
  }
  const v = await call(agent, base, 'GET', '/identity/v3/auth/tokens', { ...h, 'x-subject-token': admin });
  const catalog = (JSON.parse(v.body) as { token: { catalog: { endpoints: unknown[] }[] } }).token.catalog;
  return {
    regions: n + 1,
    endpoints: catalog.reduce((k, s) => k + s.endpoints.length, 0),
    bytes: Buffer.byteLength(v.body),
  };
}

/** CPU time the process has used, ms (utime + stime from /proc, in clock ticks of 10 ms). */
function cpuMs(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return (Number(fields[11]) + Number(fields[12])) * 10;
}

function rssMb(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Math.round(Number(m[1]) / 102.4) / 10 : NaN;
}

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'atoll-bench-'));
  const configFile = join(dir, 'site.json');
  writeFileSync(configFile, JSON.stringify({ passwordHashCost: COST, tokenTtlSeconds: 3600 }));
  const siteArgs = [
    'site',
    '--name',
    'bench',
    '--port',
    '0',
    '--data-dir',
    join(dir, 'data'),
    '--bootstrap',
    '--admin-password',
    PASSWORD,
    '--log-level',
    'warn',
    '--config',
    configFile,
  ];
  // node refuses --cpu-prof in NODE_OPTIONS: a profiled site runs the sources through tsx directly.
  const child = CPU_PROF
    ? spawn(
        process.execPath,
        [
          '--cpu-prof',
          `--cpu-prof-dir=${CPU_PROF}`,
          '--import',
          'tsx',
          join(root, 'src/cli/main.ts'),
          ...siteArgs,
        ],
        { stdio: ['ignore', 'pipe', 'inherit'], cwd: root },
      )
    : spawn(join(root, 'bin/atoll'), siteArgs, { stdio: ['ignore', 'pipe', 'inherit'] });
  const stop = () => {
    if (child.exitCode === null) child.kill('SIGTERM');
  };
  process.on('exit', stop);
  try {
    const url = await new Promise<string>((resolve, reject) => {
      let out = '';
      child.stdout.on('data', (c: Buffer) => {
        out += c.toString();
        const m = /listening on (http:\/\/\S+)/.exec(out);
        if (m) resolve(m[1]!);
      });
      child.on('exit', (code) => reject(new Error(`site exited (${code}) before listening`)));
    });
    child.stdout.resume();
    const base = new URL(url);
    await new Promise((r) => setTimeout(r, 2000));
    const idleRss = rssMb(child.pid!);

    const setup = new Agent({ keepAlive: true });
    const issued = await call(setup, base, 'POST', '/identity/v3/auth/tokens?nocatalog', {}, passwordBody);
    if (issued.status !== 201) throw new Error(`password auth failed: ${issued.status} ${issued.body}`);
    const admin = issued.headers['x-subject-token'] as string;
    // A pool of distinct subject tokens, as many clients would present.
    const subjects: string[] = [];
    for (let i = 0; i < 256; i++) {
      const r = await call(setup, base, 'POST', '/identity/v3/auth/tokens?nocatalog', {}, rescopeBody(admin));
      subjects.push(r.headers['x-subject-token'] as string);
    }
    const regions = await addRegions(setup, base, admin, REGIONS);
    setup.destroy();

    let n = 0;
    const scenarios: [string, (a: Agent) => Promise<boolean>][] = [
      ['healthz (baseline)', async (a) => (await call(a, base, 'GET', '/healthz', {})).status === 200],
      [
        'token validation',
        async (a) =>
          (
            await call(a, base, 'GET', '/identity/v3/auth/tokens?nocatalog', {
              'x-auth-token': admin,
              'x-subject-token': subjects[n++ % subjects.length]!,
            })
          ).status === 200,
      ],
      [
        // What the openstack CLI and the SDKs send: validation with the service catalog in the answer.
        'token validation + catalog',
        async (a) =>
          (
            await call(a, base, 'GET', '/identity/v3/auth/tokens', {
              'x-auth-token': admin,
              'x-subject-token': subjects[n++ % subjects.length]!,
            })
          ).status === 200,
      ],
      [
        'token rescope',
        async (a) =>
          (await call(a, base, 'POST', '/identity/v3/auth/tokens?nocatalog', {}, rescopeBody(admin)))
            .status === 201,
      ],
      [
        `password issue (scrypt N=2^${COST})`,
        async (a) =>
          (await call(a, base, 'POST', '/identity/v3/auth/tokens?nocatalog', {}, passwordBody)).status ===
          201,
      ],
    ];
    // Side by side: at each concurrency, every scenario runs right after its own healthz baseline, so the
    // ratio compares two runs made under the same machine conditions (this machine is noisy).
    const points: Point[] = [];
    const loadBefore = loadavg().map((x) => Number(x.toFixed(2)));
    const ratios = new Map<Point, number>();
    const [baselineScenario, ...all] = scenarios;
    const others = all.filter(([name]) => !ONLY || ONLY.test(name));
    const run = async (name: string, c: number, fn: (a: Agent) => Promise<boolean>) => {
      const p = await measure(name, c, SECONDS, fn, () => cpuMs(child.pid!));
      process.stderr.write(
        `${name.padEnd(30)} c=${String(c).padEnd(3)} ${p.rps} req/s p50 ${p.p50_ms} ms p99 ${p.p99_ms} ms site ${p.site_cpu_us} µs/req\n`,
      );
      return p;
    };
    for (const c of LEVELS)
      for (const [name, fn] of others) {
        const b = await run(baselineScenario![0], c, baselineScenario![1]);
        const p = await run(name, c, fn);
        points.push(b, p);
        ratios.set(b, 1);
        ratios.set(p, p.rps / b.rps);
      }
    const loadedRss = rssMb(child.pid!);
    const rows = points.map((p) => ({ ...p, vs_healthz: Number((ratios.get(p) ?? NaN).toFixed(2)) }));
    const result = {
      when: new Date().toISOString(),
      machine: { cpus: cpus().length, model: cpus()[0]?.model ?? '', node: process.version },
      setup:
        'one site as a child process (bin/atoll site, SQLite on disk); load generator in the bench process, node:http keep-alive, closed loop',
      seconds_per_point: SECONDS,
      password_hash: `scrypt N=2^${COST}, r=8, p=1`,
      catalog: regions,
      // The machine may be shared: its 1, 5 and 15 minute load averages when the run began and ended.
      load_average: { start: loadBefore, end: loadavg().map((x) => Number(x.toFixed(2))) },
      idle_rss_mb: idleRss,
      rss_after_load_mb: loadedRss,
      points: rows,
    };
    const head = [
      'scenario',
      'clients',
      'req/s',
      'p50 ms',
      'p99 ms',
      'vs healthz',
      'site CPU µs/req',
      'errors',
    ];
    const table = rows.map((r) => [
      r.scenario,
      String(r.concurrency),
      String(r.rps),
      r.p50_ms.toFixed(2),
      r.p99_ms.toFixed(2),
      r.vs_healthz.toFixed(2),
      String(r.site_cpu_us),
      String(r.errors),
    ]);
    const widths = head.map((h, i) => Math.max(h.length, ...table.map((r) => r[i]!.length)));
    const line = (c: string[]) => c.map((x, i) => x.padEnd(widths[i]!)).join('  ');
    const text = [
      line(head),
      ...table.map(line),
      '',
      `idle RSS ${idleRss} MB, after load ${loadedRss} MB`,
    ].join('\n');
    process.stdout.write(`\n${text}\n`);

    const md = [
      '# Token benchmark',
      '',
      `${result.when} on ${result.machine.cpus} CPU(s) (${result.machine.model}), Node ${result.machine.node}.`,
      `${result.setup}; ${SECONDS} s per point after a warm-up; password hash ${result.password_hash}.`,
      `Catalog: ${regions.regions} region(s), ${regions.endpoints} endpoints, ${regions.bytes} bytes of token body with it.`,
      '',
      `| ${head.join(' | ')} |`,
      `|${head.map(() => '---').join('|')}|`,
      ...table.map((r) => `| ${r.join(' | ')} |`),
      '',
      `Idle site RSS: ${idleRss} MB (after the run: ${loadedRss} MB). Load average (1, 5, 15 min) at the start ${result.load_average.start.join(', ')}, at the end ${result.load_average.end.join(', ')}.`,
      '',
      "Site CPU µs/req is the site process's CPU time (user + system) over the point divided by the requests answered: on a shared machine it moves much less than req/s.",
      '',
    ].join('\n');
    mkdirSync(join(root, 'bench/results'), { recursive: true });
    writeFileSync(join(root, 'bench/results/token-bench.json'), JSON.stringify(result, null, 2) + '\n');
    writeFileSync(join(root, 'bench/results/token-bench.md'), md);
    process.stdout.write('saved bench/results/token-bench.json and bench/results/token-bench.md\n');
  } finally {
    stop();
    await new Promise((r) => setTimeout(r, 300));
    rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((e: unknown) => {
  process.stderr.write(`token-bench: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
  process.exit(1);
});
