/**
 * @module A federation of real processes for end-to-end tests: one nats-server per site, clustered
 * with routes that pass through WanProxy (so a test can add latency or partition a site), and one
 * `atoll site` process per site on its own port and data directory. Sites can be killed (SIGKILL) and
 * restarted from their data directory.
 *
 * With `secure`, each nats-server runs the deployment configuration of src/fabric/nats/server-config.ts
 * (a user per site with least privilege, authenticated routes) and, with `secure.tls`, mutual TLS on
 * client connections and on routes (through the proxies); each site logs in with its own user, password
 * (from ATOLL_NATS_PASSWORD) and client certificate. Leaf-node joins are not offered in that mode.
 */
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { WanProxy } from '../../src/fabric/wan-proxy.ts';
import { natsServerConfig } from '../../src/fabric/nats/server-config.ts';
import { freePorts, makeTestPki } from './nats.ts';
import type { TestPki } from './nats.ts';
import { ADMIN, eventually, passwordToken, runOpenstack } from './cloud.ts';
import type { CliResult } from './cloud.ts';

const ROOT = join(import.meta.dirname, '..', '..');
const NATS_BIN = process.env.NATS_SERVER_BIN ?? '/usr/sbin/nats-server';

export interface ProcSite {
  name: string;
  port: number;
  natsPort: number;
  url: string;
  proc: ChildProcess | undefined;
  output: string;
  /** Set for a site that joined as a leaf node: the member's leaf URL. */
  joinVia?: string;
  /** With `secure`: the site's NATS password and (with TLS) its certificate files. */
  nats?: { user: string; password: string; tls?: { ca: string; cert: string; key: string } };
}

export interface ProcFederationOptions {
  latencyMs?: number;
  heartbeatMs?: number;
  /** Users with least privilege and route credentials on every nats-server; `tls`: mutual TLS on
   * client connections and routes. Off by default. */
  secure?: { tls?: boolean };
  /** More `atoll site` arguments for site i (a `--config FILE`, say); `dir` is the federation's folder. */
  siteArgs?: (i: number, dir: string) => string[];
}

export interface ProcFederation {
  sites: ProcSite[];
  dir: string;
  /** With `secure.tls`: the CA and certificates. */
  pki?: TestPki;
  /** Monitoring URL of site i's nats-server (/varz, /connz, /routez). */
  monitorUrl(i: number): string;
  env(i: number, user?: { username: string; password: string; project: string }): Record<string, string>;
  os(args: string[], site: number, env?: Record<string, string>): Promise<CliResult>;
  osJson<T = any>(args: string[], site: number, env?: Record<string, string>): Promise<T>;
  /** `atoll site join` a new site, whose own nats-server becomes a leaf node of site `via`'s server. */
  join(name: string, via: number): Promise<ProcSite>;
  /** Cuts every inter-site link of site i (its nats-server's routes). */
  isolate(i: number): void;
  heal(): void;
  setLatency(ms: number): void;
  kill(i: number): Promise<void>;
  /** Bytes that crossed the inter-site links (the WAN proxies) so far. */
  linkBytes(): number;
  restart(i: number): Promise<void>;
  /** Every site's /healthz log head and every other site's cursor for it, over HTTP. */
  converged(ms?: number): Promise<void>;
  token(i: number): Promise<string>;
  /** Waits until `user` can `openstack token issue` at every site; returns the user id each site saw. */
  loginEverywhere(
    user: { username: string; password: string; project: string },
    ms?: number,
  ): Promise<string[]>;
  stop(): Promise<void>;
}

/** A loopback address where nothing listens (the discard port), advertised instead of real route addresses. */
const UNROUTABLE = '127.0.0.1:9';

/** site-a … site-z: enough names for the 20-site soak (bench/soak.ts). */
const NAMES = Array.from({ length: 26 }, (_, i) => `site-${String.fromCharCode(97 + i)}`);

