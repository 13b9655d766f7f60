/**
 * @module The block storage API through Debian's real `openstack` CLI: volumes (create, list, show,
 * extend, delete), types, snapshots, volumes from snapshots, quotas, and the refusals (a volume with
 * snapshots, a shrink); then type properties and encryption types, backups and restores, transfers
 * between projects, group types, groups and group snapshots, and messages.
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
  const ok = async (args: string[], env?: Record<string, string>) => {
    const r = await cloud.os(args, env ? { env } : {});
    assert.equal(r.code, 0, `openstack ${args.join(' ')}: ${r.stderr}`);
    return r;
  };

  it('volume type create/set --property/show/delete, and an encryption type', async () => {
    const t = await cloud.osJson([
      'volume',
      'type',
      'create',
      '--property',
      'volume_backend_name=lvm',
      'gold',
    ]);
    assert.deepEqual(t.properties, { volume_backend_name: 'lvm' });
    await ok(['volume', 'type', 'set', '--property', 'iops=100', '--description', 'fast', 'gold']);
    const shown = await cloud.osJson(['volume', 'type', 'show', 'gold']);
    assert.deepEqual(
      [shown.description, shown.properties],
      ['fast', { volume_backend_name: 'lvm', iops: '100' }],
    );
    await ok(['volume', 'type', 'unset', '--property', 'iops', 'gold']);
    assert.deepEqual((await cloud.osJson(['volume', 'type', 'show', 'gold'])).properties, {
      volume_backend_name: 'lvm',
    });

    const enc = await cloud.osJson([
      'volume',
      'type',
      'create',
      '--encryption-provider',
      'luks',
      '--encryption-cipher',
      'aes-xts-plain64',
      '--encryption-key-size',
      '256',
      '--encryption-control-location',
      'front-end',
      'secret',
    ]);
    assert.deepEqual(
      [
        enc.encryption.provider,
        enc.encryption.cipher,
        enc.encryption.key_size,
        enc.encryption.control_location,
      ],
      ['luks', 'aes-xts-plain64', 256, 'front-end'],
    );
    const withEnc = await cloud.osJson(['volume', 'type', 'show', '--encryption-type', 'secret']);
    assert.equal(withEnc.encryption.encryption_id, enc.encryption.encryption_id);
    const listed = await cloud.osJson<{ Name: string; Encryption: { provider: string } | null }[]>([
      'volume',
      'type',
      'list',
      '--encryption-type',
    ]);
    assert.equal(listed.find((x) => x.Name === 'secret')?.Encryption?.provider, 'luks');
    assert.equal(listed.find((x) => x.Name === 'gold')?.Encryption, null);
    await ok(['volume', 'type', 'unset', '--encryption-type', 'secret']);
    // Cinder answers GET .../encryption with {} once the type has none.
    assert.deepEqual(
      (await cloud.osJson(['volume', 'type', 'show', '--encryption-type', 'secret'])).encryption ?? {},
      {},
    );
    const bad = await cloud.os([
      'volume',
      'type',
      'set',
      '--encryption-provider',
      'luks',
      '--encryption-control-location',
      'sideways',
      'secret',
    ]);
    assert.notEqual(bad.code, 0);
    await ok(['volume', 'type', 'delete', 'gold', 'secret']);
  });

  it('volume backup create/list/show/restore/delete', async () => {
    const v = await cloud.osJson(['volume', 'create', '--size', '1', 'bsrc']);
    const b = await cloud.osJson([
      'volume',
      'backup',
      'create',
      '--name',
      'b1',
      '--description',
      'nightly',
      'bsrc',
    ]);
    assert.equal(b.name, 'b1');
    const listed = await cloud.osJson<{ ID: string; Name: string; Status: string; Size: number }[]>([
      'volume',
      'backup',
      'list',
    ]);
    assert.deepEqual(
      listed.map((x) => [x.ID, x.Name, x.Status, x.Size]),
      [[b.id, 'b1', 'available', 1]],
    );
    const shown = await cloud.osJson(['volume', 'backup', 'show', 'b1']);
    assert.deepEqual([shown.volume_id, shown.description, shown.is_incremental], [v.id, 'nightly', false]);
    // openstackclient 6.0.0's `backup restore` then fails to print the reply ("cannot unpack
    // non-iterable VolumeBackupsRestore object", a client bug): the restore itself is made.
    const restore = await cloud.os(['volume', 'backup', 'restore', 'b1', 'brestored']);
    assert.ok(restore.code === 0 || /VolumeBackupsRestore/.test(restore.stderr), restore.stderr);
    const restored = await cloud.osJson(['volume', 'show', 'brestored']);
    assert.deepEqual([restored.size, restored.status], [1, 'available']);
    const onExisting = await cloud.os(['volume', 'backup', 'restore', 'b1', 'bsrc']);
    assert.notEqual(onExisting.code, 0, 'restoring onto an existing volume needs --force');
    await ok(['volume', 'backup', 'delete', 'b1']);
    assert.deepEqual(await cloud.osJson(['volume', 'backup', 'list']), []);
    await ok(['volume', 'delete', 'bsrc', 'brestored']);
  });

  it('volume transfer request create/list/show/accept/delete, to another project', async () => {
    await ok(['project', 'create', 'receiver']);
    await ok(['user', 'create', '--password', 'dora-pw', 'dora']);
    await ok(['role', 'add', '--project', 'receiver', '--user', 'dora', 'member']);
    const dora = cloud.env(0, { username: 'dora', password: 'dora-pw', project: 'receiver' });
    const v = await cloud.osJson(['volume', 'create', '--size', '1', 'gift']);
    const tr = await cloud.osJson(['volume', 'transfer', 'request', 'create', '--name', 'to-dora', 'gift']);
    assert.deepEqual([tr.name, tr.volume_id], ['to-dora', v.id]);
    assert.ok(tr.auth_key, 'the auth key is shown once');
    const listed = await cloud.osJson<{ ID: string; Name: string; Volume: string }[]>([
      'volume',
      'transfer',
      'request',
      'list',
    ]);
    assert.deepEqual(
      listed.map((x) => [x.ID, x.Name, x.Volume]),
      [[tr.id, 'to-dora', v.id]],
    );
    const shown = await cloud.osJson(['volume', 'transfer', 'request', 'show', tr.id]);
    assert.ok(!('auth_key' in shown));
    const wrong = await cloud.os(['volume', 'transfer', 'request', 'accept', '--auth-key', 'nope', tr.id], {
      env: dora,
    });
    assert.notEqual(wrong.code, 0);
    const accepted = await cloud.osJson(
      ['volume', 'transfer', 'request', 'accept', '--auth-key', tr.auth_key, tr.id],
      {
        env: dora,
      },
    );
    assert.equal(accepted.volume_id, v.id);
    const hers = await cloud.osJson<{ ID: string }[]>(['volume', 'list'], { env: dora });
    assert.deepEqual(
      hers.map((x) => x.ID),
      [v.id],
    );
    const mine = await cloud.osJson<{ ID: string }[]>(['volume', 'list']);
    assert.ok(!mine.some((x) => x.ID === v.id), 'the volume left the admin project');

    const other = await cloud.osJson(['volume', 'create', '--size', '1', 'kept']);
    const tr2 = await cloud.osJson(['volume', 'transfer', 'request', 'create', 'kept']);
    await ok(['volume', 'transfer', 'request', 'delete', tr2.id]);
    assert.deepEqual(await cloud.osJson(['volume', 'transfer', 'request', 'list']), []);
    assert.equal((await cloud.osJson(['volume', 'show', other.id])).status, 'available');
    await ok(['volume', 'delete', 'kept']);
    await ok(['volume', 'delete', 'gift'], dora);
  });

  it('volume group type, group create/list/show/set/delete and group snapshots (3.14)', async () => {
    const v314 = ['--os-volume-api-version', '3.14'];
    const gt = await cloud.osJson([...v314, 'volume', 'group', 'type', 'create', 'gt1']);
    assert.equal(gt.Name, 'gt1');
    const gts = await cloud.osJson<{ Name: string }[]>([...v314, 'volume', 'group', 'type', 'list']);
    assert.ok(gts.some((x) => x.Name === 'gt1'));
    const g = await cloud.osJson([
      ...v314,
      'volume',
      'group',
      'create',
      '--name',
      'g1',
      '--description',
      'pair',
      'gt1',
      '__DEFAULT__',
    ]);
    assert.deepEqual(
      [g.Name, g.Status, g['Group Type'], g['Availability Zone']],
      ['g1', 'available', gt.ID, 'site-a'],
    );
    await ok([...v314, 'volume', 'group', 'set', '--name', 'g2', '--description', 'renamed', 'g1']);
    const groups = await cloud.osJson<{ ID: string; Name: string; Status: string }[]>([
      ...v314,
      'volume',
      'group',
      'list',
    ]);
    assert.deepEqual(
      groups.map((x) => [x.ID, x.Name, x.Status]),
      [[g.ID, 'g2', 'available']],
    );
    // openstackclient 6.0.0's `volume group show` calls a GroupManager.show that cinderclient lacks
    // (a client bug); the same group over HTTP:
    const shownCli = await cloud.os([...v314, 'volume', 'group', 'show', 'g2']);
    assert.ok(shownCli.code === 0 || /no attribute 'show'/.test(shownCli.stderr), shownCli.stderr);
    const token = await cloud.adminToken();
    const project = (await cloud.osJson(['project', 'show', 'admin'])).id as string;
    const res = await fetch(`${cloud.url()}/volume/v3/${project}/groups/${g.ID}`, {
      headers: { 'x-auth-token': token, 'openstack-api-version': 'volume 3.14' },
    });
    assert.equal(res.status, 200);
    assert.equal(((await res.json()) as { group: { description: string } }).group.description, 'renamed');

    const gs = await cloud.osJson([...v314, 'volume', 'group', 'snapshot', 'create', '--name', 'gs1', 'g2']);
    assert.deepEqual([gs.Name, gs.Group, gs.Status], ['gs1', g.ID, 'available']);
    const snaps = await cloud.osJson<{ ID: string; Name: string }[]>([
      ...v314,
      'volume',
      'group',
      'snapshot',
      'list',
    ]);
    assert.deepEqual(
      snaps.map((x) => [x.ID, x.Name]),
      [[gs.ID, 'gs1']],
    );
    await ok([...v314, 'volume', 'group', 'snapshot', 'delete', 'gs1']);
    assert.deepEqual(await cloud.osJson([...v314, 'volume', 'group', 'snapshot', 'list']), []);
    await ok([...v314, 'volume', 'group', 'delete', 'g2']);
    assert.deepEqual(await cloud.osJson([...v314, 'volume', 'group', 'list']), []);
    await ok([...v314, 'volume', 'group', 'type', 'delete', 'gt1']);
    const old = await cloud.os(['--os-volume-api-version', '3.10', 'volume', 'group', 'list']);
    assert.notEqual(old.code, 0, 'groups need 3.13 or later');
  });

  it('volume message list/show/delete (3.3): a volume no backend can take', async () => {
    const v33 = ['--os-volume-api-version', '3.3'];
    await ok(['volume', 'type', 'create', '--property', 'volume_backend_name=nowhere', 'nowhere']);
    const v = await cloud.osJson(['volume', 'create', '--size', '1', '--type', 'nowhere', 'stranded']);
    assert.equal((await cloud.osJson(['volume', 'show', v.id])).status, 'error');
    const msgs = await cloud.osJson<Record<string, string>[]>([...v33, 'volume', 'message', 'list']);
    const m = msgs.find((x) => x['Resource UUID'] === v.id);
    assert.ok(m, JSON.stringify(msgs));
    assert.equal(m['Event ID'], 'VOLUME_VOLUME_001_003');
    const shown = await cloud.osJson([...v33, 'volume', 'message', 'show', m.ID!]);
    assert.match(shown.user_message, /weighted backend/i);
    await ok([...v33, 'volume', 'message', 'delete', m.ID!]);
    const left = await cloud.osJson<Record<string, string>[]>([...v33, 'volume', 'message', 'list']);
    assert.ok(!left.some((x) => x.ID === m.ID));
    await ok(['volume', 'delete', v.id]);
    await ok(['volume', 'type', 'delete', 'nowhere']);
  });
});
