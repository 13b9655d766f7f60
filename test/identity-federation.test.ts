/**
 * @module Identity across two sites: a user made at site-a logs in at site-b once replicated; writes
 * for a domain homed on another site are forwarded to it (and fail with a 503 naming it when it is
 * cut off); revocations made at one site hold at the other.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { startLocalCloud } from './support/cloud.ts';
import type { LocalCloud } from './support/cloud.ts';

describe('identity across two sites', () => {
  let cloud: LocalCloud;
  before(async () => {
    cloud = await startLocalCloud({ sites: 2 });
  });
  after(async () => cloud?.close());

  const http = async (site: number, method: string, path: string, token: string, body?: unknown) => {
    const res = await fetch(`${cloud.url(site)}/identity/v3${path}`, {
      method,
      headers: { 'x-auth-token': token, ...(body ? { 'content-type': 'application/json' } : {}) },
      ...(body ? { body: JSON.stringify(body) } : {}),
    });
    const text = await res.text();
    return { status: res.status, body: text ? JSON.parse(text) : undefined, headers: res.headers };
  };

  it('a user created at site-a logs in at site-b with the CLI once replicated', async () => {
    await cloud.osJson(['project', 'create', 'travel'], { site: 0 });
    await cloud.osJson(['user', 'create', '--password', 'tr-pw', '--project', 'travel', 'traveller'], {
      site: 0,
    });
    const add = await cloud.os(['role', 'add', '--project', 'travel', '--user', 'traveller', 'member'], {
      site: 0,
    });
    assert.equal(add.code, 0, add.stderr);
    await cloud.converged();
    const env = cloud.env(1, { username: 'traveller', password: 'tr-pw', project: 'travel' });
    const t = await cloud.osJson(['token', 'issue'], { env });
    assert.ok(t.id);
    const names = await cloud.osJson<{ Name: string }[]>(['project', 'list', '--my-projects'], { env });
    assert.deepEqual(
      names.map((x) => x.Name),
      ['travel'],
    );
  });

  it('forwards a write for a domain homed at site-a when it reaches site-b', async () => {
    const adminB = await cloud.adminToken(1);
    const r = await http(1, 'POST', '/projects', adminB, {
      project: { name: 'made-via-b', domain_id: 'default' },
    });
    assert.equal(r.status, 201, JSON.stringify(r.body));
    assert.equal(r.headers.get('x-atoll-owner'), 'site-a');
    const id = r.body.project.id as string;
    const row = cloud.fed.sites[0]!.ctx.store.db.prepare('SELECT owner FROM projects WHERE id = ?').get(
      id,
    ) as {
      owner: string;
    };
    assert.equal(row.owner, 'site-a');
    // The CLI at site-b sees it once replicated (reads are local).
    await cloud.converged();
    const shown = await cloud.osJson(['project', 'show', 'made-via-b'], { site: 1 });
    assert.equal(shown.id, id);

    // A domain made at site-b is homed there: its users are written by site-b even when asked at site-a.
    const adminA = await cloud.adminToken(0);
    const d = await http(1, 'POST', '/domains', adminB, { domain: { name: 'edge' } });
    assert.equal(d.status, 201);
    await cloud.converged();
    const u = await http(0, 'POST', '/users', adminA, {
      user: { name: 'local', domain_id: d.body.domain.id },
    });
    assert.equal(u.status, 201, JSON.stringify(u.body));
    assert.equal(u.headers.get('x-atoll-owner'), 'site-b');
  });

  it('revokes at site-a a token issued by site-b, and site-b honours it once replicated', async () => {
    const env = cloud.env(1, { username: 'traveller', password: 'tr-pw', project: 'travel' });
    const t = await cloud.osJson(['token', 'issue'], { env });
    const adminA = await cloud.adminToken(0);
    const check = async (site: number) =>
      (
        await fetch(`${cloud.url(site)}/identity/v3/auth/tokens`, {
          headers: { 'x-auth-token': adminA, 'x-subject-token': t.id },
        })
      ).status;
    assert.equal(await check(1), 200);
    const uid = (await cloud.osJson(['user', 'show', 'traveller'], { site: 0 })).id;
    const dis = await http(0, 'PATCH', `/users/${uid}`, adminA, { user: { enabled: false } });
    assert.equal(dis.status, 200);
    assert.equal(await check(0), 404, 'at once on the owner');
    await cloud.converged();
    assert.equal(await check(1), 404, 'and on the other site once replicated');
  });

  it('a write for an unreachable owner fails at once with a 503 naming it; reads still work', async () => {
    const adminB = await cloud.adminToken(1);
    cloud.fed.network.partition(['site-a'], ['site-b']);
    try {
      const deadline = Date.now() + 5000;
      let r = await http(1, 'POST', '/users', adminB, { user: { name: 'late', domain_id: 'default' } });
      while (r.status !== 503 && Date.now() < deadline) {
        await new Promise((res) => setTimeout(res, 200));
        r = await http(1, 'POST', '/users', adminB, {
          user: { name: `late-${Date.now()}`, domain_id: 'default' },
        });
      }
      assert.equal(r.status, 503);
      assert.match(r.body.error.message, /site-a/);
      const list = await http(1, 'GET', '/users', adminB);
      assert.equal(list.status, 200);
      // Site-b still issues tokens for users it knows.
      const t = await cloud.adminToken(1);
      assert.ok(t);
    } finally {
      cloud.fed.network.heal();
    }
  });
});
