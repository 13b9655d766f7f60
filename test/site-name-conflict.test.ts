/**
 * @module One process per site name (issue 11, class 11), on real `atoll site` processes over real
 * nats-servers WITHOUT per-site credentials: a second `atoll site --name site-b` (fresh, or on a copy
 * of site-b's data directory) refuses to start, and every forwarded create reaches the real site-b (5 per case: the
 * default volume quota is 10).
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { cpSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startProcessFederation } from './support/processes.ts';
import type { ProcFederation } from './support/processes.ts';
import { freePorts } from './support/nats.ts';
import { passwordToken } from './support/cloud.ts';

const ROOT = join(import.meta.dirname, '..');

/** Runs `atoll site --name site-b` on site-a's nats-server; resolves with its exit code, or 'serving'. */
async function impostor(
  fed: ProcFederation,
  dataDir: string,
): Promise<{ code: number | 'serving'; out: string }> {
  const [port] = await freePorts(1);
  const args = [join(ROOT, 'bin', 'atoll'), 'site', '--name', 'site-b', '--port', String(port)];
  args.push(
    '--data-dir',
    dataDir,
    '--nats',
    `nats://127.0.0.1:${fed.sites[0]!.natsPort}`,
    '--heartbeat-ms',
    '300',
  );
  const proc = spawn('sh', args, {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, ATOLL_PASSWORD_HASH_COST: '10' },
  });
  let out = '';
  proc.stdout.on('data', (d: Buffer) => (out += d.toString()));
  proc.stderr.on('data', (d: Buffer) => (out += d.toString()));
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      proc.kill('SIGKILL');
      resolve({ code: 'serving', out });
    }, 20_000);
    proc.on('exit', (code) => {
      clearTimeout(timer);
      resolve({ code: code ?? -1, out });
    });
    const watch = setInterval(() => {
      if (!/listening on/.test(out)) return;
      clearInterval(watch);
      // It serves: give it time to take forwarded writes, as an operator's mistake would.
      clearTimeout(timer);
      setTimeout(() => {
        resolve({ code: 'serving', out });
      }, 100);
    }, 50);
    proc.on('exit', () => clearInterval(watch));
    impostors.push(proc);
  });
}
const impostors: ReturnType<typeof spawn>[] = [];

async function createVolumes(fed: ProcFederation, n: number): Promise<string[]> {
  const a = fed.sites[0]!.url;
  const token = await passwordToken(a);
  const v = await fetch(`${a}/identity/v3/auth/tokens?nocatalog`, {
    headers: { 'x-auth-token': token, 'x-subject-token': token },
  });
  const project = ((await v.json()) as { token: { project: { id: string } } }).token.project.id;
  const ids: string[] = [];
  for (let i = 0; i < n; i++) {
    const r = await fetch(`${a}/volume/v3/${project}/volumes`, {
      method: 'POST',
      headers: { 'x-auth-token': token, 'content-type': 'application/json' },
      body: JSON.stringify({ volume: { size: 1, name: `nc-${i}`, availability_zone: 'site-b' } }),
    });
    if (r.status === 202) ids.push(((await r.json()) as { volume: { id: string } }).volume.id);
  }
  // Every acknowledged create is at the real site-b (asked directly, not through site-a).
  const tb = await passwordToken(fed.sites[1]!.url);
  const missing: string[] = [];
  for (const id of ids) {
    const r = await fetch(`${fed.sites[1]!.url}/volume/v3/${project}/volumes/${id}`, {
      headers: { 'x-auth-token': tb },
    });
    if (r.status !== 200) missing.push(id);
  }
  assert.deepEqual(missing, [], `${missing.length} of ${ids.length} acknowledged creates are not at site-b`);
  return ids;
}

describe('one process per site name, over NATS without per-site credentials', () => {
  let fed: ProcFederation;
  const tmp = mkdtempSync(join(tmpdir(), 'atoll-names-'));
  before(async () => {
    fed = await startProcessFederation(2);
  });
  after(async () => {
    for (const p of impostors) if (p.exitCode === null) p.kill('SIGKILL');
    await fed?.stop();
    rmSync(tmp, { recursive: true, force: true });
  });

  it('a second `atoll site --name site-b` exits non-zero naming the name; creates reach site-b', async () => {
    const r = await impostor(fed, join(tmp, 'fresh'));
    const ids = await createVolumes(fed, 5);
    assert.equal(ids.length, 5);
    assert.notEqual(r.code, 'serving', `the impostor started: ${r.out}`);
    assert.notEqual(r.code, 0);
    assert.match(r.out, /site name site-b is already in use/);
  });

  it('the same, with a copy of site-b’s data directory', async () => {
    const copy = join(tmp, 'copy');
    cpSync(join(fed.dir, 'site-b'), copy, { recursive: true });
    const r = await impostor(fed, copy);
    const ids = await createVolumes(fed, 5);
    assert.equal(ids.length, 5);
    assert.notEqual(r.code, 'serving', `the copy started: ${r.out}`);
    assert.notEqual(r.code, 0);
    assert.match(r.out, /site name site-b is already in use/);
  });
});
