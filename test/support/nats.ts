/**
 * @module Real `nats-server` processes for tests: one server per site on free ports, linked as a full-mesh
 * cluster (routes), each with its own temp dir, optionally with username/password users. Never touches the
 * machine's own service on 4222. Callers must `stop()` in an `after()` hook; an exit hook SIGKILLs any server
 * still running if the test process dies first.
 *
 * With `secure`, the servers run the configuration a deployment would (src/fabric/nats/server-config.ts):
 * one user per site with that site's least privilege, authenticated routes and, with `tls`, mutual TLS for
 * clients and routes with certificates made here by the `openssl` CLI (makeTestPki).
 */
import { execFileSync, spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, openSync, closeSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import type { Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { nkeys } from 'nats';
import { natsServerConfig } from '../../src/fabric/nats/server-config.ts';
import type { NatsTlsFiles } from '../../src/fabric/nats/server-config.ts';

export const NATS_SERVER_BIN = process.env.NATS_SERVER_BIN ?? '/usr/sbin/nats-server';

export interface NatsUser {
  user: string;
  pass: string;
}

export interface NatsClusterOptions {
  /** Client users accepted by every server (any site may fail over to any server). No auth when absent. */
  users?: NatsUser[];
  /** How long to wait for each server to be ready and routed, ms. */
  readyTimeoutMs?: number;
  /** Cluster name (the `cluster { name }` block). */
  name?: string;
  /** Max payload per message, bytes (nats-server's default is 1 MiB). */
  maxPayload?: number;
  /** Run the deployment configuration: a user per site (least privilege), route credentials and, with
   * `tls`, mutual TLS on client connections and routes. `users` is ignored then. */
  secure?: { sites: string[]; tls?: boolean; nkeySites?: string[] };
}

/** What a site passes to NatsFabric.connect to log in to a secure cluster. */
export interface NatsSiteCredentials {
  user?: string;
  pass?: string;
  /** For a site whose server user is an nkey (`secure.nkeySites`). */
  nkeySeed?: string;
  tls?: { caFile: string; certFile: string; keyFile: string };
}

export interface TestPki {
  dir: string;
  ca: string;
  /** Certificate and key of a server (SAN 127.0.0.1 and localhost; usable for routes both ways). */
  server(name: string): { cert: string; key: string };
  /** A client certificate for a site (CN = site). */
  client(site: string): { cert: string; key: string };
}

/** A throwaway CA and certificates, made with the openssl CLI (P-256 keys, valid for two days). */
export function makeTestPki(dir: string, servers: string[], clients: string[]): TestPki {
  const ossl = (args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: 'pipe' });
  const ca = join(dir, 'ca.pem');
  const caKey = join(dir, 'ca-key.pem');
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  ossl([
    'req',
    '-x509',
    ...ec,
    '-keyout',
    caKey,
    '-out',
    ca,
    '-days',
    '2',
    '-subj',
    '/CN=atoll-test-ca',
    '-addext',
    'basicConstraints=critical,CA:TRUE',
    '-addext',
    'keyUsage=critical,keyCertSign,cRLSign',
  ]);
  const issue = (name: string, ext: string) => {
    const key = join(dir, `${name}-key.pem`);
    const cert = join(dir, `${name}.pem`);
    const csr = join(dir, `${name}.csr`);
    const extFile = join(dir, `${name}.ext`);
    writeFileSync(extFile, ext);
    ossl(['req', ...ec, '-keyout', key, '-out', csr, '-subj', `/CN=${name}`]);
    ossl([
      'x509',
      '-req',
      '-in',
      csr,
      '-CA',
      ca,
      '-CAkey',
      caKey,
      '-CAcreateserial',
      '-out',
      cert,
      '-days',
      '2',
      '-extfile',
      extFile,
    ]);
    return { cert, key };
  };
  const issued = new Map<string, { cert: string; key: string }>();
  for (const s of servers)
    issued.set(
      `server:${s}`,
      issue(
        `server-${s}`,
        'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth,clientAuth\nkeyUsage=digitalSignature\n',
      ),
    );
  for (const c of clients)
    issued.set(
      `client:${c}`,
      issue(`client-${c}`, 'extendedKeyUsage=clientAuth\nkeyUsage=digitalSignature\n'),
    );
  const get = (k: string) => {
    const v = issued.get(k);
    if (!v) throw new Error(`no certificate for ${k}`);
    return v;
  };
  return { dir, ca, server: (n) => get(`server:${n}`), client: (c) => get(`client:${c}`) };
}

/** Users, route credentials and certificates of a secure test cluster. */
interface Security {
  passwords: Map<string, string>;
  /** Site -> [public key, seed] for nkey users. */
  nkeys: Map<string, [string, string]>;
  routeUser: string;
  routePassword: string;
  pki: TestPki | undefined;
}

export interface NatsServerHandle {
  readonly index: number;
  readonly name: string;
  readonly url: string;
  readonly port: number;
  readonly clusterPort: number;
  readonly monitorPort: number;
  readonly dir: string;
  /** The running process, undefined while killed. */
  readonly proc: ChildProcess | undefined;
  /** Tail of the server's log, for failure messages. */
  log(): string;
}

export interface NatsCluster {
  /** Client URL of each server, index = site index. */
  readonly urls: string[];
  readonly servers: NatsServerHandle[];
  /** SIGTERM every server, SIGKILL after a grace period, remove temp dirs. Idempotent. */
  stop(): Promise<void>;
  /** SIGKILL one server (a crash). Its ports are kept for restart(). */
  kill(i: number): Promise<void>;
  /** Starts server i again on the same ports and waits until it is routed to the running others. */
  restart(i: number): Promise<void>;
  /** For a `secure` cluster: how `site` logs in (user, password and, with TLS, its certificate). */
  credentials(site: string): NatsSiteCredentials;
  /** For a `secure` cluster with TLS: the certificates. */
  readonly pki: TestPki | undefined;
  /** Resolves once every server's routes carry exactly the interest its peers have locally, i.e. a
   * subscription made (and flushed) anywhere is now visible everywhere. Route interest propagates
   * asynchronously, so tests flush their clients and then call this instead of sleeping. */
  waitForInterest(timeoutMs?: number): Promise<void>;
}

/** A TCP port on 127.0.0.1 that was free a moment ago (the OS picked it). */
export async function freePort(): Promise<number> {
  const [p] = await freePorts(1);
  return p!;
}

/** `n` distinct free ports: all are held open together so the OS cannot hand out the same one twice. */
export async function freePorts(n: number): Promise<number[]> {
  const held: Server[] = [];
  try {
    const ports: number[] = [];
    for (let i = 0; i < n; i++) {
      const srv = createServer();
      held.push(srv);
      await new Promise<void>((resolve, reject) => {
        srv.once('error', reject);
        srv.listen(0, '127.0.0.1', () => resolve());
      });
      const addr = srv.address();
      if (!addr || typeof addr === 'string') throw new Error('no port from the OS');
      ports.push(addr.port);
    }
    return ports;
  } finally {
    await Promise.all(held.map((s) => new Promise<void>((r) => s.close(() => r()))));
  }
}

const live = new Set<ChildProcess>();
let exitHookInstalled = false;
function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  // Last resort if a test forgot stop() or the runner is killing us: never leave servers behind.
  const killAll = () => {
    for (const p of live) p.kill('SIGKILL');
  };
  process.on('exit', killAll);
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.once(sig, () => {
      killAll();
      process.kill(process.pid, sig); // the default action again: die by the same signal
    });
  }
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

