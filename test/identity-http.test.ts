/**
 * @module Identity at the HTTP level: Keystone faults for bad input (and no half-written rows), the
 * default policy (cloud admin, domain admin, member, reader), immediate revocation, token expiry.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { startLocalCloud } from './support/cloud.ts';
import type { LocalCloud } from './support/cloud.ts';

interface Res {
  status: number;
  body: any;
  headers: Headers;
}

function client(base: () => string) {
  return async (method: string, path: string, token?: string, body?: unknown, raw?: string): Promise<Res> => {
    const headers: Record<string, string> = {};
    if (token) headers['x-auth-token'] = token;
    if (body !== undefined || raw !== undefined) headers['content-type'] = 'application/json';
    const res = await fetch(`${base()}/identity/v3${path}`, {
      method,
      headers,
      ...(raw !== undefined ? { body: raw } : body !== undefined ? { body: JSON.stringify(body) } : {}),
    });
    const text = await res.text();
    return { status: res.status, body: text ? JSON.parse(text) : undefined, headers: res.headers };
  };
}

const passwordAuth = (name: string, password: string, scope?: unknown, domain = 'default') => ({
  auth: {
    identity: { methods: ['password'], password: { user: { name, domain: { id: domain }, password } } },
    ...(scope ? { scope } : {}),
  },
});

/** An environment that authenticates the CLI with a token only (OS_AUTH_TYPE=token). */
function tokenEnv(cloud: LocalCloud, token: string): Record<string, string> {
  const e = cloud.env(0);
  return {
    PATH: e.PATH!,
    HOME: e.HOME!,
    OS_AUTH_URL: e.OS_AUTH_URL!,
    OS_IDENTITY_API_VERSION: '3',
    OS_AUTH_TYPE: 'token',
    OS_TOKEN: token,
    OS_REGION_NAME: e.OS_REGION_NAME!,
    OS_INTERFACE: 'public',
  };
}

function assertFault(r: Res, status: number) {
  assert.equal(r.status, status, JSON.stringify(r.body));
  assert.equal(r.body.error.code, status);
  assert.equal(typeof r.body.error.title, 'string');
  assert.equal(typeof r.body.error.message, 'string');
}

