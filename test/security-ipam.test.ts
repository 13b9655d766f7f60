/**
 * @module Address-lease requests are signed by their sender (issue 11, class 7): a request naming a
 * site that did not sign it (unsigned, signed with another key, or a replay of a real one) is refused
 * before the owner leases, renews or takes back anything. In process, fabric permissions enforced.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { decodeJson, encodeJson, subjects } from '../src/fabric/fabric.ts';
import { MessageSigner } from '../src/federation/signed.ts';
import { IPAM_PROTOCOL_VERSION } from '../src/services/network/leases.ts';
import { startLocalCloud } from './support/cloud.ts';
import type { LocalCloud } from './support/cloud.ts';
import { apiFor } from './support/network.ts';

describe('address-lease requests are signed by their sender', () => {
  let cloud: LocalCloud;
  let subnetId: string;
  before(async () => {
    cloud = await startLocalCloud({ sites: 2 });
    // Over HTTP (no openstack CLI: this file is in the fast tier).
    const api = await apiFor(cloud);
    const net = await api(0, 'POST', '/networks', { network: { name: 'leased' } });
    assert.equal(net.status, 201, JSON.stringify(net.body));
    const sub = await api(0, 'POST', '/subnets', {
      subnet: { network_id: net.body.network.id, name: 'leased-sub', cidr: '10.71.0.0/24', ip_version: 4 },
    });
    assert.equal(sub.status, 201, JSON.stringify(sub.body));
    subnetId = sub.body.subnet.id;
    await cloud.converged();
  });
  after(async () => cloud?.close());

  /** Sends a lease request to site-a on site-b's own fabric connection (as it may); the owner's answer. */
  const ask = async (req: Record<string, unknown>) => {
    const raw = await cloud.fed.sites[1]!.ctx.fabric.request(
      subjects.rpc('site-a', 'ipam'),
      encodeJson(req),
      5000,
    );
    return decodeJson<{ ok: boolean; error?: { message?: string } }>(raw);
  };
  const lease = () => ({ v: IPAM_PROTOCOL_VERSION, op: 'lease', from: 'site-b', subnet_id: subnetId });
  const leasesOfB = () =>
    cloud.fed.sites[0]!.ctx.store.db.prepare(
      "SELECT count(*) FROM net_ip_blocks WHERE subnet_id = ? AND leased_to_site = 'site-b'",
    )
      .pluck()
      .get(subnetId);

  it('refuses an unsigned request and one signed with another key, leasing nothing', async () => {
    const unsigned = await ask(lease());
    assert.equal(unsigned.ok, false);
    assert.match(String(unsigned.error?.message), /not signed/);
    const { privateKey, publicKey } = generateKeyPairSync('ed25519');
    const forger = new MessageSigner({
      privateKey: () => privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
      identityKey: () => publicKey.export({ type: 'spki', format: 'pem' }).toString(),
      now: () => Date.now(),
    });
    const forged = await ask(forger.sign(lease()));
    assert.equal(forged.ok, false);
    assert.match(String(forged.error?.message), /does not verify as site-b/);
    assert.equal(leasesOfB(), 0);
  });

  it('runs a request site-b signed, once: its replay is refused', async () => {
    const signed = cloud.fed.sites[1]!.ctx.signer.sign(lease());
    assert.equal((await ask(signed)).ok, true);
    assert.equal(leasesOfB(), 1);
    const replay = await ask(signed);
    assert.equal(replay.ok, false);
    assert.match(String(replay.error?.message), /replay/);
    assert.equal(leasesOfB(), 1);
  });
});
