/**
 * @module Real guests survive their site: one `atoll site` process (its own nats-server) with the
 * QEMU driver under TCG. A guest keeps running through a kill -9 of the site and is managed again
 * after the restart (console, stop, start); a guest that powers itself off, and one whose qemu is
 * killed, are reported SHUTOFF with a `stop` instance action; a kill -9 during a build ends in ERROR
 * with nothing left running; delete leaves no process and no file.
 */
import assert from 'node:assert/strict';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { eventually } from './support/cloud.ts';
import { buildGuest, qemuPids, qemuSkip, GuestApi } from './support/guests.ts';
import { startProcessFederation } from './support/processes.ts';
import type { ProcFederation } from './support/processes.ts';
import { defaultGuestDir } from '../src/services/compute/service.ts';

const skip = await qemuSkip();
const booted: string[] = [];

let fed: ProcFederation;
let token: string;

before(async () => {
  if (skip) return;
  await buildGuest();
  // vcpus: room for three one-vcpu guests on a two-core machine.
  const compute = { driver: 'qemu', accel: 'tcg', shutdownTimeoutMs: 1000, powerSyncMs: 500, vcpus: 8 };
  fed = await startProcessFederation(1, {
    siteArgs: (_i, dir) => {
      const file = join(dir, 'site.json');
      writeFileSync(file, JSON.stringify({ services: { compute } }));
      return ['--config', file];
    },
  });
  token = await fed.token(0);
});

after(async () => {
  // Guests outlive their site by design: a failed test must not leave any behind.
  for (const id of booted)
    for (const pid of qemuPids(id))
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // gone
      }
  await fed?.stop();
});

/** This file's calls, through the shared real-guest client (test/support/guests.ts). */
const client = () => new GuestApi(fed.sites[0]!.url, token, '2.37');
const api = (method: string, path: string, body?: unknown) => client().call(method, path, body);
const image = (name: string, data: Uint8Array, attrs: Record<string, string>) =>
  client().image(name, data, attrs);

const server = async (id: string) => (await api('GET', `/compute/v2.1/servers/${id}`)).body?.server;
const status = async (id: string) => (await server(id))?.status as string | undefined;
const consoleLog = async (id: string) =>
  (await api('POST', `/compute/v2.1/servers/${id}/action`, { 'os-getConsoleOutput': {} })).body
    ?.output as string;
const actions = async (id: string) =>
  ((await api('GET', `/compute/v2.1/servers/${id}/os-instance-actions`)).body?.instanceActions ?? []) as {
    action: string;
  }[];

async function boot(name: string, imageRef: string, flavorRef: string, script: string): Promise<string> {
  const c = await api('POST', '/compute/v2.1/servers', {
    server: {
      name,
      flavorRef,
      imageRef,
      networks: 'none',
      user_data: Buffer.from(`#!/bin/sh\n${script}\n`).toString('base64'),
    },
  });
  assert.equal(c.status, 202, JSON.stringify(c.body));
  booted.push(c.body.server.id as string);
  return c.body.server.id as string;
}

async function remove(id: string): Promise<void> {
  assert.equal((await api('DELETE', `/compute/v2.1/servers/${id}`)).status, 204);
  await eventually(
    async () => (await api('GET', `/compute/v2.1/servers/${id}`)).status === 404,
    60_000,
    'deleted',
  );
  assert.deepEqual(qemuPids(id), []);
  assert.equal(existsSync(join(fed.dir, 'site-a', 'qemu', 'instances', id)), false);
}

test(
  'guests outlive a kill -9 of their site, are managed again after it, and stopping by themselves is reported',
  { skip, timeout: 400_000 },
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

    // Steady state: the guest runs through a kill -9 of its site.
    const vm = await boot('steady', root, flavor, 'echo "atoll-mark: up"');
    await eventually(async () => (await status(vm)) === 'ACTIVE', 120_000, 'ACTIVE');
    await eventually(
      async () => (await consoleLog(vm))?.includes('atoll-mark: up'),
      120_000,
      'user_data output',
    );
    const [pid] = qemuPids(vm);
    assert.ok(pid);
    await fed.kill(0);
    assert.deepEqual(qemuPids(vm), [pid], 'the guest outlives its site');
    await fed.restart(0);
    token = await fed.token(0);
    assert.equal(await status(vm), 'ACTIVE');
    assert.deepEqual(qemuPids(vm), [pid], 'the same guest, found again');
    assert.ok((await consoleLog(vm)).includes('atoll-mark: up'));
    assert.equal((await api('POST', `/compute/v2.1/servers/${vm}/action`, { pause: null })).status, 202);
    await eventually(async () => (await status(vm)) === 'PAUSED', 60_000, 'PAUSED');
    assert.equal((await api('POST', `/compute/v2.1/servers/${vm}/action`, { unpause: null })).status, 202);
    await eventually(async () => (await status(vm)) === 'ACTIVE', 60_000, 'ACTIVE after unpause');

    // A guest whose qemu dies (killed here) is reported by the power state sync.
    process.kill(pid, 'SIGKILL');
    const off = await eventually(
      async () => {
        const s = await server(vm);
        return s?.status === 'SHUTOFF' ? s : undefined;
      },
      60_000,
      'SHUTOFF after its qemu died',
    );
    assert.equal(off['OS-EXT-STS:power_state'], 4);
    assert.ok(
      (await actions(vm)).some((a) => a.action === 'stop'),
      'a stop instance action',
    );
    assert.equal((await api('POST', `/compute/v2.1/servers/${vm}/action`, { 'os-start': null })).status, 202);
    await eventually(async () => (await status(vm)) === 'ACTIVE', 60_000, 'ACTIVE after start');
    assert.equal(qemuPids(vm).length, 1);

    // A guest that powers itself off.
    const self = await boot('self-off', root, flavor, 'echo "atoll-mark: bye"; poweroff -f');
    await eventually(async () => (await status(self)) === 'SHUTOFF', 120_000, 'SHUTOFF by itself');
    assert.ok((await consoleLog(self)).includes('atoll-mark: bye'));
    assert.deepEqual(qemuPids(self), []);

    // kill -9 during a build: ERROR after the restart, nothing left running for it.
    const building = await boot('cut-build', root, flavor, 'echo hi');
    // At once after the 202: the host is still making the disk, the config drive or the process.
    await fed.kill(0);
    await fed.restart(0);
    token = await fed.token(0);
    const err = await eventually(
      async () => {
        const s = await server(building);
        return s?.status === 'ERROR' ? s : undefined;
      },
      60_000,
      'ERROR after a kill during the build',
    );
    assert.match(JSON.stringify(err.fault), /restarted/);
    await eventually(async () => qemuPids(building).length === 0, 30_000, 'no guest for the failed build');
    assert.equal(await status(vm), 'ACTIVE', 'the other guest is still managed');

    for (const id of [vm, self, building]) await remove(id);
  },
);
