/**
 * @module Token validation from its caches, on two in-process sites: the answer with its catalog is
 * the same JSON as the object form; a cached catalog follows endpoint, service and region changes at
 * once where they are written and as soon as they are applied at the other site (never showing an
 * endpoint a change removed); per-project URLs stay per project; a revoked token, a disabled user or
 * project, and an expired trust fail at once even when their validation was cached.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { passwordLogin, startLocalCloud } from './support/cloud.ts';
import type { LocalCloud } from './support/cloud.ts';
import { httpAt } from './support/http.ts';
import type { Http } from './support/http.ts';

type Obj = Record<string, any>;

describe('token validation caches', () => {
  let cloud: LocalCloud;
  let a: Http;
  let b: Http;
  let adminA: string;
  let adminB: string;
  let identityService: string;

  /** GET /v3/auth/tokens at site i (0: site-a, 1: site-b) with the subject token. */
  const check = async (i: number, subject: string, query = '', caller?: string) => {
    const res = await fetch(`${cloud.url(i)}/identity/v3/auth/tokens${query}`, {
      headers: { 'x-auth-token': caller ?? (i === 0 ? adminA : adminB), 'x-subject-token': subject },
    });
    const text = await res.text();
    return { status: res.status, body: text ? (JSON.parse(text) as Obj) : undefined, text };
  };
  const endpointsOf = (body: Obj | undefined): Obj[] =>
    ((body?.token?.catalog ?? []) as Obj[]).flatMap((s) => s.endpoints as Obj[]);
  const urls = (body: Obj | undefined) => endpointsOf(body).map((e) => e.url as string);

  before(async () => {
    cloud = await startLocalCloud({ sites: 2 });
    a = httpAt(cloud.url(0));
    b = httpAt(cloud.url(1));
    adminA = await cloud.adminToken(0);
    adminB = await cloud.adminToken(1);
    const services = (await a('GET', '/identity/v3/services?type=identity', adminA)).body.services as Obj[];
    identityService = services[0]!.id;
  });
  after(async () => cloud?.close());

  it('answers with its catalog the same JSON as the object form, and the same catalog as /auth/catalog', async () => {
    for (const i of [0, 1]) {
      const subject = i === 0 ? adminA : adminB;
      const full = await check(i, subject);
      const bare = await check(i, subject, '?nocatalog');
      assert.equal(full.status, 200, full.text);
      const catalog = await fetch(`${cloud.url(i)}/identity/v3/auth/catalog`, {
        headers: { 'x-auth-token': subject },
      }).then((r) => r.json() as Promise<Obj>);
      assert.deepEqual(full.body, { token: { ...bare.body!.token, catalog: catalog.catalog } });
      assert.equal(catalog.links.self, `${cloud.url(i)}/identity/v3/auth/catalog`);
      // Every site is a region of every token's catalog.
      const regions = new Set(endpointsOf(full.body).map((e) => e.region_id));
      assert.deepEqual([...regions].sort(), ['site-a', 'site-b']);
      // Twice from the cache: the same bytes.
      assert.equal((await check(i, subject)).text, full.text);
    }
    // The answer to a password login with its catalog carries the same catalog.
    const login = await fetch(`${cloud.url(0)}/identity/v3/auth/tokens`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        auth: {
          identity: {
            methods: ['password'],
            password: { user: { name: 'admin', domain: { id: 'default' }, password: 'admin-secret' } },
          },
          scope: { project: { name: 'admin', domain: { id: 'default' } } },
        },
      }),
    });
    assert.equal(login.status, 201);
    const issued = (await login.json()) as Obj;
    assert.deepEqual(issued.token.catalog, (await check(0, adminA)).body!.token.catalog);
  });

  it('follows endpoint changes at once where written, and as soon as applied at the other site', async () => {
    // Both sites' validations (and catalogs) are cached before each change.
    const warm = async () => {
      await check(0, adminA);
      await check(1, adminB);
    };
    await warm();
    const url = 'http://cache-test.example:5000/v3';
    const made = await a('POST', '/identity/v3/endpoints', adminA, {
      endpoint: { service_id: identityService, region_id: 'site-a', interface: 'admin', url },
    });
    assert.equal(made.status, 201, JSON.stringify(made.body));
    const id = made.body.endpoint.id as string;
    assert.ok(urls((await check(0, adminA)).body).includes(url), 'site-a shows its new endpoint at once');
    await cloud.converged();
    assert.ok(urls((await check(1, adminB)).body).includes(url), 'site-b shows it once applied');

    await warm();
    const moved = 'http://cache-test.example:5001/v3';
    assert.equal(
      (await a('PATCH', `/identity/v3/endpoints/${id}`, adminA, { endpoint: { url: moved } })).status,
      200,
    );
    for (const [i, subject] of [
      [0, adminA],
      [1, adminB],
    ] as const) {
      if (i === 1) await cloud.converged();
      const now = urls((await check(i, subject)).body);
      assert.ok(now.includes(moved) && !now.includes(url), `site ${i} shows the endpoint's new URL only`);
    }

    await warm();
    assert.equal((await a('DELETE', `/identity/v3/endpoints/${id}`, adminA)).status, 204);
    assert.ok(!urls((await check(0, adminA)).body).includes(moved), 'a removed endpoint leaves at once');
    await cloud.converged();
    assert.ok(!urls((await check(1, adminB)).body).includes(moved), 'and leaves site-b once applied');
  });

  it('follows an endpoint written at the other site, a disabled service and a new region', async () => {
    await check(0, adminA);
    await check(1, adminB);
    const madeB = await b('POST', '/identity/v3/regions', adminB, { region: { id: 'cache-region' } });
    assert.equal(madeB.status, 201, JSON.stringify(madeB.body));
    const url = 'http://cache-region.example/identity';
    const ep = await b('POST', '/identity/v3/endpoints', adminB, {
      endpoint: { service_id: identityService, region_id: 'cache-region', interface: 'public', url },
    });
    assert.equal(ep.status, 201, JSON.stringify(ep.body));
    assert.ok(urls((await check(1, adminB)).body).includes(url));
    await cloud.converged();
    const seenA = endpointsOf((await check(0, adminA)).body).find((e) => e.url === url);
    assert.equal(seenA?.region_id, 'cache-region', 'site-a shows site-b endpoint in its region');

    // A disabled service leaves every token's catalog, here and there.
    const svc = await a('POST', '/identity/v3/services', adminA, {
      service: { type: 'cache-test', name: 'c' },
    });
    assert.equal(svc.status, 201, JSON.stringify(svc.body));
    const sid = svc.body.service.id as string;
    const sep = await a('POST', '/identity/v3/endpoints', adminA, {
      endpoint: { service_id: sid, region_id: 'site-a', interface: 'public', url: 'http://c.example/' },
    });
    assert.equal(sep.status, 201);
    await cloud.converged();
    const types = async (i: number) =>
      ((await check(i, i === 0 ? adminA : adminB)).body!.token.catalog as Obj[]).map((s) => s.type);
    assert.ok((await types(0)).includes('cache-test'));
    assert.ok((await types(1)).includes('cache-test'));
    assert.equal(
      (await a('PATCH', `/identity/v3/services/${sid}`, adminA, { service: { enabled: false } })).status,
      200,
    );
    assert.ok(!(await types(0)).includes('cache-test'), 'a disabled service leaves at once');
    await cloud.converged();
    assert.ok(!(await types(1)).includes('cache-test'), 'and leaves site-b once applied');
    // Cleaned up at their owners.
    assert.equal((await b('DELETE', `/identity/v3/endpoints/${ep.body.endpoint.id}`, adminB)).status, 204);
    assert.equal((await a('DELETE', `/identity/v3/services/${sid}`, adminA)).status, 204);
    await cloud.converged();
    assert.ok(!urls((await check(0, adminA)).body).includes(url));
  });

  it('keeps per-project endpoint URLs per project', async () => {
    const projects: string[] = [];
    for (const name of ['cache-p1', 'cache-p2']) {
      const p = await a('POST', '/identity/v3/projects', adminA, { project: { name } });
      assert.equal(p.status, 201);
      projects.push(p.body.project.id);
      assert.equal(
        (
          await a(
            'PUT',
            `/identity/v3/projects/${p.body.project.id}/users/${await adminId()}/roles/${await roleId('member')}`,
            adminA,
          )
        ).status,
        204,
      );
    }
    const ep = await a('POST', '/identity/v3/endpoints', adminA, {
      endpoint: {
        service_id: identityService,
        region_id: 'site-a',
        interface: 'internal',
        url: 'http://per-project.example/v1/$(project_id)s',
      },
    });
    assert.equal(ep.status, 201);
    for (const p of projects) {
      const t = await scopedAdmin(p);
      for (let k = 0; k < 2; k++) {
        const u = urls((await check(0, t)).body).filter((x) => x.startsWith('http://per-project.example/'));
        assert.deepEqual(u, [`http://per-project.example/v1/${p}`]);
      }
    }
    assert.equal((await a('DELETE', `/identity/v3/endpoints/${ep.body.endpoint.id}`, adminA)).status, 204);
  });

  it('fails at once a revoked token, a disabled user and a disabled project, though cached', async () => {
    const user = await a('POST', '/identity/v3/users', adminA, {
      user: { name: 'cache-user', password: 'cache-user-pw' },
    });
    assert.equal(user.status, 201);
    const uid = user.body.user.id as string;
    const proj = await a('POST', '/identity/v3/projects', adminA, { project: { name: 'cache-proj' } });
    const pid = proj.body.project.id as string;
    const member = await roleId('member');
    assert.equal(
      (await a('PUT', `/identity/v3/projects/${pid}/users/${uid}/roles/${member}`, adminA)).status,
      204,
    );
    const login = async () => {
      const r = await passwordLogin(
        cloud.url(0),
        { name: 'cache-user', password: 'cache-user-pw' },
        {
          project: { id: pid },
        },
      );
      assert.equal(r.status, 201, await r.clone().text());
      return r.headers.get('x-subject-token')!;
    };
    await cloud.converged();

    // Revoked: here at once, at site-b once applied.
    const t1 = await login();
    assert.equal((await check(0, t1)).status, 200);
    assert.equal((await check(1, t1)).status, 200);
    assert.equal((await check(1, t1, '?nocatalog')).status, 200);
    const revoke = await fetch(`${cloud.url(0)}/identity/v3/auth/tokens`, {
      method: 'DELETE',
      headers: { 'x-auth-token': adminA, 'x-subject-token': t1 },
    });
    assert.equal(revoke.status, 204);
    assert.equal((await check(0, t1)).status, 404);
    await cloud.converged();
    assert.equal((await check(1, t1)).status, 404);
    assert.equal((await check(1, t1, '?nocatalog')).status, 404);

    // A disabled project, then a disabled user.
    for (const [path, key] of [
      [`/identity/v3/projects/${pid}`, 'project'],
      [`/identity/v3/users/${uid}`, 'user'],
    ] as const) {
      const t = await login();
      assert.equal((await check(0, t)).status, 200);
      assert.equal((await check(1, t)).status, 200);
      assert.equal((await a('PATCH', path, adminA, { [key]: { enabled: false } })).status, 200);
      assert.equal((await check(0, t)).status, 404, `${key} disabled: fails at once`);
      await cloud.converged();
      assert.equal((await check(1, t)).status, 404, `${key} disabled: fails at site-b once applied`);
      assert.equal((await a('PATCH', path, adminA, { [key]: { enabled: true } })).status, 200);
      await cloud.converged();
    }
  });

  it('fails a cached trust-scoped validation once its trust expires', async () => {
    const mk = async (name: string) => {
      const r = await a('POST', '/identity/v3/users', adminA, { user: { name, password: `${name}-pw` } });
      assert.equal(r.status, 201);
      return r.body.user.id as string;
    };
    const trustor = await mk('cache-trustor');
    const trustee = await mk('cache-trustee');
    const proj = await a('POST', '/identity/v3/projects', adminA, { project: { name: 'cache-trust-p' } });
    const pid = proj.body.project.id as string;
    assert.equal(
      (
        await a(
          'PUT',
          `/identity/v3/projects/${pid}/users/${trustor}/roles/${await roleId('member')}`,
          adminA,
        )
      ).status,
      204,
    );
    const login = async (name: string, scope: unknown) => {
      const r = await passwordLogin(cloud.url(0), { name, password: `${name}-pw` }, scope);
      assert.equal(r.status, 201, await r.clone().text());
      return r.headers.get('x-subject-token')!;
    };
    const trustorToken = await login('cache-trustor', { project: { id: pid } });
    const expires = new Date(Date.now() + 1500).toISOString().replace('Z', '000Z');
    const trust = await a('POST', '/identity/v3/OS-TRUST/trusts', trustorToken, {
      trust: {
        trustor_user_id: trustor,
        trustee_user_id: trustee,
        project_id: pid,
        impersonation: false,
        roles: [{ name: 'member' }],
        expires_at: expires,
      },
    });
    assert.equal(trust.status, 201, JSON.stringify(trust.body));
    const tt = await login('cache-trustee', { 'OS-TRUST:trust': { id: trust.body.trust.id } });
    assert.equal((await check(0, tt)).status, 200);
    assert.equal((await check(0, tt, '?nocatalog')).status, 200);
    await sleep(1700);
    assert.equal((await check(0, tt)).status, 404, 'the trust expired: its token with it');
    assert.equal((await check(0, tt, '?nocatalog')).status, 404);
  });

  const roleId = async (name: string) =>
    ((await a('GET', `/identity/v3/roles?name=${name}`, adminA)).body.roles as Obj[])[0]!.id as string;
  const adminId = async () =>
    ((await a('GET', '/identity/v3/users?name=admin', adminA)).body.users as Obj[])[0]!.id as string;
  const scopedAdmin = async (projectId: string) => {
    const r = await passwordLogin(
      cloud.url(0),
      { name: 'admin', password: 'admin-secret' },
      {
        project: { id: projectId },
      },
    );
    assert.equal(r.status, 201, await r.clone().text());
    return r.headers.get('x-subject-token')!;
  };
});
