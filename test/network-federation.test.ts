/**
 * @module Network ownership across sites: rows made at one site replicate to the others; a port on a
 * subnet another site owns is made where it is asked for, from an address block leased to that site;
 * writes to foreign rows are forwarded to their owner.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { startLocalCloud } from './support/cloud.ts';
import type { LocalCloud } from './support/cloud.ts';

describe('network across two sites', () => {
  let cloud: LocalCloud;
  before(async () => {
    cloud = await startLocalCloud({ sites: 2 });
  });
  after(async () => cloud?.close());

  it('replicates networks, makes ports from leased blocks and deletes through the owner', async () => {
    const net = await cloud.osJson(['network', 'create', 'fednet'], { site: 0 });
    await cloud.osJson(
      ['subnet', 'create', '--network', 'fednet', '--subnet-range', '10.40.0.0/24', 'fedsub'],
      { site: 0 },
    );
    await cloud.converged();
    const seen = await cloud.osJson(['network', 'show', 'fednet'], { site: 1 });
    assert.equal(seen.id, net.id);

    const port = await cloud.osJson(['port', 'create', '--network', 'fednet', 'fedport'], { site: 1 });
    const owner = cloud.fed.sites[1]!.ctx.store.db.prepare('SELECT owner FROM net_ports WHERE id = ?')
      .pluck()
      .get(port.id);
    assert.equal(owner, 'site-b', 'the port was made where it was asked for, from a block leased to site-b');
    await cloud.converged();
    const lessee = cloud.fed.sites[0]!.ctx.store.db.prepare(
      "SELECT leased_to_site FROM net_ip_blocks WHERE subnet_id = (SELECT id FROM net_subnets WHERE name = 'fedsub') AND leased_to_site = 'site-b'",
    )
      .pluck()
      .get();
    assert.equal(lessee, 'site-b', 'site-a leased site-b a block');

    const renamed = await cloud.os(['network', 'set', '--name', 'fednet2', 'fednet'], { site: 1 });
    assert.equal(renamed.code, 0, renamed.stderr);
    await cloud.converged();
    assert.equal((await cloud.osJson(['network', 'show', net.id], { site: 0 })).name, 'fednet2');

    const inUse = await cloud.os(['network', 'delete', net.id], { site: 1 });
    assert.notEqual(inUse.code, 0);
    assert.equal((await cloud.os(['port', 'delete', port.id], { site: 1 })).code, 0);
    await cloud.converged();
    assert.equal((await cloud.os(['network', 'delete', net.id], { site: 1 })).code, 0);
    await cloud.converged();
    assert.equal(
      cloud.fed.sites[1]!.ctx.store.db.prepare('SELECT count(*) FROM net_networks WHERE id = ?')
        .pluck()
        .get(net.id),
      0,
    );
  });
});