async function getJson<T>(url: string): Promise<T | undefined> {
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(1000) });
    if (!res.ok) return undefined;
    return (await res.json()) as T;
  } catch {
    return undefined;
  }
}

interface Routez {
  routes?: { remote_id: string; subscriptions_list?: string[] }[] | null;
}
interface Varz {
  server_id: string;
}
interface Subsz {
  subscriptions_list?: { subject: string }[] | null;
}

const q = (s: string) => JSON.stringify(s);

class ServerProc implements NatsServerHandle {
  proc: ChildProcess | undefined;
  exited: Promise<void> = Promise.resolve();
  serverId = '';
  readonly url: string;
  readonly name: string;
  private readonly logPath: string;
  private readonly confPath: string;

  constructor(
    readonly index: number,
    readonly port: number,
    readonly clusterPort: number,
    readonly monitorPort: number,
    readonly dir: string,
    peers: number[],
    opts: NatsClusterOptions,
    security?: Security,
  ) {
    this.name = `atoll-test-${index}`;
    this.url = `nats://127.0.0.1:${port}`;
    this.logPath = join(dir, 'server.log');
    this.confPath = join(dir, 'server.conf');
    if (security) {
      writeFileSync(this.confPath, secureConfig(this, peers, opts, security));
      return;
    }
    const lines = [
      `server_name: ${q(this.name)}`,
      `listen: "127.0.0.1:${port}"`,
      `http: "127.0.0.1:${monitorPort}"`,
      `pid_file: ${q(join(dir, 'server.pid'))}`,
      ...(opts.maxPayload ? [`max_payload: ${opts.maxPayload}`] : []),
      'cluster {',
      `  name: ${q(opts.name ?? 'atoll-test')}`,
      `  listen: "127.0.0.1:${clusterPort}"`,
      `  routes: [${peers.map((p) => q(`nats-route://127.0.0.1:${p}`)).join(', ')}]`,
      '}',
    ];
    if (opts.users?.length) {
      lines.push('authorization {', '  users: [');
      for (const u of opts.users) lines.push(`    { user: ${q(u.user)}, password: ${q(u.pass)} }`);
      lines.push('  ]', '}');
    }
    writeFileSync(this.confPath, lines.join('\n') + '\n');
  }

