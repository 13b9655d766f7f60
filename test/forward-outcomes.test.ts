/**
 * @module Forwarded writes on long and cut links (issue 13, item 6): the deadline follows the measured
 * round trip, so a write over a 2.5 s link is answered instead of timing out while it is applied; a
 * retry with the same X-OpenStack-Request-ID is applied once at the owner; a write into a silent
 * partition answers 503 saying that its outcome is unknown.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { eventually, startLocalCloud } from './support/cloud.ts';
import type { LocalCloud } from './support/cloud.ts';
import { apiFor } from './support/network.ts';

describe('forwarded writes on long and cut links', () => {
  let cloud: LocalCloud;
  let netId: string;
  let token: string;
  before(async () => {
    cloud = await startLocalCloud({ sites: 2 });
    // Over HTTP (no openstack CLI: this file is in the fast tier).
    const made = await (await apiFor(cloud))(1, 'POST', '/networks', { network: { name: 'owned-by-b' } });
    assert.equal(made.status, 201, JSON.stringify(made.body));
    netId = made.body.network.id as string;
    // One token, as a client that retries keeps its own.
    token = await cloud.adminToken(0);
    await cloud.converged();
  });
  after(async () => cloud?.close());

  const a = () => cloud.fed.sites[0]!;
  /** A subnet create sent to site-a: site-b owns the network, so it is forwarded there. */
  const createSubnet = async (cidr: string, requestId?: string) => {
    const r = await a().app.inject({
      method: 'POST',
      url: '/network/v2.0/subnets',
      headers: {
        'x-auth-token': token,
        'content-type': 'application/json',
        ...(requestId ? { 'x-openstack-request-id': requestId } : {}),
      },
      payload: { subnet: { network_id: netId, cidr, ip_version: 4 } },
    });
    return { status: r.statusCode, body: JSON.parse(r.body) as Record<string, any> };
  };
  const subnetsAtB = () =>
    cloud.fed.sites[1]!.ctx.store.db.prepare('SELECT count(*) FROM net_subnets WHERE network_id = ?')
      .pluck()
      .get(netId);

  it('a retry with the same request id is applied once at the owner', async () => {
    const rid = `req-${randomUUID()}`;
    const first = await createSubnet('10.61.0.0/24', rid);
    assert.equal(first.status, 201, JSON.stringify(first.body));
    const again = await createSubnet('10.61.0.0/24', rid);
    assert.equal(again.status, 201);
    assert.equal(again.body.subnet.id, first.body.subnet.id);
    assert.equal(subnetsAtB(), 1);
    // Another request id is another request.
    const other = await createSubnet('10.62.0.0/24', `req-${randomUUID()}`);
    assert.equal(other.status, 201);
    assert.equal(subnetsAtB(), 2);
  });

  it('over a 2.5 s link (5 s round trip) a forwarded write is answered, not timed out', async () => {
    cloud.fed.network.setLink('site-a', 'site-b', { latencyMs: 2500 });
    await a().ctx.replicator.ping('site-b', 10_000);
    await eventually(() => a().ctx.replicator.isUp('site-b'), 10_000, 'site-b up again');
    assert.ok(a().ctx.forwarder.deadlineFor('site-b') > 10_000);
    const r = await createSubnet('10.63.0.0/24');
    assert.equal(r.status, 201, JSON.stringify(r.body));
    cloud.fed.network.setLink('site-a', 'site-b', { latencyMs: 0 });
    await a().ctx.replicator.ping('site-b', 10_000);
  });

  it('a write into a silent partition says its outcome is unknown', async () => {
    await eventually(() => a().ctx.replicator.isUp('site-b'), 10_000, 'site-b up');
    cloud.fed.network.isolate('site-b');
    const t0 = Date.now();
    const r = await createSubnet('10.64.0.0/24');
    const waited = Date.now() - t0;
    cloud.fed.network.heal();
    assert.equal(r.status, 503);
    assert.match(JSON.stringify(r.body), /outcome is unknown/);
    assert.match(JSON.stringify(r.body), /X-OpenStack-Request-ID/);
    process.stderr.write(`silent partition: 503 after ${waited} ms\n`);
  });
});
