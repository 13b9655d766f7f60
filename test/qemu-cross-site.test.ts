/**
 * @module Real guests across sites, on real processes (three `atoll site` processes, a nats-server
 * each, WAN proxies on the routes; site-c runs the QEMU driver under TCG). A 100 MiB root image and its
 * kernel and ramdisk, uploaded at site-a, boot real servers on site-c: two boots at once share one
 * fetch of the bytes from site-a into site-c's base cache (verified against their sha256), and the
 * guest reads its disk and prints the first MiB's sha256. Then site-a is cut off: site-c boots the same
 * image again from its cached copy, and an image it never fetched ends in ERROR with a fault.
 */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { eventually } from './support/cloud.ts';
import { buildGuest, qemuPids, qemuSkip } from './support/guests.ts';
import { startProcessFederation } from './support/processes.ts';
import type { ProcFederation } from './support/processes.ts';
import { defaultGuestDir } from '../src/services/compute/service.ts';

const MiB = 1024 * 1024;
const skip = await qemuSkip();

let fed: ProcFederation;
let token: string;

before(async () => {
  if (skip) return;
  await buildGuest();
  // site-c runs real guests under TCG (KVM hangs on some machines; the probe would cost 8 s).
  const compute = { driver: 'qemu', accel: 'tcg', shutdownTimeoutMs: 1000 };
  fed = await startProcessFederation(3, {
    latencyMs: 2,
    siteArgs: (i, dir) => {
      if (i !== 2) return [];
      const file = join(dir, 'site-c.json');
      writeFileSync(file, JSON.stringify({ services: { compute } }));
      return ['--config', file];
    },
  });
  token = await fed.token(0);
});

after(async () => {
  await fed?.stop();
});

async function api(
  site: number,
  method: string,
  path: string,
  body?: unknown,
  headers: Record<string, string> = {},
) {
  const raw = body instanceof Uint8Array;
  const r = await fetch(`${fed.sites[site]!.url}${path}`, {
    method,
    headers: {
      'x-auth-token': token,
      'openstack-api-version': 'compute 2.37',
      ...(body !== undefined
        ? { 'content-type': raw ? 'application/octet-stream' : 'application/json' }
        : {}),
      ...headers,
    },
    ...(body !== undefined ? { body: raw ? new Blob([new Uint8Array(body)]) : JSON.stringify(body) } : {}),
  });
  const text = await r.text();
  return { status: r.status, body: text ? (JSON.parse(text) as any) : undefined };
}

async function image(name: string, data: Uint8Array, attrs: Record<string, string>): Promise<string> {
  const c = await api(0, 'POST', '/image/v2/images', {
    name,
    container_format: 'bare',
    visibility: 'public',
    ...attrs,
  });
  assert.equal(c.status, 201, JSON.stringify(c.body));
  const u = await api(0, 'PUT', `/image/v2/images/${c.body.id}/file`, data);
  assert.equal(u.status, 204, JSON.stringify(u.body));
  return c.body.id as string;
}

const server = async (id: string) => (await api(2, 'GET', `/compute/v2.1/servers/${id}`)).body?.server;
const consoleLog = async (id: string) =>
  (await api(2, 'POST', `/compute/v2.1/servers/${id}/action`, { 'os-getConsoleOutput': {} })).body
    ?.output as string;

/** Boots `count` servers at site-c (one request) and returns their ids. */
async function boot(name: string, imageRef: string, flavorRef: string, count = 1): Promise<string[]> {
  const userData = Buffer.from(
    '#!/bin/sh\necho "atoll-disk: $(head -c 1048576 /dev/vda | sha256sum | cut -d " " -f 1)"\n',
  ).toString('base64');
  const c = await api(2, 'POST', '/compute/v2.1/servers', {
    server: {
      name,
      flavorRef,
      imageRef,
      networks: 'none',
      availability_zone: 'site-c',
      user_data: userData,
      min_count: count,
      max_count: count,
    },
  });
  assert.equal(c.status, 202, JSON.stringify(c.body));
  if (count === 1) return [c.body.server.id as string];
  const list = await api(2, 'GET', `/compute/v2.1/servers?name=^${name}`);
  return (list.body.servers as { id: string }[]).map((s) => s.id);
}

