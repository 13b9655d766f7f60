/**
 * @module Servers on a network owned by another site: their ports are made where the server lives,
 * from address blocks the network's owner leased to that site, so booting keeps working while the
 * site is cut off and no address is ever assigned twice.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { startLocalCloud } from './support/cloud.ts';
import type { LocalCloud } from './support/cloud.ts';

type Json = Record<string, any>;

describe('server addresses across sites', () => {
  let cloud: LocalCloud;
  let token: string;
  let imageId: string;
  let netId: string;
  const call = async (i: number, method: string, path: string, body?: unknown) => {
    const r = await fetch(`${cloud.url(i)}${path}`, {
      method,
      headers: { 'x-auth-token': token, ...(body ? { 'content-type': 'application/json' } : {}) },
      ...(body ? { body: JSON.stringify(body) } : {}),
    });
    const text = await r.text();
    return { status: r.status, body: (text ? JSON.parse(text) : {}) as Json };
  };
  const boot = (i: number, name: string) =>
    call(i, 'POST', '/compute/v2.1/servers', {
      server: {
        name,
        flavorRef: 'a.tiny',
        imageRef: imageId,
        availability_zone: `site-${'abc'[i]}`,
        networks: [{ uuid: netId }],
      },
    });
  const waitActive = async (i: number, id: string) => {
    for (let k = 0; k < 200; k++) {
      const r = await call(i, 'GET', `/compute/v2.1/servers/${id}`);
      if (r.body.server?.status === 'ACTIVE' || r.body.server?.status === 'ERROR')
        return r.body.server as Json;
      await new Promise((res) => setTimeout(res, 25));
    }
    throw new Error(`server ${id} never settled`);
  };

  before(async () => {
    cloud = await startLocalCloud({ sites: 3 });
    token = await cloud.adminToken(0);
    await call(0, 'POST', '/compute/v2.1/flavors', {
      flavor: { name: 'a.tiny', id: 'a.tiny', ram: 64, vcpus: 1, disk: 1 },
    });
    const img = await call(0, 'POST', '/image/v2/images', {
      name: 'a-img',
      disk_format: 'raw',
      container_format: 'bare',
      visibility: 'public',
    });
    imageId = img.body.id as string;
    await fetch(`${cloud.url(0)}/image/v2/images/${imageId}/file`, {
      method: 'PUT',
      headers: { 'x-auth-token': token, 'content-type': 'application/octet-stream' },
      body: Buffer.alloc(512, 2),
    });
    const net = await call(0, 'POST', '/network/v2.0/networks', { network: { name: 'shared-net' } });
    netId = net.body.network.id as string;
    const sub = await call(0, 'POST', '/network/v2.0/subnets', {
      subnet: { network_id: netId, cidr: '10.9.0.0/24', ip_version: 4 },
    });
    assert.equal(sub.status, 201, JSON.stringify(sub.body));
    await cloud.converged();
  });
  after(async () => cloud?.close());

  it("servers on site-b and site-c get addresses of site-a's network from their own leased blocks; site-b keeps booting while cut off", async () => {
    const ips: string[] = [];
    for (const i of [1, 2]) {
      const r = await boot(i, `vm-${i}`);
      assert.equal(r.status, 202, JSON.stringify(r.body));
      const s = await waitActive(i, r.body.server.id as string);
      assert.equal(s.status, 'ACTIVE', JSON.stringify(s.fault));
      const addr = (s.addresses['shared-net'] as { addr: string }[])[0]!.addr;
      ips.push(addr);
    }
    cloud.fed.network.isolate('site-b');
    for (let k = 0; k < 3; k++) {
      const r = await boot(1, `cut-off-${k}`);
      assert.equal(r.status, 202, JSON.stringify(r.body));
      const s = await waitActive(1, r.body.server.id as string);
      assert.equal(s.status, 'ACTIVE');
      ips.push((s.addresses['shared-net'] as { addr: string }[])[0]!.addr);
    }
    for (let k = 0; k < 2; k++) {
      const r = await boot(2, `meanwhile-${k}`);
      const s = await waitActive(2, r.body.server.id as string);
      ips.push((s.addresses['shared-net'] as { addr: string }[])[0]!.addr);
    }
    cloud.fed.network.heal();
    await cloud.converged(20_000);
    assert.equal(new Set(ips).size, ips.length, `an address was assigned twice: ${ips.join(', ')}`);
    // Every site agrees on the ports and no (subnet, address) appears twice anywhere.
    const views = cloud.fed.sites.map((s) =>
      JSON.stringify(
        s.ctx.store.db.prepare('SELECT subnet_id, ip FROM net_ip_allocations ORDER BY subnet_id, ip').all(),
      ),
    );
    assert.equal(views[1], views[0]);
    assert.equal(views[2], views[0]);
    const dup = cloud.fed.sites[0]!.ctx.store.db.prepare(
      'SELECT ip, count(*) AS n FROM net_ip_allocations GROUP BY subnet_id, ip HAVING n > 1',
    ).all();
    assert.deepEqual(dup, []);
  });
});
