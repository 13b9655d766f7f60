/**
 * @module Volume backups over HTTP against one real site (file volumes, file backup store): the
 * answers' field sets per microversion, full and incremental backups, from a snapshot, force for an
 * in-use volume, restore to a new or an existing volume (with the volume's metadata), export and
 * import of a record, reset_status, quotas, and the 400s for what Cinder refuses.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { ADMIN, eventually, passwordLogin, startLocalCloud } from './support/cloud.ts';
import type { LocalCloud } from './support/cloud.ts';

const sorted = (o: object) => Object.keys(o).sort();
const DETAIL = [
  'availability_zone',
  'container',
  'created_at',
  'data_timestamp',
  'description',
  'fail_reason',
  'has_dependent_backups',
  'id',
  'is_incremental',
  'links',
  'name',
  'object_count',
  'size',
  'snapshot_id',
  'status',
  'updated_at',
  'volume_id',
];

describe('volume backups', () => {
  let cloud: LocalCloud;
  let token: string;
  let project: string;
  let V: string;
  const call = async (method: string, path: string, body?: unknown, mv = '3.0') => {
    const res = await fetch(`${cloud.url()}${path}`, {
      method,
      headers: {
        'x-auth-token': token,
        'openstack-api-version': `volume ${mv}`,
        ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
      },
      ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
    });
    const text = await res.text();
    return { status: res.status, body: text ? (JSON.parse(text) as any) : undefined };
  };
  const newVolume = async (extra: object = {}) => {
    const r = await call('POST', `${V}/volumes`, { volume: { size: 1, ...extra } });
    assert.equal(r.status, 202, JSON.stringify(r.body));
    return r.body.volume;
  };
  /** Waits until the resource at `path` (`{key: {status}}`) has `status`: backups and restores are asynchronous. */
  const reaches = (path: string, key: string, status: string) =>
    eventually(
      async () => (await call('GET', path)).body?.[key]?.status === status,
      30_000,
      `${path} ${status}`,
    );
  const backup = async (o: object, mv = '3.0') => {
    const r = await call('POST', `${V}/backups`, { backup: o }, mv);
    assert.equal(r.status, 202, JSON.stringify(r.body));
    await reaches(`${V}/backups/${r.body.backup.id}`, 'backup', 'available');
    return r.body.backup;
  };
  const restored = async (backupId: string, volumeId: string) => {
    await reaches(`${V}/backups/${backupId}`, 'backup', 'available');
    await reaches(`${V}/volumes/${volumeId}`, 'volume', 'available');
  };
  const show = async (id: string, mv = '3.0') =>
    (await call('GET', `${V}/backups/${id}`, undefined, mv)).body.backup;

  before(async () => {
    cloud = await startLocalCloud({ sites: 1 });
    const res = await passwordLogin(
      cloud.url(),
      { name: ADMIN.adminUser, password: ADMIN.adminPassword },
      { project: { name: ADMIN.adminProject, domain: { id: 'default' } } },
    );
    token = res.headers.get('x-subject-token')!;
    project = ((await res.json()) as { token: { project: { id: string } } }).token.project.id;
    V = `/volume/v3/${project}`;
  });
  after(async () => cloud?.close());

  it('create answers id, name and links; show and detail carry the fields of each microversion', async () => {
    const v = await newVolume({ metadata: { k: 'v' } });
    const b = await backup({ volume_id: v.id, name: 'b1', description: 'd', container: 'c' });
    assert.deepEqual(sorted(b), ['id', 'links', 'name']);
    const s = await show(b.id);
    assert.deepEqual(sorted(s), DETAIL);
    assert.equal(s.status, 'available');
    assert.equal(s.container, 'c');
    assert.equal(s.is_incremental, false);
    assert.ok(s.object_count >= 1);
    const at356 = await show(b.id, '3.56');
    assert.deepEqual(
      sorted(at356),
      [...DETAIL, 'metadata', 'os-backup-project-attr:project_id', 'user_id'].sort(),
    );
    assert.equal(at356['os-backup-project-attr:project_id'], project);
    assert.equal((await call('GET', `${V}/volumes/${v.id}`)).body.volume.status, 'available');
    const list = (await call('GET', `${V}/backups`)).body.backups;
    assert.deepEqual(sorted(list.find((x: any) => x.id === b.id)), ['id', 'links', 'name']);
    assert.ok((await call('GET', `${V}/backups/detail`)).body.backups.some((x: any) => x.id === b.id));
    // Update is 3.9 on; metadata 3.43 on.
    assert.equal((await call('PUT', `${V}/backups/${b.id}`, { backup: { name: 'x' } })).status, 404);
    const upd = await call(
      'PUT',
      `${V}/backups/${b.id}`,
      { backup: { name: 'b1x', metadata: { a: 'b' } } },
      '3.43',
    );
    assert.equal(upd.status, 200);
    assert.deepEqual(sorted(upd.body.backup), ['id', 'links', 'name']);
    assert.deepEqual((await show(b.id, '3.43')).metadata, { a: 'b' });
  });

  it('incremental needs a full backup; a backup with dependents is not deleted', async () => {
    const v = await newVolume();
    assert.equal(
      (await call('POST', `${V}/backups`, { backup: { volume_id: v.id, incremental: true } })).status,
      400,
    );
    const full = await backup({ volume_id: v.id });
    const inc = await backup({ volume_id: v.id, incremental: true });
    assert.equal((await show(inc.id)).is_incremental, true);
    assert.equal((await show(full.id)).has_dependent_backups, true);
    assert.equal((await call('DELETE', `${V}/backups/${full.id}`)).status, 400);
    assert.equal((await call('DELETE', `${V}/backups/${inc.id}`)).status, 202);
    assert.equal((await call('DELETE', `${V}/backups/${full.id}`)).status, 202);
    assert.equal((await call('GET', `${V}/backups/${full.id}`)).status, 404);
  });

  it('from a snapshot; an in-use volume needs force', async () => {
    const v = await newVolume();
    const snap = (await call('POST', `${V}/snapshots`, { snapshot: { volume_id: v.id } })).body.snapshot;
    const b = await backup({ volume_id: v.id, snapshot_id: snap.id });
    const s = await show(b.id);
    assert.equal(s.snapshot_id, snap.id);
    assert.equal(s.volume_id, v.id);
    assert.equal((await call('GET', `${V}/snapshots/${snap.id}`)).body.snapshot.status, 'available');
    await call('POST', `${V}/volumes/${v.id}/action`, { 'os-reset_status': { status: 'in-use' } });
    assert.equal((await call('POST', `${V}/backups`, { backup: { volume_id: v.id } })).status, 400);
    await backup({ volume_id: v.id, force: true });
    assert.equal((await call('GET', `${V}/volumes/${v.id}`)).body.volume.status, 'in-use');
  });

  it('restores into a new volume with the metadata and bootable flag, or into an existing one', async () => {
    const v = await newVolume({ metadata: { m1: 'x' } });
    await call('POST', `${V}/volumes/${v.id}/action`, { 'os-set_bootable': { bootable: true } });
    const b = await backup({ volume_id: v.id });
    const r = await call('POST', `${V}/backups/${b.id}/restore`, { restore: {} });
    assert.equal(r.status, 202, JSON.stringify(r.body));
    assert.deepEqual(sorted(r.body.restore), ['backup_id', 'volume_id', 'volume_name']);
    assert.equal(r.body.restore.volume_name, `restore_backup_${b.id}`);
    await restored(b.id, r.body.restore.volume_id);
    const nv = (await call('GET', `${V}/volumes/${r.body.restore.volume_id}`)).body.volume;
    assert.equal(nv.status, 'available');
    assert.equal(nv.metadata.m1, 'x');
    assert.equal(nv.bootable, 'true');
    assert.equal((await show(b.id)).status, 'available');
    const target = await newVolume({ name: 'target' });
    const r2 = await call('POST', `${V}/backups/${b.id}/restore`, { restore: { volume_id: target.id } });
    assert.equal(r2.status, 202);
    assert.equal(r2.body.restore.volume_id, target.id);
    assert.equal(r2.body.restore.volume_name, 'target');
    await restored(b.id, target.id);
    await call('POST', `${V}/volumes/${target.id}/action`, { 'os-reset_status': { status: 'error' } });
    assert.equal(
      (await call('POST', `${V}/backups/${b.id}/restore`, { restore: { volume_id: target.id } })).status,
      400,
    );
  });

  it('export_record and import_record (admin), reset_status', async () => {
    const v = await newVolume();
    const b = await backup({ volume_id: v.id, name: 'exp' });
    const exp = await call('GET', `${V}/backups/${b.id}/export_record`);
    assert.equal(exp.status, 200);
    const rec = exp.body['backup-record'];
    assert.ok(rec.backup_service.startsWith('cinder.backup.drivers'));
    const again = await call('POST', `${V}/backups/import_record`, { 'backup-record': rec });
    assert.equal(again.status, 400, 'the same id exists');
    const data = JSON.parse(Buffer.from(rec.backup_url, 'base64').toString());
    const newId = '0b5cbd8a-7e6e-4b8e-9d2f-3d6f1a1e9c01';
    const url = Buffer.from(JSON.stringify({ ...data, id: newId })).toString('base64');
    const imp = await call('POST', `${V}/backups/import_record`, {
      'backup-record': { backup_service: rec.backup_service, backup_url: url },
    });
    assert.equal(imp.status, 201, JSON.stringify(imp.body));
    assert.equal(imp.body.backup.id, newId);
    assert.equal((await show(newId)).status, 'available');
    const bad = await call('POST', `${V}/backups/import_record`, {
      'backup-record': { backup_service: rec.backup_service, backup_url: 'bm90IGpzb24=' },
    });
    assert.equal(bad.status, 400);
    // Both records share the bytes: deleting one leaves the other restorable.
    assert.equal((await call('DELETE', `${V}/backups/${newId}`)).status, 202);
    const r = await call('POST', `${V}/backups/${b.id}/restore`, { restore: {} });
    assert.equal(r.status, 202);
    await restored(b.id, r.body.restore.volume_id);

    const reset = await call('POST', `${V}/backups/${b.id}/action`, {
      'os-reset_status': { status: 'error' },
    });
    assert.equal(reset.status, 202);
    assert.equal((await show(b.id)).status, 'error');
    assert.equal(
      (await call('POST', `${V}/backups/${b.id}/action`, { 'os-reset_status': { status: 'creating' } }))
        .status,
      400,
    );
    assert.equal((await call('GET', `${V}/backups/${b.id}/export_record`)).status, 400);
  });

  it('quotas count backups; an over-quota backup writes nothing', async () => {
    await call('PUT', `${V}/os-quota-sets/${project}`, { quota_set: { backups: 0 } });
    try {
      const v = await newVolume();
      const before = (await call('GET', `${V}/backups`)).body.backups.length;
      assert.equal((await call('POST', `${V}/backups`, { backup: { volume_id: v.id } })).status, 413);
      assert.equal((await call('GET', `${V}/backups`)).body.backups.length, before);
      assert.equal((await call('GET', `${V}/volumes/${v.id}`)).body.volume.status, 'available');
      const usage = (await call('GET', `${V}/os-quota-sets/${project}?usage=True`)).body.quota_set;
      assert.equal(usage.backups.in_use, before);
    } finally {
      await call('PUT', `${V}/os-quota-sets/${project}`, { quota_set: { backups: -1 } });
    }
  });
});
