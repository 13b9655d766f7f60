/**
 * @module N sites on N hosts (docs/operations.md, "Deploy"), with one network namespace per "host" on
 * this machine: each namespace has its own address on a private bridge and runs one `atoll site
 * --nats managed`, its nats-server supervised by the site. host-1 founds the cloud and accepts routes
 * and leaf nodes; host-2 is routed to it (--nats-cluster, --nats-routes); host-3 joins as a leaf node
 * with nothing but an invite. A user created at host-1 logs in at host-2 and host-3. Skipped unless
 * run as root with `ip netns` available.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ADMIN, eventually, passwordToken } from './support/cloud.ts';

const ROOT = join(import.meta.dirname, '..');
const ATOLL = join(ROOT, 'bin', 'atoll');
const tag = String(process.pid % 10000);
const BR = `atbr${tag}`;
const HOSTS = [1, 2, 3].map((i) => ({
  ns: `atoll-h${i}-${tag}`,
  ip: `10.213.${tag.length > 2 ? 7 : 8}.${10 + i}`,
}));
const GW = HOSTS[0]!.ip.replace(/\.\d+$/, '.1');

function canNetns(): string | undefined {
  if (process.getuid?.() !== 0) return 'needs root (network namespaces)';
  try {
    execFileSync('ip', ['netns', 'list'], { stdio: 'pipe' });
  } catch {
    return 'no `ip netns`';
  }
  return undefined;
}
const skip = canNetns();

const ip = (...args: string[]) => execFileSync('ip', args, { stdio: 'pipe' });

function network(): void {
  ip('link', 'add', BR, 'type', 'bridge');
  ip('addr', 'add', `${GW}/24`, 'dev', BR);
  ip('link', 'set', BR, 'up');
  HOSTS.forEach((h, i) => {
    const [outer, inner] = [`atv${tag}o${i}`, `atv${tag}i${i}`];
    ip('netns', 'add', h.ns);
    ip('link', 'add', outer, 'type', 'veth', 'peer', 'name', inner);
    ip('link', 'set', inner, 'netns', h.ns);
    ip('link', 'set', outer, 'master', BR);
    ip('link', 'set', outer, 'up');
    ip('-n', h.ns, 'addr', 'add', `${h.ip}/24`, 'dev', inner);
    ip('-n', h.ns, 'link', 'set', inner, 'up');
    ip('-n', h.ns, 'link', 'set', 'lo', 'up');
  });
}

function teardown(): void {
  for (const h of HOSTS)
    try {
      ip('netns', 'del', h.ns);
    } catch {
      // not made
    }
  try {
    ip('link', 'del', BR);
  } catch {
    // not made
  }
}

const procs: ChildProcess[] = [];
function onHost(i: number, args: string[]): { out: () => string; proc: ChildProcess } {
  const proc = spawn('ip', ['netns', 'exec', HOSTS[i]!.ns, 'sh', ATOLL, ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, ATOLL_PASSWORD_HASH_COST: '10', ATOLL_NATS_ROUTE_PASSWORD: 'netns-route-pw' },
  });
  procs.push(proc);
  let out = '';
  proc.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  proc.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  return { out: () => out, proc };
}

const url = (i: number) => `http://${HOSTS[i]!.ip}:5000`;
const common = (i: number, dir: string) => [
  '--name',
  `site-${i + 1}`,
  '--host',
  HOSTS[i]!.ip,
  '--port',
  '5000',
  '--data-dir',
  join(dir, `host-${i + 1}`),
  '--nats-port',
  '4222',
  '--heartbeat-ms',
  '300',
  '--log-level',
  'warn',
];

async function login(i: number, name: string, password: string): Promise<boolean> {
  const r = await fetch(`${url(i)}/identity/v3/auth/tokens`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({
      auth: {
        identity: {
          methods: ['password'],
          password: { user: { name, domain: { id: 'default' }, password } },
        },
      },
    }),
  }).catch(() => undefined);
  return r?.status === 201;
}

describe('N sites on N hosts (network namespaces)', { skip }, () => {
  let dir: string;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'atoll-netns-'));
    teardown();
    network();
  });
  after(async () => {
    for (const p of procs) if (p.exitCode === null) p.kill('SIGTERM');
    await new Promise((r) => setTimeout(r, 2000));
    for (const p of procs) if (p.exitCode === null) p.kill('SIGKILL');
    teardown();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('founds on host-1, routes host-2, joins host-3 as a leaf; a user made at host-1 logs in everywhere', async () => {
    const [h1, h2] = HOSTS.map((h) => h.ip);
    const s1 = onHost(0, [
      'site',
      ...common(0, dir),
      '--bootstrap',
      '--admin-password',
      ADMIN.adminPassword,
      '--nats',
      'managed',
      '--nats-cluster',
      `${h1}:6222`,
      '--nats-leaf',
      `${h1}:7422`,
    ]);
    await eventually(() => /listening on/.test(s1.out()), 30_000, `site-1: ${s1.out()}`);
    const s2 = onHost(1, [
      'site',
      ...common(1, dir),
      '--nats',
      'managed',
      '--nats-cluster',
      `${h2}:6222`,
      '--nats-routes',
      `nats-route://${h1}:6222`,
    ]);
    await eventually(() => /listening on/.test(s2.out()), 30_000, `site-2: ${s2.out()}`);
    const tok = await passwordToken(url(0));
    const inv = await fetch(`${url(0)}/atoll/v1/invites`, {
      method: 'POST',
      headers: { 'x-auth-token': tok, 'content-type': 'application/json' },
      body: JSON.stringify({ invite: { site_name: 'site-3' } }),
    });
    assert.equal(inv.status, 201);
    const token = ((await inv.json()) as { invite: { token: string } }).invite.token;
    const s3 = onHost(2, ['site', 'join', '--invite', token, ...common(2, dir)]);
    await eventually(() => /listening on/.test(s3.out()), 30_000, `site-3: ${s3.out()}`);

    const u = await fetch(`${url(0)}/identity/v3/users`, {
      method: 'POST',
      headers: { 'x-auth-token': tok, 'content-type': 'application/json' },
      body: JSON.stringify({ user: { name: 'netns-user', password: 'netns-pw-1', domain_id: 'default' } }),
    });
    assert.equal(u.status, 201, await u.text());
    for (const i of [1, 2])
      await eventually(() => login(i, 'netns-user', 'netns-pw-1'), 30_000, `login at host-${i + 1}`);
    const states = async () => {
      const r = await fetch(`${url(2)}/atoll/v1/sites`, {
        headers: { 'x-auth-token': await passwordToken(url(2)) },
      });
      const rows = ((await r.json()) as { sites: { name: string; state: string }[] }).sites;
      return rows.map((s) => `${s.name}:${s.state}`).join(' ');
    };
    await eventually(
      async () => (await states()) === 'site-1:up site-2:up site-3:self',
      30_000,
      'every site up as seen from host-3',
    );
  });
});
