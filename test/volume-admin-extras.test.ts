/**
 * @module Block Storage, issue 15 part A, over HTTP on two sites: volume type encryption specs
 * (Cinder's shapes, stored with the type at its site, no real encryption), the `default` quota class
 * (written at the membership authority, used as every project's defaults, per-type keys), user
 * messages (a volume whose type no backend satisfies ends in `error` with one, as Cinder's scheduler
 * does), and a volume from a deactivated image refused with a 400.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { eventually, startLocalCloud } from './support/cloud.ts';
import type { LocalCloud } from './support/cloud.ts';

const sorted = (o: object) => Object.keys(o).sort();

describe('volume type encryption, quota classes, user messages (two sites)', () => {
  let cloud: LocalCloud;
  const tokens: string[] = [];
  let project: string;
  const V = () => `/volume/v3/${project}`;
  /** A call to site i (0 = site-a, the founder and membership authority). */
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
  const mv = (v: string) => ({ 'openstack-api-version': `volume ${v}` });

  before(async () => {
    cloud = await startLocalCloud({ sites: 2 });
    for (const i of [0, 1]) tokens.push(await cloud.adminToken(i));
    const me = await fetch(`${cloud.url()}/identity/v3/auth/tokens`, {
      headers: { 'x-auth-token': tokens[0]!, 'x-subject-token': tokens[0]! },
    });
    project = ((await me.json()) as { token: { project: { id: string } } }).token.project.id;
  });
  after(async () => cloud?.close());

  it('encryption specs: create, show, item, update, delete, as Cinder answers; forwarded to the type site', async () => {
    const t = (await call(0, 'POST', `${V()}/types`, { volume_type: { name: 'luks' } })).body.volume_type;
    await cloud.converged();
    const E = `${V()}/types/${t.id}/encryption`;
    assert.deepEqual((await call(1, 'GET', E)).body, {});
    const spec = {
      provider: 'LuksEncryptor',
      key_size: 256,
      cipher: 'aes-xts-plain64',
      control_location: 'front-end',
    };
    const c = await call(1, 'POST', E, { encryption: spec });
    assert.equal(c.status, 200, JSON.stringify(c.body));
    assert.equal(c.owner, 'site-a');
    assert.deepEqual(sorted(c.body.encryption), [...sorted(spec), 'encryption_id', 'volume_type_id'].sort());
    assert.equal(c.body.encryption.volume_type_id, t.id);
    assert.equal((await call(0, 'POST', E, { encryption: spec })).status, 400, 'a second one');
    const shown = (await call(0, 'GET', E)).body;
    assert.deepEqual(sorted(shown), [
      'cipher',
      'control_location',
      'created_at',
      'deleted',
      'deleted_at',
      'encryption_id',
      'key_size',
      'provider',
      'updated_at',
      'volume_type_id',
    ]);
    assert.equal(shown.key_size, 256);
    const upd = { key_size: 128, provider: 'SomeProvider', control_location: 'back-end' };
    const u = await call(0, 'PUT', `${E}/${String(shown.encryption_id)}`, { encryption: upd });
    assert.equal(u.status, 200);
    assert.deepEqual(u.body, { encryption: upd });
    assert.deepEqual((await call(0, 'GET', `${E}/provider`)).body, { provider: 'SomeProvider' });
    assert.equal((await call(0, 'GET', `${E}/nope`)).status, 404);
    // Bad input is a 400, never a half-written row.
    assert.equal(
      (await call(0, 'POST', `${V()}/types/${t.id}/encryption`, { encryption: { provider: 'p' } })).status,
      400,
    );
    for (const bad of [
      { control_location: 'middle' },
      { key_size: -1 },
      { key_size: 'big' },
      { colour: 'red' },
    ])
      assert.equal((await call(0, 'PUT', `${E}/x`, { encryption: bad })).status, 400, JSON.stringify(bad));
    assert.equal((await call(0, 'GET', `${E}/provider`)).body.provider, 'SomeProvider');
    // No key manager: a volume of an encrypted type is refused, not made unencrypted.
    const v = await call(0, 'POST', `${V()}/volumes`, { volume: { size: 1, volume_type: t.id } });
    assert.equal(v.status, 400);
    assert.match(v.body.badRequest.message, /does not encrypt/);
    assert.equal((await call(1, 'DELETE', `${E}/provider`)).status, 202);
    assert.deepEqual((await call(0, 'GET', E)).body, {});
    assert.equal((await call(0, 'DELETE', `${E}/provider`)).status, 404);
    // A type in use cannot get encryption specs.
    const plain = (await call(0, 'POST', `${V()}/types`, { volume_type: { name: 'plain' } })).body
      .volume_type;
    assert.equal(
      (await call(0, 'POST', `${V()}/volumes`, { volume: { size: 1, volume_type: plain.id } })).status,
      202,
    );
    const inUse = await call(0, 'POST', `${V()}/types/${plain.id}/encryption`, { encryption: spec });
    assert.equal(inUse.status, 400);
    assert.match(inUse.body.badRequest.message, /in use/);
  });

  it('the default quota class: updated at the authority from any site, the defaults of every project', async () => {
    const Q = `${V()}/os-quota-class-sets/default`;
    const before = (await call(1, 'GET', Q)).body.quota_class_set;
    assert.equal(before.id, 'default');
    assert.equal(before.volumes, 10);
    const t = (await call(1, 'POST', `${V()}/types`, { volume_type: { name: 'quota-typed' } })).body
      .volume_type;
    await cloud.converged();
    assert.equal((await call(0, 'GET', Q)).body.quota_class_set['volumes_quota-typed'], -1);
    const change = { volumes: 11, gigabytes: 1001, 'volumes_quota-typed': 1, 'gigabytes_quota-typed': 7 };
    const u = await call(1, 'PUT', Q, { quota_class_set: change });
    assert.equal(u.status, 200, JSON.stringify(u.body));
    assert.equal(u.owner, 'site-a', 'forwarded to the membership authority');
    for (const [k, v] of Object.entries(change)) assert.equal(u.body.quota_class_set[k], v, k);
    assert.ok(!('id' in u.body.quota_class_set));
    await cloud.converged();
    for (const i of [0, 1]) {
      const d = (await call(i, 'GET', `${V()}/os-quota-sets/${project}/defaults`)).body.quota_set;
      for (const [k, v] of Object.entries(change)) assert.equal(d[k], v, `site ${i} ${k}`);
      const other = (await call(i, 'GET', `${V()}/os-quota-sets/some-new-project/defaults`)).body.quota_set;
      assert.equal(other.volumes, 11);
    }
    // The per-type limit is enforced: one volume of the type, not two.
    const mk = () => call(1, 'POST', `${V()}/volumes`, { volume: { size: 1, volume_type: t.id } });
    assert.equal((await mk()).status, 202);
    const over = await mk();
    assert.equal(over.status, 413);
    assert.match(over.body.overLimit.message, /volumes_quota-typed/);
    const usage = (await call(1, 'GET', `${V()}/os-quota-sets/${project}?usage=True`)).body.quota_set;
    assert.deepEqual(usage['volumes_quota-typed'], { limit: 1, in_use: 1, reserved: 0, allocated: 0 });
    // Bad keys and values are 400s.
    assert.equal((await call(0, 'PUT', Q, { quota_class_set: { bogus: 1 } })).status, 400);
    assert.equal((await call(0, 'PUT', Q, { quota_class_set: { volumes: -2 } })).status, 400);
    assert.equal((await call(0, 'PUT', Q, { quota_class_set: { volumes: 'many' } })).status, 400);
    // Back to the built-in defaults for the other tests.
    const back = await call(0, 'PUT', Q, {
      quota_class_set: { volumes: 10, gigabytes: 1000, 'volumes_quota-typed': -1 },
    });
    assert.equal(back.status, 200);
  });

  it('user messages: an unschedulable volume ends in error with a message (3.3); show, list, delete', async () => {
    const bogus = (
      await call(0, 'POST', `${V()}/types`, {
        volume_type: {
          name: 'bogus',
          extra_specs: { storage_protocol: 'carrier-pigeon', vendor_name: 'nobody' },
        },
      })
    ).body.volume_type;
    await cloud.converged();
    const v = await call(1, 'POST', `${V()}/volumes`, { volume: { size: 1, volume_type: bogus.id } });
    assert.equal(v.status, 202);
    assert.equal(v.body.volume.status, 'error');
    // The type's specs that a backend reports and matches are fine.
    const fine = (
      await call(0, 'POST', `${V()}/types`, {
        volume_type: {
          name: 'fine',
          extra_specs: { storage_protocol: 'iSCSI', vendor_name: 'Open Source', 'RESKEY:x': 'y' },
        },
      })
    ).body.volume_type;
    const ok = await call(0, 'POST', `${V()}/volumes`, { volume: { size: 1, volume_type: fine.id } });
    assert.equal(ok.body.volume.status, 'available');

    assert.equal((await call(1, 'GET', `${V()}/messages`, undefined, mv('3.0'))).status, 404);
    const list = (await call(1, 'GET', `${V()}/messages`, undefined, mv('3.3'))).body.messages as any[];
    const m = list.find((x) => x.resource_uuid === v.body.volume.id);
    assert.ok(m, 'a message for the volume');
    assert.deepEqual(sorted(m), [
      'created_at',
      'event_id',
      'guaranteed_until',
      'id',
      'links',
      'message_level',
      'request_id',
      'resource_type',
      'resource_uuid',
      'user_message',
    ]);
    assert.equal(m.event_id, 'VOLUME_VOLUME_001_003');
    assert.equal(m.message_level, 'ERROR');
    assert.match(m.user_message, /Could not find any available weighted backend/);
    await cloud.converged();
    const shown = await call(0, 'GET', `${V()}/messages/${String(m.id)}`, undefined, mv('3.3'));
    assert.equal(shown.body.message.id, m.id);
    const del = await call(0, 'DELETE', `${V()}/messages/${String(m.id)}`, undefined, mv('3.3'));
    assert.equal(del.status, 204);
    assert.equal(del.owner, 'site-b', 'forwarded to the site where it happened');
    await eventually(
      async () =>
        (await call(0, 'GET', `${V()}/messages/${String(m.id)}`, undefined, mv('3.3'))).status === 404,
      5000,
      'the delete to replicate',
    );
    // The volume in error can be deleted.
    assert.equal((await call(1, 'DELETE', `${V()}/volumes/${String(v.body.volume.id)}`)).status, 202);
  });

  it('os-force_delete removes a snapshot in creating (a plain delete refuses it)', async () => {
    const v = (await call(0, 'POST', `${V()}/volumes`, { volume: { size: 1 } })).body.volume;
    const snap = (await call(0, 'POST', `${V()}/snapshots`, { snapshot: { volume_id: v.id } })).body.snapshot;
    const S = `${V()}/snapshots/${String(snap.id)}`;
    assert.equal(
      (await call(0, 'POST', `${S}/action`, { 'os-reset_status': { status: 'creating' } })).status,
      202,
    );
    assert.equal((await call(0, 'DELETE', S)).status, 400);
    assert.equal((await call(0, 'POST', `${S}/action`, { 'os-force_delete': {} })).status, 202);
    assert.equal((await call(0, 'GET', S)).status, 404);
  });

  it('a volume from a deactivated image is a 400', async () => {
    const img = await call(0, 'POST', '/image/v2/images', {
      name: 'deact',
      disk_format: 'raw',
      container_format: 'bare',
    });
    const up = await fetch(`${cloud.url()}/image/v2/images/${String(img.body.id)}/file`, {
      method: 'PUT',
      headers: { 'x-auth-token': tokens[0]!, 'content-type': 'application/octet-stream' },
      body: Buffer.from('bytes'),
    });
    assert.equal(up.status, 204);
    const okVol = await call(0, 'POST', `${V()}/volumes`, { volume: { size: 1, imageRef: img.body.id } });
    assert.equal(okVol.status, 202);
    assert.equal(
      (await call(0, 'POST', `/image/v2/images/${String(img.body.id)}/actions/deactivate`)).status,
      204,
    );
    const r = await call(0, 'POST', `${V()}/volumes`, { volume: { size: 1, imageRef: img.body.id } });
    assert.equal(r.status, 400);
    assert.match(r.body.badRequest.message, /not active/);
  });
});
