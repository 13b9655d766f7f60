/**
 * @module Secrets at rest (issue 11, class 9): `atoll up` started under umask 022 creates its data
 * directory and every file in it (site databases with private keys, WAL files, the openrc) for its
 * owner only.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

function walk(p: string, out: { path: string; mode: number }[] = []) {
  const st = statSync(p);
  out.push({ path: p, mode: st.mode & 0o777 });
  if (st.isDirectory()) for (const e of readdirSync(p)) walk(join(p, e), out);
  return out;
}

describe('secrets at rest', () => {
  it('atoll up under umask 022 leaves nothing in its data directory readable by group or others', async () => {
    const root = mkdtempSync(join(tmpdir(), 'atoll-secrets-'));
    const dataDir = join(root, 'data');
    const basePort = 21000 + Math.floor(Math.random() * 20000);
    const proc = spawn(
      'sh',
      ['-c', `umask 022; exec ./bin/atoll up --sites 2 --data-dir ${dataDir} --base-port ${basePort}`],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let output = '';
    proc.stdout.on('data', (d: Buffer) => (output += d.toString()));
    proc.stderr.on('data', (d: Buffer) => (output += d.toString()));
    try {
      const deadline = Date.now() + 60_000;
      while (!output.includes('Press Ctrl-C') && Date.now() < deadline && proc.exitCode === null)
        await new Promise((r) => setTimeout(r, 100));
      assert.ok(output.includes('Press Ctrl-C'), `atoll up did not start:\n${output}`);
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
      proc.kill('SIGTERM');
      await new Promise((r) => (proc.exitCode !== null ? r(undefined) : proc.once('exit', r)));
      rmSync(root, { recursive: true, force: true });
    }
  });
});
