/**
 * @module Image bytes across sites on the in-process fabric (WAN model): a download at a site that does
 * not own the image streams it from the owner in chunks (src/services/image/remote-bytes.ts), whole or
 * by Range, resumes after a partition heals, asks again for a chunk corrupted on the wire, and never
 * delivers a whole image whose bytes do not match its checksum. test/image-stream-procs.test.ts does
 * the same over real processes and nats-server.
 */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { eventually, startLocalCloud } from './support/cloud.ts';
import type { LocalCloud } from './support/cloud.ts';
import type { MemoryFabric } from '../src/fabric/memory/network.ts';
import type { CloudError } from '../src/core/errors.ts';
import { imageChunkRpc } from '../src/services/image/remote-bytes.ts';

const MiB = 1024 * 1024;

async function upload(url: string, token: string, data: Buffer): Promise<string> {
  const r = await fetch(`${url}/image/v2/images`, {
    method: 'POST',
    headers: { 'x-auth-token': token, 'content-type': 'application/json' },
    body: JSON.stringify({ name: 'img', disk_format: 'raw', container_format: 'bare' }),
  });
  const { id } = (await r.json()) as { id: string };
  const u = await fetch(`${url}/image/v2/images/${id}/file`, {
    method: 'PUT',
    headers: { 'x-auth-token': token, 'content-type': 'application/octet-stream' },
    body: new Uint8Array(data),
  });
  assert.equal(u.status, 204);
  return id;
}

/** Reads a download to the end; `error` is set when the body broke off. */
async function download(url: string, token: string, id: string, headers: Record<string, string> = {}) {
  const r = await fetch(`${url}/image/v2/images/${id}/file`, {
    headers: { 'x-auth-token': token, ...headers },
  });
  try {
    return {
      status: r.status,
      headers: r.headers,
      body: Buffer.from(await r.arrayBuffer()),
      error: undefined,
    };
  } catch (e) {
    return { status: r.status, headers: r.headers, body: undefined, error: e };
  }
}

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

