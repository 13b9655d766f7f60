/**
 * @module A site restarted on a data directory that is not the site the federation knows refuses to
 * serve, and its peers show it as `conflict` (issue 13, item 1). Real `atoll site` processes on
 * nats-servers: an old backup (a log shorter than what the peers applied), then an empty data
 * directory (a new identity key under the old name). Before the fix both served and accepted writes
 * that no other site would ever apply.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { cpSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { eventually } from './support/cloud.ts';
import { startProcessFederation } from './support/processes.ts';
import type { ProcFederation } from './support/processes.ts';

describe('a data directory that is not the site the federation knows', () => {
  let fed: ProcFederation;
  before(async () => {
    fed = await startProcessFederation(2);
    await fed.converged();
  });
  after(async () => fed?.stop());

  const dataDir = () => join(fed.dir, 'site-b');
  const createNetwork = async (i: number, name: string) =>
    fetch(`${fed.sites[i]!.url}/network/v2.0/networks`, {
      method: 'POST',
      headers: { 'x-auth-token': await fed.token(i), 'content-type': 'application/json' },
      body: JSON.stringify({ network: { name } }),
    });
  /** The restarted site may already refuse its health check: that is the point. */
  const restartB = () => fed.restart(1).catch(() => undefined);
  const refusal = async () => {
    const r = await fetch(`${fed.sites[1]!.url}/identity/v3`);
    return r.status === 503 ? JSON.stringify(await r.json()) : undefined;
  };
  const stateAtA = async () => {
    const r = await fetch(`${fed.sites[0]!.url}/atoll/v1/sites`, {
      headers: { 'x-auth-token': await fed.token(0) },
    });
    const body = (await r.json()) as { sites: { name: string; state: string; conflict: string | null }[] };
    return body.sites.find((s) => s.name === 'site-b');
  };

  it('an old backup (its log behind what peers applied) refuses to serve; its peers show a conflict', async () => {
    await fed.kill(1);
    const backup = join(fed.dir, 'site-b.backup');
    cpSync(dataDir(), backup, { recursive: true });
    await fed.restart(1);
    assert.equal((await createNetwork(1, 'after-backup')).status, 201);
    await fed.converged();
    await fed.kill(1);
    rmSync(dataDir(), { recursive: true, force: true });
    cpSync(backup, dataDir(), { recursive: true });
    await restartB();
    const why = await eventually(refusal, 15_000, 'site-b to refuse');
    assert.match(why, /older than the site/);
    assert.match(why, /restore the site data directory from its latest backup/);
    const seen = await eventually(
      async () => ((await stateAtA())?.state === 'conflict' ? await stateAtA() : undefined),
      15_000,
      'site-a to show site-b in conflict',
    );
    assert.match(String(seen?.conflict), /log went back/);
    // `atoll sites` shows the state as it is, and why, in its last column.
    const out = await new Promise<string>((resolve) =>
      execFile(
        'sh',
        [join(import.meta.dirname, '..', 'bin', 'atoll'), 'sites'],
        { env: { ...process.env, ...fed.env(0) }, timeout: 60_000 },
        (_e, stdout) => resolve(stdout),
      ),
    );
    assert.match(out, /site-b\s+conflict\s.*log went back/);
    assert.match(out.split('\n')[1]!, /endpoint\s+conflict/);
  });

  it('an empty data directory under the old name refuses to serve; its peers show a conflict', async () => {
    await fed.kill(1);
    rmSync(dataDir(), { recursive: true, force: true });
    await restartB();
    const why = await eventually(refusal, 15_000, 'site-b to refuse');
    assert.match(why, /another identity key/);
    // Nothing it is asked to do is done: a write gets the same refusal.
    const w = await fetch(`${fed.sites[1]!.url}/network/v2.0/networks`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ network: { name: 'lost' } }),
    });
    assert.equal(w.status, 503);
    await eventually(
      async () => (await stateAtA())?.state === 'conflict',
      15_000,
      'site-a to show site-b in conflict',
    );
  });
});