describe('identity over HTTP: faults, policy, revocation', () => {
  let cloud: LocalCloud;
  let http: ReturnType<typeof client>;
  let admin: string;
  const ids: Record<string, string> = {};

  const tokenFor = async (name: string, password: string, scope?: unknown, domain = 'default') => {
    const r = await http(
      'POST',
      '/auth/tokens?nocatalog',
      undefined,
      passwordAuth(name, password, scope, domain),
    );
    assert.equal(r.status, 201, JSON.stringify(r.body));
    return r.headers.get('x-subject-token')!;
  };
  const valid = async (t: string) =>
    (
      await fetch(`${cloud.url(0)}/identity/v3/auth/tokens`, {
        headers: { 'x-auth-token': admin, 'x-subject-token': t },
      })
    ).status;

  before(async () => {
    cloud = await startLocalCloud({ sites: 1 });
    http = client(() => cloud.url(0));
    admin = await cloud.adminToken(0);
    const mk = async (path: string, key: string, body: unknown) => {
      const r = await http('POST', path, admin, { [key]: body });
      assert.equal(r.status, 201, JSON.stringify(r.body));
      return r.body[key].id as string;
    };
    ids.pa = await mk('/projects', 'project', { name: 'pa', domain_id: 'default' });
    ids.pb = await mk('/projects', 'project', { name: 'pb', domain_id: 'default' });
    ids.bob = await mk('/users', 'user', { name: 'bob', password: 'bob-pw', domain_id: 'default' });
    ids.rita = await mk('/users', 'user', { name: 'rita', password: 'rita-pw', domain_id: 'default' });
    const roles = (await http('GET', '/roles', admin)).body.roles as { id: string; name: string }[];
    for (const r of roles) ids[r.name] = r.id;
    assert.equal(
      (await http('PUT', `/projects/${ids.pa}/users/${ids.bob}/roles/${ids.member}`, admin)).status,
      204,
    );
    assert.equal(
      (await http('PUT', `/projects/${ids.pa}/users/${ids.rita}/roles/${ids.reader}`, admin)).status,
      204,
    );
    assert.equal(
      (await http('PUT', `/projects/${ids.pb}/users/${ids.rita}/roles/${ids.member}`, admin)).status,
      204,
    );
  });
  after(async () => cloud?.close());

  it('answers bad JSON, missing fields and wrong types with a 400 Keystone fault and writes nothing', async () => {
    const count = async () => (await http('GET', '/users', admin)).body.users.length as number;
    const before = await count();
    assertFault(await http('POST', '/users', admin, undefined, '{"user": {"name": '), 400);
    assertFault(await http('POST', '/users', admin, { user: {} }), 400);
    assertFault(await http('POST', '/users', admin, { user: { name: 'x', enabled: 'yes' } }), 400);
    assertFault(await http('POST', '/users', admin, { user: { name: 42 } }), 400);
    assertFault(await http('POST', '/users', admin, { user: { name: 'x'.repeat(300) } }), 400);
    assertFault(await http('POST', '/users', admin, { nothing: true }), 400);
    assertFault(await http('POST', '/users', admin, [1, 2]), 400);
    assertFault(
      await http('POST', '/users', admin, { user: { name: 'y', default_project_id: 'nope' } }),
      404,
    );
    assertFault(await http('PATCH', `/users/${ids.bob}`, admin, { user: { enabled: 'no' } }), 400);
    assert.equal(await count(), before);
    assert.equal((await http('GET', `/users/${ids.bob}`, admin)).body.user.enabled, true);
  });

  it('never answers 500 to malformed bodies on any create route', async () => {
    const routes: [string, string][] = [
      ['/domains', 'domain'],
      ['/projects', 'project'],
      ['/users', 'user'],
      ['/groups', 'group'],
      ['/roles', 'role'],
      ['/regions', 'region'],
      ['/services', 'service'],
      ['/endpoints', 'endpoint'],
      [`/users/${ids.bob}/application_credentials`, 'application_credential'],
      ['/auth/tokens', 'auth'],
    ];
    const bodies = (k: string) => [
      '',
      'null',
      '[]',
      '"str"',
      '{}',
      JSON.stringify({ [k]: null }),
      JSON.stringify({ [k]: [] }),
      JSON.stringify({ [k]: { name: null, id: {}, enabled: 1, tags: 'x', parent_id: 5, domain_id: [] } }),
      JSON.stringify({ [k]: { name: 'ok', identity: { methods: 'password' } } }),
      JSON.stringify({
        [k]: { name: '\u0000', type: 7, interface: 'sideways', url: 'not a url', service_id: 'x' },
      }),
    ];
    for (const [path, k] of routes)
      for (const raw of bodies(k)) {
        const r = await http('POST', path, admin, undefined, raw);
        assert.ok(r.status < 500, `${path} ${raw} -> ${r.status} ${JSON.stringify(r.body)}`);
        if (r.status >= 400) assert.ok(r.body?.error?.message, `${path} ${raw}: fault body`);
      }
  });

  it('404 for unknown ids, 409 for duplicates, 401 for bad credentials', async () => {
    assertFault(await http('GET', '/users/does-not-exist', admin), 404);
    assertFault(await http('GET', '/projects/does-not-exist', admin), 404);
    assertFault(await http('DELETE', '/groups/does-not-exist', admin), 404);
    assertFault(await http('PUT', `/projects/${ids.pa}/users/nobody/roles/${ids.member}`, admin), 404);
    assertFault(await http('DELETE', `/projects/${ids.pb}/users/${ids.bob}/roles/${ids.member}`, admin), 404);
    assertFault(await http('POST', '/users', admin, { user: { name: 'bob', domain_id: 'default' } }), 409);
    assertFault(await http('POST', '/projects', admin, { project: { name: 'pa' } }), 409);
    assertFault(await http('POST', '/auth/tokens', undefined, passwordAuth('bob', 'wrong')), 401);
    assertFault(await http('POST', '/auth/tokens', undefined, passwordAuth('nobody', 'x')), 401);
    assertFault(await http('GET', '/users', undefined), 401);
    assertFault(await http('GET', '/users', 'garbage'), 401);
  });

  it('never returns password hashes or application credential secrets after creation', async () => {
    const u = (await http('GET', `/users/${ids.bob}`, admin)).body.user;
    assert.equal(JSON.stringify(u).includes('scrypt'), false);
    assert.equal('password' in u || 'password_hash' in u, false);
    const list = (await http('GET', '/users', admin)).body;
    assert.equal(JSON.stringify(list).includes('scrypt'), false);
  });

  it('lets a member read only itself and its own projects; everything else is 403', async () => {
    const bob = await tokenFor('bob', 'bob-pw', { project: { id: ids.pa } });
    assert.equal((await http('GET', `/users/${ids.bob}`, bob)).status, 200);
    assert.deepEqual(
      (await http('GET', `/users/${ids.bob}/projects`, bob)).body.projects.map(
        (p: { name: string }) => p.name,
      ),
      ['pa'],
    );
    assert.equal((await http('GET', `/projects/${ids.pa}`, bob)).status, 200);
    assertFault(await http('GET', `/projects/${ids.pb}`, bob), 403);
    assertFault(await http('GET', `/users/${ids.rita}`, bob), 403);
    assertFault(await http('GET', `/users/${ids.rita}/projects`, bob), 403);
    assertFault(await http('GET', '/users', bob), 403);
    assertFault(await http('GET', '/projects', bob), 403);
    assertFault(await http('POST', '/users', bob, { user: { name: 'eve' } }), 403);
    assertFault(await http('POST', '/projects', bob, { project: { name: 'mine' } }), 403);
    assertFault(await http('PUT', `/projects/${ids.pa}/users/${ids.bob}/roles/${ids.admin}`, bob), 403);
    assertFault(await http('PATCH', `/users/${ids.bob}`, bob, { user: { enabled: true } }), 403);
    assertFault(await http('GET', '/role_assignments', bob), 403);
    const own = await http('GET', `/role_assignments?user.id=${ids.bob}`, bob);
    assert.equal(own.status, 200);
    assert.equal(own.body.role_assignments.length, 1);
    assertFault(await http('GET', `/role_assignments?user.id=${ids.rita}`, bob), 403);
    assertFault(
      await http('POST', `/users/${ids.rita}/application_credentials`, bob, {
        application_credential: { name: 'x' },
      }),
      403,
    );
    // A reader cannot do more than a member.
    const rita = await tokenFor('rita', 'rita-pw', { project: { id: ids.pa } });
    assertFault(await http('DELETE', `/projects/${ids.pa}`, rita), 403);
  });

  it('lets a domain admin manage its own domain only', async () => {
    const d = (await http('POST', '/domains', admin, { domain: { name: 'acme' } })).body.domain;
    const dadmin = (
      await http('POST', '/users', admin, { user: { name: 'dadmin', password: 'pw', domain_id: d.id } })
    ).body.user;
    assert.equal(
      (await http('PUT', `/domains/${d.id}/users/${dadmin.id}/roles/${ids.admin}`, admin)).status,
      204,
    );
    const t = await tokenFor('dadmin', 'pw', { domain: { id: d.id } }, d.id);
    const created = await http('POST', '/users', t, { user: { name: 'worker', password: 'pw' } });
    assert.equal(created.status, 201);
    assert.equal(created.body.user.domain_id, d.id, 'defaults to the token domain');
    const p = await http('POST', '/projects', t, { project: { name: 'acme-web' } });
    assert.equal(p.status, 201);
    assert.equal(
      (
        await http(
          'PUT',
          `/projects/${p.body.project.id}/users/${created.body.user.id}/roles/${ids.member}`,
          t,
        )
      ).status,
      204,
    );
    const users = (await http('GET', '/users', t)).body.users.map((u: { name: string }) => u.name).sort();
    assert.deepEqual(users, ['dadmin', 'worker']);
    const ras = (await http('GET', '/role_assignments', t)).body.role_assignments;
    assert.equal(ras.length, 2);
    assertFault(await http('POST', '/users', t, { user: { name: 'intruder', domain_id: 'default' } }), 403);
    assertFault(await http('GET', `/users/${ids.bob}`, t), 403);
    assertFault(await http('PATCH', `/projects/${ids.pa}`, t, { project: { description: 'x' } }), 403);
    assertFault(await http('POST', '/domains', t, { domain: { name: 'another' } }), 403);
    assertFault(await http('POST', '/roles', t, { role: { name: 'superuser' } }), 403);
  });

  it('lists effective role assignments through groups and inheritance, with names', async () => {
    const g = (await http('POST', '/groups', admin, { group: { name: 'devs' } })).body.group;
    assert.equal((await http('PUT', `/groups/${g.id}/users/${ids.bob}`, admin)).status, 204);
    assert.equal((await http('HEAD', `/groups/${g.id}/users/${ids.bob}`, admin)).status, 204);
    assert.equal(
      (await http('PUT', `/projects/${ids.pb}/groups/${g.id}/roles/${ids.reader}`, admin)).status,
      204,
    );
    const eff = await http(
      'GET',
      `/role_assignments?effective&include_names=True&user.id=${ids.bob}&scope.project.id=${ids.pb}`,
      admin,
    );
    assert.equal(eff.status, 200);
    assert.equal(eff.body.role_assignments.length, 1);
    const a = eff.body.role_assignments[0];
    assert.equal(a.user.name, 'bob');
    assert.equal(a.role.name, 'reader');
    assert.equal(a.scope.project.name, 'pb');
    assert.match(a.links.membership, new RegExp(`/groups/${g.id}/users/${ids.bob}$`));
    // bob can now scope to pb through the group, and loses it at once when removed from the group.
    const t = await tokenFor('bob', 'bob-pw', { project: { id: ids.pb } });
    assert.equal(await valid(t), 200);
    assert.equal((await http('DELETE', `/groups/${g.id}/users/${ids.bob}`, admin)).status, 204);
    assert.equal(await valid(t), 404, 'the token no longer validates');
    assertFault(await http('GET', `/groups/${g.id}/users/${ids.bob}`, admin), 404);

    // Inherited from the domain to every project in it.
    assert.equal(
      (
        await http(
          'PUT',
          `/OS-INHERIT/domains/default/users/${ids.rita}/roles/${ids.reader}/inherited_to_projects`,
          admin,
        )
      ).status,
      204,
    );
    const inh = await http('GET', `/role_assignments?effective&user.id=${ids.rita}`, admin);
    const projects = inh.body.role_assignments.map((x: any) => x.scope.project?.id);
    assert.ok(projects.includes(ids.pa) && projects.includes(ids.pb));
    const direct = await http('GET', `/role_assignments?scope.OS-INHERIT:inherited_to=projects`, admin);
    assert.equal(direct.body.role_assignments.length, 1);
    assert.equal(direct.body.role_assignments[0].scope['OS-INHERIT:inherited_to'], 'projects');
  });

  it('revokes at once: role removal, project disable, user disable, token revoke', async () => {
    const t1 = await tokenFor('rita', 'rita-pw', { project: { id: ids.pb } });
    assert.equal(await valid(t1), 200);
    assert.equal(
      (await http('DELETE', `/projects/${ids.pb}/users/${ids.rita}/roles/${ids.member}`, admin)).status,
      204,
    );
    assert.equal(await valid(t1), 404);
    // Using a revoked token is a 401.
    assertFault(await http('GET', `/users/${ids.rita}`, t1), 401);

    const t2 = await tokenFor('bob', 'bob-pw', { project: { id: ids.pa } });
    assert.equal(
      (await http('PATCH', `/projects/${ids.pa}`, admin, { project: { enabled: false } })).status,
      200,
    );
    assert.equal(await valid(t2), 404);
    assert.equal(
      (await http('PATCH', `/projects/${ids.pa}`, admin, { project: { enabled: true } })).status,
      200,
    );
    assert.equal(await valid(t2), 404, 'revoked tokens stay revoked after re-enabling');

    await sleep(2);
    const t3 = await tokenFor('bob', 'bob-pw', { project: { id: ids.pa } });
    assert.equal(await valid(t3), 200);
    assert.equal((await http('PATCH', `/users/${ids.bob}`, admin, { user: { enabled: false } })).status, 200);
    assert.equal(await valid(t3), 404);
    assert.equal((await http('PATCH', `/users/${ids.bob}`, admin, { user: { enabled: true } })).status, 200);

    await sleep(2);
    const t4 = await tokenFor('bob', 'bob-pw', { project: { id: ids.pa } });
    const del = await fetch(`${cloud.url(0)}/identity/v3/auth/tokens`, {
      method: 'DELETE',
      headers: { 'x-auth-token': t4, 'x-subject-token': t4 },
    });
    assert.equal(del.status, 204);
    assert.equal(await valid(t4), 404);
  });
});

describe('identity over HTTP: token expiry', () => {
  let cloud: LocalCloud;
  before(async () => {
    cloud = await startLocalCloud({ sites: 1, site: { tokenTtlSeconds: 1 } });
  });
  after(async () => cloud?.close());

  it('an expired token is a 401, over HTTP and from the CLI', async () => {
    const t = await cloud.adminToken(0);
    const check = () => fetch(`${cloud.url(0)}/identity/v3/projects`, { headers: { 'x-auth-token': t } });
    assert.equal((await check()).status, 200);
    await sleep(1100);
    const r = await check();
    assert.equal(r.status, 401);
    const body = (await r.json()) as { error: { code: number } };
    assert.equal(body.error.code, 401);
    const cli = await cloud.os(['project', 'list'], { env: tokenEnv(cloud, t) });
    assert.notEqual(cli.code, 0);
    assert.match(cli.stderr, /401|expired|authentication/i);
  });
});
