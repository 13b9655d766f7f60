/**
 * @module Servers with networks and volumes through the CLI: `server create --network`, `server add
 * volume` / `server remove volume`, and the ports and attachments NetworkForCompute and VolumeForCompute
 * keep. Skipped only while the compute module (or an image service) is not in the catalog.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { eventually, startLocalCloud } from './support/cloud.ts';
import type { LocalCloud } from './support/cloud.ts';
import { NetworkApi, VolumeApi } from '../src/services/common/internal.ts';

describe('servers with networks and volumes', () => {
  let cloud: LocalCloud;
  let missing: string | undefined;
  before(async () => {
    cloud = await startLocalCloud({ sites: 1 });
    const token = await cloud.adminToken();
    const res = await fetch(`${cloud.url()}/identity/v3/auth/tokens`, {
      headers: { 'x-auth-token': token, 'x-subject-token': token },
    });
    const types = ((await res.json()) as { token: { catalog: { type: string }[] } }).token.catalog.map(
      (c) => c.type,
    );
    missing = ['compute', 'image'].find((t) => !types.includes(t));
  });
  after(async () => cloud?.close());

  it('server create --network gets a port; add/remove volume attach and detach', async (t) => {
    if (missing) return t.skip(`no ${missing} service in the catalog yet`);
    const dir = mkdtempSync(join(tmpdir(), 'atoll-img-'));
    try {
      writeFileSync(join(dir, 'img.raw'), Buffer.alloc(1024 * 1024));
      await cloud.osJson([
        'image',
        'create',
        '--disk-format',
        'raw',
        '--container-format',
        'bare',
        '--file',
        join(dir, 'img.raw'),
        'img',
      ]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
    await cloud.osJson(['flavor', 'create', '--ram', '64', '--disk', '1', '--vcpus', '1', 'tiny']);
    await cloud.osJson(['network', 'create', 'vmnet']);
    await cloud.osJson(['subnet', 'create', '--network', 'vmnet', '--subnet-range', '10.20.0.0/24', 'vmsub']);
    const server = await cloud.osJson([
      'server',
      'create',
      '--flavor',
      'tiny',
      '--image',
      'img',
      '--network',
      'vmnet',
      '--wait',
      'vm1',
    ]);
    const ports = await cloud.osJson(['port', 'list', '--server', server.id]);
    assert.equal(ports.length, 1);
    const shown = await cloud.osJson(['server', 'show', 'vm1']);
    assert.match(JSON.stringify(shown.addresses), /10\.20\.0\.\d+/);
    const port = await cloud.osJson(['port', 'show', ports[0].ID]);
    assert.match(port.device_owner, /^compute:/);

    await cloud.osJson(['volume', 'create', '--size', '1', 'data']);
    assert.equal((await cloud.os(['server', 'add', 'volume', 'vm1', 'data'])).code, 0);
    await eventually(
      async () => (await cloud.osJson(['volume', 'show', 'data'])).status === 'in-use',
      10_000,
      'volume in-use',
    );
    const vol = await cloud.osJson(['volume', 'show', 'data']);
    assert.match(JSON.stringify(vol.attachments), new RegExp(server.id));
    const busy = await cloud.os(['volume', 'delete', 'data']);
    assert.notEqual(busy.code, 0);
    assert.equal((await cloud.os(['server', 'remove', 'volume', 'vm1', 'data'])).code, 0);
    await eventually(
      async () => (await cloud.osJson(['volume', 'show', 'data'])).status === 'available',
      10_000,
      'volume available',
    );

    assert.equal((await cloud.os(['server', 'delete', '--wait', 'vm1'])).code, 0);
    const left = await cloud.osJson(['port', 'list', '--network', 'vmnet']);
    assert.equal(left.length, 0);
    assert.equal((await cloud.os(['network', 'delete', 'vmnet'])).code, 0);
  });

  it('the in-process contracts compute uses: ports and attachments of a server', async () => {
    const ctx = cloud.fed.sites[0]!.ctx;
    const token = await cloud.adminToken();
    const auth = ctx.tokens!.validate(token);
    await cloud.osJson(['network', 'create', 'inet']);
    await cloud.osJson(['subnet', 'create', '--network', 'inet', '--subnet-range', '10.30.0.0/24', 'isub']);
    const net = ctx.use(NetworkApi);
    const server = { id: 'srv-1', projectId: auth.projectId!, host: 'host-1' };
    const addrs = net.allocateForServer(auth, server, 'auto');
    assert.equal(addrs.length, 1);
    assert.equal(addrs[0]!.networkName, 'inet');
    assert.match(addrs[0]!.addr, /^10\.30\.0\.\d+$/);
    assert.deepEqual(net.addressesOf('srv-1'), addrs);
    assert.throws(
      () => net.allocateForServer(auth, { ...server, id: 'srv-2' }, [{ networkId: addrs[0]!.portId }]),
      /could not be found/,
    );
    // a given port is only unbound when the server goes; a made one is deleted
    const given = await cloud.osJson(['port', 'create', '--network', 'inet', 'given']);
    net.allocateForServer(auth, { ...server, id: 'srv-3' }, [{ portId: given.id }]);
    assert.throws(
      () => net.allocateForServer(auth, { ...server, id: 'srv-4' }, [{ portId: given.id }]),
      /in use/,
    );
    net.releaseForServer('srv-3');
    assert.equal((await cloud.osJson(['port', 'show', 'given'])).device_id, '');
    net.releaseForServer('srv-1');
    assert.deepEqual(net.addressesOf('srv-1'), []);

    const vol = ctx.use(VolumeApi);
    const v = await cloud.osJson(['volume', 'create', '--size', '1', 'iv']);
    const a = vol.attach(auth, v.id, 'srv-1', undefined);
    assert.equal(a.device, '/dev/vdb');
    assert.equal((await cloud.osJson(['volume', 'show', 'iv'])).status, 'in-use');
    assert.throws(() => vol.attach(auth, v.id, 'srv-9', undefined), /must be available/);
    assert.equal(vol.attachmentsOf('srv-1').length, 1);
    vol.detachAll('srv-1');
    assert.equal((await cloud.osJson(['volume', 'show', 'iv'])).status, 'available');
    assert.equal((await cloud.os(['port', 'delete', 'given'])).code, 0);
    assert.equal((await cloud.os(['volume', 'delete', 'iv'])).code, 0);
  });
});
