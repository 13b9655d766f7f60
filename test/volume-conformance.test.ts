/**
 * @module Block Storage answers as Cinder gives them, over HTTP against one real site: the exact field
 * sets Tempest's response schemas allow (no project_id, attach_status or qos_specs_id where Cinder has
 * none), the URL's project bound to the token's even for an admin, and the routes Tempest's
 * tempest.api.volume suite found missing (actions, metadata items, extra spec items, type access,
 * extensions, summary, services, hosts, pools). scripts/tempest.mjs runs Tempest itself.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { ADMIN, passwordLogin, startLocalCloud } from './support/cloud.ts';
import type { LocalCloud } from './support/cloud.ts';

/** The fields of a volume in Cinder's create/update answer at 3.0 (Tempest's create_volume schema). */
const VOLUME_WRITE_FIELDS = [
  'attachments',
  'availability_zone',
  'bootable',
  'consistencygroup_id',
  'created_at',
  'description',
  'encrypted',
  'id',
  'links',
  'metadata',
  'migration_status',
  'multiattach',
  'name',
  'replication_status',
  'size',
  'snapshot_id',
  'source_volid',
  'status',
  'updated_at',
  'user_id',
  'volume_type',
];
const ADMIN_ATTRS = [
  'os-vol-host-attr:host',
  'os-vol-mig-status-attr:migstat',
  'os-vol-mig-status-attr:name_id',
  'os-vol-tenant-attr:tenant_id',
];
const SNAPSHOT_FIELDS = [
  'created_at',
  'description',
  'id',
  'metadata',
  'name',
  'size',
  'status',
  'updated_at',
  'volume_id',
];
const SNAPSHOT_EXTENDED = [
  'os-extended-snapshot-attributes:progress',
  'os-extended-snapshot-attributes:project_id',
];

const sorted = (o: object) => Object.keys(o).sort();

