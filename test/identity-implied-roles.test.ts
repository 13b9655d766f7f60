/**
 * @module Implied roles (role inference rules): the rule API, tokens and effective role assignment
 * listings that follow chained rules, domain-specific roles that imply global ones but never appear
 * themselves, and the limits that keep inference from making a cloud admin: no rule implies `admin`,
 * and only a cloud admin writes rules.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { passwordLogin, startLocalCloud } from './support/cloud.ts';
import type { LocalCloud } from './support/cloud.ts';
import { httpAt } from './support/http.ts';
import type { Http } from './support/http.ts';

describe('implied roles', () => {
  let cloud: LocalCloud;
  let http: Http;
  let admin: string;
  const ids: Record<string, string> = {};

  const made = async (path: string, key: string, body: Obj) => {
    const r = await http('POST', `/identity/v3${path}`, admin, { [key]: body });
    assert.equal(r.status, 201, JSON.stringify(r.body));
    return r.body[key].id as string;
  };
  type Obj = Record<string, unknown>;
  const implies = (prior: string, implied: string) => `/identity/v3/roles/${prior}/implies/${implied}`;
  const tokenRoles = async () => {
    const r = await passwordLogin(cloud.url(0), { name: 'u', password: 'pw' }, { project: { id: ids.p } });
    assert.equal(r.status, 201);
    return (((await r.json()) as any).token.roles as { name: string }[]).map((x) => x.name).sort();
  };

  before(async () => {
    cloud = await startLocalCloud({ sites: 1 });
    http = httpAt(cloud.url(0));
    admin = await cloud.adminToken(0);
    for (const r of (await http('GET', '/identity/v3/roles', admin)).body.roles) ids[r.name] = r.id;
    for (const name of ['a', 'b', 'c']) ids[name] = await made('/roles', 'role', { name });
    ids.d = await made('/domains', 'domain', { name: 'dom' });
    ids.local = await made('/roles', 'role', { name: 'local', domain_id: ids.d });
    ids.u = await made('/users', 'user', { name: 'u', password: 'pw' });
    ids.p = await made('/projects', 'project', { name: 'p' });
    const grant = `/identity/v3/projects/${ids.p}/users/${ids.u}/roles/${ids.a}`;
    assert.equal((await http('PUT', grant, admin)).status, 204);
  });
  after(async () => cloud?.close());

  it('creates, shows, checks, lists and deletes rules', async () => {
    const r = await http('PUT', implies(ids.a!, ids.b!), admin);
    assert.equal(r.status, 201);
    assert.equal(r.body.role_inference.prior_role.id, ids.a);
    assert.equal(r.body.role_inference.implies.id, ids.b);
    assert.equal((await http('GET', implies(ids.a!, ids.b!), admin)).status, 200);
    assert.equal((await http('HEAD', implies(ids.a!, ids.b!), admin)).status, 204);
    assert.equal((await http('HEAD', implies(ids.b!, ids.a!), admin)).status, 404);
    assert.equal((await http('PUT', implies(ids.b!, ids.c!), admin)).status, 201);
    const list = await http('GET', `/identity/v3/roles/${ids.a}/implies`, admin);
    assert.deepEqual(
      list.body.role_inference.implies.map((x: { id: string }) => x.id),
      [ids.b],
    );
    const all = await http('GET', '/identity/v3/role_inferences', admin);
    assert.equal(all.body.role_inferences.length, 2);
  });

  it('grants the implied roles, transitively, in tokens and effective listings', async () => {
    assert.deepEqual(await tokenRoles(), ['a', 'b', 'c']);
    const eff = await http('GET', `/identity/v3/role_assignments?effective&user.id=${ids.u}`, admin);
    assert.deepEqual(
      eff.body.role_assignments.map((x: any) => x.role.id).sort(),
      [ids.a, ids.b, ids.c].sort(),
    );
    const implied = eff.body.role_assignments.find((x: any) => x.role.id === ids.c);
    assert.match(implied.links.prior_role, /\/roles\//);
    assert.equal((await http('DELETE', implies(ids.b!, ids.c!), admin)).status, 204);
    assert.deepEqual(await tokenRoles(), ['a', 'b']);
    assert.equal((await http('DELETE', implies(ids.b!, ids.c!), admin)).status, 404);
  });

  it('lets a domain role imply a global one, not the reverse; domain roles stay out of listings', async () => {
    assert.equal((await http('PUT', implies(ids.local!, ids.c!), admin)).status, 201);
    assert.equal((await http('PUT', implies(ids.c!, ids.local!), admin)).status, 403);
    const u2 = await made('/users', 'user', { name: 'u2', password: 'pw', domain_id: ids.d });
    const p2 = await made('/projects', 'project', { name: 'p2', domain_id: ids.d });
    assert.equal(
      (await http('PUT', `/identity/v3/projects/${p2}/users/${u2}/roles/${ids.local}`, admin)).status,
      204,
    );
    const eff = await http('GET', `/identity/v3/role_assignments?effective&user.id=${u2}`, admin);
    assert.deepEqual(
      eff.body.role_assignments.map((x: any) => x.role.id),
      [ids.c],
    );
  });

  it('never implies admin, and only a cloud admin writes rules (403)', async () => {
    assert.equal((await http('PUT', implies(ids.a!, ids.admin!), admin)).status, 403);
    const member = await made('/users', 'user', { name: 'padmin', password: 'pw' });
    assert.equal(
      (await http('PUT', `/identity/v3/projects/${ids.p}/users/${member}/roles/${ids.admin}`, admin)).status,
      204,
    );
    const r = await passwordLogin(
      cloud.url(0),
      { name: 'padmin', password: 'pw' },
      { project: { id: ids.p } },
    );
    const t = r.headers.get('x-subject-token')!;
    assert.equal((await http('PUT', implies(ids.member!, ids.c!), t)).status, 403);
    assert.equal((await http('GET', '/identity/v3/role_inferences', t)).status, 403);
  });

  it('drops the rules of a deleted role', async () => {
    assert.equal((await http('DELETE', `/identity/v3/roles/${ids.b}`, admin)).status, 204);
    assert.equal(
      (await http('GET', `/identity/v3/roles/${ids.a}/implies`, admin)).body.role_inference.implies.length,
      0,
    );
  });
});
