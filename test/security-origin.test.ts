/**
 * @module Origin authenticity over the fabric: a change batch forged as coming from another site, or
 * altered in transit, is rejected and logged at every receiver, and nothing of it is applied; a site
 * that signs its own batch correctly still cannot write rows another site owns.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { generateKeyPairSync, sign } from 'node:crypto';
import { decodeJson, encodeJson, subjects } from '../src/fabric/fabric.ts';
import type { ChangeBatch } from '../src/federation/replicator.ts';
import { startLocalCloud, eventually } from './support/cloud.ts';
import type { LocalCloud } from './support/cloud.ts';

describe('origin authenticity of replicated changes', () => {
  let cloud: LocalCloud;
  before(async () => {
    // The attacker here sits on the network itself (a relay), below the fabric's permissions.
    cloud = await startLocalCloud({ sites: 3, enforcePermissions: false });
  });
  after(async () => cloud?.close());

  const userRow = (id: string, owner: string) => ({
    id,
    owner,
    name: `evil-${id}`,
    domain_id: 'default',
    default_project_id: null,
    description: '',
    email: null,
    enabled: 1,
    password_hash: null,
    password_expires_at: null,
    extra: '{}',
    created_at: 1,
  });
  const users = (i: number, id: string) =>
    cloud.fed.sites[i]!.ctx.store.db.prepare('SELECT 1 FROM users WHERE id = ?').get(id);

  it('rejects a batch forged as site-a (signed with another key) and applies nothing', async () => {
    const a = cloud.fed.sites[0]!.ctx;
    const attacker = cloud.fed.network.connect('mallory');
    const { privateKey } = generateKeyPairSync('ed25519');
    const before = cloud.fed.sites.map((s) => s.ctx.replicator.stats.forged);
    const change = {
      seq: a.changelog.head() + 1,
      kind: 'user',
      id: 'forged1',
      op: 'put',
      row: userRow('forged1', 'site-a'),
      at: 1,
    };
    const body = JSON.stringify([change]);
    const batch: ChangeBatch = {
      v: 1,
      origin: 'site-a',
      body,
      sig: sign(null, Buffer.from(body), privateKey).toString('base64url'),
    };
    attacker.publish(subjects.changes('site-a'), encodeJson(batch));
    await eventually(
      () => cloud.fed.sites[1]!.ctx.replicator.stats.forged > before[1]!,
      3000,
      'site-b to reject',
    );
    await eventually(
      () => cloud.fed.sites[2]!.ctx.replicator.stats.forged > before[2]!,
      3000,
      'site-c to reject',
    );
    assert.equal(users(1, 'forged1'), undefined);
    assert.equal(users(2, 'forged1'), undefined);
    await attacker.close();
  });

  it('rejects a real batch of site-a altered in transit', async () => {
    const attacker = cloud.fed.network.connect('eve');
    let captured: ChangeBatch | undefined;
    const unsub = attacker.subscribe(
      subjects.changes('site-a'),
      (m) => (captured ??= decodeJson<ChangeBatch>(m.data)),
    );
    const token = await cloud.adminToken(0);
    const res = await fetch(`${cloud.url(0)}/identity/v3/projects`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-auth-token': token },
      body: JSON.stringify({ project: { name: 'genuine', domain_id: 'default' } }),
    });
    assert.equal(res.status, 201);
    await eventually(() => captured, 3000, 'a batch from site-a');
    unsub();
    await cloud.converged();
    const tampered = JSON.parse(captured!.body) as { seq: number; row: Record<string, unknown> | null }[];
    const before = cloud.fed.sites[2]!.ctx.replicator.stats.forged;
    // Replay the batch with one more change appended, as if it were the next one: same signature.
    const next = {
      ...tampered[0]!,
      seq: cloud.fed.sites[0]!.ctx.changelog.head() + 1,
      id: 'altered',
      row: { ...tampered[0]!.row, id: 'altered', name: 'altered' },
    };
    const body = JSON.stringify([next]);
    attacker.publish(subjects.changes('site-a'), encodeJson({ ...captured!, body }));
    await eventually(
      () => cloud.fed.sites[2]!.ctx.replicator.stats.forged > before,
      3000,
      'site-c to reject',
    );
    assert.equal(
      cloud.fed.sites[2]!.ctx.store.db.prepare("SELECT 1 FROM projects WHERE id = 'altered'").get(),
      undefined,
    );
    await attacker.close();
  });

  it('a site cannot write rows another site owns, even in a batch it signed itself', async () => {
    const c = cloud.fed.sites[2]!.ctx;
    const projectOfA = cloud.fed.sites[0]!.ctx.store.db.prepare(
      "SELECT id FROM projects WHERE name = 'admin'",
    ).get() as { id: string };
    // site-c is "compromised": it writes a row naming itself owner of site-a's project into its own log.
    assert.throws(
      () => c.changelog.put('project', { id: projectOfA.id, name: 'hijacked', domain_id: 'default' }),
      /owned by site site-a/,
    );
    const rejectedBefore = cloud.fed.sites[1]!.ctx.replicator.stats.rejected;
    // Bypass its local guard as a compromised site would: append directly to its log.
    c.store.tx(() => {
      c.store.db
        .prepare("INSERT INTO changes (kind, id, op, row, at) VALUES ('project', ?, 'put', ?, 1)")
        .run(
          projectOfA.id,
          JSON.stringify({ id: projectOfA.id, owner: 'site-c', name: 'hijacked', domain_id: 'default' }),
        );
    });
    await eventually(
      () => cloud.fed.sites[1]!.ctx.replicator.stats.rejected > rejectedBefore,
      5000,
      'site-b to reject the change',
    );
    const p = cloud.fed.sites[1]!.ctx.store.db.prepare('SELECT name, owner FROM projects WHERE id = ?').get(
      projectOfA.id,
    );
    assert.deepEqual(p, { name: 'admin', owner: 'site-a' });
  });
});
