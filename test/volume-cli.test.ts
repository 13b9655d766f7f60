/**
 * @module The block storage API through Debian's real `openstack` CLI: volumes (create, list, show,
 * extend, delete), types, snapshots, volumes from snapshots, quotas, and the refusals (a volume with
 * snapshots, a shrink).
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { startLocalCloud } from './support/cloud.ts';
import type { LocalCloud } from './support/cloud.ts';

describe('volume API through the openstack CLI', () => {
  let cloud: LocalCloud;
  before(async () => {
    cloud = await startLocalCloud({ sites: 2 });
  });
  after(async () => cloud?.close());

  it('creates, lists, shows, extends and deletes a volume', async () => {
    const v = await cloud.osJson(['volume', 'create', '--size', '1', 'vol1']);
    assert.equal(v.name, 'vol1');
    assert.equal(v.size, 1);
    assert.equal(v.availability_zone, 'site-a');
    const list = await cloud.osJson(['volume', 'list']);
    assert.ok(
      list.some((x: { Name: string; Status: string }) => x.Name === 'vol1' && x.Status === 'available'),
    );
    assert.equal((await cloud.os(['volume', 'set', '--size', '3', 'vol1'])).code, 0);
    const shown = await cloud.osJson(['volume', 'show', 'vol1']);
    assert.equal(shown.size, 3);
    const shrink = await cloud.os(['volume', 'set', '--size', '2', 'vol1']);
    assert.notEqual(shrink.code, 0);
    assert.equal((await cloud.os(['volume', 'delete', 'vol1'])).code, 0);
    const gone = await cloud.os(['volume', 'show', 'vol1']);
    assert.notEqual(gone.code, 0);
  });

  it('volume types: the default type and a new one', async () => {
    const types = await cloud.osJson(['volume', 'type', 'list']);
    assert.ok(types.some((t: { Name: string }) => t.Name === '__DEFAULT__'));
    const t = await cloud.osJson(['volume', 'type', 'create', '--description', 'fast disks', 'fast']);
    assert.equal(t.name, 'fast');
    const v = await cloud.osJson(['volume', 'create', '--size', '1', '--type', 'fast', 'typed']);
    assert.equal(v.type, 'fast');
    const busy = await cloud.os(['volume', 'type', 'delete', 'fast']);
    assert.notEqual(busy.code, 0);
    assert.equal((await cloud.os(['volume', 'delete', 'typed'])).code, 0);
    assert.equal((await cloud.os(['volume', 'type', 'delete', 'fast'])).code, 0);
  });

  it('snapshots, a volume from a snapshot, and no delete of a volume that has snapshots', async () => {
    const v = await cloud.osJson(['volume', 'create', '--size', '1', 'src']);
    const s = await cloud.osJson(['volume', 'snapshot', 'create', '--volume', 'src', 'snap1']);
    assert.equal(s.name, 'snap1');
    const snaps = await cloud.osJson(['volume', 'snapshot', 'list']);
    assert.equal(snaps.length, 1);
    const shown = await cloud.osJson(['volume', 'snapshot', 'show', 'snap1']);
    assert.equal(shown.volume_id, v.id);
    const fromSnap = await cloud.osJson(['volume', 'create', '--snapshot', 'snap1', '--size', '2', 'copy']);
    assert.equal(fromSnap.snapshot_id, s.id);
    const refused = await cloud.os(['volume', 'delete', 'src']);
    assert.notEqual(refused.code, 0);
    assert.match(refused.stderr, /snapshot/i);
    assert.equal((await cloud.os(['volume', 'snapshot', 'delete', 'snap1'])).code, 0);
    assert.equal((await cloud.os(['volume', 'delete', 'src', 'copy'])).code, 0);
  });

  it('a create naming another site as availability zone is made there', async () => {
    const v = await cloud.osJson([
      'volume',
      'create',
      '--size',
      '1',
      '--availability-zone',
      'site-b',
      'remote',
    ]);
    assert.equal(v.availability_zone, 'site-b');
    await cloud.converged();
    const row = cloud.fed.sites[0]!.ctx.store.db.prepare('SELECT owner FROM vol_volumes WHERE id = ?').get(
      v.id,
    ) as { owner: string };
    assert.equal(row.owner, 'site-b');
    assert.equal((await cloud.os(['volume', 'delete', 'remote'])).code, 0);
  });

  it('quotas: os-quota-sets show and set', async () => {
    const token = await cloud.adminToken();
    const project = (await cloud.osJson(['project', 'show', 'admin'])).id as string;
    const base = `${cloud.url()}/volume/v3/${project}/os-quota-sets/${project}`;
    const put = await fetch(base, {
      method: 'PUT',
      headers: { 'x-auth-token': token, 'content-type': 'application/json' },
      body: JSON.stringify({ quota_set: { volumes: 1 } }),
    });
    assert.equal(put.status, 200);
    await cloud.osJson(['volume', 'create', '--size', '1', 'q1']);
    const over = await cloud.os(['volume', 'create', '--size', '1', 'q2']);
    assert.notEqual(over.code, 0);
    const got = (await (
      await fetch(`${base}?usage=True`, { headers: { 'x-auth-token': token } })
    ).json()) as {
      quota_set: { volumes: { limit: number; in_use: number } };
    };
    assert.deepEqual([got.quota_set.volumes.limit, got.quota_set.volumes.in_use], [1, 1]);
    await fetch(base, { method: 'DELETE', headers: { 'x-auth-token': token } });
    assert.equal((await cloud.os(['volume', 'delete', 'q1'])).code, 0);
  });
});
