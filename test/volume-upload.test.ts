/**
 * @module os-volume_upload_image over HTTP on two sites with the file driver: the request sent to
 * site-b is forwarded to the volume's site-a, answers 202 with Cinder's shape while the volume is
 * `uploading`, and the volume's bytes (1 GiB, streamed) become an active image owned by site-a with
 * its size and checksum; the volume is `available` again. In-use volumes need `force`; a failed
 * upload (over the image size cap) deletes the image, puts the volume back and leaves a user message.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { openSync, writeSync, closeSync } from 'node:fs';
import { join } from 'node:path';
import { eventually, startLocalCloud } from './support/cloud.ts';
import type { LocalCloud } from './support/cloud.ts';

const GIB = 1024 ** 3;
const sorted = (o: object) => Object.keys(o).sort();

describe('os-volume_upload_image', () => {
  let cloud: LocalCloud;
  const tokens: string[] = [];
  let project: string;
  const V = () => `/volume/v3/${project}`;
  const call = async (
    i: number,
    method: string,
    path: string,
    body?: unknown,
    headers: Record<string, string> = {},
  ) => {
    const res = await fetch(`${cloud.url(i)}${path}`, {
      method,
      headers: {
        'x-auth-token': tokens[i]!,
        ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
        ...headers,
      },
      ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
    });
    const text = await res.text();
    return {
      status: res.status,
      owner: res.headers.get('x-atoll-owner'),
      body: text ? (JSON.parse(text) as any) : undefined,
    };
  };
  const volume = async (name: string) => {
    const r = await call(0, 'POST', `${V()}/volumes`, { volume: { size: 1, name } });
    assert.equal(r.status, 202);
    return r.body.volume as { id: string };
  };
  const statusOf = async (id: string) =>
    (await call(0, 'GET', `${V()}/volumes/${id}`)).body.volume.status as string;
  const upload = (i: number, id: string, arg: Record<string, unknown>, v = '3.1') =>
    call(
      i,
      'POST',
      `${V()}/volumes/${id}/action`,
      { 'os-volume_upload_image': arg },
      {
        'openstack-api-version': `volume ${v}`,
      },
    );

  before(async () => {
    cloud = await startLocalCloud({ sites: 2, onDisk: true });
    for (const i of [0, 1]) tokens.push(await cloud.adminToken(i));
    const me = await fetch(`${cloud.url()}/identity/v3/auth/tokens`, {
      headers: { 'x-auth-token': tokens[0]!, 'x-subject-token': tokens[0]! },
    });
    project = ((await me.json()) as { token: { project: { id: string } } }).token.project.id;
  });
  after(async () => cloud?.close());

  it("streams the volume's bytes into an active image owned by the volume's site", async () => {
    const v = await volume('up');
    // Known bytes at the start of the sparse 1 GiB file.
    const file = join(cloud.fed.sites[0]!.ctx.config.dataDir, 'volumes', `vol-${v.id}.img`);
    const fd = openSync(file, 'r+');
    writeSync(fd, Buffer.from('atoll volume bytes'), 0, 18, 0);
    closeSync(fd);
    await cloud.converged();
    const r = await upload(1, v.id, { image_name: 'from-volume', disk_format: 'raw', visibility: 'private' });
    assert.equal(r.status, 202, JSON.stringify(r.body));
    assert.equal(r.owner, 'site-a', 'forwarded to the volume site');
    const a = r.body['os-volume_upload_image'];
    assert.deepEqual(sorted(a), [
      'container_format',
      'disk_format',
      'display_description',
      'id',
      'image_id',
      'image_name',
      'protected',
      'size',
      'status',
      'updated_at',
      'visibility',
      'volume_type',
    ]);
    assert.equal(a.status, 'uploading');
    assert.equal(a.image_name, 'from-volume');
    assert.equal(a.container_format, 'bare');
    assert.equal(a.volume_type.name, '__DEFAULT__');
    // A 1 GiB stream is not done within a round trip: the volume is uploading, and cannot be deleted.
    assert.equal(await statusOf(v.id), 'uploading');
    assert.equal((await call(0, 'DELETE', `${V()}/volumes/${v.id}`)).status, 400);
    const img = await eventually(
      async () => {
        const s = await call(0, 'GET', `/image/v2/images/${String(a.image_id)}`);
        return s.body.status === 'active' ? s.body : undefined;
      },
      120_000,
      'the image to become active',
    );
    assert.equal(img.size, GIB);
    assert.match(String(img.checksum), /^[0-9a-f]{32}$/);
    assert.equal(img.name, 'from-volume');
    assert.equal(img.disk_format, 'raw');
    assert.equal(img.visibility, 'private');
    await eventually(
      async () => (await statusOf(v.id)) === 'available',
      10_000,
      'the volume to be available',
    );
    const owner = cloud.fed.sites[0]!.ctx.store.db.prepare('SELECT owner FROM images WHERE id = ?')
      .pluck()
      .get(a.image_id);
    assert.equal(owner, 'site-a');
    // The image holds the volume's bytes.
    const data = await fetch(`${cloud.url()}/image/v2/images/${String(a.image_id)}/file`, {
      headers: { 'x-auth-token': tokens[0]!, range: 'bytes=0-17' },
    });
    const head = Buffer.from(await data.arrayBuffer())
      .subarray(0, 18)
      .toString();
    assert.equal(head, 'atoll volume bytes');
  });

  it('refuses bad input before anything changes; in-use needs force', async () => {
    const v = await volume('bad');
    for (const arg of [
      {},
      { image_name: '' },
      { image_name: 'x', disk_format: 'qcow2' },
      { image_name: 'x', container_format: 'ovf' },
      { image_name: 'x', force: 'maybe' },
    ]) {
      const r = await upload(0, v.id, arg);
      assert.equal(r.status, 400, JSON.stringify(arg));
    }
    assert.equal(await statusOf(v.id), 'available');
    assert.equal((await upload(0, v.id, { image_name: 'x', visibility: 'everyone' })).status, 400);
    assert.equal(await statusOf(v.id), 'available');
    const att = await call(0, 'POST', `${V()}/volumes/${v.id}/action`, {
      'os-attach': { host_name: 'h', mountpoint: '/dev/vdb' },
    });
    assert.equal(att.status, 202);
    assert.equal((await upload(0, v.id, { image_name: 'in-use' })).status, 400);
    const forced = await upload(0, v.id, { image_name: 'in-use', force: true }, '3.0');
    assert.equal(forced.status, 202);
    assert.ok(!('visibility' in forced.body['os-volume_upload_image']), 'visibility is from 3.1');
    await eventually(
      async () => (await statusOf(v.id)) === 'in-use',
      120_000,
      'the volume to be in-use again',
    );
  });

  it('a failed upload deletes the image, puts the volume back and leaves a user message', async () => {
    // A site whose image size cap (1 MiB) is below the volume's 1 GiB: the stream fails part way.
    const small = await startLocalCloud({ site: { services: { image: { imageSizeCap: 1 << 20 } } } });
    try {
      const token = await small.adminToken();
      const me = await fetch(`${small.url()}/identity/v3/auth/tokens`, {
        headers: { 'x-auth-token': token, 'x-subject-token': token },
      });
      const p = ((await me.json()) as { token: { project: { id: string } } }).token.project.id;
      const at = async (method: string, path: string, body?: unknown) => {
        const res = await fetch(`${small.url()}${path}`, {
          method,
          headers: {
            'x-auth-token': token,
            'openstack-api-version': 'volume 3.3',
            ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
          },
          ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
        });
        const text = await res.text();
        return { status: res.status, body: text ? (JSON.parse(text) as any) : undefined };
      };
      const v = (await at('POST', `/volume/v3/${p}/volumes`, { volume: { size: 1 } })).body.volume;
      const r = await at('POST', `/volume/v3/${p}/volumes/${String(v.id)}/action`, {
        'os-volume_upload_image': { image_name: 'too-big' },
      });
      assert.equal(r.status, 202);
      const imageId = String(r.body['os-volume_upload_image'].image_id);
      await eventually(
        async () => (await at('GET', `/image/v2/images/${imageId}`)).status === 404,
        60_000,
        'the image of the failed upload to be deleted',
      );
      await eventually(
        async () =>
          (await at('GET', `/volume/v3/${p}/volumes/${String(v.id)}`)).body.volume.status === 'available',
        10_000,
        'the volume to be available again',
      );
      const msgs = (await at('GET', `/volume/v3/${p}/messages`)).body.messages as any[];
      const m = msgs.find((x) => x.resource_uuid === v.id);
      assert.equal(m?.event_id, 'VOLUME_VOLUME_003_004');
    } finally {
      await small.close();
    }
  });
});
