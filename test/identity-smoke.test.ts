/**
 * @module The thin slice across sites: a token issued by one site is accepted by another, and the
 * catalog lists every site as a region.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { startLocalCloud } from './support/cloud.ts';
import type { LocalCloud } from './support/cloud.ts';

describe('identity across sites (in-process fabric)', () => {
  let cloud: LocalCloud;
  before(async () => {
    cloud = await startLocalCloud({ sites: 3 });
  });
  after(async () => cloud?.close());

  it('a token from site-a validates at site-c, and the catalog has every region', async () => {
    const token = await cloud.adminToken(0);
    const res = await fetch(`${cloud.url(2)}/identity/v3/auth/tokens`, {
      headers: { 'x-auth-token': token, 'x-subject-token': token },
    });
    assert.equal(res.status, 200);
    const body = (await res.json()) as {
      token: { catalog: { type: string; endpoints: { region: string }[] }[] };
    };
    const identity = body.token.catalog.find((c) => c.type === 'identity');
    assert.deepEqual([...new Set(identity!.endpoints.map((e) => e.region))].sort(), [
      'site-a',
      'site-b',
      'site-c',
    ]);
  });

  it('the openstack CLI issues a token at site-c for the admin created at site-a', async () => {
    const t = await cloud.osJson<{ project_id: string; id: string }>(['token', 'issue'], { site: 2 });
    assert.match(t.id, /^[\w-]+\.[\w-]+\.[\w-]+$/);
  });

  it('a forged token is refused with a Keystone fault', async () => {
    const token = await cloud.adminToken(0);
    const forged = token.slice(0, -4) + (token.endsWith('AAAA') ? 'BBBB' : 'AAAA');
    const res = await fetch(`${cloud.url(1)}/identity/v3/auth/tokens`, {
      headers: { 'x-auth-token': forged, 'x-subject-token': token },
    });
    assert.equal(res.status, 401);
    const body = (await res.json()) as { error: { code: number; title: string } };
    assert.equal(body.error.code, 401);
    assert.equal(body.error.title, 'Unauthorized');
  });
});
