/**
 * @module The lifecycle of one real guest (QEMU driver, TCG, one site in process, on disk): every
 * action changes what the guest shows. Stop and start boot it again on the same disk (a marker it
 * wrote is still there); soft and hard reboot each print a new boot banner; pause and suspend stop its
 * ticks and unpause and resume start them again; resize boots it with the new flavor's memory; rebuild
 * boots a fresh disk (the marker is gone); delete leaves no qemu process.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { eventually, startLocalCloud } from './support/cloud.ts';
import type { LocalCloud } from './support/cloud.ts';
import { GuestApi, boots, buildGuest, qemuPids, qemuSkip, userData } from './support/guests.ts';
import { defaultGuestDir } from '../src/services/compute/service.ts';

const skip = await qemuSkip();
const MARK = `atoll-life-${process.pid}`;

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

const ticks = (log: string) => (log.match(/atoll-tick/g) ?? []).length;
/** The memory each boot banner reported, MiB, in order. */
const memory = (log: string) =>
  [...log.matchAll(/atoll-guest: booted.* (\d+) MiB/g)].map((m) => Number(m[1]));

test('each lifecycle action changes what the real guest shows', { skip, timeout: 560_000 }, async () => {
  const { root } = await g.tinyImage(defaultGuestDir());
  const small = await g.flavor('small', 160, 1);
  const big = await g.flavor('big', 320, 1);
  // Every boot prints what its disk holds, writes the marker, then ticks.
  const ud = userData(
    `echo "atoll-disk: $(head -c ${MARK.length} /dev/vda | tr -d '\\000')."\n` +
      `printf '${MARK}' > /dev/vda && sync\nwhile true; do echo atoll-tick; sleep 0.5; done`,
  );
  const id = await g.create('life', root, small, ud);
  const log = () => g.consoleLog(id);
  const waitStatus = (s: string) => eventually(async () => (await g.status(id)) === s, 120_000, s);
  const waitBoots = (n: number, why: string) =>
    eventually(
      async () =>
        boots(await log()) >= n &&
        ticks(await log().then((l) => l.split('atoll-guest: booted').pop() ?? '')) > 0,
      180_000,
      why,
    );
  const ticking = async (why: string) => {
    const t = ticks(await log());
    await eventually(async () => ticks(await log()) > t + 2, 60_000, why);
  };
  const still = async () => {
    const t = ticks(await log());
    await new Promise((r) => setTimeout(r, 3000));
    assert.ok(ticks(await log()) <= t + 1, 'a stopped guest does not tick');
  };
  await waitStatus('ACTIVE');
  await waitBoots(1, 'first boot');
  assert.ok((await log()).includes('atoll-disk: .'), 'a new disk is empty');

  // stop / start: the same disk boots again.
  assert.equal((await g.action(id, { 'os-stop': null })).status, 202);
  await waitStatus('SHUTOFF');
  assert.deepEqual(qemuPids(id), []);
  assert.equal((await g.action(id, { 'os-start': null })).status, 202);
  await waitStatus('ACTIVE');
  await waitBoots(2, 'boot after start');
  assert.ok((await log()).includes(`atoll-disk: ${MARK}.`), 'the disk kept the marker');

  // soft and hard reboot: a new banner each.
  for (const [type, n] of [
    ['SOFT', 3],
    ['HARD', 4],
  ] as const) {
    assert.equal((await g.action(id, { reboot: { type } })).status, 202);
    await waitBoots(n, `boot after ${type} reboot`);
    await waitStatus('ACTIVE');
  }

  // pause / unpause and suspend / resume: the ticks stop and go on.
  for (const [off, on, st] of [
    ['pause', 'unpause', 'PAUSED'],
    ['suspend', 'resume', 'SUSPENDED'],
  ] as const) {
    assert.equal((await g.action(id, { [off]: null })).status, 202);
    await waitStatus(st);
    await still();
    assert.equal((await g.action(id, { [on]: null })).status, 202);
    await waitStatus('ACTIVE');
    await ticking(`ticks after ${on}`);
  }

  // resize: the guest boots with the bigger flavor's memory.
  const before = memory(await log());
  assert.equal((await g.action(id, { resize: { flavorRef: big } })).status, 202);
  await waitStatus('VERIFY_RESIZE');
  await waitBoots(5, 'boot after resize');
  const after = memory(await log());
  assert.ok(after[after.length - 1]! > before[before.length - 1]!, `memory ${before} then ${after}`);
  assert.equal((await g.action(id, { confirmResize: null })).status, 204);
  await waitStatus('ACTIVE');

  // rebuild: a fresh disk, the marker gone.
  assert.equal((await g.action(id, { rebuild: { imageRef: root } })).status, 202);
  await waitStatus('ACTIVE');
  await waitBoots(6, 'boot after rebuild');
  const last = (await log()).split('atoll-guest: booted').pop()!;
  assert.ok(last.includes('atoll-disk: .'), last);

  assert.equal((await g.call('DELETE', `/compute/v2.1/servers/${id}`)).status, 204);
  await eventually(
    async () => (await g.call('GET', `/compute/v2.1/servers/${id}`)).status === 404,
    60_000,
    'deleted',
  );
  assert.deepEqual(qemuPids(id), []);
});
