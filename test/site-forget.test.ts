/**
 * @module `atoll site forget` and what `atoll sites` says (issue 13, items 5 and 7), on real `atoll site`
 * processes over real nats-servers: an old data directory started under a new name refuses to start and
 * leaves nothing behind; a site that went away is refused by forget while it is up or a member, and once
 * evicted (or after it left) forget removes it from `atoll sites`, the AZ list, the regions and every
 * token's catalog at every site; the states up, unreachable, evicted and left show as they are; while
 * a site is down, what it owns is listed and shown elsewhere marked `atoll:stale` (networks, subnets,
 * ports, volumes, snapshots, images), what others own is not.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { cpSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startProcessFederation } from './support/processes.ts';
import type { ProcFederation } from './support/processes.ts';
import { freePorts } from './support/nats.ts';
import { ADMIN, eventually, passwordToken } from './support/cloud.ts';

const ROOT = join(import.meta.dirname, '..');
const ATOLL = join(ROOT, 'bin', 'atoll');

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

/** `atoll ARGS` with the admin openrc of `url`. */
function atoll(args: string[], url: string): Promise<Run> {
  const env = {
    ...process.env,
    OS_AUTH_URL: `${url}/identity/v3`,
    OS_USERNAME: ADMIN.adminUser,
    OS_PASSWORD: ADMIN.adminPassword,
    OS_PROJECT_NAME: ADMIN.adminProject,
  };
  return new Promise((resolve) => {
    execFile('sh', [ATOLL, ...args], { env, timeout: 60_000 }, (err, stdout, stderr) =>
      resolve({ code: err ? Number((err as { code?: unknown }).code ?? 1) : 0, stdout, stderr }),
    );
  });
}

interface Extra {
  proc: ChildProcess;
  url: string;
  output: () => string;
  exited: Promise<number>;
}

/** One more `atoll site` process on site-a's nats-server (open trust, as the federation's sites). */
async function extraSite(fed: ProcFederation, name: string, dataDir: string): Promise<Extra> {
  const [port] = await freePorts(1);
  const proc = spawn(
    'sh',
    [
      ATOLL,
      'site',
      '--name',
      name,
      '--port',
      String(port),
      '--data-dir',
      dataDir,
      '--nats',
      `nats://127.0.0.1:${fed.sites[0]!.natsPort}`,
      '--heartbeat-ms',
      '300',
      '--log-level',
      'warn',
    ],
    { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ATOLL_PASSWORD_HASH_COST: '10' } },
  );
  extras.push(proc);
  let out = '';
  proc.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  proc.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<number>((r) => proc.once('exit', (c) => r(c ?? -1)));
  return { proc, url: `http://127.0.0.1:${port}`, output: () => out, exited };
}
const extras: ChildProcess[] = [];

async function sitesAt(url: string): Promise<{ name: string; state: string }[]> {
  const tok = await passwordToken(url);
  const r = await fetch(`${url}/atoll/v1/sites`, { headers: { 'x-auth-token': tok } });
  return ((await r.json()) as { sites: { name: string; state: string }[] }).sites;
}

async function stateAt(url: string, name: string): Promise<string | undefined> {
  return (await sitesAt(url)).find((s) => s.name === name)?.state;
}

/** What a user meets at `url` that could name `site`: the sites list, AZs, regions, a token's catalog. */
async function traces(url: string, site: string): Promise<string[]> {
  const found: string[] = [];
  if ((await sitesAt(url)).some((s) => s.name === site)) found.push('atoll sites');
  const res = await fetch(`${url}/identity/v3/auth/tokens`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({
      auth: {
        identity: {
          methods: ['password'],
          password: { user: { name: 'admin', domain: { id: 'default' }, password: ADMIN.adminPassword } },
        },
        scope: { project: { name: 'admin', domain: { id: 'default' } } },
      },
    }),
  });
  const tok = res.headers.get('x-subject-token')!;
  if ((await res.text()).includes(`"${site}"`)) found.push('token catalog');
  const h = { 'x-auth-token': tok };
  const zones = await (await fetch(`${url}/compute/v2.1/os-availability-zone`, { headers: h })).text();
  if (zones.includes(`"${site}"`)) found.push('availability zones');
  const regions = await (await fetch(`${url}/identity/v3/regions`, { headers: h })).text();
  if (regions.includes(`"${site}"`)) found.push('regions');
  return found;
}

