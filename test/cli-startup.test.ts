/**
 * @module `atoll site` refuses bad settings at start-up with a message that names the problem (issue
 * 13, item 7): a heartbeat of `abc` or `0` (which used to flood the fabric), an http:// NATS URL
 * (which used to hang 20 s), and an unreachable nats-server (which said only CONNECTION_REFUSED);
 * `atoll site join` to a dead leaf URL says that it hears no member (it used to run alone silently).
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { createServer } from 'node:net';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const ATOLL = join(import.meta.dirname, '..', 'bin', 'atoll');

function atoll(args: string[]): Promise<{ code: number; stderr: string }> {
  return new Promise((done) => {
    execFile(ATOLL, args, { timeout: 30_000 }, (err, _stdout, stderr) =>
      done({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stderr }),
    );
  });
}

/** A TCP port nothing listens on (bound, then released). */
async function freePort(): Promise<number> {
  const srv = createServer();
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const port = (srv.address() as { port: number }).port;
  await new Promise((r) => srv.close(r));
  return port;
}

describe('atoll site start-up errors', () => {
  const site = () => [
    'site',
    '--name',
    'site-q',
    '--port',
    '0',
    '--data-dir',
    mkdtempSync(join(tmpdir(), 'atoll-cli-')),
  ];

  it('refuses a heartbeat of abc or 0, naming the setting and its range', async () => {
    for (const hb of ['abc', '0']) {
      const r = await atoll([...site(), '--heartbeat-ms', hb]);
      assert.equal(r.code, 1);
      assert.match(r.stderr, /heartbeatMs \(ms between heartbeats\) must be an integer from 10 to 60000/);
    }
  });

  it('refuses an http:// NATS URL at once, and names the URL of an unreachable nats-server', async () => {
    const bad = await atoll([...site(), '--nats', 'http://127.0.0.1:9']);
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /--nats takes nats:\/\/host:port/);
    const url = `nats://127.0.0.1:${await freePort()}`;
    const down = await atoll([...site(), '--nats', url]);
    assert.equal(down.code, 1);
    assert.ok(down.stderr.includes(`cannot connect to the nats-server at ${url}`), down.stderr);
  });

  it('atoll site join to a dead leaf URL says that no member is heard', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'atoll-cli-'));
    const leaf = `nats-leaf://127.0.0.1:${await freePort()}`;
    const out = await new Promise<string>((done) => {
      let text = '';
      const p = spawn(ATOLL, [
        'site',
        'join',
        leaf,
        '--name',
        'site-q',
        '--port',
        '0',
        '--data-dir',
        dir,
        '--heartbeat-ms',
        '100',
      ]);
      p.stderr.on('data', (d: Buffer) => {
        text += d.toString();
        if (/no member site heard/.test(text)) p.kill('SIGTERM');
      });
      p.on('exit', () => done(text));
      setTimeout(() => p.kill('SIGTERM'), 20_000).unref();
    });
    assert.ok(out.includes(`no member site heard through ${leaf}`), out);
  });
});
