/**
 * @module Server snapshots with real guests (QEMU driver, TCG, one site in process, on disk): a guest
 * writes a marker to its root disk; createImage pauses it, flattens its overlay into a standalone
 * qcow2 streamed into a new active image owned by the site, and resumes it (its ticks go on); a server
 * booted from that image reads the marker back. Shelve moves the disk into a `<name>-shelved` image
 * and lets the guest and its instance directory go; unshelve boots from that image (the marker is
 * there, the console log starts afresh). Delete leaves no process behind.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { eventually, startLocalCloud } from './support/cloud.ts';
import type { LocalCloud } from './support/cloud.ts';
import { GuestApi, boots, buildGuest, qemuPids, qemuSkip, userData as b64 } from './support/guests.ts';
import { defaultGuestDir } from '../src/services/compute/service.ts';

const skip = await qemuSkip();
const MARK = `atoll-snap-${process.pid}`;

let cloud: LocalCloud;
let g: GuestApi;

before(async () => {
  if (skip) return;
  await buildGuest();
  cloud = await startLocalCloud({
    onDisk: true,
    site: { services: { compute: { driver: 'qemu', accel: 'tcg', shutdownTimeoutMs: 1000, vcpus: 8 } } },
  });
  g = new GuestApi(cloud.url(), await cloud.adminToken(), '2.45');
});

after(async () => {
  await cloud?.close();
  g?.killLeftovers();
});

const api = (method: string, path: string, body?: unknown) => g.call(method, path, body);
const status = (id: string) => g.status(id);
const consoleLog = (id: string) => g.consoleLog(id);

async function boot(name: string, imageRef: string, flavorRef: string, ud: string): Promise<string> {
  const id = await g.create(name, imageRef, flavorRef, ud);
  await eventually(async () => (await status(id)) === 'ACTIVE', 120_000, `${name} ACTIVE`);
  return id;
}

const ticks = (log: string) => (log.match(/atoll-tick/g) ?? []).length;

test(
  'createImage flattens the disk into an active image; a server booted from it reads the marker',
  { skip, timeout: 500_000 },
  async () => {
    const { root, kernel } = await g.tinyImage(defaultGuestDir());
    const fl = await api('POST', '/compute/v2.1/flavors', {
      flavor: { name: 'g', ram: 192, vcpus: 1, disk: 1 },
    });
    assert.equal(fl.status, 200, JSON.stringify(fl.body));
    const flavor = fl.body.flavor.id as string;

    const writer = await boot(
      'writer',
      root,
      flavor,
      b64(
        `printf '${MARK}' > /dev/vda && sync && echo "atoll-wrote: $?"\nwhile true; do echo atoll-tick; sleep 0.5; done`,
      ),
    );
    await eventually(
      async () => (await consoleLog(writer)).includes('atoll-wrote: 0'),
      120_000,
      'marker written',
    );

    const snap = await api('POST', `/compute/v2.1/servers/${writer}/action`, {
      createImage: { name: 'snap1', metadata: { purpose: 'test' } },
    });
    assert.equal(snap.status, 202, JSON.stringify(snap.body));
    const imageId = snap.body.image_id as string;
    const img = (await api('GET', `/image/v2/images/${imageId}`)).body;
    assert.equal(img.status, 'active');
    assert.equal(img.disk_format, 'qcow2');
    assert.equal(img.instance_uuid, writer);
    assert.equal(img.image_type, 'snapshot');
    assert.equal(img.purpose, 'test');
    assert.equal(img.kernel_id, kernel);
    assert.ok(img.size > 0 && img.size < 64 * 1024 * 1024, `size ${img.size}`);

    // The writer was paused for the copy and runs again.
    assert.equal(await status(writer), 'ACTIVE');
    const before = ticks(await consoleLog(writer));
    await eventually(async () => ticks(await consoleLog(writer)) > before + 2, 60_000, 'writer resumed');

    const reader = await boot(
      'reader',
      imageId,
      flavor,
      b64(`echo "atoll-read: $(head -c ${MARK.length} /dev/vda)"`),
    );
    await eventually(
      async () => (await consoleLog(reader)).includes(`atoll-read: ${MARK}`),
      120_000,
      'the snapshot carries the marker',
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
  },
);

test(
  'shelve offloads the disk into an image and the guest; unshelve boots it again',
  { skip, timeout: 500_000 },
  async () => {
    const { root } = await g.tinyImage(defaultGuestDir(), 'tiny2');
    const fl = await api('POST', '/compute/v2.1/flavors', {
      flavor: { name: 'g2', ram: 192, vcpus: 1, disk: 1 },
    });
    assert.equal(fl.status, 200, JSON.stringify(fl.body));
    const n = MARK.length;
    // Each boot prints what the disk holds, then writes the marker.
    const id = await boot(
      'shelf',
      root,
      fl.body.flavor.id as string,
      b64(
        `echo "atoll-read: $(head -c ${n} /dev/vda | tr -d '\\000')"\nprintf '${MARK}' > /dev/vda && sync && echo "atoll-wrote: $?"`,
      ),
    );
    await eventually(
      async () => (await consoleLog(id)).includes('atoll-wrote: 0'),
      120_000,
      'marker written',
    );
    assert.ok(!(await consoleLog(id)).includes(`atoll-read: ${MARK}`));

    assert.equal((await api('POST', `/compute/v2.1/servers/${id}/action`, { shelve: null })).status, 202);
    await eventually(async () => (await status(id)) === 'SHELVED_OFFLOADED', 120_000, 'SHELVED_OFFLOADED');
    assert.deepEqual(qemuPids(id), []);
    const list = (await api('GET', '/image/v2/images?name=shelf-shelved')).body.images as any[];
    assert.equal(list.length, 1);
    assert.equal(list[0].status, 'active');
    assert.equal(list[0].instance_uuid, id);
    assert.equal(list[0].image_type, 'snapshot');

    assert.equal((await api('POST', `/compute/v2.1/servers/${id}/action`, { unshelve: null })).status, 202);
    await eventually(async () => (await status(id)) === 'ACTIVE', 120_000, 'ACTIVE after unshelve');
    const out = await eventually(
      async () => {
        const o = await consoleLog(id);
        return o.includes(`atoll-read: ${MARK}`) ? o : undefined;
      },
      120_000,
      'the unshelved guest reads the marker',
    );
    // The shelved image is deleted once the guest runs on its own disk again.
    assert.equal((await api('GET', `/image/v2/images/${list[0].id}`)).status, 404);
    // The instance directory went away with the shelve: the console log holds only the new boot.
    assert.equal(boots(out), 1, out);

    assert.equal((await api('DELETE', `/compute/v2.1/servers/${id}`)).status, 204);
    await eventually(
      async () => (await api('GET', `/compute/v2.1/servers/${id}`)).status === 404,
      60_000,
      'deleted',
    );
    assert.deepEqual(qemuPids(id), []);
  },
);