export async function startProcessFederation(
  n: number,
  opts: ProcFederationOptions = {},
): Promise<ProcFederation> {
  const dir = mkdtempSync(join(tmpdir(), 'atoll-proc-'));
  const ports = await freePorts(n * 5 + n * n + 4);
  const take = () => ports.pop()!;
  const natsPorts = Array.from({ length: n }, take);
  const clusterPorts = Array.from({ length: n }, take);
  const monitorPorts = Array.from({ length: n }, take);
  const httpPorts = Array.from({ length: n }, take);
  const leafPorts = Array.from({ length: n }, take);
  const proxies: { from: number; to: number; proxy: WanProxy }[] = [];
  const natsProcs: ChildProcess[] = [];
  const sites: ProcSite[] = [];

  for (let i = 0; i < n; i++)
    for (let j = 0; j < n; j++)
      if (i !== j)
        proxies.push({
          from: i,
          to: j,
          proxy: await WanProxy.start({
            listenPort: take(),
            targetHost: '127.0.0.1',
            targetPort: clusterPorts[j]!,
            latencyMs: opts.latencyMs ?? 0,
          }),
        });

  const secret = () => randomBytes(12).toString('hex');
  const siteNames = NAMES.slice(0, n);
  const passwords = siteNames.map(() => secret());
  const routePassword = secret();
  let pki: TestPki | undefined;
  if (opts.secure?.tls) {
    const pkiDir = join(dir, 'pki');
    mkdirSync(pkiDir);
    pki = makeTestPki(pkiDir, siteNames, siteNames);
  }
  for (let i = 0; i < n; i++) {
    const routes = proxies.filter((p) => p.from === i).map((p) => `nats://127.0.0.1:${p.proxy.port}`);
    const conf = join(dir, `nats-${i}.conf`);
    if (opts.secure) {
      const tls = pki && { ...pki.server(NAMES[i]!), ca: pki.ca, verify: true };
      writeFileSync(
        conf,
        natsServerConfig({
          serverName: NAMES[i]!,
          port: natsPorts[i]!,
          monitor: { port: monitorPorts[i]! },
          // Every site's user on every server, so that a site could fail over to another server.
          users: siteNames.map((site, j) => ({ site, password: passwords[j]! })),
          ...(tls ? { tls } : {}),
          cluster: {
            name: 'atoll',
            port: clusterPorts[i]!,
            routes: routes.map((r) => r.replace(/^nats:/, 'nats-route:')),
            user: 'route',
            password: routePassword,
            noAdvertise: true,
            advertise: UNROUTABLE,
            ...(tls ? { tls } : {}),
          },
        }),
      );
      natsProcs.push(spawn(NATS_BIN, ['-c', conf], { stdio: 'ignore' }));
      continue;
    }
    writeFileSync(
      conf,
      [
        `server_name: ${NAMES[i]}`,
        `listen: 127.0.0.1:${natsPorts[i]}`,
        `http: 127.0.0.1:${monitorPorts[i]}`,
        `leafnodes { listen: 127.0.0.1:${leafPorts[i]} }`,
        // Routes must go through the proxies: servers gossip each other's route address, and a server
        // that learned a direct one would bypass the proxy (and a partition). So the advertised route
        // address is one where nothing listens; only the explicit, proxied routes connect.
        `cluster { name: atoll, listen: 127.0.0.1:${clusterPorts[i]}, advertise: "${UNROUTABLE}", no_advertise: true, connect_retries: -1, routes: [${routes.join(', ')}] }`,
      ].join('\n'),
    );
    natsProcs.push(spawn(NATS_BIN, ['-c', conf], { stdio: 'ignore' }));
  }
  await eventually(
    async () => {
      for (let i = 0; i < n; i++) {
        const r = await fetch(`http://127.0.0.1:${monitorPorts[i]}/routez`).catch(() => undefined);
        if (!r || ((await r.json()) as { num_routes: number }).num_routes < n - 1) return false;
      }
      return true;
    },
    15_000,
    'nats routes',
  );

  const startSite = async (i: number) => {
    const s = sites[i]!;
    const args = [
      join(ROOT, 'bin', 'atoll'),
      'site',
      ...(s.joinVia
        ? ['join', s.joinVia, '--nats-port', String(s.natsPort)]
        : ['--nats', `nats://127.0.0.1:${s.natsPort}`]),
      '--name',
      s.name,
      '--port',
      String(s.port),
      '--data-dir',
      join(dir, s.name),
      '--nats',
      `nats://127.0.0.1:${s.natsPort}`,
      '--log-level',
      'warn',
      '--heartbeat-ms',
      String(opts.heartbeatMs ?? 300),
      ...(i === 0 ? ['--bootstrap', '--admin-password', ADMIN.adminPassword] : []),
      ...(opts.siteArgs?.(i, dir) ?? []),
      ...(s.nats ? ['--nats-user', s.nats.user] : []),
      ...(s.nats?.tls
        ? [
            '--nats-tls-ca',
            s.nats.tls.ca,
            '--nats-tls-cert',
            s.nats.tls.cert,
            '--nats-tls-key',
            s.nats.tls.key,
          ]
        : []),
    ];
    const proc = spawn('sh', args, {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: {
        ...process.env,
        ATOLL_PASSWORD_HASH_COST: '10',
        ...(s.nats ? { ATOLL_NATS_PASSWORD: s.nats.password } : {}),
      },
    });
    s.proc = proc;
    s.output = '';
    proc.stdout!.on('data', (d: Buffer) => (s.output += d.toString()));
    proc.stderr!.on('data', (d: Buffer) => (s.output += d.toString()));
    await eventually(
      () => /listening on/.test(s.output) || proc.exitCode !== null,
      30_000,
      `${s.name} to start`,
    );
    if (proc.exitCode !== null) throw new Error(`${s.name} exited: ${s.output}`);
    await eventually(
      async () => (await fetch(`${s.url}/healthz`).catch(() => undefined))?.ok,
      10_000,
      `${s.name} health`,
    );
  };

  for (let i = 0; i < n; i++) {
    sites.push({
      name: NAMES[i]!,
      port: httpPorts[i]!,
      natsPort: natsPorts[i]!,
      url: `http://127.0.0.1:${httpPorts[i]}`,
      proc: undefined,
      output: '',
      ...(opts.secure
        ? {
            nats: {
              user: NAMES[i]!,
              password: passwords[i]!,
              ...(pki ? { tls: { ca: pki.ca, ...pki.client(NAMES[i]!) } } : {}),
            },
          }
        : {}),
    });
  }
  for (let i = 0; i < n; i++) await startSite(i);

  const env = (
    i: number,
    user = { username: ADMIN.adminUser, password: ADMIN.adminPassword, project: ADMIN.adminProject },
  ) => ({
    PATH: process.env.PATH ?? '/usr/bin:/bin',
    HOME: process.env.HOME ?? '/tmp',
    OS_AUTH_URL: `${sites[i]!.url}/identity/v3`,
    OS_IDENTITY_API_VERSION: '3',
    OS_USERNAME: user.username,
    OS_PASSWORD: user.password,
    OS_PROJECT_NAME: user.project,
    OS_USER_DOMAIN_NAME: 'Default',
    OS_PROJECT_DOMAIN_NAME: 'Default',
    OS_REGION_NAME: sites[i]!.name,
    OS_INTERFACE: 'public',
  });

  const fed: ProcFederation = {
    sites,
    dir,
    ...(pki ? { pki } : {}),
    monitorUrl: (i) => `http://127.0.0.1:${monitorPorts[i]}`,
    env,
    os: (args, i, e) => runOpenstack(args, e ?? env(i)),
    async osJson(args, i, e) {
      const r = await runOpenstack([...args, '-f', 'json'], e ?? env(i));
      if (r.code !== 0)
        throw new Error(`openstack ${args.join(' ')} at ${sites[i]!.name} failed (${r.code}): ${r.stderr}`);
      return r.stdout.trim() ? JSON.parse(r.stdout) : undefined;
    },
    async join(name, via) {
      if (opts.secure) throw new Error('join (leaf nodes) is not offered by a secure process federation');
      const [port, natsPort] = [take(), take()];
      const s: ProcSite = {
        name,
        port,
        natsPort,
        url: `http://127.0.0.1:${port}`,
        proc: undefined,
        output: '',
        joinVia: `nats-leaf://127.0.0.1:${leafPorts[via]}`,
      };
      sites.push(s);
      await startSite(sites.length - 1);
      return s;
    },
    isolate(i) {
      for (const p of proxies) if (p.from === i || p.to === i) p.proxy.partition();
    },
    heal() {
      for (const p of proxies) p.proxy.heal();
    },
    setLatency(ms) {
      for (const p of proxies) p.proxy.setLatency(ms);
    },
    async kill(i) {
      const p = sites[i]!.proc;
      if (!p || p.exitCode !== null) return;
      const exited = new Promise((r) => p.once('exit', r));
      // `sh bin/atoll` execs node, so this is the site process itself.
      p.kill('SIGKILL');
      await exited;
    },
    linkBytes: () => proxies.reduce((n, p) => n + p.proxy.stats.bytes, 0),
    restart: (i) => startSite(i),
    token: (i) => passwordToken(sites[i]!.url),
    async loginEverywhere(user, ms = 15_000) {
      const ids: string[] = [];
      for (let i = 0; i < sites.length; i++) {
        const t = await eventually(
          async () => {
            const r = await runOpenstack(['token', 'issue', '-f', 'json'], env(i, user));
            return r.code === 0 ? (JSON.parse(r.stdout) as { user_id: string }) : undefined;
          },
          ms,
          `${user.username} login at ${sites[i]!.name}`,
        );
        ids.push(t.user_id);
      }
      return ids;
    },
    async converged(ms = 20_000) {
      await eventually(
        async () => {
          const tok = await fed.token(0);
          const views = await Promise.all(
            sites.map(async (s) => {
              const r = await fetch(`${s.url}/atoll/v1/sites`, { headers: { 'x-auth-token': tok } });
              return (
                (await r.json()) as {
                  sites: { name: string; log_head: number | null; applied: number; state: string }[];
                }
              ).sites;
            }),
          );
          const heads = new Map(
            views.map((v, i) => [sites[i]!.name, v.find((x) => x.state === 'self')!.log_head!]),
          );
          return views.every((v) => v.every((x) => x.applied >= heads.get(x.name)!));
        },
        ms,
        'sites to converge',
      );
    },
    async stop() {
      await Promise.all(sites.map((_, i) => fed.kill(i)));
      for (const p of natsProcs) p.kill('SIGKILL');
      await Promise.all(proxies.map((p) => p.proxy.close()));
      rmSync(dir, { recursive: true, force: true });
    },
  };
  return fed;
}
