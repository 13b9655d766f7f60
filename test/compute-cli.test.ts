/**
 * @module Compute through Debian's real `openstack` CLI: flavors, keypairs, the server lifecycle and
 * its actions, quotas, failure cases, and a server booted at site-b through site-a's endpoint.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { eventually, startLocalCloud } from './support/cloud.ts';
import type { LocalCloud } from './support/cloud.ts';

describe('compute service (openstack CLI)', () => {
  let cloud: LocalCloud;
  let dir: string;
  before(async () => {
    cloud = await startLocalCloud({
      sites: 2,
      onDisk: true,
      site: { services: { compute: { hosts: 2, vcpus: 8, ramMb: 16384, diskGb: 100 } } },
    });
    dir = mkdtempSync(join(tmpdir(), 'atoll-cmp-'));
    writeFileSync(join(dir, 'img'), randomBytes(64 * 1024));
    await cloud.osJson(['flavor', 'create', '--vcpus', '1', '--ram', '512', '--disk', '1', 'm1.tiny']);
    await cloud.osJson(['flavor', 'create', '--vcpus', '2', '--ram', '1024', '--disk', '2', 'm1.small']);
    await cloud.osJson(['flavor', 'create', '--vcpus', '4', '--ram', '32768', '--disk', '1', 'm1.huge']);
    await cloud.osJson([
      'image',
      'create',
      '--file',
      join(dir, 'img'),
      '--disk-format',
      'raw',
      '--public',
      'cirros',
    ]);
    await cloud.converged();
  });
  after(async () => {
    await cloud?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('flavor list and keypair create/list/show/delete', async () => {
    const flavors = await cloud.osJson(['flavor', 'list']);
    assert.deepEqual(flavors.map((f: { Name: string }) => f.Name).sort(), ['m1.huge', 'm1.small', 'm1.tiny']);
    const kp = await cloud.os(['keypair', 'create', 'k1']);
    assert.equal(kp.code, 0, kp.stderr);
    assert.match(kp.stdout, /PRIVATE KEY/);
    const shown = await cloud.osJson(['keypair', 'show', 'k1']);
    assert.match(shown.fingerprint, /^([0-9a-f]{2}:){15}[0-9a-f]{2}$/);
    const list = await cloud.osJson(['keypair', 'list']);
    assert.ok(list.some((k: { Name: string }) => k.Name === 'k1'));
  });

  it('server create --wait, list, show, stop, start, reboot, resize + confirm, delete', async () => {
    const s = await cloud.osJson([
      'server',
      'create',
      '--flavor',
      'm1.tiny',
      '--image',
      'cirros',
      '--key-name',
      'k1',
      '--property',
      'role=web',
      '--wait',
      'vm1',
    ]);
    assert.equal(s.status, 'ACTIVE');
    assert.equal(s['OS-EXT-AZ:availability_zone'], 'site-a');
    const list = await cloud.osJson(['server', 'list']);
    assert.ok(list.some((x: { ID: string; Status: string }) => x.ID === s.id && x.Status === 'ACTIVE'));
    const waitFor = (status: string) =>
      eventually(
        async () => (await cloud.osJson(['server', 'show', s.id])).status === status,
        20_000,
        status,
      );
    for (const [cmd, status] of [
      [['server', 'stop', s.id], 'SHUTOFF'],
      [['server', 'start', s.id], 'ACTIVE'],
      [['server', 'reboot', '--wait', s.id], 'ACTIVE'],
      [['server', 'pause', s.id], 'PAUSED'],
      [['server', 'unpause', s.id], 'ACTIVE'],
      [['server', 'suspend', s.id], 'SUSPENDED'],
      [['server', 'resume', s.id], 'ACTIVE'],
    ] as const) {
      const r = await cloud.os([...cmd]);
      assert.equal(r.code, 0, `${cmd.join(' ')}: ${r.stderr}`);
      await waitFor(status);
    }
    const rs = await cloud.os(['server', 'resize', '--flavor', 'm1.small', '--wait', s.id]);
    assert.equal(rs.code, 0, rs.stderr);
    await waitFor('VERIFY_RESIZE');
    const conf = await cloud.os(['server', 'resize', 'confirm', s.id]);
    assert.equal(conf.code, 0, conf.stderr);
    await waitFor('ACTIVE');
    const shown = await cloud.osJson(['server', 'show', s.id]);
    assert.match(shown.flavor, /m1.small/);
    const actions = await cloud.osJson(['server', 'event', 'list', s.id]);
    assert.ok(actions.some((a: { Action: string }) => a.Action === 'resize'));
    // Claims follow the server: the hypervisors show the small flavor's resources in use.
    const hv = await cloud.osJson(['hypervisor', 'list', '--long']);
    const used = hv.reduce((a: number, h: { 'vCPUs Used': number }) => a + (h['vCPUs Used'] ?? 0), 0);
    assert.equal(used, 2);
    const del = await cloud.os(['server', 'delete', '--wait', s.id]);
    assert.equal(del.code, 0, del.stderr);
    assert.equal((await cloud.os(['server', 'show', s.id])).code, 1);
  });

  it('server set/unset --property; a stopped server rebuilt stays SHUTOFF', async () => {
    const s = await cloud.osJson([
      'server',
      'create',
      '--flavor',
      'm1.tiny',
      '--image',
      'cirros',
      '--property',
      'a=1',
      '--wait',
      'meta-src',
    ]);
    assert.equal((await cloud.os(['server', 'set', '--property', 'b=2', s.id])).code, 0);
    assert.equal((await cloud.os(['server', 'unset', '--property', 'a', s.id])).code, 0);
    const shown = await cloud.osJson(['server', 'show', s.id]);
    assert.match(JSON.stringify(shown.properties), /b[^,]*2/);
    assert.doesNotMatch(JSON.stringify(shown.properties), /a[^,]*1/);
    assert.equal((await cloud.os(['server', 'stop', s.id])).code, 0);
    const status = async () => (await cloud.osJson(['server', 'show', s.id])).status;
    await eventually(async () => (await status()) === 'SHUTOFF', 30_000, 'SHUTOFF');
    const rb = await cloud.os(['server', 'rebuild', '--image', 'cirros', s.id]);
    assert.equal(rb.code, 0, rb.stderr);
    await eventually(
      async () => (await cloud.osJson(['server', 'show', s.id]))['OS-EXT-STS:task_state'] === null,
      30_000,
      'rebuilt',
    );
    assert.equal(await status(), 'SHUTOFF');
    assert.equal((await cloud.os(['server', 'delete', '--wait', s.id])).code, 0);
  });

  it('createImage (server image create) makes an active image', async () => {
    const s = await cloud.osJson([
      'server',
      'create',
      '--flavor',
      'm1.tiny',
      '--image',
      'cirros',
      '--wait',
      'snap-src',
    ]);
    const img = await cloud.os(['server', 'image', 'create', '--name', 'snap1', '--wait', s.id]);
    assert.equal(img.code, 0, img.stderr);
    const shown = await cloud.osJson(['image', 'show', 'snap1']);
    assert.equal(shown.status, 'active');
    assert.equal((await cloud.os(['server', 'delete', '--wait', s.id])).code, 0);
  });

  it('failures: no valid host ends in ERROR with a fault; bad flavor and image are 400s; over quota is 403', async () => {
    const r = await cloud.os([
      'server',
      'create',
      '--flavor',
      'm1.huge',
      '--image',
      'cirros',
      '--wait',
      'too-big',
    ]);
    // OSC 6.0 prints "Error creating server" and exits through a bare SystemExit (status 0).
    assert.match(r.stdout + r.stderr, /Error creating server/);
    const s = await cloud.osJson(['server', 'show', 'too-big']);
    assert.equal(s.status, 'ERROR');
    assert.match(JSON.stringify(s.fault), /No valid host/);
    assert.equal((await cloud.os(['server', 'delete', '--wait', 'too-big'])).code, 0);

    const bf = await cloud.os(['server', 'create', '--flavor', 'nope', '--image', 'cirros', 'x']);
    assert.notEqual(bf.code, 0);
    assert.match(bf.stderr, /flavor/i);
    const token = await cloud.adminToken(0);
    const flavor = (await cloud.osJson(['flavor', 'show', 'm1.tiny'])).id;
    const res = await fetch(`${cloud.url(0)}/compute/v2.1/servers`, {
      method: 'POST',
      headers: { 'x-auth-token': token, 'content-type': 'application/json' },
      body: JSON.stringify({
        server: { name: 'x', flavorRef: flavor, imageRef: '00000000-0000-0000-0000-000000000000' },
      }),
    });
    assert.equal(res.status, 400);
    assert.match(JSON.stringify(await res.json()), /badRequest.*Image/);

    const project = (await cloud.osJson(['project', 'show', 'admin'])).id;
    assert.equal((await cloud.os(['quota', 'set', '--instances', '1', project])).code, 0);
    const q = await cloud
      .osJson(['quota', 'show', '--compute', project])
      .catch(() => cloud.osJson(['quota', 'show', project]));
    assert.equal(JSON.stringify(q).includes('"instances"') || Array.isArray(q), true);
    const one = await cloud.osJson([
      'server',
      'create',
      '--flavor',
      'm1.tiny',
      '--image',
      'cirros',
      '--wait',
      'q1',
    ]);
    const two = await cloud.os(['server', 'create', '--flavor', 'm1.tiny', '--image', 'cirros', 'q2']);
    assert.notEqual(two.code, 0);
    assert.match(two.stderr, /Quota exceeded for instances/);
    assert.match(two.stderr, /403/);
    assert.equal((await cloud.os(['quota', 'set', '--instances', '10', project])).code, 0);
    assert.equal((await cloud.os(['server', 'delete', '--wait', one.id])).code, 0);
  });

  it('microversions: latest is echoed, an unsupported one is a 406', async () => {
    const token = await cloud.adminToken(0);
    const ok = await fetch(`${cloud.url(0)}/compute/v2.1/flavors`, {
      headers: { 'x-auth-token': token, 'openstack-api-version': 'compute latest' },
    });
    assert.equal(ok.headers.get('openstack-api-version'), 'compute 2.79');
    const bad = await fetch(`${cloud.url(0)}/compute/v2.1/flavors`, {
      headers: { 'x-auth-token': token, 'x-openstack-nova-api-version': '2.200' },
    });
    assert.equal(bad.status, 406);
    const zones = await cloud.osJson(['availability', 'zone', 'list', '--compute']);
    assert.deepEqual(zones.map((z: { 'Zone Name': string }) => z['Zone Name']).sort(), ['site-a', 'site-b']);
  });

  it('two sites: an image of site-a boots at site-b through site-a, listed at both, deleted through site-a', async () => {
    const s = await cloud.osJson([
      'server',
      'create',
      '--flavor',
      'm1.tiny',
      '--image',
      'cirros',
      '--availability-zone',
      'site-b',
      '--wait',
      'far',
    ]);
    assert.equal(s.status, 'ACTIVE');
    assert.equal(s['OS-EXT-AZ:availability_zone'], 'site-b');
    assert.match(s['OS-EXT-SRV-ATTR:host'], /^site-b-/);
    await cloud.converged();
    for (const site of [0, 1]) {
      const list = await cloud.osJson(['server', 'list', '--long'], { site });
      assert.ok(
        list.some((x: { ID: string }) => x.ID === s.id),
        `listed at site ${site}`,
      );
    }
    const stop = await cloud.os(['server', 'stop', s.id]);
    assert.equal(stop.code, 0, stop.stderr);
    await eventually(
      async () => (await cloud.osJson(['server', 'show', s.id], { site: 1 })).status === 'SHUTOFF',
      20_000,
    );
    const del = await cloud.os(['server', 'delete', s.id]);
    assert.equal(del.code, 0, del.stderr);
    await eventually(
      async () => (await cloud.os(['server', 'show', s.id], { site: 0 })).code === 1,
      20_000,
      'delete to replicate',
    );
  });
});
