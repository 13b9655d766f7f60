/**
 * @module System scope (Keystone's `scope: {system: {all: true}}`): role grants on the system to users
 * and groups, system-scoped tokens, and the rule that the admin role on the system makes a cloud admin
 * (as the admin role on the admin project does) while only a cloud admin grants on the system, so the
 * admin of an ordinary project or a domain cannot reach it.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { passwordLogin, startLocalCloud } from './support/cloud.ts';
import type { LocalCloud } from './support/cloud.ts';
import { httpAt } from './support/http.ts';
import type { Http } from './support/http.ts';

const SYSTEM = { system: { all: true } };

describe('system scope', () => {
  let cloud: LocalCloud;
  let http: Http;
  let admin: string;
  const ids: Record<string, string> = {};

  const created = async (path: string, key: string, body: unknown, token = admin) => {
    const r = await http('POST', `/identity/v3${path}`, token, { [key]: body });
    assert.equal(r.status, 201, JSON.stringify(r.body));
    return r.body[key].id as string;
  };
  const login = (name: string, scope: unknown) =>
    passwordLogin(cloud.url(0), { name, password: 'pw', domainId: 'default' }, scope);
  const token = async (name: string, scope: unknown) => {
    const r = await login(name, scope);
    assert.equal(r.status, 201, await r.text());
    return r.headers.get('x-subject-token')!;
  };
  const onSystem = (actor: string, role: string) => `/identity/v3/system/${actor}/roles/${role}`;

  before(async () => {
    cloud = await startLocalCloud({ sites: 1 });
    http = httpAt(cloud.url(0));
    admin = await cloud.adminToken(0);
    for (const r of (await http('GET', '/identity/v3/roles', admin)).body.roles) ids[r.name] = r.id;
    for (const name of ['sysadmin', 'sysreader', 'grouped', 'padmin'])
      ids[name] = await created('/users', 'user', { name, password: 'pw', domain_id: 'default' });
    ids.plain = await created('/projects', 'project', { name: 'plain', domain_id: 'default' });
    const grant = await http(
      'PUT',
      `/identity/v3/projects/${ids.plain}/users/${ids.padmin}/roles/${ids.admin}`,
      admin,
    );
    assert.equal(grant.status, 204);
  });
  after(async () => cloud?.close());

  it('grants, checks, lists and shows a user role on the system', async () => {
    assert.equal((await http('PUT', onSystem(`users/${ids.sysadmin}`, ids.admin!), admin)).status, 204);
    assert.equal((await http('GET', onSystem(`users/${ids.sysadmin}`, ids.admin!), admin)).status, 204);
    assert.equal((await http('HEAD', onSystem(`users/${ids.sysadmin}`, ids.admin!), admin)).status, 204);
    assert.equal((await http('GET', onSystem(`users/${ids.sysreader}`, ids.admin!), admin)).status, 404);
    const listed = await http('GET', `/identity/v3/system/users/${ids.sysadmin}/roles`, admin);
    assert.deepEqual(
      listed.body.roles.map((r: { name: string }) => r.name),
      ['admin'],
    );
    const all = await http('GET', '/identity/v3/role_assignments?scope.system=all', admin);
    assert.equal(all.status, 200);
    const mine = all.body.role_assignments.filter((a: any) => a.user?.id === ids.sysadmin);
    assert.equal(mine.length, 1);
    assert.deepEqual(mine[0].scope, { system: { all: true } });
    assert.match(
      mine[0].links.assignment,
      new RegExp(`/v3/system/users/${ids.sysadmin}/roles/${ids.admin}$`),
    );
    const projects = await http('GET', `/identity/v3/role_assignments?scope.project.id=${ids.plain}`, admin);
    assert.ok(projects.body.role_assignments.every((a: any) => a.scope.project));
  });

  it('issues a system-scoped token that carries system all, its roles and a catalog', async () => {
    const r = await fetch(`${cloud.url(0)}/identity/v3/auth/tokens`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        auth: {
          identity: {
            methods: ['password'],
            password: { user: { name: 'sysadmin', domain: { id: 'default' }, password: 'pw' } },
          },
          scope: SYSTEM,
        },
      }),
    });
    assert.equal(r.status, 201);
    const body = (await r.json()) as any;
    assert.deepEqual(body.token.system, { all: true });
    assert.equal(body.token.project, undefined);
    assert.deepEqual(body.token.roles.map((x: { name: string }) => x.name).sort(), [
      'admin',
      'member',
      'reader',
    ]);
    assert.ok(Array.isArray(body.token.catalog) && body.token.catalog.length > 0);
    const t = r.headers.get('x-subject-token')!;
    const validated = await fetch(`${cloud.url(0)}/identity/v3/auth/tokens`, {
      headers: { 'x-auth-token': t, 'x-subject-token': t },
    });
    assert.deepEqual(((await validated.json()) as any).token.system, { all: true });
    const scopes = await http('GET', '/identity/v3/auth/system', t);
    assert.deepEqual(scopes.body.system, [{ all: true }]);
  });

  it('makes the admin role on the system a cloud admin', async () => {
    const t = await token('sysadmin', SYSTEM);
    assert.equal((await http('GET', '/atoll/v1/sites', t)).status, 200);
    assert.equal(
      (await http('POST', '/identity/v3/domains', t, { domain: { name: 'by-system' } })).status,
      201,
    );
    assert.equal((await http('PUT', onSystem(`users/${ids.sysreader}`, ids.reader!), t)).status, 204);
  });

  it('gives a system reader reads only, and no token to a user without a role on the system', async () => {
    const t = await token('sysreader', SYSTEM);
    assert.equal((await http('GET', '/identity/v3/role_assignments?scope.system=all', t)).status, 403);
    assert.equal((await http('GET', `/identity/v3/system/users/${ids.sysadmin}/roles`, t)).status, 200);
    assert.equal(
      (await http('POST', '/identity/v3/domains', t, { domain: { name: 'by-reader' } })).status,
      403,
    );
    assert.equal((await http('GET', '/atoll/v1/sites', t)).status, 403);
    assert.equal((await login('padmin', SYSTEM)).status, 401);
    assert.equal((await login('sysadmin', { system: { all: false } })).status, 400);
  });

  it('refuses the system to the admin of an ordinary project (403, 401)', async () => {
    const p = await token('padmin', { project: { id: ids.plain } });
    assert.equal((await http('PUT', onSystem(`users/${ids.padmin}`, ids.admin!), p)).status, 403);
    assert.equal((await http('GET', '/identity/v3/role_assignments?scope.system=all', p)).status, 403);
    assert.equal((await login('padmin', SYSTEM)).status, 401);
  });

  it('grants the system to a group: its members get system-scoped tokens', async () => {
    const g = await created('/groups', 'group', { name: 'operators', domain_id: 'default' });
    assert.equal((await http('PUT', `/identity/v3/groups/${g}/users/${ids.grouped}`, admin)).status, 204);
    assert.equal((await login('grouped', SYSTEM)).status, 401);
    assert.equal((await http('PUT', onSystem(`groups/${g}`, ids.admin!), admin)).status, 204);
    assert.equal((await http('HEAD', onSystem(`groups/${g}`, ids.admin!), admin)).status, 204);
    const listed = await http('GET', `/identity/v3/system/groups/${g}/roles`, admin);
    assert.deepEqual(
      listed.body.roles.map((r: { id: string }) => r.id),
      [ids.admin],
    );
    const t = await token('grouped', SYSTEM);
    assert.equal((await http('GET', '/atoll/v1/sites', t)).status, 200);
    const eff = await http(
      'GET',
      `/identity/v3/role_assignments?scope.system=all&effective&user.id=${ids.grouped}`,
      admin,
    );
    // As Keystone after its bootstrap: admin, and member and reader that it implies, each through the group.
    const effRoles = eff.body.role_assignments as { role: { id: string }; links: { membership: string } }[];
    assert.deepEqual(effRoles.map((a) => a.role.id).sort(), [ids.admin, ids.member, ids.reader].sort());
    for (const a of effRoles) assert.match(a.links.membership, /\/groups\//);
    assert.equal((await http('DELETE', onSystem(`groups/${g}`, ids.admin!), admin)).status, 204);
    assert.equal((await http('GET', '/atoll/v1/sites', t)).status, 401);
  });

  it('revoking the system role revokes the system-scoped tokens', async () => {
    const t = await token('sysadmin', SYSTEM);
    assert.equal((await http('DELETE', onSystem(`users/${ids.sysadmin}`, ids.admin!), admin)).status, 204);
    assert.equal((await http('GET', '/atoll/v1/sites', t)).status, 401);
    assert.equal((await login('sysadmin', SYSTEM)).status, 401);
    assert.equal((await http('DELETE', onSystem(`users/${ids.sysadmin}`, ids.admin!), admin)).status, 404);
  });

  it('keeps the domain id system for the system (400)', async () => {
    const r = await http('POST', '/identity/v3/domains', admin, {
      domain: { name: 'squatter', explicit_domain_id: 'system' },
    });
    assert.equal(r.status, 400);
  });
});

describe('system scope across sites', () => {
  let cloud: LocalCloud;
  after(async () => cloud?.close());

  it('forwards a grant on the system made at another site to the admin project owner; any site then issues system tokens', async () => {
    cloud = await startLocalCloud({ sites: 2 });
    const [h0, h1] = [httpAt(cloud.url(0)), httpAt(cloud.url(1))];
    const admin1 = await cloud.adminToken(1);
    const user = await h1('POST', '/identity/v3/users', admin1, { user: { name: 'op', password: 'pw' } });
    assert.equal(user.status, 201, JSON.stringify(user.body));
    const role = (await h1('GET', '/identity/v3/roles?name=admin', admin1)).body.roles[0].id;
    await cloud.converged();
    const put = await h1('PUT', `/identity/v3/system/users/${user.body.user.id}/roles/${role}`, admin1);
    assert.equal(put.status, 204, JSON.stringify(put.body));
    const owner = cloud.fed.sites[0]!.ctx.store.db.prepare(
      "SELECT owner FROM role_assignments WHERE type = 'UserSystem' AND actor_id = ?",
    )
      .pluck()
      .get(user.body.user.id);
    assert.equal(owner, cloud.fed.sites[0]!.ctx.name);
    await cloud.converged();
    for (const i of [0, 1]) {
      const r = await passwordLogin(cloud.url(i), { name: 'op', password: 'pw' }, SYSTEM);
      assert.equal(r.status, 201, `system token at site ${i}`);
      const t = r.headers.get('x-subject-token')!;
      assert.equal((await [h0, h1][i]!('GET', '/atoll/v1/sites', t)).status, 200);
    }
  });
});
