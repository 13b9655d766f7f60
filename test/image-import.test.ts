/**
 * @module Interoperable image import over HTTP on two sites: stage then glance-direct (also asked at
 * the site that does not own the image: forwarded), web-download only from the allowed URL prefixes
 * (a refused URI is a 400 and the image stays queued; a failed fetch puts it back to queued with the
 * store in os_glance_failed_import), copy-image a cloud admin's no-op on one store, and bad bodies.
 */
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { Server } from 'node:http';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { eventually, startLocalCloud } from './support/cloud.ts';
import type { LocalCloud } from './support/cloud.ts';

type Obj = Record<string, any>;

describe('image import (HTTP, two sites)', () => {
  let cloud: LocalCloud;
  let server: Server;
  let origin = '';
  const bytes = randomBytes(3000);
  const tokens: string[] = [];

  before(async () => {
    server = createServer((req, res) => {
      if (req.url === '/ok/image.raw') res.writeHead(200).end(bytes);
      else res.writeHead(404).end();
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    const addr = server.address();
    origin = `http://127.0.0.1:${typeof addr === 'object' && addr ? addr.port : 0}`;
    cloud = await startLocalCloud({
      sites: 2,
      site: { services: { image: { webDownloadAllowed: [`${origin}/ok/`, `${origin}/gone/`] } } },
    });
    tokens.push(await cloud.adminToken(0), await cloud.adminToken(1));
  });
  after(async () => {
    await cloud?.close();
    server?.close();
  });

  const call = async (method: string, path: string, body?: unknown, site = 0, raw = false) => {
    const res = await fetch(`${cloud.url(site)}/image/v2${path}`, {
      method,
      headers: {
        'x-auth-token': tokens[site]!,
        ...(body !== undefined
          ? { 'content-type': raw ? 'application/octet-stream' : 'application/json' }
          : {}),
      },
      ...(body !== undefined ? { body: raw ? new Uint8Array(body as Buffer) : JSON.stringify(body) } : {}),
    });
    const text = await res.text();
    return { status: res.status, body: text ? (JSON.parse(text) as Obj) : {} };
  };
  const newImage = async () => {
    const r = await call('POST', '/images', { name: 'imp', disk_format: 'raw', container_format: 'bare' });
    assert.equal(r.status, 201);
    return r.body.id as string;
  };
  const show = async (id: string, site = 0) => (await call('GET', `/images/${id}`, undefined, site)).body;

  it('lists the methods and the one store of each site', async () => {
    const info = await call('GET', '/info/import');
    assert.deepEqual(info.body['import-methods'].value, ['glance-direct', 'web-download', 'copy-image']);
    // The create reply names them too (Glance's OpenStack-image-import-methods header).
    const made = await fetch(`${cloud.url(0)}/image/v2/images`, {
      method: 'POST',
      headers: { 'x-auth-token': tokens[0]!, 'content-type': 'application/json' },
      body: JSON.stringify({ name: 'hdr', disk_format: 'raw', container_format: 'bare' }),
    });
    assert.equal(made.status, 201);
    assert.equal(made.headers.get('openstack-image-import-methods'), 'glance-direct,web-download,copy-image');
    const madeId = ((await made.json()) as Obj).id as string;
    assert.equal((await call('DELETE', `/images/${madeId}`)).status, 204);
    const stores = await call('GET', '/info/stores', undefined, 1);
    assert.deepEqual(
      stores.body.stores.map((s: Obj) => [s.id, s.default]),
      [['site-b', true]],
    );
  });

  it('stages then imports (glance-direct), the import asked at the non-owner site', async () => {
    const id = await newImage();
    assert.equal(
      (await call('POST', `/images/${id}/import`, { method: { name: 'glance-direct' } })).status,
      409,
    );
    assert.equal((await call('PUT', `/images/${id}/stage`, bytes, 0, true)).status, 204);
    assert.equal((await show(id)).status, 'uploading');
    await cloud.converged();
    // Staging is taken by the owner only (the bytes live there); the import is forwarded.
    assert.equal((await call('PUT', `/images/${id}/stage`, bytes, 1, true)).status, 409);
    const r = await call(
      'POST',
      `/images/${id}/import`,
      { method: { name: 'glance-direct' }, all_stores: true },
      1,
    );
    assert.equal(r.status, 202, JSON.stringify(r.body));
    const img = await show(id);
    assert.equal(img.status, 'active');
    assert.equal(img.size, bytes.length);
    assert.equal(img.stores, 'site-a');
    assert.equal(img.os_glance_failed_import, '');
    const data = await fetch(`${cloud.url(0)}/image/v2/images/${id}/file`, {
      headers: { 'x-auth-token': tokens[0]! },
    });
    assert.deepEqual(Buffer.from(await data.arrayBuffer()), bytes);
  });

  it('web-downloads from an allowed URL only', async () => {
    const id = await newImage();
    for (const uri of [
      'http://169.254.169.254/latest/meta-data',
      `${origin}/other/image.raw`,
      `${origin.replace('http:', 'file:')}/ok/x`,
      `http://user:pw@${origin.slice(7)}/ok/image.raw`,
    ]) {
      const r = await call('POST', `/images/${id}/import`, { method: { name: 'web-download', uri } });
      assert.equal(r.status, 400, uri);
    }
    assert.equal((await show(id)).status, 'queued');
    const ok = await call('POST', `/images/${id}/import`, {
      method: { name: 'web-download', uri: `${origin}/ok/image.raw` },
    });
    assert.equal(ok.status, 202);
    await eventually(async () => (await show(id)).status === 'active', 10_000, 'web-download to finish');
    const img = await show(id);
    assert.equal(img.size, bytes.length);
    assert.equal(img.os_glance_importing_to_stores, '');
  });

  it('puts a failed web-download back to queued, the store in os_glance_failed_import', async () => {
    const id = await newImage();
    const r = await call('POST', `/images/${id}/import`, {
      method: { name: 'web-download', uri: `${origin}/gone/image.raw` },
      stores: ['site-a'],
    });
    assert.equal(r.status, 202);
    await eventually(
      async () => (await show(id)).os_glance_failed_import === 'site-a',
      10_000,
      'the failure',
    );
    const img = await show(id);
    assert.equal(img.status, 'queued');
    assert.equal(img.size, null);
  });

  it('copy-image is a cloud admin no-op on an active image; bad bodies are 400', async () => {
    const id = await newImage();
    assert.equal(
      (await call('POST', `/images/${id}/import`, { method: { name: 'copy-image' } })).status,
      409,
    );
    assert.equal((await call('PUT', `/images/${id}/file`, bytes, 0, true)).status, 204);
    const r = await call(
      'POST',
      `/images/${id}/import`,
      { method: { name: 'copy-image' }, all_stores: true },
      1,
    );
    assert.equal(r.status, 202);
    const img = await show(id);
    assert.equal(img.os_glance_importing_to_stores, '');
    assert.equal(img.os_glance_failed_import, '');
    for (const body of [
      {},
      { method: 'glance-direct' },
      { method: { name: 'glance-download' } },
      { method: { name: 'copy-image' }, stores: ['elsewhere'] },
      { method: { name: 'copy-image' }, stores: 'site-a' },
      { method: { name: 'copy-image' }, all_stores: 'yes' },
    ])
      assert.equal((await call('POST', `/images/${id}/import`, body)).status, 400, JSON.stringify(body));
  });
});