describe('image bytes across sites (in-process fabric)', () => {
  let cloud: LocalCloud;
  let token: string;
  const data = randomBytes(6 * MiB + 12345);
  let id: string;

  before(async () => {
    cloud = await startLocalCloud({
      sites: 2,
      onDisk: true,
      latencyMs: 5,
      site: {
        services: {
          image: {
            streamChunkBytes: 64 * 1024,
            streamWindow: 4,
            streamChunkTimeoutMs: 500,
            streamRetryMs: 50,
            streamResumeMs: 10_000,
          },
        },
      },
    });
    token = await cloud.adminToken(0);
    id = await upload(cloud.url(0), token, data);
    await cloud.converged();
  });
  after(() => cloud.close());

  it('downloads a whole image at a site that does not own it, bytes and checksum intact', async () => {
    const r = await download(cloud.url(1), token, id);
    assert.equal(r.status, 200);
    assert.equal(r.headers.get('content-length'), String(data.length));
    assert.equal(r.headers.get('content-md5'), createHash('md5').update(data).digest('hex'));
    assert.equal(sha(r.body!), sha(data));
    // Many chunk messages crossed, none over the 1 MiB of a default nats-server.
    assert.ok((cloud.fed.network.stats.bySubject.rpc?.messages ?? 0) > data.length / (64 * 1024));
  });

  it('downloads an empty image elsewhere', async () => {
    const empty = await upload(cloud.url(0), token, Buffer.alloc(0));
    await cloud.converged();
    const r = await download(cloud.url(1), token, empty);
    assert.equal(r.status, 200);
    assert.equal(r.body!.length, 0);
  });

  it('serves a byte range at the owner and elsewhere (206, Content-Range)', async () => {
    for (const site of [0, 1]) {
      const r = await download(cloud.url(site), token, id, { range: 'bytes=100000-2000000' });
      assert.equal(r.status, 206);
      assert.equal(r.headers.get('content-range'), `bytes 100000-2000000/${data.length}`);
      assert.deepEqual(r.body, data.subarray(100000, 2000001));
      const tail = await download(cloud.url(site), token, id, { range: 'bytes=-10' });
      assert.deepEqual(tail.body, data.subarray(data.length - 10));
      const bad = await download(cloud.url(site), token, id, { range: `bytes=${data.length}-` });
      assert.equal(bad.status, 416);
    }
  });

  it('resumes after a partition mid-transfer heals, from the verified bytes on', async () => {
    const net = cloud.fed.network;
    net.setLink('site-a', 'site-b', { bandwidthBps: 8 * MiB });
    const rpcBefore = net.stats.bySubject.rpc?.bytes ?? 0;
    const p = download(cloud.url(1), token, id);
    await new Promise((r) => setTimeout(r, 300));
    net.partition(['site-a'], ['site-b']);
    await new Promise((r) => setTimeout(r, 1500));
    net.heal();
    const r = await p;
    net.setLink('site-a', 'site-b', { bandwidthBps: 0 });
    assert.equal(r.status, 200);
    assert.equal(sha(r.body!), sha(data));
    // Resumed, not restarted: well under twice the image crossed the link.
    assert.ok((net.stats.bySubject.rpc?.bytes ?? 0) - rpcBefore < 1.5 * data.length);
    assert.ok(net.stats.lost > 0, 'the partition dropped messages');
  });

  it('asks again for a chunk corrupted on the wire and delivers the right bytes', async () => {
    const fabric = cloud.fed.sites[1]!.ctx.fabric as MemoryFabric;
    const real = fabric.request.bind(fabric);
    let flipped = 0;
    fabric.request = async (subject, msg, timeoutMs) => {
      const reply = await real(subject, msg, timeoutMs);
      if (subject.endsWith('.rpc.image') && flipped < 3 && reply.byteLength > 1000) {
        flipped++;
        const copy = Buffer.from(reply);
        copy[copy.length - 7]! ^= 0xff;
        return copy;
      }
      return reply;
    };
    try {
      const r = await download(cloud.url(1), token, id);
      assert.equal(flipped, 3);
      assert.equal(r.status, 200);
      assert.equal(sha(r.body!), sha(data));
    } finally {
      fabric.request = real;
    }
  });

  it('never delivers a whole image whose bytes do not match its checksum (bit rot at the owner)', async () => {
    const other = randomBytes(3 * MiB);
    const id2 = await upload(cloud.url(0), token, other);
    await cloud.converged();
    const blob = sha(other);
    const file = `${cloud.fed.sites[0]!.ctx.config.dataDir}/images/${blob}`;
    const rotten = readFileSync(file);
    rotten[MiB]! ^= 0x01;
    writeFileSync(file, rotten);
    const r = await download(cloud.url(1), token, id2);
    assert.equal(r.status, 200);
    assert.ok(r.error, 'the body broke off');
    assert.equal(r.body, undefined);
  });

  it('refuses a chunk request that is not signed by a known site, and one for a changed image', async () => {
    const b = cloud.fed.sites[1]!.ctx;
    const blob = sha(data);
    const ask = { from: 'site-b', image: id, blob, offset: 0, length: 1024 };
    await assert.rejects(
      imageChunkRpc.call(b.fabric, 'site-a', ask, { timeoutMs: 2000 }),
      (e: CloudError) => e.status === 403 && /not signed/.test(e.message),
    );
    const forged = { ...ask, from: 'site-z' };
    await assert.rejects(
      imageChunkRpc.call(b.fabric, 'site-a', forged, { timeoutMs: 2000, seal: (m) => b.signer.sign(m) }),
      (e: CloudError) => e.status === 403,
    );
    const signed = (req: typeof ask) =>
      imageChunkRpc.call(b.fabric, 'site-a', req, { timeoutMs: 2000, seal: (m) => b.signer.sign(m) });
    const ok = await signed(ask);
    assert.deepEqual(Buffer.from(ok.data), data.subarray(0, 1024));
    await assert.rejects(signed({ ...ask, blob: '0'.repeat(64) }), (e: CloudError) => e.status === 409);
    await assert.rejects(signed({ ...ask, length: 10 * MiB }), (e: CloudError) => e.status === 400);
  });

  it('answers 503 naming the owner when the owner cannot be reached', async () => {
    const net = cloud.fed.network;
    net.isolate('site-a');
    try {
      const r = await fetch(`${cloud.url(1)}/image/v2/images/${id}/file`, {
        headers: { 'x-auth-token': token },
      });
      assert.equal(r.status, 503);
      assert.match(await r.text(), /site-a/);
    } finally {
      net.heal();
    }
  });
});