describe('atoll site forget, and the states atoll sites shows', () => {
  let fed: ProcFederation;
  let tmp: string;
  before(async () => {
    fed = await startProcessFederation(3, { heartbeatMs: 300 });
    tmp = mkdtempSync(join(tmpdir(), 'atoll-forget-'));
  });
  after(async () => {
    for (const p of extras) if (p.exitCode === null) p.kill('SIGKILL');
    await fed?.stop();
    if (tmp) rmSync(tmp, { recursive: true, force: true });
  });

  it('an old data directory started under a new name refuses to start and leaves no ghost', async () => {
    await fed.kill(2);
    const copy = join(tmp, 'old-site-c');
    cpSync(join(fed.dir, 'site-c'), copy, { recursive: true });
    await fed.restart(2);
    const x = await extraSite(fed, 'site-x', copy);
    const code = await x.exited;
    assert.equal(code, 1, x.output());
    assert.match(x.output(), /belongs to site site-c, not site-x/);
    // Heartbeats every 300 ms would have carried a registry row by now.
    await new Promise((r) => setTimeout(r, 1500));
    for (const s of fed.sites) assert.deepEqual(await traces(s.url, 'site-x'), [], `at ${s.name}`);
  });

  it('forget is refused for a site that is up, and for an unreachable member; after evict it removes it everywhere', async () => {
    const a = fed.sites[0]!.url;
    const b = fed.sites[1]!.url;
    const g = await extraSite(fed, 'site-g', join(tmp, 'site-g'));
    await eventually(async () => (await stateAt(a, 'site-g')) === 'up', 30_000, 'site-g up at site-a');
    const up = await atoll(['site', 'forget', 'site-g'], b);
    assert.notEqual(up.code, 0);
    assert.match(up.stderr, /409.*site-g is up/);

    g.proc.kill('SIGKILL');
    await g.exited;
    await eventually(
      async () => (await stateAt(a, 'site-g')) === 'unreachable',
      15_000,
      'site-g unreachable at site-a',
    );
    const cli = await atoll(['sites'], a);
    assert.match(cli.stdout, /site-g\s+unreachable/);
    const member = await atoll(['site', 'forget', 'site-g'], b);
    assert.match(member.stderr, /409.*evict it first/);
    assert.ok((await traces(a, 'site-g')).includes('atoll sites'));

    const ev = await atoll(['site', 'evict', 'site-g', '--reason', 'host gone'], b);
    assert.equal(ev.code, 0, ev.stderr);
    await eventually(async () => (await stateAt(b, 'site-g')) === 'evicted', 15_000, 'evicted at site-b');
    assert.match((await atoll(['sites'], b)).stdout, /site-g\s+evicted/);

    // From site-b: forwarded to the membership authority (site-a, the founder).
    const fg = await atoll(['site', 'forget', 'site-g', '--reason', 'gone for good'], b);
    assert.equal(fg.code, 0, fg.stderr);
    assert.match(fg.stdout, /"state":"forgotten","by":"site-a"/);
    for (const s of fed.sites)
      await eventually(async () => (await traces(s.url, 'site-g')).length === 0, 15_000, `gone at ${s.name}`);
    assert.doesNotMatch((await atoll(['sites'], fed.sites[2]!.url)).stdout, /site-g/);
    // Forgetting twice is harmless; an unknown name is a 404; the authority cannot be forgotten.
    assert.equal((await atoll(['site', 'forget', 'site-g'], a)).code, 0);
    assert.match((await atoll(['site', 'forget', 'site-nope'], a)).stderr, /404/);
    assert.match((await atoll(['site', 'forget', 'site-a'], b)).stderr, /400.*authority/);
  });

  it('a site that left shows as left and can be forgotten', async () => {
    const a = fed.sites[0]!.url;
    const l = await extraSite(fed, 'site-l', join(tmp, 'site-l'));
    await eventually(async () => (await stateAt(a, 'site-l')) === 'up', 30_000, 'site-l up at site-a');
    await eventually(() => /listening on/.test(l.output()), 10_000, 'site-l listening');
    const lUrl = /listening on (\S+)/.exec(l.output())![1]!;
    const leave = await atoll(['site', 'leave'], lUrl);
    assert.equal(leave.code, 0, leave.stderr);
    assert.equal(await l.exited, 0, l.output());
    await eventually(async () => (await stateAt(a, 'site-l')) === 'left', 15_000, 'site-l left at site-a');
    assert.match((await atoll(['sites'], a)).stdout, /site-l\s+left/);
    const fg = await atoll(['site', 'forget', 'site-l'], a);
    assert.equal(fg.code, 0, fg.stderr);
    for (const s of fed.sites)
      await eventually(async () => (await traces(s.url, 'site-l')).length === 0, 15_000, `gone at ${s.name}`);
  });

  it('while a site is down, what it owns is marked stale in lists and shows everywhere else', async () => {
    const a = fed.sites[0]!.url;
    const c = fed.sites[2]!.url;
    const tc = await passwordToken(c);
    const v = await fetch(`${c}/identity/v3/auth/tokens?nocatalog`, {
      headers: { 'x-auth-token': tc, 'x-subject-token': tc },
    });
    const project = ((await v.json()) as { token: { project: { id: string } } }).token.project.id;
    const post = async (url: string, path: string, body: unknown, tok: string) => {
      const r = await fetch(`${url}${path}`, {
        method: 'POST',
        headers: { 'x-auth-token': tok, 'content-type': 'application/json' },
        body: JSON.stringify(body),
      });
      assert.ok(r.status < 300, `${path}: ${r.status} ${await r.clone().text()}`);
      return (await r.json()) as Record<string, { id: string }>;
    };
    const net = (await post(c, '/network/v2.0/networks', { network: { name: 'c-net' } }, tc)).network!.id;
    const sub = (
      await post(
        c,
        '/network/v2.0/subnets',
        { subnet: { network_id: net, cidr: '10.9.0.0/24', ip_version: 4 } },
        tc,
      )
    ).subnet!.id;
    const port = (await post(c, '/network/v2.0/ports', { port: { network_id: net } }, tc)).port!.id;
    const vol = (await post(c, `/volume/v3/${project}/volumes`, { volume: { size: 1, name: 'c-vol' } }, tc))
      .volume!.id;
    const img = (
      await post(c, '/image/v2/images', { name: 'c-img', disk_format: 'raw', container_format: 'bare' }, tc)
    ).id as unknown as string;
    const ta = await passwordToken(a);
    const aNet = (await post(a, '/network/v2.0/networks', { network: { name: 'a-net' } }, ta)).network!.id;
    await fed.converged();

    await fed.kill(2);
    await eventually(async () => (await stateAt(a, 'site-c')) === 'unreachable', 15_000, 'site-c down');
    const get = async (path: string) =>
      (await (await fetch(`${a}${path}`, { headers: { 'x-auth-token': ta } })).json()) as Record<string, any>;
    const marked = (o: Record<string, unknown> | undefined) =>
      o?.['atoll:stale'] === true && typeof o['atoll:stale_seconds'] === 'number';
    const nets = (await get('/network/v2.0/networks')).networks as Record<string, unknown>[];
    assert.ok(marked(nets.find((n) => n.id === net)), 'network of site-c marked');
    assert.equal(
      nets.find((n) => n.id === aNet)?.['atoll:stale'],
      undefined,
      "site-a's own network unmarked",
    );
    assert.ok(marked((await get(`/network/v2.0/networks/${net}`)).network), 'network show');
    assert.ok(marked((await get(`/network/v2.0/subnets/${sub}`)).subnet), 'subnet');
    const ports = (await get('/network/v2.0/ports')).ports as Record<string, unknown>[];
    assert.ok(marked(ports.find((p) => p.id === port)), 'port in list');
    const vols = (await get(`/volume/v3/${project}/volumes/detail`)).volumes as Record<string, unknown>[];
    assert.ok(marked(vols.find((x) => x.id === vol)), 'volume in list');
    assert.ok(marked((await get(`/volume/v3/${project}/volumes/${vol}`)).volume), 'volume show');
    const imgs = (await get('/image/v2/images')).images as Record<string, unknown>[];
    assert.ok(marked(imgs.find((x) => x.id === img)), 'image in list');
    assert.ok(marked(await get(`/image/v2/images/${img}`)), 'image show');
    await fed.restart(2);
    await eventually(async () => (await stateAt(a, 'site-c')) === 'up', 15_000, 'site-c up again');
    const after = (await get(`/network/v2.0/networks/${net}`)).network as Record<string, unknown>;
    assert.equal(after['atoll:stale'], undefined, 'unmarked once its owner is back');
  });

  it('a killed site shows unreachable, then up', async () => {
    const a = fed.sites[0]!.url;
    await fed.kill(2);
    await eventually(async () => (await stateAt(a, 'site-c')) === 'unreachable', 15_000, 'site-c down');
    await fed.restart(2);
    await eventually(async () => (await stateAt(a, 'site-c')) === 'up', 15_000, 'site-c up again');
    assert.match((await atoll(['sites'], a)).stdout, /site-c\s+up/);
  });
});
