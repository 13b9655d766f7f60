/**
 * @module Real guests: a site whose compute host runs the QEMU driver boots the tiny guest
 * (scripts/build-guest.sh) from a kernel/ramdisk image over the HTTP API, its user_data runs and shows
 * in the console log, stop/start boots it again, and delete leaves no process and no file behind.
 * Skipped only when qemu-system-x86_64 cannot run here at all.
 */
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { eventually, startLocalCloud } from './support/cloud.ts';
import type { LocalCloud } from './support/cloud.ts';
import { buildGuest, qemuPids, qemuSkip } from './support/guests.ts';
import { defaultGuestDir } from '../src/services/compute/service.ts';

const MARKER = `atoll-marker-${process.pid}`;
const skip = await qemuSkip();

let cloud: LocalCloud;
let token: string;
let dataDir: string;

before(async () => {
  if (skip) return;
  // The test tier builds the guest (idempotent: a stamp names the kernel package it was built from).
  await buildGuest();
  cloud = await startLocalCloud({
    onDisk: true,
    site: {
      // 'auto' runs the KVM probe (a timed boot of the guest's kernel), falling back to TCG.
      services: {
        compute: { driver: 'qemu', accel: 'auto', shutdownTimeoutMs: 1000, guestDir: defaultGuestDir() },
      },
    },
  });
  token = await cloud.adminToken();
  dataDir = cloud.fed.sites[0]!.ctx.config.dataDir;
});

after(async () => {
  await cloud?.close();
});

async function api(method: string, path: string, body?: unknown, headers: Record<string, string> = {}) {
  const r = await fetch(`${cloud.url()}${path}`, {
    method,
    headers: {
      'x-auth-token': token,
      'openstack-api-version': 'compute 2.37',
      ...(body !== undefined && !(body instanceof Uint8Array) ? { 'content-type': 'application/json' } : {}),
      ...headers,
    },
    ...(body !== undefined
      ? { body: body instanceof Uint8Array ? new Blob([new Uint8Array(body)]) : JSON.stringify(body) }
      : {}),
  });
  const text = await r.text();
  return { status: r.status, body: text ? (JSON.parse(text) as any) : undefined };
}

async function image(name: string, file: Uint8Array, attrs: Record<string, string>): Promise<string> {
  const c = await api('POST', '/image/v2/images', { name, container_format: 'bare', ...attrs });
  assert.equal(c.status, 201, JSON.stringify(c.body));
  const id = c.body.id as string;
  const u = await api('PUT', `/image/v2/images/${id}/file`, file, {
    'content-type': 'application/octet-stream',
  });
  assert.equal(u.status, 204, JSON.stringify(u.body));
  return id;
}

const status = async (id: string) => (await api('GET', `/compute/v2.1/servers/${id}`)).body?.server?.status;
const consoleLog = async (id: string, length?: number) =>
  (
    await api('POST', `/compute/v2.1/servers/${id}/action`, {
      'os-getConsoleOutput': length ? { length } : {},
    })
  ).body?.output as string;

test(
  'a kernel/ramdisk image boots a real guest; user_data shows in the console; stop/start; delete leaves nothing',
  { skip, timeout: 150_000 },
  async () => {
    const t0 = Date.now();
    const guest = defaultGuestDir();
    const kernel = await image('tiny-kernel', readFileSync(join(guest, 'vmlinuz')), { disk_format: 'aki' });
    const ramdisk = await image('tiny-ramdisk', readFileSync(join(guest, 'initramfs.gz')), {
      disk_format: 'ari',
    });
    const root = await image('tiny', new Uint8Array(1024 * 1024), {
      disk_format: 'raw',
      kernel_id: kernel,
      ramdisk_id: ramdisk,
    });
    const fl = await api('POST', '/compute/v2.1/flavors', {
      flavor: { name: 'g1', ram: 256, vcpus: 1, disk: 1 },
    });
    assert.equal(fl.status, 200, JSON.stringify(fl.body));

    const hv = await api('GET', '/compute/v2.1/os-hypervisors/detail', undefined, {
      'openstack-api-version': 'compute 2.1',
    });
    assert.equal(hv.body.hypervisors[0].hypervisor_type, 'QEMU');
    const accel = JSON.parse(hv.body.hypervisors[0].cpu_info as string).accel as string;
    assert.ok(['kvm', 'tcg'].includes(accel), accel);

    const userData = Buffer.from(`#!/bin/sh\necho "${MARKER} from $(hostname)"\n`).toString('base64');
    const c = await api('POST', '/compute/v2.1/servers', {
      server: {
        name: 'vm1',
        flavorRef: fl.body.flavor.id,
        imageRef: root,
        networks: 'none',
        user_data: userData,
      },
    });
    assert.equal(c.status, 202, JSON.stringify(c.body));
    const id = c.body.server.id as string;
    const tCreate = Date.now();
    await eventually(async () => (await status(id)) === 'ACTIVE', 30_000, 'ACTIVE');
    const out = await eventually(
      async () => {
        const o = await consoleLog(id);
        return o.includes(`${MARKER} from vm1`) ? o : undefined;
      },
      60_000,
      'the marker on the console',
    );
    const bootMs = Date.now() - tCreate;
    assert.match(out, /atoll-guest: booted, kernel \S+, 1 vcpu\(s\)/);
    assert.match(out, new RegExp(`config drive /dev/vd., instance ${id}`));
    process.stdout.write(`# ${accel}: create to user_data output on the console in ${bootMs} ms\n`);

    // length: the last N lines, as Nova; bad input is a 400 fault.
    const last = await consoleLog(id, 1);
    assert.equal(last.split('\n').length, 1);
    const bad = await api('POST', `/compute/v2.1/servers/${id}/action`, {
      'os-getConsoleOutput': { length: 'x' },
    });
    assert.equal(bad.status, 400);
    assert.ok(bad.body.badRequest.message);

    const instDir = join(dataDir, 'qemu', 'instances', id);
    assert.ok(existsSync(join(instDir, 'disk.qcow2')));
    assert.equal(qemuPids(id).length, 1);

    assert.equal((await api('POST', `/compute/v2.1/servers/${id}/action`, { 'os-stop': null })).status, 202);
    await eventually(async () => (await status(id)) === 'SHUTOFF', 30_000, 'SHUTOFF');
    assert.equal(qemuPids(id).length, 0);
    assert.equal((await api('POST', `/compute/v2.1/servers/${id}/action`, { 'os-start': null })).status, 202);
    await eventually(async () => (await status(id)) === 'ACTIVE', 30_000, 'ACTIVE again');
    await eventually(
      async () => (await consoleLog(id)).split(`${MARKER} from vm1`).length - 1 === 2,
      60_000,
      'a second boot on the console',
    );

    assert.equal((await api('DELETE', `/compute/v2.1/servers/${id}`)).status, 204);
    await eventually(
      async () => (await api('GET', `/compute/v2.1/servers/${id}`)).status === 404,
      30_000,
      'deleted',
    );
    assert.deepEqual(qemuPids(id), []);
    assert.equal(existsSync(instDir), false);
    process.stdout.write(`# whole test ${Date.now() - t0} ms\n`);
  },
);

test('a site with an unknown compute driver does not start, with a message', async () => {
  await assert.rejects(
    startLocalCloud({ site: { services: { compute: { driver: 'xen' } } } }),
    /services\.compute\.driver must be one of fake, qemu/,
  );
});