describe('the cache of fetched images (in-process fabric)', () => {
  let cloud: LocalCloud;
  let token: string;

  before(async () => {
    cloud = await startLocalCloud({
      sites: 2,
      onDisk: true,
      latencyMs: 5,
      site: {
        services: {
          image: {
            cacheBytes: 10 * MiB,
            streamChunkBytes: 64 * 1024,
            streamWindow: 4,
            streamChunkTimeoutMs: 500,
          },
        },
      },
    });
    token = await cloud.adminToken(0);
  });
  after(() => cloud.close());

  const crossed = () => cloud.fed.network.stats.bySubject.reply?.bytes ?? 0;

  it('shares one fetch among concurrent readers, then serves the copy while the owner is cut off', async () => {
    const data = randomBytes(6 * MiB);
    const id = await upload(cloud.url(0), token, data);
    await cloud.converged();
    cloud.fed.network.setLink('site-a', 'site-b', { bandwidthBps: 12 * MiB });
    const before0 = crossed();
    const first = await fetch(`${cloud.url(1)}/image/v2/images/${id}/file`, {
      headers: { 'x-auth-token': token },
    });
    const second = download(cloud.url(1), token, id);
    const one = Buffer.from(await first.arrayBuffer());
    const two = await second;
    cloud.fed.network.setLink('site-a', 'site-b', { bandwidthBps: 0 });
    assert.equal(sha(one), sha(data));
    assert.equal(sha(two.body!), sha(data));
    const bytes = crossed() - before0;
    assert.ok(bytes > data.length && bytes < 1.3 * data.length, `${bytes} bytes crossed for two readers`);

    cloud.fed.network.isolate('site-a');
    try {
      const r = await download(cloud.url(1), token, id);
      assert.equal(r.status, 200);
      assert.equal(sha(r.body!), sha(data));
      const part = await download(cloud.url(1), token, id, { range: 'bytes=10-19' });
      assert.deepEqual(part.body, data.subarray(10, 20));
    } finally {
      cloud.fed.network.heal();
    }
  });

  it('stays within its size limit, dropping the least recently used image', async () => {
    const imgs = [randomBytes(4 * MiB), randomBytes(4 * MiB)];
    const ids = [];
    for (const d of imgs) ids.push(await upload(cloud.url(0), token, d));
    await cloud.converged();
    for (const id of ids) assert.equal((await download(cloud.url(1), token, id)).status, 200);
    // 6 + 4 + 4 MiB > 10 MiB: the 6 MiB image of the test above, used least recently, is gone.
    // The fill ends (rename, eviction) just after the reader's last byte.
    const cacheDir = join(cloud.fed.sites[1]!.ctx.config.dataDir, 'images', 'cache');
    const want = imgs.map(sha).sort().join();
    const cached = () =>
      readdirSync(cacheDir)
        .filter((f) => /^[0-9a-f]{64}$/.test(f))
        .sort()
        .join();
    await eventually(() => cached() === want, 5000, `cache to hold ${want}, not ${cached()}`);
    cloud.fed.network.isolate('site-a');
    try {
      for (const [i, id] of ids.entries())
        assert.equal(sha((await download(cloud.url(1), token, id)).body!), sha(imgs[i]!));
    } finally {
      cloud.fed.network.heal();
    }
  });
});
