/**
 * @module `atoll site --nats managed` and `atoll site join` (issue 13, item 8), on real processes: each
 * site runs and supervises its own nats-server from the generated least-privilege config. The founder
 * accepts leaf nodes over TLS; an invite carries the leaf URL, credentials and CA, so `atoll site join
 * --invite TOKEN` needs nothing else. A killed nats-server is restarted (logged once); a site killed
 * with -9 takes its nats-server with it; a server left running by an earlier run (its pid file in the
 * data directory) is stopped at the next start; a restarted joined site links the same way again.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { NATS_SERVER_BIN, freePorts, makeTestPki } from './support/nats.ts';
import type { TestPki } from './support/nats.ts';
import { ADMIN, eventually, passwordToken } from './support/cloud.ts';

const ROOT = join(import.meta.dirname, '..');
const ATOLL = join(ROOT, 'bin', 'atoll');
const ENV = { ...process.env, ATOLL_PASSWORD_HASH_COST: '10', ATOLL_NATS_ROUTE_PASSWORD: 'route-secret-1' };

interface Proc {
  proc: ChildProcess;
  out: () => string;
  exited: Promise<number>;
}
const procs: ChildProcess[] = [];

function run(args: string[]): Proc {
  const proc = spawn('sh', [ATOLL, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: ENV });
  procs.push(proc);
  let out = '';
  proc.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  proc.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<number>((r) => proc.once('exit', (c) => r(c ?? -1)));
  return { proc, out: () => out, exited };
}

function cli(args: string[], url: string): Promise<{ code: number; stdout: string; stderr: string }> {
  const env = {
    ...ENV,
    OS_AUTH_URL: `${url}/identity/v3`,
    OS_USERNAME: ADMIN.adminUser,
    OS_PASSWORD: ADMIN.adminPassword,
    OS_PROJECT_NAME: ADMIN.adminProject,
  };
  return new Promise((resolve) =>
    execFile('sh', [ATOLL, ...args], { env, timeout: 60_000 }, (err, stdout, stderr) =>
      resolve({ code: err ? 1 : 0, stdout, stderr }),
    ),
  );
}

const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};
const pidIn = (dir: string) => Number(readFileSync(join(dir, 'nats-server.pid'), 'utf8').trim());

async function stateAt(url: string, name: string): Promise<string | undefined> {
  const tok = await passwordToken(url);
  const r = await fetch(`${url}/atoll/v1/sites`, { headers: { 'x-auth-token': tok } });
  return ((await r.json()) as { sites: { name: string; state: string }[] }).sites.find((s) => s.name === name)
    ?.state;
}

describe('a site that runs its own nats-server', () => {
  let tmp: string;
  let a: Proc;
  let aUrl: string;
  let bUrl: string;
  let bArgs: string[];
  let pki: TestPki;
  let aCluster: number;
  const bDir = () => join(tmp, 'b');
  before(async () => {
    tmp = mkdtempSync(join(tmpdir(), 'atoll-managed-'));
    const pkiDir = join(tmp, 'pki');
    mkdirSync(pkiDir);
    pki = makeTestPki(pkiDir, ['site-a', 'site-r'], []);
    const [aHttp, aNats, aLeaf, cl, bHttp, bNats] = await freePorts(6);
    aCluster = cl!;
    aUrl = `http://127.0.0.1:${aHttp}`;
    bUrl = `http://127.0.0.1:${bHttp}`;
    const srv = pki.server('site-a');
    a = run([
      'site',
      '--name',
      'site-a',
      '--bootstrap',
      '--admin-password',
      ADMIN.adminPassword,
      '--port',
      String(aHttp),
      '--data-dir',
      join(tmp, 'a'),
      '--nats',
      'managed',
      '--nats-port',
      String(aNats),
      '--nats-leaf',
      `127.0.0.1:${aLeaf}`,
      '--nats-cluster',
      `127.0.0.1:${aCluster}`,
      '--nats-tls-cert',
      srv.cert,
      '--nats-tls-key',
      srv.key,
      '--nats-tls-ca',
      pki.ca,
      '--heartbeat-ms',
      '300',
      '--log-level',
      'warn',
    ]);
    await eventually(() => /listening on/.test(a.out()), 30_000, `site-a to start: ${a.out()}`);
    bArgs = ['--name', 'site-b', '--port', String(bHttp), '--data-dir', bDir(), '--nats-port', String(bNats)];
    bArgs.push('--heartbeat-ms', '300', '--log-level', 'warn');
  });
  after(async () => {
    for (const p of procs) if (p.exitCode === null) p.kill('SIGTERM');
    await new Promise((r) => setTimeout(r, 1500));
    for (const p of procs) if (p.exitCode === null) p.kill('SIGKILL');
    if (tmp) rmSync(tmp, { recursive: true, force: true });
  });

  let b: Proc;
  it('joins with nothing but an invite: leaf link over TLS with the credentials it carries', async () => {
    const conf = readFileSync(join(tmp, 'a', 'nats-server.conf'), 'utf8');
    assert.match(conf, /leafnodes \{[\s\S]*authorization \{ user: "leaf"[\s\S]*tls \{/);
    assert.match(conf, /permissions: \{\s*publish: \{ allow: \["atoll\.site-a\.>"/);
    const inv = await cli(['site', 'invite', '--name', 'site-b'], aUrl);
    assert.equal(inv.code, 0, inv.stderr);
    const token = (JSON.parse(inv.stdout) as { invite: { token: string } }).invite.token;
    b = run(['site', 'join', '--invite', token, ...bArgs]);
    await eventually(async () => (await stateAt(aUrl, 'site-b')) === 'up', 30_000, `site-b up: ${b.out()}`);
    const bConf = readFileSync(join(bDir(), 'nats-server.conf'), 'utf8');
    assert.match(
      bConf,
      /remotes: \[\s*\{\s*url: "nats-leaf:\/\/leaf:[^@]+@127\.0\.0\.1:\d+"\s*tls \{\s*ca_file/,
    );
    // A user made at site-a logs in at site-b.
    const tok = await passwordToken(aUrl);
    const r = await fetch(`${aUrl}/identity/v3/users`, {
      method: 'POST',
      headers: { 'x-auth-token': tok, 'content-type': 'application/json' },
      body: JSON.stringify({ user: { name: 'leafy', password: 'leafy-pw-1', domain_id: 'default' } }),
    });
    assert.equal(r.status, 201, await r.text());
    await eventually(
      async () =>
        (
          await fetch(`${bUrl}/identity/v3/auth/tokens`, {
            method: 'POST',
            headers: { 'content-type': 'application/json' },
            body: JSON.stringify({
              auth: {
                identity: {
                  methods: ['password'],
                  password: { user: { name: 'leafy', domain: { id: 'default' }, password: 'leafy-pw-1' } },
                },
              },
            }),
          })
        ).status === 201,
      15_000,
      'leafy to log in at site-b',
    );
  });

  it('restarts a nats-server that dies, and says so once', async () => {
    const first = pidIn(bDir());
    process.kill(first, 'SIGKILL');
    await eventually(() => /nats-server is running again/.test(b.out()), 15_000, `restart: ${b.out()}`);
    assert.equal(b.out().match(/nats-server exited/g)?.length, 1);
    assert.notEqual(pidIn(bDir()), first);
    await eventually(async () => (await stateAt(aUrl, 'site-b')) === 'up', 15_000, 'site-b up again');
  });

  it('a site killed with -9 takes its nats-server along; a restart links the same way, without the invite', async () => {
    const nats = pidIn(bDir());
    b.proc.kill('SIGKILL');
    await b.exited;
    await eventually(() => !alive(nats), 10_000, 'the nats-server of a killed site to die');
    b = run(['site', 'join', ...bArgs]);
    await eventually(async () => (await stateAt(aUrl, 'site-b')) === 'up', 30_000, `site-b back: ${b.out()}`);
  });

  it('a nats-server an earlier run left behind (pid file) is stopped at start', async () => {
    b.proc.kill('SIGKILL');
    await b.exited;
    await eventually(() => !alive(pidIn(bDir())), 10_000, 'nats-server gone');
    // An orphan, as a site started without setpriv would leave: the same config, outside any site.
    const orphan = spawn(NATS_SERVER_BIN, ['-c', join(bDir(), 'nats-server.conf')], { stdio: 'ignore' });
    procs.push(orphan);
    await eventually(() => alive(orphan.pid!) && pidIn(bDir()) === orphan.pid, 10_000, 'orphan pid file');
    b = run(['site', 'join', ...bArgs]);
    await eventually(() => /listening on/.test(b.out()) || b.proc.exitCode !== null, 30_000, 'site-b');
    assert.match(b.out(), new RegExp(`stopping the nats-server \\(pid ${orphan.pid}\\) a previous run`));
    assert.ok(!alive(orphan.pid!) || orphan.exitCode !== null || orphan.signalCode !== null);
    await eventually(async () => (await stateAt(aUrl, 'site-b')) === 'up', 30_000, 'site-b up');
  });

  it('a second site on the same data directory is refused and stops nothing', async () => {
    const nats = pidIn(bDir());
    const twin = run(['site', 'join', ...bArgs.map((x, i) => (bArgs[i - 1] === '--port' ? '0' : x))]);
    assert.equal(await twin.exited, 1);
    assert.match(twin.out(), /another atoll site \(pid \d+\) runs on the data directory/);
    assert.ok(alive(nats));
    assert.equal(await stateAt(aUrl, 'site-b'), 'up');
  });

  it('a site routed to another over mutual TLS (--nats-cluster, --nats-routes) is up at both', async () => {
    const [rHttp, rNats, rCluster] = await freePorts(3);
    const c = pki.server('site-r');
    const r = run([
      'site',
      '--name',
      'site-r',
      '--port',
      String(rHttp),
      '--data-dir',
      join(tmp, 'r'),
      '--nats',
      'managed',
      '--nats-port',
      String(rNats),
      '--nats-cluster',
      `127.0.0.1:${rCluster}`,
      '--nats-routes',
      `nats-route://127.0.0.1:${aCluster}`,
      '--nats-tls-cert',
      c.cert,
      '--nats-tls-key',
      c.key,
      '--nats-tls-ca',
      pki.ca,
      '--heartbeat-ms',
      '300',
      '--log-level',
      'warn',
    ]);
    await eventually(async () => (await stateAt(aUrl, 'site-r')) === 'up', 30_000, `site-r up: ${r.out()}`);
    const conf = readFileSync(join(tmp, 'r', 'nats-server.conf'), 'utf8');
    assert.match(
      conf,
      /cluster \{[\s\S]*routes: \["nats-route:\/\/route:[^@]+@127\.0\.0\.1:\d+"\][\s\S]*verify: true/,
    );
    assert.equal(await stateAt(`http://127.0.0.1:${rHttp}`, 'site-a'), 'up');
  });
});
