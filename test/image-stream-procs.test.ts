/**
 * @module Image bytes across sites on real processes: two `atoll site` processes, each with its own
 * nats-server (default max_payload, 1 MiB), routed through WAN proxies (test/support/processes.ts).
 * A 100 MiB image uploaded at site-a downloads at site-b with its checksum; a cut of the link in the
 * middle of a download, then a heal, resumes and completes it; bit rot in the owner's copy is caught
 * (the download breaks off before its end, it is never served complete).
 */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { openSync, readSync, writeSync, closeSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { startProcessFederation } from './support/processes.ts';
import type { ProcFederation } from './support/processes.ts';

const MiB = 1024 * 1024;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function upload(url: string, token: string, data: Uint8Array<ArrayBuffer>): Promise<string> {
  const r = await fetch(`${url}/image/v2/images`, {
    method: 'POST',
    headers: { 'x-auth-token': token, 'content-type': 'application/json' },
    body: JSON.stringify({ name: 'big', disk_format: 'raw', container_format: 'bare', visibility: 'public' }),
  });
  const { id } = (await r.json()) as { id: string };
  const u = await fetch(`${url}/image/v2/images/${id}/file`, {
    method: 'PUT',
    headers: { 'x-auth-token': token, 'content-type': 'application/octet-stream' },
    body: data,
  });
  assert.equal(u.status, 204, await u.text());
  return id;
}

/** Streams a download through sha512, calling `at(bytesSoFar)` after each piece. */
async function download(url: string, token: string, id: string, at?: (n: number) => Promise<void>) {
  const r = await fetch(`${url}/image/v2/images/${id}/file`, { headers: { 'x-auth-token': token } });
  const h = createHash('sha512');
  let n = 0;
  let error: unknown;
  try {
    for await (const piece of r.body as unknown as AsyncIterable<Uint8Array>) {
      h.update(piece);
      n += piece.byteLength;
      await at?.(n);
    }
  } catch (e) {
    error = e;
  }
  return {
    status: r.status,
    length: Number(r.headers.get('content-length')),
    bytes: n,
    sha512: h.digest('hex'),
    error,
  };
}

describe('image bytes across sites (processes, nats-server, WAN proxies)', () => {
  let fed: ProcFederation;
  let token: string;
  const data = randomBytes(100 * MiB);
  const want = createHash('sha512').update(data).digest('hex');
  let id: string;

  before(async () => {
    fed = await startProcessFederation(2, { latencyMs: 2 });
    token = await fed.token(0);
    id = await upload(fed.sites[0]!.url, token, new Uint8Array(data));
    await fed.converged();
  });
  after(() => fed?.stop());

  it('downloads a 100 MiB image at the site that does not own it, checksum matching', async () => {
    const r = await download(fed.sites[1]!.url, token, id);
    assert.equal(r.status, 200);
    assert.equal(r.error, undefined);
    assert.equal(r.bytes, data.length);
    assert.equal(r.sha512, want);
  });

  it('resumes after the link is cut mid-transfer and healed, and completes', async () => {
    let cut = false;
    const r = await download(fed.sites[1]!.url, token, id, async (n) => {
      if (!cut && n > 30 * MiB) {
        cut = true;
        fed.isolate(0);
        await sleep(3000);
        fed.heal();
      }
    });
    assert.ok(cut);
    assert.equal(r.error, undefined, String(r.error));
    assert.equal(r.bytes, data.length);
    assert.equal(r.sha512, want);
  });

  it('catches bit rot in the owner copy: the download breaks off and is never complete', async () => {
    const blob = createHash('sha256').update(data).digest('hex');
    const fd = openSync(join(fed.dir, 'site-a', 'images', blob), 'r+');
    const b = Buffer.alloc(1);
    readSync(fd, b, 0, 1, 50 * MiB);
    b[0]! ^= 0x40;
    writeSync(fd, b, 0, 1, 50 * MiB);
    closeSync(fd);
    const r = await download(fed.sites[1]!.url, token, id);
    assert.equal(r.status, 200);
    assert.ok(r.error, 'the body broke off');
    assert.ok(r.bytes < data.length, `got ${r.bytes} of ${data.length} bytes`);
    assert.match(fed.sites[1]!.output, /does not match its sha512/);
  });
});