async function deleteAll(ids: string[]): Promise<void> {
  for (const id of ids) assert.equal((await api(2, 'DELETE', `/compute/v2.1/servers/${id}`)).status, 204);
  for (const id of ids)
    await eventually(
      async () => (await api(2, 'GET', `/compute/v2.1/servers/${id}`)).status === 404,
      30_000,
      'deleted',
    );
  for (const id of ids) assert.deepEqual(qemuPids(id), []);
}

test(
  'an image owned by site-a boots on site-c, fetched once for two boots, and again with site-a cut off',
  { skip, timeout: 540_000 },
  async () => {
    const guest = defaultGuestDir();
    const data = randomBytes(100 * MiB);
    const firstMiB = createHash('sha256').update(data.subarray(0, MiB)).digest('hex');
    const blob = createHash('sha256').update(data).digest('hex');
    const kernel = await image('tiny-kernel', readFileSync(join(guest, 'vmlinuz')), { disk_format: 'aki' });
    const ramdisk = await image('tiny-ramdisk', readFileSync(join(guest, 'initramfs.gz')), {
      disk_format: 'ari',
    });
    const root = await image('big', new Uint8Array(data), {
      disk_format: 'raw',
      kernel_id: kernel,
      ramdisk_id: ramdisk,
    });
    // An image site-c never fetches: booting it while site-a is cut off must fail cleanly.
    const never = await image('never', new Uint8Array(MiB), {
      disk_format: 'raw',
      kernel_id: kernel,
      ramdisk_id: ramdisk,
    });
    const fl = await api(0, 'POST', '/compute/v2.1/flavors', {
      flavor: { name: 'g1', ram: 192, vcpus: 1, disk: 1 },
    });
    assert.equal(fl.status, 200, JSON.stringify(fl.body));
    await fed.converged();

    // Two boots at once: one fetch from site-a serves both.
    const before = fed.linkBytes();
    const t0 = Date.now();
    const ids = await boot('far', root, fl.body.flavor.id, 2);
    assert.equal(ids.length, 2);
    for (const id of ids)
      await eventually(
        async () => {
          const s = await server(id);
          assert.notEqual(s?.status, 'ERROR', JSON.stringify(s?.fault));
          return s?.status === 'ACTIVE';
        },
        240_000,
        'ACTIVE',
      );
    const fetchMs = Date.now() - t0;
    const moved = fed.linkBytes() - before;
    const imageBytes =
      data.length + statSync(join(guest, 'vmlinuz')).size + statSync(join(guest, 'initramfs.gz')).size;
    assert.ok(moved >= imageBytes, `${moved} bytes crossed the links, the images are ${imageBytes}`);
    assert.ok(moved < 1.5 * imageBytes, `one fetch for two boots: ${moved} bytes crossed for ${imageBytes}`);
    for (const id of ids)
      await eventually(
        async () => (await consoleLog(id)).includes(`atoll-disk: ${firstMiB}`),
        90_000,
        'the disk hash',
      );
    const base = join(fed.dir, 'site-c', 'qemu', 'base');
    assert.equal(statSync(join(base, blob)).size, data.length);
    assert.deepEqual(
      readdirSync(base).filter((f) => f.endsWith('.tmp')),
      [],
    );
    process.stdout.write(
      `# 100 MiB image from site-a to two guests on site-c: ACTIVE in ${fetchMs} ms, ${moved} bytes on the links\n`,
    );
    await deleteAll(ids);
    for (const id of ids) assert.equal(existsSync(join(fed.dir, 'site-c', 'qemu', 'instances', id)), false);

    // site-a cut off: the cached copy boots; an image never fetched fails with a fault.
    fed.isolate(0);
    try {
      const [again] = await boot('cut', root, fl.body.flavor.id);
      await eventually(
        async () => (await server(again!))?.status === 'ACTIVE',
        120_000,
        'ACTIVE while cut off',
      );
      await eventually(
        async () => (await consoleLog(again!)).includes(`atoll-disk: ${firstMiB}`),
        90_000,
        'the disk hash',
      );
      const [lost] = await boot('lost', never, fl.body.flavor.id);
      const s = await eventually(
        async () => {
          const v = await server(lost!);
          return v?.status === 'ERROR' ? v : undefined;
        },
        120_000,
        'ERROR for an image not cached',
      );
      assert.match(JSON.stringify(s.fault), /site-a/);
      await deleteAll([again!, lost!]);
    } finally {
      fed.heal();
    }
  },
);
