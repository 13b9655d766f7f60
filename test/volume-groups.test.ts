/**
 * @module Generic volume groups and group snapshots over HTTP against one real site (Cinder 3.13+):
 * the answers' field sets per microversion (Tempest's schemas allow no extra field), volumes joining
 * and leaving, group snapshots with their volume snapshots, groups made from a group or a group
 * snapshot, reset_status, and the 400s for what Cinder refuses (no half-written rows).
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { ADMIN, eventually, passwordLogin, startLocalCloud } from './support/cloud.ts';
import type { LocalCloud } from './support/cloud.ts';

const sorted = (o: object) => Object.keys(o).sort();

describe('volume groups and group snapshots (Cinder 3.13+)', () => {
  let cloud: LocalCloud;
  let token: string;
  let V: string;
  const call = async (method: string, path: string, body?: unknown, mv = '3.20') => {
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
  let volumeType: string;
  let groupType: string;
  const newGroup = async (name: string) => {
    const r = await call('POST', `${V}/groups`, {
      group: { name, group_type: groupType, volume_types: [volumeType] },
    });
    assert.equal(r.status, 202, JSON.stringify(r.body));
    assert.deepEqual(sorted(r.body.group), ['id', 'name']);
    return r.body.group.id as string;
  };
  const newVolume = async (groupId?: string) => {
    const r = await call('POST', `${V}/volumes`, {
      volume: { size: 1, volume_type: volumeType, ...(groupId ? { group_id: groupId } : {}) },
    });
    assert.equal(r.status, 202, JSON.stringify(r.body));
    return r.body.volume;
  };
  const groupOf = async (volumeId: string) =>
    (await call('GET', `${V}/volumes/${volumeId}`)).body.volume.group_id;

  before(async () => {
    cloud = await startLocalCloud({ sites: 1 });
    const res = await passwordLogin(
      cloud.url(),
      { name: ADMIN.adminUser, password: ADMIN.adminPassword },
      { project: { name: ADMIN.adminProject, domain: { id: 'default' } } },
    );
    token = res.headers.get('x-subject-token')!;
    const project = ((await res.json()) as { token: { project: { id: string } } }).token.project.id;
    V = `/volume/v3/${project}`;
    volumeType = (await call('POST', `${V}/types`, { volume_type: { name: 'gvt' } })).body.volume_type.id;
    groupType = (await call('POST', `${V}/group_types`, { group_type: { name: 'ggt' } })).body.group_type.id;
  });
  after(async () => cloud?.close());

  it('create, show and list with the fields of each microversion; below 3.13 there are no groups', async () => {
    const id = await newGroup('g1');
    const at313 = (await call('GET', `${V}/groups/${id}`, undefined, '3.13')).body.group;
    assert.deepEqual(sorted(at313), [
      'availability_zone',
      'created_at',
      'description',
      'group_type',
      'id',
      'name',
      'status',
      'volume_types',
    ]);
    assert.equal(at313.status, 'available');
    assert.deepEqual(at313.volume_types, [volumeType]);
    const at358 = (await call('GET', `${V}/groups/${id}?list_volume=True`, undefined, '3.58')).body.group;
    for (const k of ['group_snapshot_id', 'source_group_id', 'volumes', 'replication_status', 'project_id'])
      assert.ok(k in at358, k);
    const list = (await call('GET', `${V}/groups`)).body.groups;
    assert.deepEqual(sorted(list.find((g: any) => g.id === id)), ['id', 'name']);
    assert.ok((await call('GET', `${V}/groups/detail`)).body.groups.some((g: any) => g.id === id));
    assert.equal((await call('GET', `${V}/groups`, undefined, '3.12')).status, 404);
    // Missing or unknown types: 400 and 404, nothing written.
    const before = (await call('GET', `${V}/groups`)).body.groups.length;
    assert.equal(
      (await call('POST', `${V}/groups`, { group: { name: 'x', volume_types: [volumeType] } })).status,
      400,
    );
    assert.equal(
      (await call('POST', `${V}/groups`, { group: { group_type: groupType, volume_types: ['nope'] } }))
        .status,
      404,
    );
    assert.equal((await call('GET', `${V}/groups`)).body.groups.length, before);
    assert.equal((await call('DELETE', `${V}/group_types/${groupType}`)).status, 400, 'a group has it');
  });

  it('volumes join at create or by update, leave by update; a grouped volume is not deleted alone', async () => {
    const id = await newGroup('g2');
    const v1 = await newVolume(id);
    assert.equal(v1.group_id, id, 'the create answer names the group (Tempest checks it)');
    assert.equal(await groupOf(v1.id), id);
    const v2 = await newVolume();
    assert.equal((await call('PUT', `${V}/groups/${id}`, { group: { add_volumes: v2.id } })).status, 202);
    assert.equal(await groupOf(v2.id), id);
    const upd = await call('PUT', `${V}/groups/${id}`, {
      group: { name: 'renamed', description: 'd', remove_volumes: v2.id },
    });
    assert.equal(upd.status, 202);
    assert.equal(await groupOf(v2.id), null);
    const shown = (await call('GET', `${V}/groups/${id}`)).body.group;
    assert.equal(shown.name, 'renamed');
    assert.equal(shown.description, 'd');
    assert.equal((await call('PUT', `${V}/groups/${id}`, { group: {} })).status, 400);
    assert.equal((await call('PUT', `${V}/groups/${id}`, { group: { remove_volumes: v2.id } })).status, 400);
    assert.equal((await call('DELETE', `${V}/volumes/${v1.id}`)).status, 400);
    // Deleting a group with volumes needs delete-volumes.
    assert.equal((await call('POST', `${V}/groups/${id}/action`, { delete: {} })).status, 400);
    assert.equal(
      (await call('POST', `${V}/groups/${id}/action`, { delete: { 'delete-volumes': true } })).status,
      202,
    );
    assert.equal((await call('GET', `${V}/groups/${id}`)).status, 404);
    assert.equal((await call('GET', `${V}/volumes/${v1.id}`)).status, 404);
    assert.equal((await call('GET', `${V}/volumes/${v2.id}`)).status, 200);
  });

  it('reset_status (3.20) takes Cinder group statuses only', async () => {
    const id = await newGroup('g3');
    for (const status of ['creating', 'available', 'error']) {
      const r = await call('POST', `${V}/groups/${id}/action`, { reset_status: { status } });
      assert.equal(r.status, 202);
      assert.equal((await call('GET', `${V}/groups/${id}`)).body.group.status, status);
    }
    assert.equal(
      (await call('POST', `${V}/groups/${id}/action`, { reset_status: { status: 'x' } })).status,
      400,
    );
    assert.equal(
      (await call('POST', `${V}/groups/${id}/action`, { reset_status: { status: 'available' } }, '3.19'))
        .status,
      400,
    );
  });

  it('group snapshots snapshot every volume; groups come from a group snapshot or a group', async () => {
    const id = await newGroup('g4');
    const v = await newVolume(id);
    const created = await call('POST', `${V}/group_snapshots`, {
      group_snapshot: { group_id: id, name: 'gs' },
    });
    assert.equal(created.status, 202, JSON.stringify(created.body));
    assert.deepEqual(sorted(created.body.group_snapshot), ['group_type_id', 'id', 'name']);
    const gsId = created.body.group_snapshot.id;
    const gs = (await call('GET', `${V}/group_snapshots/${gsId}`)).body.group_snapshot;
    assert.deepEqual(sorted(gs), [
      'created_at',
      'description',
      'group_id',
      'group_type_id',
      'id',
      'name',
      'status',
    ]);
    assert.equal(gs.status, 'available');
    const snaps = (await call('GET', `${V}/snapshots/detail`, undefined, '3.14')).body.snapshots.filter(
      (s: any) => s.group_snapshot_id === gsId,
    );
    assert.equal(snaps.length, 1);
    assert.equal(snaps[0].volume_id, v.id);
    assert.ok(
      (await call('GET', `${V}/group_snapshots/detail`)).body.group_snapshots.some((s: any) => s.id === gsId),
    );

    const fromSnap = await call('POST', `${V}/groups/action`, {
      'create-from-src': { group_snapshot_id: gsId, name: 'from-snap' },
    });
    assert.equal(fromSnap.status, 202, JSON.stringify(fromSnap.body));
    const g2 = fromSnap.body.group.id;
    const g2body = (await call('GET', `${V}/groups/${g2}`)).body.group;
    assert.equal(g2body.status, 'available');
    assert.equal(g2body.group_snapshot_id, gsId);
    const inG2 = (await call('GET', `${V}/volumes/detail`, undefined, '3.13')).body.volumes.filter(
      (x: any) => x.group_id === g2,
    );
    assert.equal(inG2.length, 1);
    assert.equal(inG2[0].snapshot_id, snaps[0].id);
    assert.equal(inG2[0].status, 'available');

    const fromGroup = await call('POST', `${V}/groups/action`, {
      'create-from-src': { source_group_id: id },
    });
    assert.equal(fromGroup.status, 202);
    const g3 = fromGroup.body.group.id;
    assert.equal((await call('GET', `${V}/groups/${g3}`)).body.group.source_group_id, id);
    assert.equal(
      (
        await call('POST', `${V}/groups/action`, {
          'create-from-src': { source_group_id: id, group_snapshot_id: gsId },
        })
      ).status,
      400,
    );

    // A group with group snapshots is not deleted; the group snapshot's delete takes its snapshots.
    assert.equal(
      (await call('POST', `${V}/groups/${id}/action`, { delete: { 'delete-volumes': true } })).status,
      400,
    );
    for (const status of ['creating', 'error', 'available']) {
      const r = await call('POST', `${V}/group_snapshots/${gsId}/action`, { reset_status: { status } });
      assert.equal(r.status, 202);
      assert.equal((await call('GET', `${V}/group_snapshots/${gsId}`)).body.group_snapshot.status, status);
    }
    // The volumes made from its snapshots are another group's: delete that group first.
    assert.equal(
      (await call('POST', `${V}/groups/${g2}/action`, { delete: { 'delete-volumes': true } })).status,
      202,
    );
    assert.equal((await call('DELETE', `${V}/group_snapshots/${gsId}`)).status, 202);
    assert.equal((await call('GET', `${V}/group_snapshots/${gsId}`)).status, 404);
    assert.equal((await call('GET', `${V}/snapshots/${snaps[0].id}`)).status, 404);
    assert.equal(
      (await call('POST', `${V}/groups/${id}/action`, { delete: { 'delete-volumes': true } })).status,
      202,
    );
  });
});

describe('groups and backups across two sites: they live where their volumes are', () => {
  let cloud: LocalCloud;
  let token: string;
  let V: string;
  /** `site`: which site's endpoint is called. */
  const call = async (site: number, method: string, path: string, body?: unknown) => {
    const res = await fetch(`${cloud.url(site)}${path}`, {
      method,
      headers: {
        'x-auth-token': token,
        'openstack-api-version': 'volume 3.20',
        ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
      },
      ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
    });
    const text = await res.text();
    return {
      status: res.status,
      body: text ? (JSON.parse(text) as any) : undefined,
      owner: res.headers.get('x-atoll-owner'),
    };
  };
  before(async () => {
    cloud = await startLocalCloud({ sites: 2 });
    const res = await passwordLogin(
      cloud.url(0),
      { name: ADMIN.adminUser, password: ADMIN.adminPassword },
      { project: { name: ADMIN.adminProject, domain: { id: 'default' } } },
    );
    token = res.headers.get('x-subject-token')!;
    const project = ((await res.json()) as { token: { project: { id: string } } }).token.project.id;
    V = `/volume/v3/${project}`;
  });
  after(async () => cloud?.close());

  it('a group made for site-b from site-a lives there, with its volumes, snapshots and backups', async () => {
    const gt = (await call(0, 'POST', `${V}/group_types`, { group_type: { name: 'xgt' } })).body.group_type
      .id;
    const g = await call(0, 'POST', `${V}/groups`, {
      group: { name: 'far', group_type: gt, volume_types: ['__DEFAULT__'], availability_zone: 'site-b' },
    });
    assert.equal(g.status, 202, JSON.stringify(g.body));
    assert.equal(g.owner, 'site-b');
    const gid = g.body.group.id;
    await cloud.converged();
    assert.equal((await call(0, 'GET', `${V}/groups/${gid}`)).body.group.availability_zone, 'site-b');
    // A volume naming the group goes to the group's site; naming another zone is a 400.
    const v = await call(0, 'POST', `${V}/volumes`, { volume: { size: 1, group_id: gid } });
    assert.equal(v.status, 202, JSON.stringify(v.body));
    assert.equal(v.body.volume.availability_zone, 'site-b');
    assert.equal(
      (
        await call(0, 'POST', `${V}/volumes`, {
          volume: { size: 1, group_id: gid, availability_zone: 'site-a' },
        })
      ).status,
      400,
    );
    await cloud.converged();
    const gs = await call(0, 'POST', `${V}/group_snapshots`, { group_snapshot: { group_id: gid } });
    assert.equal(gs.status, 202, JSON.stringify(gs.body));
    assert.equal(gs.owner, 'site-b');
    const b = await call(0, 'POST', `${V}/backups`, { backup: { volume_id: v.body.volume.id } });
    assert.equal(b.status, 202, JSON.stringify(b.body));
    assert.equal(b.owner, 'site-b');
    // Backups and restores are asynchronous (as in Cinder): poll from site-a until it shows them done.
    const until = async (path: string, key: string) =>
      eventually(async () => {
        const x = (await call(0, 'GET', path)).body?.[key];
        return x?.status === 'available' && x;
      }, 30_000);
    const shown = await until(`${V}/backups/${b.body.backup.id}`, 'backup');
    assert.equal(shown.availability_zone, 'site-b');
    const r = await call(0, 'POST', `${V}/backups/${b.body.backup.id}/restore`, { restore: {} });
    assert.equal(r.status, 202, JSON.stringify(r.body));
    const restored = await until(`${V}/volumes/${r.body.restore.volume_id}`, 'volume');
    assert.equal(restored.availability_zone, 'site-b');
  });
});
