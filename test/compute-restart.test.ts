/**
 * @module A site that stops in the middle of host work converges when it starts again (issue 12): a
 * build held in its driver ends in ERROR with a fault, a held stop is run again, and later actions
 * (delete) work. The crash is the database as it stood while the work was in flight (a consistent
 * copy taken then), started by a new site on the real createSite; before reconciliation the build
 * stayed in task_state spawning for ever and the stop in powering-off. Then the periodic pass: it
 * leaves work in flight alone and runs again work that was lost.
 */
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { cpSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { systemClock } from '../src/core/ports.ts';
import { MemoryNetwork } from '../src/fabric/memory/network.ts';
import type { ComputeDriver, DriverOp, InstanceSpec } from '../src/services/compute/agent/driver.ts';
import { FakeDriver } from '../src/services/compute/agent/fake-driver.ts';
import type { computeModule } from '../src/services/compute/index.ts';
import { startSite } from '../src/site/launch.ts';
import type { Site, SiteConfig } from '../src/site/site.ts';
import { ADMIN, eventually, passwordToken } from './support/cloud.ts';

const C = '/compute/v2.1';

/** A fake driver whose operations named in `hold` wait until released (the host work in flight). */
class GatedDriver implements ComputeDriver {
  readonly inner = new FakeDriver({ bootDelayMs: 0, opDelayMs: 0, failureRate: 0, clock: systemClock });
  readonly hold = new Set<DriverOp>();
  readonly held: string[] = [];
  private waiting: (() => void)[] = [];
  async run(host: string, op: DriverOp, inst: InstanceSpec) {
    if (this.hold.has(op)) {
      this.held.push(`${op}:${inst.id}`);
      await new Promise<void>((r) => this.waiting.push(r));
    }
    return this.inner.run(host, op, inst);
  }
  release(): void {
    for (const r of this.waiting.splice(0)) r();
  }
}

const config = (
  dataDir: string,
  compute: Record<string, unknown> = {},
): Partial<SiteConfig> & { name: string } => ({
  name: 'site-a',
  dataDir,
  logLevel: 'silent',
  passwordHashCost: 10,
  heartbeatMs: 200,
  downAfterMs: 1000,
  services: { compute },
});

const computeOf = (site: Site) =>
  site.modules.find((m) => m.name === 'compute') as ReturnType<typeof computeModule>;

describe('a site restarted during host work converges', () => {
  const dir = mkdtempSync(join(tmpdir(), 'atoll-restart-'));
  let site: Site | undefined;
  let token = '';
  const call = async (method: string, path: string, body?: unknown) => {
    const res = await fetch(`${site!.ctx.publicUrl()}${path}`, {
      method,
      headers: {
        'x-auth-token': token,
        ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
      },
      ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
    });
    const text = await res.text();
    return { status: res.status, body: text ? JSON.parse(text) : undefined };
  };
  const server = async (id: string) => (await call('GET', `${C}/servers/${id}`)).body.server;

  /** A public image with bytes and a flavor; returns a function that boots a server of them. */
  const bootable = async () => {
    const img = await call('POST', '/image/v2/images', {
      name: 'r-img',
      disk_format: 'raw',
      container_format: 'bare',
      visibility: 'public',
    });
    assert.equal(img.status, 201);
    const up = await fetch(`${site!.ctx.publicUrl()}/image/v2/images/${img.body.id}/file`, {
      method: 'PUT',
      headers: { 'x-auth-token': token, 'content-type': 'application/octet-stream' },
      body: 'x'.repeat(1024),
    });
    assert.equal(up.status, 204);
    const flavor = await call('POST', `${C}/flavors`, {
      flavor: { name: 'r-f', ram: 64, vcpus: 1, disk: 0 },
    });
    assert.equal(flavor.status, 200);
    const boot = async (name: string) => {
      const r = await call('POST', `${C}/servers`, {
        server: { name, imageRef: img.body.id, flavorRef: flavor.body.flavor.id, networks: 'none' },
      });
      assert.equal(r.status, 202, JSON.stringify(r.body));
      return r.body.server.id as string;
    };
    return boot;
  };

  after(async () => {
    await site?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('a held build ends in ERROR with a fault, a held stop runs again, and delete works after', async () => {
    const first = join(dir, 'first', 'site-a');
    site = await startSite(config(first), new MemoryNetwork(systemClock).connect('site-a'), {
      bootstrap: ADMIN,
    });
    token = await passwordToken(site.ctx.publicUrl());
    const driver = new GatedDriver();
    computeOf(site).service!.driver = driver;

    const boot = await bootable();

    // One server ACTIVE, then stopped with the stop held; another with its build held.
    const stopped = await boot('r-stop');
    await eventually(async () => (await server(stopped)).status === 'ACTIVE', 10_000, 'ACTIVE');
    driver.hold.add('power_off');
    assert.equal((await call('POST', `${C}/servers/${stopped}/action`, { 'os-stop': null })).status, 202);
    driver.hold.add('spawn');
    const building = await boot('r-build');
    await eventually(() => driver.held.length === 2, 10_000, 'the stop and the spawn to reach the driver');
    assert.equal((await server(building))['OS-EXT-STS:task_state'], 'spawning');
    assert.equal((await server(stopped))['OS-EXT-STS:task_state'], 'powering-off');

    // The crash: what is on disk now is all the next run gets.
    const second = join(dir, 'second', 'site-a');
    for (const f of readdirSync(first))
      if (!f.startsWith('site.db')) cpSync(join(first, f), join(second, f), { recursive: true });
    site.ctx.store.db.exec(`VACUUM INTO '${join(second, 'site.db').replaceAll("'", "''")}'`);
    driver.release();
    await site.close();
    site = undefined;

    site = await startSite(config(second), new MemoryNetwork(systemClock).connect('site-a'));
    token = await passwordToken(site.ctx.publicUrl());

    const failed = await eventually(
      async () => {
        const s = await server(building);
        return s['OS-EXT-STS:task_state'] === null ? s : undefined;
      },
      10_000,
      'the interrupted build to settle',
    );
    assert.equal(failed.status, 'ERROR');
    assert.equal(failed.fault.code, 500);
    assert.match(failed.fault.message, /restarted/);
    const actions = (await call('GET', `${C}/servers/${building}/os-instance-actions`)).body.instanceActions;
    const create = (
      await call('GET', `${C}/servers/${building}/os-instance-actions/${actions[0].request_id}`)
    ).body.instanceAction;
    assert.equal(create.action, 'create');
    assert.equal(create.events[0].result, 'Error');
    // The build's claim was given back: the host carries only the other server.
    const hv = (await call('GET', `${C}/os-hypervisors/detail`)).body.hypervisors;
    assert.equal(
      hv.reduce((n: number, h: { running_vms: number }) => n + h.running_vms, 0),
      1,
    );

    const retried = await eventually(
      async () => {
        const s = await server(stopped);
        return s['OS-EXT-STS:task_state'] === null ? s : undefined;
      },
      10_000,
      'the interrupted stop to settle',
    );
    assert.ok(['ACTIVE', 'SHUTOFF'].includes(retried.status), retried.status);

    // Later actions are no longer refused.
    for (const id of [building, stopped]) {
      assert.equal((await call('DELETE', `${C}/servers/${id}`)).status, 204);
      await eventually(
        async () => (await call('GET', `${C}/servers/${id}`)).status === 404,
        10_000,
        'deleted',
      );
    }
  });

  it('a periodic pass leaves host work in flight alone and converges a server whose work was lost', async () => {
    await site?.close();
    site = await startSite(
      config(':memory:', { reconcileMs: 50 }),
      new MemoryNetwork(systemClock).connect('site-a'),
      {
        bootstrap: ADMIN,
      },
    );
    token = await passwordToken(site.ctx.publicUrl());
    const svc = computeOf(site).service!;
    const driver = new GatedDriver();
    svc.driver = driver;
    const boot = await bootable();
    const id = await boot('p-1');
    await eventually(async () => (await server(id)).status === 'ACTIVE', 10_000, 'ACTIVE');

    // A stop held in its driver for many reconciliation periods is left to finish.
    driver.hold.add('power_off');
    assert.equal((await call('POST', `${C}/servers/${id}/action`, { 'os-stop': null })).status, 202);
    await eventually(() => driver.held.length === 1, 10_000, 'the stop to reach the driver');
    await new Promise((r) => setTimeout(r, 400));
    assert.equal((await server(id))['OS-EXT-STS:task_state'], 'powering-off');
    assert.deepEqual(driver.held, [`power_off:${id}`], 'no pass ran the stop a second time');
    driver.hold.clear();
    driver.release();
    await eventually(
      async () => {
        const s = await server(id);
        return s.status === 'SHUTOFF' && s['OS-EXT-STS:task_state'] === null;
      },
      10_000,
      'SHUTOFF',
    );

    // Work lost without a restart (nothing in flight holds the state): the next pass runs it again.
    svc.update(id, { task_state: 'powering-on' });
    await eventually(
      async () => {
        const s = await server(id);
        return s.status === 'ACTIVE' && s['OS-EXT-STS:task_state'] === null;
      },
      10_000,
      'the lost start to be run again',
    );
  });

  it('the power state sync reports a guest that went away by itself: SHUTOFF and a stop action', async () => {
    await site?.close();
    site = await startSite(
      config(':memory:', { powerSyncMs: 50 }),
      new MemoryNetwork(systemClock).connect('site-a'),
      { bootstrap: ADMIN },
    );
    token = await passwordToken(site.ctx.publicUrl());
    const svc = computeOf(site).service!;
    const boot = await bootable();
    const [gone, kept] = [await boot('p-gone'), await boot('p-kept')];
    for (const id of [gone, kept])
      await eventually(async () => (await server(id)).status === 'ACTIVE', 10_000, 'ACTIVE');
    assert.equal((await call('POST', `${C}/servers/${kept}/action`, { pause: null })).status, 202);
    await eventually(async () => (await server(kept)).status === 'PAUSED', 10_000, 'PAUSED');
    // The hypervisor loses the guest (it powered off, or its process died).
    const fake = svc.driver as FakeDriver;
    const host = (await server(gone))['OS-EXT-SRV-ATTR:host'] as string;
    fake.instances.get(host)!.set(gone, 4);
    const off = await eventually(
      async () => {
        const s = await server(gone);
        return s.status === 'SHUTOFF' ? s : undefined;
      },
      10_000,
      'SHUTOFF',
    );
    assert.equal(off['OS-EXT-STS:power_state'], 4);
    assert.equal(off['OS-EXT-STS:task_state'], null);
    const actions = (await call('GET', `${C}/servers/${gone}/os-instance-actions`)).body.instanceActions;
    assert.equal(actions[0].action, 'stop');
    await new Promise((r) => setTimeout(r, 300));
    assert.equal((await server(kept)).status, 'PAUSED', 'a guest that is there is left alone');
    // A start brings it back; the sync leaves it running.
    assert.equal((await call('POST', `${C}/servers/${gone}/action`, { 'os-start': null })).status, 202);
    await eventually(async () => (await server(gone)).status === 'ACTIVE', 10_000, 'ACTIVE again');
    await new Promise((r) => setTimeout(r, 300));
    assert.equal((await server(gone)).status, 'ACTIVE');
  });
});