  start(): void {
    installExitHook();
    const fd = openSync(this.logPath, 'a');
    const proc = spawn(NATS_SERVER_BIN, ['-c', this.confPath], { stdio: ['ignore', fd, fd] });
    closeSync(fd);
    live.add(proc);
    this.proc = proc;
    this.exited = new Promise<void>((resolve) => {
      proc.once('exit', () => {
        live.delete(proc);
        if (this.proc === proc) this.proc = undefined;
        resolve();
      });
      proc.once('error', () => {
        live.delete(proc);
        if (this.proc === proc) this.proc = undefined;
        resolve();
      });
    });
  }

  async stop(signal: NodeJS.Signals, graceMs: number): Promise<void> {
    const proc = this.proc;
    if (!proc) return;
    proc.kill(signal);
    const done = await Promise.race([this.exited.then(() => true), sleep(graceMs).then(() => false)]);
    if (!done) {
      proc.kill('SIGKILL');
      await this.exited;
    }
  }

  /** Waits for the monitor port to answer and records the server id. */
  async waitHealthy(deadline: number): Promise<void> {
    while (Date.now() < deadline) {
      if (!this.proc) throw new Error(`nats-server ${this.index} exited during start:\n${this.log()}`);
      const v = await getJson<Varz>(`http://127.0.0.1:${this.monitorPort}/varz`);
      if (v && (await getJson(`http://127.0.0.1:${this.monitorPort}/healthz`))) {
        this.serverId = v.server_id;
        return;
      }
      await sleep(25);
    }
    throw new Error(`nats-server ${this.index} not healthy in time:\n${this.log()}`);
  }

  async routes(): Promise<Routez> {
    return (await getJson<Routez>(`http://127.0.0.1:${this.monitorPort}/routez?subs=1`)) ?? {};
  }

  /** Subjects of this server's own clients in the global account (internal `$…` subjects left out). */
  async localSubjects(): Promise<Set<string> | undefined> {
    const s = await getJson<Subsz>(`http://127.0.0.1:${this.monitorPort}/subsz?acc=$G&subs=1&limit=100000`);
    if (!s) return undefined;
    return new Set((s.subscriptions_list ?? []).map((x) => x.subject).filter((x) => !x.startsWith('$')));
  }

  log(): string {
    try {
      return readFileSync(this.logPath, 'utf8').split('\n').slice(-30).join('\n');
    } catch {
      return '(no log)';
    }
  }
}

function secureConfig(s: ServerProc, peers: number[], opts: NatsClusterOptions, sec: Security): string {
  const tls = (verify: boolean): NatsTlsFiles | undefined => {
    if (!sec.pki) return undefined;
    const { cert, key } = sec.pki.server(s.name);
    return { cert, key, ca: sec.pki.ca, verify };
  };
  const clientTls = tls(true);
  const routeTls = tls(true);
  return natsServerConfig({
    serverName: s.name,
    port: s.port,
    monitor: { port: s.monitorPort },
    pidFile: join(s.dir, 'server.pid'),
    ...(opts.maxPayload ? { maxPayload: opts.maxPayload } : {}),
    users: [
      ...[...sec.passwords].map(([site, password]) => ({ site, password })),
      ...[...sec.nkeys].map(([site, [nkey]]) => ({ site, nkey })),
    ],
    ...(clientTls ? { tls: clientTls } : {}),
    cluster: {
      name: opts.name ?? 'atoll-test',
      port: s.clusterPort,
      routes: peers.map((p) => `nats-route://127.0.0.1:${p}`),
      user: sec.routeUser,
      password: sec.routePassword,
      ...(routeTls ? { tls: routeTls } : {}),
    },
  });
}

/** Starts `n` routed nats-servers and waits until the full mesh is up. */
export async function startNatsCluster(n: number, opts: NatsClusterOptions = {}): Promise<NatsCluster> {
  let lastError: unknown;
  // A free port can be taken by someone else between asking and binding; retry with new ports.
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      return await tryStart(n, opts);
    } catch (e) {
      lastError = e;
    }
  }
  throw lastError;
}

