/**
 * @module Secrets at rest (issue 11, class 9; issue 13, item 8): `atoll up` started under umask 022
 * creates its data directory and every file in it (site databases with private keys, WAL files, the
 * openrc, the admin password) for its owner only; it prints no password, only where the openrc is; the
 * saved openrc logs in, and still does after a restart on the same data directory. The same for
 * `atoll site --bootstrap`.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { passwordToken } from './support/cloud.ts';

function walk(p: string, out: { path: string; mode: number }[] = []) {
  const st = statSync(p);
  out.push({ path: p, mode: st.mode & 0o777 });
  if (st.isDirectory()) for (const e of readdirSync(p)) walk(join(p, e), out);
  return out;
}

/** `atoll ARGS` as a process under umask 022, once it says `ready`; stop() waits for its exit. */
async function atoll(args: string, ready: string) {
  const proc = spawn('sh', ['-c', `umask 022; exec ./bin/atoll ${args}`], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const out = { stdout: '', all: '' };
  proc.stdout.on('data', (d: Buffer) => ((out.stdout += d.toString()), (out.all += d.toString())));
  proc.stderr.on('data', (d: Buffer) => (out.all += d.toString()));
  const stop = async () => {
    if (proc.exitCode === null) proc.kill('SIGTERM');
    await new Promise((r) => (proc.exitCode !== null ? r(undefined) : proc.once('exit', r)));
  };
  const deadline = Date.now() + 60_000;
  while (!out.all.includes(ready) && Date.now() < deadline && proc.exitCode === null)
    await new Promise((r) => setTimeout(r, 100));
  if (!out.all.includes(ready)) {
    await stop();
    throw new Error(`atoll ${args} did not start:\n${out.all}`);
  }
  return { out, stop };
}

const atollUp = (dataDir: string, basePort: number) =>
  atoll(`up --sites 2 --data-dir ${dataDir} --base-port ${basePort}`, 'Press Ctrl-C');

/** What a shell that sources the openrc sees. */
async function sourced(openrc: string) {
  const { stdout } = await promisify(execFile)('sh', [
    '-c',
    `. "$1" && printf '%s\\n' "$OS_AUTH_URL" "$OS_USERNAME" "$OS_PASSWORD" "$OS_PROJECT_NAME"`,
    'sh',
    openrc,
  ]);
  const [authUrl, name, password, project] = stdout.split('\n') as [string, string, string, string];
  return { base: authUrl.replace(/\/identity\/v3$/, ''), user: { name, password, project } };
}

describe('secrets at rest', () => {
  it('atoll up under umask 022 leaves nothing in its data directory readable by group or others', async () => {
    const root = mkdtempSync(join(tmpdir(), 'atoll-secrets-'));
    const dataDir = join(root, 'data');
    const up = await atollUp(dataDir, 21000 + Math.floor(Math.random() * 20000));
    try {
      const entries = walk(dataDir);
      assert.ok(
        entries.some((e) => e.path.endsWith('.db')),
        'a site database was created',
      );
      const open = entries.filter((e) => (e.mode & 0o077) !== 0);
      assert.deepEqual(
        open.map((e) => `${e.path} ${e.mode.toString(8)}`),
        [],
        'every directory 0700, every file 0600',
      );
    } finally {
      await up.stop();
      rmSync(root, { recursive: true, force: true });
    }
  });

  it('atoll up prints no password, its 0600 openrc logs in, and still does after a restart', async () => {
    const root = mkdtempSync(join(tmpdir(), 'atoll-openrc-'));
    const dataDir = join(root, 'data');
    const openrc = join(dataDir, 'openrc');
    const basePort = 21000 + Math.floor(Math.random() * 20000);
    try {
      const first = await atollUp(dataDir, basePort);
      let rc: Awaited<ReturnType<typeof sourced>>;
      try {
        rc = await sourced(openrc);
        assert.ok(rc.user.password.length >= 12, 'the openrc holds the password');
        assert.equal(readFileSync(openrc, 'utf8').includes(rc.user.password), true);
        assert.equal(first.out.all.includes(rc.user.password), false, 'no password on stdout or stderr');
        assert.ok(first.out.stdout.includes(openrc), `stdout names the openrc:\n${first.out.stdout}`);
        assert.match(first.out.stdout, /OS_AUTH_URL=http/, 'stdout shows the endpoints');
        assert.equal(statSync(openrc).mode & 0o777, 0o600);
        assert.equal(statSync(join(dataDir, 'admin-password')).mode & 0o777, 0o600);
        assert.ok(await passwordToken(rc.base, rc.user), 'the openrc logs in');
      } finally {
        await first.stop();
      }
      const second = await atollUp(dataDir, basePort);
      try {
        assert.equal(second.out.all.includes(rc.user.password), false, 'no password after a restart');
        assert.ok(await passwordToken(rc.base, rc.user), 'the openrc saved before the restart logs in');
        assert.deepEqual(await sourced(openrc), rc, 'the openrc is the same after the restart');
      } finally {
        await second.stop();
      }
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });

  it('atoll site --bootstrap prints no password either, and its 0600 openrc logs in', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'atoll-site-openrc-'));
    const port = 21000 + Math.floor(Math.random() * 20000);
    const site = await atoll(
      `site --name site-a --bootstrap --data-dir ${dataDir} --port ${port}`,
      'source ',
    );
    try {
      const openrc = join(dataDir, 'openrc');
      const rc = await sourced(openrc);
      assert.equal(site.out.all.includes(rc.user.password), false, 'no password on stdout or stderr');
      assert.ok(site.out.stdout.includes(openrc), `stdout names the openrc:\n${site.out.stdout}`);
      assert.equal(statSync(openrc).mode & 0o777, 0o600);
      assert.ok(await passwordToken(rc.base, rc.user), 'the openrc logs in');
    } finally {
      await site.stop();
      rmSync(dataDir, { recursive: true, force: true });
    }
  });
});