describe('Block Storage answers as Cinder gives them (Tempest schemas)', () => {
  let cloud: LocalCloud;
  let token: string;
  let project: string;
  let V: string;
  const call = async (method: string, path: string, body?: unknown, headers: Record<string, string> = {}) => {
    const res = await fetch(`${cloud.url()}${path}`, {
      method,
      headers: {
        'x-auth-token': token,
        ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
        ...headers,
      },
      ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
    });
    const text = await res.text();
    return { status: res.status, body: text ? (JSON.parse(text) as any) : undefined };
  };
  const newVolume = async (name: string) => {
    const r = await call('POST', `${V}/volumes`, { volume: { size: 1, name } });
    assert.equal(r.status, 202, JSON.stringify(r.body));
    return r.body.volume;
  };
  const statusOf = async (id: string) => (await call('GET', `${V}/volumes/${id}`)).body.volume.status;

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

  it('volumes: create and update answer without admin attributes or the owner project; show adds them', async () => {
    const v = await newVolume('schema');
    assert.deepEqual(sorted(v), VOLUME_WRITE_FIELDS);
    const upd = await call('PUT', `${V}/volumes/${v.id}`, { volume: { name: 'schema2' } });
    assert.equal(upd.status, 200);
    assert.deepEqual(sorted(upd.body.volume), VOLUME_WRITE_FIELDS);
    const shown = (await call('GET', `${V}/volumes/${v.id}`)).body.volume;
    assert.deepEqual(sorted(shown), [...VOLUME_WRITE_FIELDS, ...ADMIN_ATTRS].sort());
    const at348 = (
      await call('GET', `${V}/volumes/${v.id}`, undefined, { 'openstack-api-version': 'volume 3.48' })
    ).body.volume;
    for (const k of ['group_id', 'provider_id', 'service_uuid', 'shared_targets']) assert.ok(k in at348, k);
    assert.ok(!('project_id' in at348) && !('volume_type_id' in at348));
    const list = (await call('GET', `${V}/volumes`)).body.volumes;
    assert.deepEqual(sorted(list[0]), ['id', 'links', 'name']);
  });

  it("the URL's project must be the token's, for an admin too", async () => {
    for (const [m, p] of [
      ['GET', '/volume/v3/x/volumes'],
      ['POST', '/volume/v3/x/volumes'],
    ] as const) {
      const r = await call(m, p, m === 'POST' ? { volume: { size: 1 } } : undefined);
      assert.equal(r.status, 403, `${m} ${p}`);
    }
  });

  it('snapshots: list without the extended attributes, show and detail with them', async () => {
    const v = await newVolume('snapsrc');
    const s = await call('POST', `${V}/snapshots`, { snapshot: { volume_id: v.id, name: 's1' } });
    assert.equal(s.status, 202);
    assert.deepEqual(sorted(s.body.snapshot), SNAPSHOT_FIELDS);
    assert.deepEqual(sorted((await call('GET', `${V}/snapshots`)).body.snapshots[0]), SNAPSHOT_FIELDS);
    const shown = (await call('GET', `${V}/snapshots/${s.body.snapshot.id}`)).body.snapshot;
    assert.deepEqual(sorted(shown), [...SNAPSHOT_FIELDS, ...SNAPSHOT_EXTENDED].sort());
    assert.equal((await call('POST', `${V}/snapshots`, { snapshot: { volume_id: null } })).status, 404);
    // A snapshot reset to creating is force-deleted all the same (Tempest's force delete tests).
    const reset = await call('POST', `${V}/snapshots/${shown.id}/action`, {
      'os-reset_status': { status: 'creating' },
    });
    assert.equal(reset.status, 202);
    assert.equal((await call('GET', `${V}/snapshots/${shown.id}`)).body.snapshot.status, 'creating');
    assert.equal(
      (await call('DELETE', `${V}/snapshots/${shown.id}`)).status,
      400,
      'a plain delete waits for it',
    );
    const del = await call('POST', `${V}/snapshots/${shown.id}/action`, { 'os-force_delete': {} });
    assert.equal(del.status, 202);
    assert.equal((await call('GET', `${V}/snapshots/${shown.id}`)).status, 404);
  });

  it('volume actions: reserve, unreserve, reset-status, readonly, bootable, force-delete', async () => {
    const v = await newVolume('acts');
    const act = (body: unknown) => call('POST', `${V}/volumes/${v.id}/action`, body);
    assert.equal((await act({ 'os-reserve': {} })).status, 202);
    assert.equal(await statusOf(v.id), 'attaching');
    assert.equal((await act({ 'os-reserve': {} })).status, 400);
    assert.equal((await act({ 'os-unreserve': {} })).status, 202);
    assert.equal(await statusOf(v.id), 'available');
    assert.equal((await act({ 'os-update_readonly_flag': { readonly: true } })).status, 202);
    assert.equal((await call('GET', `${V}/volumes/${v.id}`)).body.volume.metadata.readonly, 'True');
    assert.equal((await act({ 'os-set_bootable': { bootable: true } })).status, 200);
    assert.equal((await act({ 'os-reset_status': { status: 'maintenance' } })).status, 202);
    assert.equal(await statusOf(v.id), 'maintenance');
    assert.equal((await act({ 'os-reset_status': { status: 'bogus' } })).status, 400);
    assert.equal((await act({ 'os-force_delete': {} })).status, 202);
    assert.equal((await call('GET', `${V}/volumes/${v.id}`)).status, 404);
  });

  it('metadata items on volumes and snapshots', async () => {
    const v = await newVolume('meta');
    const M = `${V}/volumes/${v.id}/metadata`;
    assert.deepEqual((await call('PUT', M, { metadata: { a: '1', b: '2' } })).body, {
      metadata: { a: '1', b: '2' },
    });
    assert.deepEqual((await call('GET', `${M}/a`)).body, { meta: { a: '1' } });
    assert.deepEqual((await call('PUT', `${M}/a`, { meta: { a: '3' } })).body, { meta: { a: '3' } });
    assert.equal((await call('PUT', `${M}/a`, { meta: { b: '3' } })).status, 400);
    assert.equal((await call('DELETE', `${M}/b`)).status, 200);
    assert.equal((await call('GET', `${M}/b`)).status, 404);
    assert.deepEqual((await call('GET', M)).body, { metadata: { a: '3' } });
    const s = (await call('POST', `${V}/snapshots`, { snapshot: { volume_id: v.id } })).body.snapshot;
    const SM = `${V}/snapshots/${s.id}/metadata`;
    assert.deepEqual((await call('POST', SM, { metadata: { k: 'v' } })).body, { metadata: { k: 'v' } });
    assert.deepEqual((await call('GET', `${SM}/k`)).body, { meta: { k: 'v' } });
  });

  it('volume types: create and update answers, extra spec items, private type access', async () => {
    const t = await call('POST', `${V}/types`, { volume_type: { name: 'gold', extra_specs: { a: 'b' } } });
    assert.equal(t.status, 200);
    assert.ok(!('qos_specs_id' in t.body.volume_type));
    const id = t.body.volume_type.id;
    const u = await call('PUT', `${V}/types/${id}`, { volume_type: { description: 'shiny' } });
    assert.deepEqual(sorted(u.body.volume_type), ['description', 'extra_specs', 'id', 'is_public', 'name']);
    const shown = (await call('GET', `${V}/types/${id}`)).body.volume_type;
    assert.equal(shown.qos_specs_id, null);
    const X = `${V}/types/${id}/extra_specs`;
    assert.deepEqual((await call('POST', X, { extra_specs: { c: 'd' } })).body, { extra_specs: { c: 'd' } });
    assert.deepEqual((await call('GET', X)).body, { extra_specs: { a: 'b', c: 'd' } });
    assert.deepEqual((await call('PUT', `${X}/c`, { c: 'e' })).body, { c: 'e' });
    assert.deepEqual((await call('GET', `${X}/c`)).body, { c: 'e' });
    assert.equal((await call('POST', X, { extra_specs: ['x'] })).status, 400);
    assert.equal((await call('DELETE', `${X}/a`)).status, 202);
    assert.equal((await call('GET', `${X}/a`)).status, 404);

    const p = await call('POST', `${V}/types`, {
      volume_type: { name: 'private', 'os-volume-type-access:is_public': false },
    });
    const pid = p.body.volume_type.id;
    const add = await call('POST', `${V}/types/${pid}/action`, { addProjectAccess: { project: 'p-1' } });
    assert.equal(add.status, 202);
    assert.equal(
      (await call('POST', `${V}/types/${pid}/action`, { addProjectAccess: { project: 'p-1' } })).status,
      409,
    );
    assert.deepEqual((await call('GET', `${V}/types/${pid}/os-volume-type-access`)).body, {
      volume_type_access: [{ volume_type_id: pid, project_id: 'p-1' }],
    });
  });

  it('extensions, volume summary, services, hosts, pools and capabilities', async () => {
    const ext = (await call('GET', `${V}/extensions`)).body.extensions;
    assert.ok(ext.some((e: { name: string }) => e.name === 'Hosts'));
    const sum = (await call('GET', `${V}/volumes/summary`)).body['volume-summary'];
    assert.equal(typeof sum.total_count, 'number');
    assert.ok(!('metadata' in sum));
    const services = (await call('GET', `${V}/os-services?host=site-a&binary=cinder-volume`)).body.services;
    assert.equal(services.length, 1);
    assert.equal(services[0].host, 'site-a@file');
    assert.equal(services[0].state, 'up');
    const hosts = (await call('GET', `${V}/os-hosts`)).body.hosts;
    assert.equal(hosts.length, 2);
    const host = (await call('GET', `${V}/os-hosts/site-a@file`)).body.host;
    assert.equal(host[0].resource.project, '(total)');
    const pools = (await call('GET', `${V}/scheduler-stats/get_pools?detail=True`)).body.pools;
    assert.equal(pools[0].name, 'site-a@file#file');
    assert.equal(pools[0].capabilities.vendor_name, 'Open Source');
    const caps = await call('GET', `${V}/capabilities/${encodeURIComponent('site-a@file#file')}`);
    assert.equal(caps.status, 200);
    assert.equal(caps.body.volume_backend_name, 'file');
    const qc = (await call('GET', `${V}/os-quota-class-sets/default`)).body.quota_class_set;
    assert.equal(qc.id, 'default');
    assert.equal(qc.volumes, 10);
  });

  it('transfers: offer, the volume waits, another project accepts with the key and owns it', async () => {
    // A second project with a member, to accept.
    const proj = (
      await call('POST', '/identity/v3/projects', { project: { name: 'taker', domain_id: 'default' } })
    ).body.project;
    const user = (
      await call('POST', '/identity/v3/users', {
        user: { name: 'taker', password: 'taker-pw', domain_id: 'default' },
      })
    ).body.user;
    const roles = (await call('GET', '/identity/v3/roles?name=member')).body.roles;
    assert.equal(
      (await call('PUT', `/identity/v3/projects/${proj.id}/users/${user.id}/roles/${roles[0].id}`)).status,
      204,
    );
    const login = await passwordLogin(
      cloud.url(),
      { name: 'taker', password: 'taker-pw' },
      { project: { id: proj.id } },
    );
    const takerToken = login.headers.get('x-subject-token')!;

    const v = await newVolume('gift');
    const t = await call('POST', `${V}/os-volume-transfer`, { transfer: { volume_id: v.id, name: 'g' } });
    assert.equal(t.status, 202);
    assert.deepEqual(sorted(t.body.transfer), ['auth_key', 'created_at', 'id', 'links', 'name', 'volume_id']);
    assert.equal(await statusOf(v.id), 'awaiting-transfer');
    const list = (
      await call('GET', `${V}/volume-transfers/detail`, undefined, { 'openstack-api-version': 'volume 3.57' })
    ).body.transfers;
    assert.equal(list[0].source_project_id, project);
    assert.equal((await call('GET', `${V}/volume-transfers`)).status, 404, 'volume-transfers needs 3.55');
    const accept = (key: string) =>
      fetch(`${cloud.url()}/volume/v3/${proj.id}/os-volume-transfer/${t.body.transfer.id}/accept`, {
        method: 'POST',
        headers: { 'x-auth-token': takerToken, 'content-type': 'application/json' },
        body: JSON.stringify({ accept: { auth_key: key } }),
      });
    assert.equal((await accept('wrong')).status, 400);
    assert.equal((await accept(t.body.transfer.auth_key)).status, 202);
    const now = (await call('GET', `${V}/volumes/${v.id}`)).body.volume;
    assert.equal(now['os-vol-tenant-attr:tenant_id'], proj.id);
    assert.equal(now.user_id, user.id);
    assert.equal(now.status, 'available');
    assert.equal((await call('GET', `${V}/os-volume-transfer/${t.body.transfer.id}`)).status, 404);
  });

  it('QoS specs: create, keys, associate with a type, delete only when free', async () => {
    const q = await call('POST', `${V}/qos-specs`, {
      qos_specs: { name: 'fast', consumer: 'front-end', iops: 100 },
    });
    assert.equal(q.status, 200);
    assert.deepEqual(q.body.qos_specs.specs, { iops: '100' });
    const id = q.body.qos_specs.id;
    assert.deepEqual((await call('PUT', `${V}/qos-specs/${id}`, { qos_specs: { bw: '5' } })).body, {
      qos_specs: { bw: '5' },
    });
    assert.equal((await call('PUT', `${V}/qos-specs/${id}/delete_keys`, { keys: ['iops'] })).status, 202);
    assert.deepEqual((await call('GET', `${V}/qos-specs/${id}`)).body.qos_specs.specs, { bw: '5' });
    const type = (await call('POST', `${V}/types`, { volume_type: { name: 'qos-typed' } })).body.volume_type;
    assert.equal((await call('GET', `${V}/qos-specs/${id}/associate?vol_type_id=${type.id}`)).status, 202);
    assert.equal((await call('GET', `${V}/types/${type.id}`)).body.volume_type.qos_specs_id, id);
    assert.deepEqual((await call('GET', `${V}/qos-specs/${id}/associations`)).body.qos_associations, [
      { association_type: 'volume_type', id: type.id, name: 'qos-typed' },
    ]);
    assert.equal((await call('DELETE', `${V}/qos-specs/${id}`)).status, 400);
    assert.equal((await call('DELETE', `${V}/qos-specs/${id}?force=True`)).status, 202);
    assert.equal((await call('GET', `${V}/types/${type.id}`)).body.volume_type.qos_specs_id, null);
  });

  it('a clone of a bootable volume is bootable; volumes/ is a 404; services refuse bad hosts', async () => {
    const v = await newVolume('boot');
    await call('POST', `${V}/volumes/${v.id}/action`, { 'os-set_bootable': { bootable: true } });
    const c = await call('POST', `${V}/volumes`, { volume: { source_volid: v.id } });
    assert.equal(c.body.volume.bootable, 'true');
    assert.equal((await call('GET', `${V}/volumes/`)).status, 404);
    assert.equal(
      (await call('PUT', `${V}/os-services/enable`, { host: 'nowhere', binary: 'cinder-volume' })).status,
      404,
    );
    assert.equal((await call('PUT', `${V}/os-services/freeze`, { host: 'nowhere' })).status, 400);
    assert.equal(
      (await call('PUT', `${V}/os-services/disable-log-reason`, { host: 'site-a', binary: 'cinder-volume' }))
        .status,
      400,
    );
  });

  it('group types (3.11+): create, specs, update, list filters, delete', async () => {
    const mv = { 'openstack-api-version': 'volume 3.11' };
    assert.equal((await call('GET', `${V}/group_types`)).status, 404, 'group types need 3.11');
    const G = `${V}/group_types`;
    const c = await call(
      'POST',
      G,
      { group_type: { name: 'gt', group_specs: { a: '1' }, is_public: false } },
      mv,
    );
    assert.equal(c.status, 202);
    const id = c.body.group_type.id;
    assert.deepEqual((await call('POST', `${G}/${id}/group_specs`, { group_specs: { b: '2' } }, mv)).body, {
      group_specs: { b: '2' },
    });
    assert.deepEqual((await call('PUT', `${G}/${id}/group_specs/b`, { b: '3' }, mv)).body, { b: '3' });
    assert.deepEqual((await call('GET', `${G}/${id}/group_specs`, undefined, mv)).body, {
      group_specs: { a: '1', b: '3' },
    });
    assert.equal((await call('DELETE', `${G}/${id}/group_specs/a`, undefined, mv)).status, 202);
    assert.equal((await call('GET', `${G}/${id}/group_specs/a`, undefined, mv)).status, 404);
    const u = await call('PUT', `${G}/${id}`, { group_type: { description: 'd' } }, mv);
    assert.equal(u.body.group_type.description, 'd');
    const names = (q: string) =>
      call('GET', `${G}?${q}`, undefined, mv).then((r) =>
        r.body.group_types.map((t: { name: string }) => t.name),
      );
    assert.ok((await names('is_public=False')).includes('gt'));
    assert.ok(!(await names('is_public=True')).includes('gt'));
    assert.equal(
      (await call('GET', `${G}/default`, undefined, mv)).body.group_type.name,
      'default_group_type',
    );
    assert.equal((await call('DELETE', `${G}/${id}`, undefined, mv)).status, 202);
    assert.equal((await call('GET', `${G}/${id}`, undefined, mv)).status, 404);
  });

  it('lists: a next link after every full page, offset, display_name sorting, a bad sort key is a 400', async () => {
    for (const n of ['pa', 'pb']) await newVolume(n);
    const page = (await call('GET', `${V}/volumes?limit=1`)).body;
    assert.equal(page.volumes.length, 1);
    assert.ok(page.volumes_links?.[0]?.href.includes('marker='));
    const byName = (await call('GET', `${V}/volumes/detail?sort_key=display_name&sort_dir=asc`)).body.volumes;
    const names = byName.map((x: { name: string | null }) => x.name ?? '');
    assert.deepEqual(names, [...names].sort());
    const all = (await call('GET', `${V}/volumes`)).body.volumes.length;
    assert.equal((await call('GET', `${V}/volumes?offset=1`)).body.volumes.length, all - 1);
    assert.equal((await call('GET', `${V}/snapshots?sort_key=invalid`)).status, 400);
    assert.equal((await call('GET', `${V}/snapshots?limit=100000`)).status, 200);
  });
});
