/**
 * @module Volumes in real guests (QEMU driver, TCG, one site in process, on disk): a file-backed volume
 * attached to a running server is hot-plugged (QMP blockdev-add + device_add virtio-blk-pci) and its
 * guest writes to it (/dev/vdc, serial = the volume id); the detach unplugs it (device_del, the guest
 * lets go, blockdev-del) before the volume is available again; attached to another running server, its
 * guest reads the bytes back. Delete leaves no process behind.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { eventually, startLocalCloud } from './support/cloud.ts';
import type { LocalCloud } from './support/cloud.ts';
import { buildGuest, qemuPids, qemuSkip, GuestApi } from './support/guests.ts';
import { defaultGuestDir } from '../src/services/compute/service.ts';

const skip = await qemuSkip();
const MARK = `atoll-vol-${process.pid}`;

let cloud: LocalCloud;
let token: string;
let project: string;

before(async () => {
  if (skip) return;
  await buildGuest();
  cloud = await startLocalCloud({
    onDisk: true,
    site: {
      services: { compute: { driver: 'qemu', accel: 'tcg', shutdownTimeoutMs: 1000, vcpus: 8 } },
    },
  });
  token = await cloud.adminToken();
  const t = await fetch(`${cloud.url()}/identity/v3/auth/tokens`, {
    headers: { 'x-auth-token': token, 'x-subject-token': token },
  });
  project = ((await t.json()) as { token: { project: { id: string } } }).token.project.id;
});

after(async () => {
  await cloud?.close();
});

/** This file's calls, through the shared real-guest client (test/support/guests.ts). */
const client = () => new GuestApi(cloud.url(), token, '2.37');
const api = (method: string, path: string, body?: unknown) => client().call(method, path, body);
const image = (name: string, data: Uint8Array, attrs: Record<string, string>) =>
  client().image(name, data, attrs);

const status = async (id: string) => (await api('GET', `/compute/v2.1/servers/${id}`)).body?.server?.status;
const consoleLog = async (id: string) =>
  ((await api('POST', `/compute/v2.1/servers/${id}/action`, { 'os-getConsoleOutput': {} })).body?.output ??
    '') as string;
const volumeStatus = async (id: string) =>
  (await api('GET', `/volume/v3/${project}/volumes/${id}`)).body?.volume?.status as string | undefined;

/** The guest waits for a hot-plugged disk (/dev/vdc: vda is the root, vdb the config drive), then runs `then`. */
const waitDisk = (then: string) =>
  Buffer.from(
    `#!/bin/sh\ni=0\nwhile [ ! -b /dev/vdc ] && [ $i -lt 1200 ]; do sleep 0.2; i=$((i + 1)); done\n` +
      `echo "atoll-serial: $(cat /sys/block/vdc/serial)"\n${then}\n`,
  ).toString('base64');

async function boot(name: string, imageRef: string, flavorRef: string, userData: string): Promise<string> {
  const c = await api('POST', '/compute/v2.1/servers', {
    server: { name, flavorRef, imageRef, networks: 'none', user_data: userData },
  });
  assert.equal(c.status, 202, JSON.stringify(c.body));
  const id = c.body.server.id as string;
  await eventually(async () => (await status(id)) === 'ACTIVE', 120_000, `${name} ACTIVE`);
  await eventually(
    async () => (await consoleLog(id)).includes('running user_data'),
    120_000,
    `${name} user_data`,
  );
  return id;
}

test(
  'a volume hot-plugged into one guest is written, unplugged, plugged into another and read back',
  { skip, timeout: 500_000 },
  async () => {
    const guest = defaultGuestDir();
    const kernel = await image('k', readFileSync(join(guest, 'vmlinuz')), { disk_format: 'aki' });
    const ramdisk = await image('r', readFileSync(join(guest, 'initramfs.gz')), { disk_format: 'ari' });
    const root = await image('tiny', new Uint8Array(1024 * 1024), {
      disk_format: 'raw',
      kernel_id: kernel,
      ramdisk_id: ramdisk,
    });
    const fl = await api('POST', '/compute/v2.1/flavors', {
      flavor: { name: 'g', ram: 192, vcpus: 1, disk: 1 },
    });
    assert.equal(fl.status, 200, JSON.stringify(fl.body));
    const flavor = fl.body.flavor.id as string;
    const v = await api('POST', `/volume/v3/${project}/volumes`, { volume: { size: 1, name: 'data' } });
    assert.equal(v.status, 202, JSON.stringify(v.body));
    const vol = v.body.volume.id as string;
    await eventually(async () => (await volumeStatus(vol)) === 'available', 30_000, 'volume available');

    const writer = await boot(
      'writer',
      root,
      flavor,
      waitDisk(`printf '${MARK}' > /dev/vdc && sync && echo "atoll-wrote: $?"`),
    );
    const att = await api('POST', `/compute/v2.1/servers/${writer}/os-volume_attachments`, {
      volumeAttachment: { volumeId: vol },
    });
    assert.equal(att.status, 200, JSON.stringify(att.body));
    assert.equal(att.body.volumeAttachment.device, '/dev/vdb');
    const out = await eventually(
      async () => {
        const o = await consoleLog(writer);
        return o.includes('atoll-wrote: 0') ? o : undefined;
      },
      120_000,
      'the guest wrote to the volume',
    );
    assert.ok(out.includes(`atoll-serial: ${vol.slice(0, 20)}`), out);

    assert.equal(
      (await api('DELETE', `/compute/v2.1/servers/${writer}/os-volume_attachments/${vol}`)).status,
      202,
    );
    await eventually(async () => (await volumeStatus(vol)) === 'available', 60_000, 'available after detach');

    const reader = await boot(
      'reader',
      root,
      flavor,
      waitDisk('echo "atoll-read: $(head -c ' + MARK.length + ' /dev/vdc)"'),
    );
    const att2 = await api('POST', `/compute/v2.1/servers/${reader}/os-volume_attachments`, {
      volumeAttachment: { volumeId: vol },
    });
    assert.equal(att2.status, 200, JSON.stringify(att2.body));
    await eventually(
      async () => (await consoleLog(reader)).includes(`atoll-read: ${MARK}`),
      120_000,
      'the other guest read the bytes back',
    );

    for (const id of [writer, reader]) {
      assert.equal((await api('DELETE', `/compute/v2.1/servers/${id}`)).status, 204);
      await eventually(
        async () => (await api('GET', `/compute/v2.1/servers/${id}`)).status === 404,
        60_000,
        'deleted',
      );
      assert.deepEqual(qemuPids(id), []);
    }
    await eventually(async () => (await volumeStatus(vol)) === 'available', 30_000, 'available after delete');
  },
);