async function tryStart(n: number, opts: NatsClusterOptions): Promise<NatsCluster> {
  const readyMs = opts.readyTimeoutMs ?? 10_000;
  const ports = await freePorts(3 * n);
  const servers: ServerProc[] = [];
  const root = mkdtempSync(join(tmpdir(), 'atoll-nats-'));
  let security: Security | undefined;
  if (opts.secure) {
    const secret = () => randomBytes(12).toString('hex');
    const names = Array.from({ length: n }, (_, i) => `atoll-test-${i}`);
    const nkeySites = new Set(opts.secure.nkeySites ?? []);
    security = {
      passwords: new Map(opts.secure.sites.filter((s) => !nkeySites.has(s)).map((site) => [site, secret()])),
      nkeys: new Map(
        [...nkeySites].map((site) => {
          const kp = nkeys.createUser();
          return [site, [kp.getPublicKey(), new TextDecoder().decode(kp.getSeed())]];
        }),
      ),
      routeUser: 'route',
      routePassword: secret(),
      pki: opts.secure.tls
        ? makeTestPki(mkdtempSync(join(root, 'pki-')), names, opts.secure.sites)
        : undefined,
    };
  }
  for (let i = 0; i < n; i++) {
    const dir = mkdtempSync(join(root, `s${i}-`));
    const peers = Array.from({ length: n }, (_, j) => ports[3 * j + 1]!).filter((_, j) => j !== i);
    servers.push(
      new ServerProc(i, ports[3 * i]!, ports[3 * i + 1]!, ports[3 * i + 2]!, dir, peers, opts, security),
    );
  }

  let stopped = false;
  const stop = async () => {
    if (stopped) return;
    stopped = true;
    await Promise.all(servers.map((s) => s.stop('SIGTERM', 2000)));
    rmSync(root, { recursive: true, force: true });
  };

  const waitRouted = async (which: ServerProc[], deadline: number) => {
    for (const s of which) await s.waitHealthy(deadline);
    const running = servers.filter((s) => s.proc);
    for (;;) {
      const ok = await Promise.all(
        running.map(async (s) => {
          const ids = new Set((await s.routes()).routes?.map((r) => r.remote_id) ?? []);
          return running.every((o) => o === s || ids.has(o.serverId));
        }),
      );
      if (ok.every(Boolean)) return;
      if (Date.now() > deadline) throw new Error(`nats cluster routes not established in ${readyMs} ms`);
      await sleep(25);
    }
  };

  const waitForInterest = async (timeoutMs = 5000) => {
    const deadline = Date.now() + timeoutMs;
    const running = servers.filter((s) => s.proc);
    for (;;) {
      const local = new Map<string, Set<string>>();
      for (const s of running) {
        const subs = await s.localSubjects();
        if (subs) local.set(s.serverId, subs);
      }
      let converged = local.size === running.length;
      for (const s of converged ? running : []) {
        for (const r of (await s.routes()).routes ?? []) {
          const want = local.get(r.remote_id);
          if (!want) continue; // a route to a server that is gone
          const have = new Set((r.subscriptions_list ?? []).filter((x) => !x.startsWith('$')));
          if (have.size !== want.size || [...want].some((x) => !have.has(x))) converged = false;
        }
      }
      if (converged) return;
      if (Date.now() > deadline) throw new Error(`nats interest did not converge in ${timeoutMs} ms`);
      await sleep(10);
    }
  };

  try {
    for (const s of servers) s.start();
    await waitRouted(servers, Date.now() + readyMs);
  } catch (e) {
    await stop();
    throw e;
  }

  return {
    urls: servers.map((s) => s.url),
    servers,
    stop,
    pki: security?.pki,
    credentials(site) {
      const pass = security?.passwords.get(site);
      const nkey = security?.nkeys.get(site);
      if (!security || (pass === undefined && !nkey))
        throw new Error(`no credentials for ${site} (not a secure cluster site)`);
      const who = nkey ? { nkeySeed: nkey[1] } : { user: site, pass: pass! };
      const pki = security.pki;
      if (!pki) return who;
      const c = pki.client(site);
      return { ...who, tls: { caFile: pki.ca, certFile: c.cert, keyFile: c.key } };
    },
    async kill(i) {
      const s = servers[i];
      if (!s) throw new RangeError(`no server ${i}`);
      await s.stop('SIGKILL', 2000);
    },
    async restart(i) {
      const s = servers[i];
      if (!s) throw new RangeError(`no server ${i}`);
      await s.stop('SIGTERM', 2000);
      s.start();
      await waitRouted([s], Date.now() + readyMs);
    },
    waitForInterest,
  };
}
