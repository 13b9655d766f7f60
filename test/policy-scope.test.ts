/**
 * @module Policy follows scope (Keystone's defaults): the cloud admin is the admin role on the admin
 * project; a domain admin (admin on a domain-scoped token) manages users, groups, projects and grants
 * inside its own domain only, is refused every cloud-admin check (the /atoll/v1 admin API, other
 * domains, the admin project's domain) and cannot grant its way to cloud admin.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { passwordLogin, startLocalCloud } from './support/cloud.ts';
import type { LocalCloud } from './support/cloud.ts';

describe('policy follows scope: a domain admin is not a cloud admin', () => {
  let cloud: LocalCloud;
  let admin: string;
  const ids: Record<string, string> = {};

  const http = async (method: string, path: string, token?: string, body?: unknown) => {
    const res = await fetch(`${cloud.url(0)}${path}`, {
      method,
      headers: {
        ...(token ? { 'x-auth-token': token } : {}),
        ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
      },
      ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
    });
    const text = await res.text();
    return { status: res.status, body: text ? (JSON.parse(text) as any) : undefined };
  };
  const created = async (path: string, key: string, body: unknown, token = admin) => {
    const r = await http('POST', `/identity/v3${path}`, token, { [key]: body });
    assert.equal(r.status, 201, JSON.stringify(r.body));
    return r.body[key].id as string;
  };
  const login = async (name: string, domainId: string, scope: unknown) => {
    const r = await passwordLogin(cloud.url(0), { name, password: 'pw', domainId }, scope);
    assert.equal(r.status, 201, await r.text());
    return r.headers.get('x-subject-token')!;
  };
  const grant = (target: string, actor: string, role: string, token: string) =>
    http('PUT', `/identity/v3/${target}/${actor}/roles/${role}`, token);

  before(async () => {
    cloud = await startLocalCloud({ sites: 1 });
    admin = await cloud.adminToken(0);
    const roles = (await http('GET', '/identity/v3/roles', admin)).body.roles as {
      id: string;
      name: string;
    }[];
    for (const r of roles) ids[r.name] = r.id;
    const projects = (await http('GET', '/identity/v3/projects', admin)).body.projects as any[];
    ids.adminProject = projects.find((p) => p.name === 'admin').id;
    ids.acme = await created('/domains', 'domain', { name: 'acme' });
    ids.other = await created('/domains', 'domain', { name: 'other' });
    ids.dadmin = await created('/users', 'user', { name: 'dadmin', password: 'pw', domain_id: ids.acme });
    ids.outsider = await created('/users', 'user', {
      name: 'outsider',
      password: 'pw',
      domain_id: ids.other,
    });
    ids.otherProject = await created('/projects', 'project', { name: 'other-p', domain_id: ids.other });
    ids.defaultProject = await created('/projects', 'project', { name: 'plain', domain_id: 'default' });
    ids.padmin = await created('/users', 'user', { name: 'padmin', password: 'pw', domain_id: 'default' });
    assert.equal((await grant(`domains/${ids.acme}`, `users/${ids.dadmin}`, ids.admin!, admin)).status, 204);
    assert.equal(
      (await grant(`projects/${ids.defaultProject}`, `users/${ids.padmin}`, ids.admin!, admin)).status,
      204,
    );
    ids.dtoken = await login('dadmin', ids.acme!, { domain: { id: ids.acme } });
  });
  after(async () => cloud?.close());

  const adminApi = [
    ['GET', '/atoll/v1/sites'],
    ['POST', '/atoll/v1/invites', { invite: { site_name: 'site-x' } }],
    ['POST', '/atoll/v1/keys/rotate', {}],
    ['POST', '/atoll/v1/sites/site-ghost/evict', { evict: { reason: 'x' } }],
    ['POST', '/atoll/v1/leave', {}],
  ] as const;

  it('refuses a domain admin, and the admin of an ordinary project, on every /atoll/v1 route (403)', async () => {
    const padmin = await login('padmin', 'default', { project: { id: ids.defaultProject } });
    for (const token of [ids.dtoken!, padmin])
      for (const [method, path, body] of adminApi)
        assert.equal((await http(method, path, token, body)).status, 403, `${method} ${path}`);
    assert.equal((await http('GET', '/atoll/v1/sites', admin)).status, 200, 'the cloud admin still may');
  });

  it('refuses a domain admin grants outside its domain, on the admin project and to other domains', async () => {
    const t = ids.dtoken!;
    const refused = [
      [`projects/${ids.adminProject}`, `users/${ids.dadmin}`],
      [`domains/default`, `users/${ids.dadmin}`],
      [`projects/${ids.otherProject}`, `users/${ids.dadmin}`],
      [`domains/${ids.other}`, `users/${ids.dadmin}`],
    ];
    for (const [target, actor] of refused) {
      assert.equal((await grant(target!, actor!, ids.admin!, t)).status, 403, `${target} ${actor}`);
      assert.equal((await grant(target!, actor!, ids.member!, t)).status, 403, `${target} ${actor}`);
    }
    const inherited = await http(
      'PUT',
      `/identity/v3/OS-INHERIT/domains/default/users/${ids.dadmin}/roles/${ids.admin}/inherited_to_projects`,
      t,
    );
    assert.equal(inherited.status, 403);
    // Its own project, but to a user of another domain.
    const own = await created('/projects', 'project', { name: 'acme-web' }, t);
    assert.equal((await grant(`projects/${own}`, `users/${ids.outsider}`, ids.member!, t)).status, 403);
    // Nothing was written: the admin project has only the bootstrap's assignment.
    const ras = await http(
      'GET',
      `/identity/v3/role_assignments?scope.project.id=${ids.adminProject}`,
      admin,
    );
    assert.equal(ras.body.role_assignments.length, 1);
  });

  it('admin on a project of its own domain does not make a domain admin a cloud admin', async () => {
    const t = ids.dtoken!;
    const p = await created('/projects', 'project', { name: 'acme-ops' }, t);
    assert.equal((await grant(`projects/${p}`, `users/${ids.dadmin}`, ids.admin!, t)).status, 204);
    const pt = await login('dadmin', ids.acme!, { project: { id: p } });
    for (const [method, path, body] of adminApi)
      assert.equal((await http(method, path, pt, body)).status, 403, `${method} ${path}`);
    assert.equal((await http('POST', '/identity/v3/domains', pt, { domain: { name: 'mine' } })).status, 403);
    assert.equal((await http('GET', `/identity/v3/projects/${ids.otherProject}`, pt)).status, 403);
    assert.equal((await http('GET', `/identity/v3/users/${ids.outsider}`, pt)).status, 403);
    assert.equal((await http('GET', '/network/v2.0/networks?all_tenants=1', pt)).status, 200);
  });

  it('refuses a domain admin users, groups and projects in other domains and in the admin domain', async () => {
    const t = ids.dtoken!;
    for (const domain of ['default', ids.other!]) {
      assert.equal(
        (await http('POST', '/identity/v3/users', t, { user: { name: 'x', domain_id: domain } })).status,
        403,
      );
      assert.equal(
        (await http('POST', '/identity/v3/groups', t, { group: { name: 'x', domain_id: domain } })).status,
        403,
      );
      assert.equal(
        (await http('POST', '/identity/v3/projects', t, { project: { name: 'x', domain_id: domain } }))
          .status,
        403,
      );
    }
    assert.equal(
      (await http('PATCH', `/identity/v3/users/${ids.outsider}`, t, { user: { enabled: false } })).status,
      403,
    );
    const g = await created('/groups', 'group', { name: 'acme-g' }, t);
    assert.equal((await http('PUT', `/identity/v3/groups/${g}/users/${ids.outsider}`, t)).status, 403);
  });

  it("a domain admin of the admin project's domain cannot reach the admin project or its admins", async () => {
    const u = await created('/users', 'user', {
      name: 'default-dadmin',
      password: 'pw',
      domain_id: 'default',
    });
    assert.equal((await grant('domains/default', `users/${u}`, ids.admin!, admin)).status, 204);
    const t = await login('default-dadmin', 'default', { domain: { id: 'default' } });
    assert.equal((await grant(`projects/${ids.adminProject}`, `users/${u}`, ids.admin!, t)).status, 403);
    const adminUser = (await http('GET', '/identity/v3/users?name=admin', admin)).body.users[0].id;
    assert.equal(
      (await http('PATCH', `/identity/v3/users/${adminUser}`, t, { user: { password: 'x' } })).status,
      403,
    );
    assert.equal((await http('GET', '/atoll/v1/sites', t)).status, 403);
  });

  it('lets a domain admin do what Keystone lets it do inside its domain', async () => {
    const t = ids.dtoken!;
    const worker = await created('/users', 'user', { name: 'worker', password: 'pw' }, t);
    const p = await created('/projects', 'project', { name: 'acme-app' }, t);
    const g = await created('/groups', 'group', { name: 'acme-devs' }, t);
    assert.equal((await http('PUT', `/identity/v3/groups/${g}/users/${worker}`, t)).status, 204);
    assert.equal((await grant(`projects/${p}`, `users/${worker}`, ids.member!, t)).status, 204);
    assert.equal((await grant(`projects/${p}`, `groups/${g}`, ids.reader!, t)).status, 204);
    assert.equal((await grant(`domains/${ids.acme}`, `users/${worker}`, ids.reader!, t)).status, 204);
    assert.equal(
      (await http('PATCH', `/identity/v3/users/${worker}`, t, { user: { description: 'ok' } })).status,
      200,
    );
    const ras = await http('GET', '/identity/v3/role_assignments', t);
    assert.equal(ras.status, 200);
    assert.ok(ras.body.role_assignments.length >= 4);
    assert.equal(
      (await http('DELETE', `/identity/v3/projects/${p}/users/${worker}/roles/${ids.member}`, t)).status,
      204,
    );
    const wt = await login('worker', ids.acme!, { domain: { id: ids.acme } });
    assert.equal((await http('GET', '/identity/v3/users', wt)).status, 200, 'a domain reader reads');
  });
});
