/**
 * @module Trusts, credentials and the smaller Keystone extensions over HTTP on one site: a trust never
 * delegates more than its trustor holds, trust-scoped tokens carry only the delegated roles and die
 * with the trust, redelegation is bounded by its parent; a member reads and writes only their own
 * credentials (EC2 ones too); OAuth1 consumers, endpoint groups and domain configuration are a cloud
 * admin's; a project acting as a domain is a domain.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { passwordLogin, startLocalCloud } from './support/cloud.ts';
import type { LocalCloud } from './support/cloud.ts';
import { httpAt } from './support/http.ts';
import type { Http } from './support/http.ts';

type Obj = Record<string, any>;

describe('trusts, credentials, consumers, endpoint groups, domain configuration', () => {
  let cloud: LocalCloud;
  let http: Http;
  let admin: string;
  const ids: Record<string, string> = {};
  const tok: Record<string, string> = {};

  const made = async (path: string, key: string, body: Obj, token = admin) => {
    const r = await http('POST', `/identity/v3${path}`, token, { [key]: body });
    assert.equal(r.status, 201, `${path}: ${JSON.stringify(r.body)}`);
    return r.body[key] as Obj;
  };
  const login = async (name: string, scope: unknown): Promise<Response> =>
    passwordLogin(cloud.url(0), { name, password: `${name}-pw` }, scope);
  const token = async (name: string, scope: unknown): Promise<string> => {
    const r = await login(name, scope);
    assert.equal(r.status, 201, await r.clone().text());
    return r.headers.get('x-subject-token')!;
  };
  const trustToken = (name: string, trustId: string) => login(name, { 'OS-TRUST:trust': { id: trustId } });
  const grant = async (project: string, user: string, role: string) =>
    assert.equal(
      (await http('PUT', `/identity/v3/projects/${project}/users/${user}/roles/${role}`, admin)).status,
      204,
    );

  before(async () => {
    cloud = await startLocalCloud({ sites: 1 });
    http = httpAt(cloud.url(0));
    admin = await cloud.adminToken(0);
    for (const r of (await http('GET', '/identity/v3/roles', admin)).body.roles) ids[r.name] = r.id;
    ids.ops = (await made('/roles', 'role', { name: 'ops' })).id;
    ids.p = (await made('/projects', 'project', { name: 'p' })).id;
    ids.q = (await made('/projects', 'project', { name: 'q' })).id;
    for (const u of ['alice', 'bob', 'carol'])
      ids[u] = (await made('/users', 'user', { name: u, password: `${u}-pw` })).id;
    await grant(ids.p!, ids.alice!, ids.member!);
    await grant(ids.p!, ids.alice!, ids.ops!);
    await grant(ids.q!, ids.bob!, ids.member!);
    await grant(ids.q!, ids.carol!, ids.member!);
    tok.alice = await token('alice', { project: { id: ids.p } });
    tok.bob = await token('bob', { project: { id: ids.q } });
  });
  after(async () => cloud?.close());

  const newTrust = (body: Obj, t = tok.alice) =>
    http('POST', '/identity/v3/OS-TRUST/trusts', t, {
      trust: {
        trustor_user_id: ids.alice,
        trustee_user_id: ids.bob,
        project_id: ids.p,
        impersonation: false,
        ...body,
      },
    });

  it('a trust delegates only roles its trustor holds, and only the trustor makes it', async () => {
    assert.equal(
      (await newTrust({ roles: [{ name: 'admin' }] })).status,
      403,
      'admin is not held: no escalation',
    );
    assert.equal((await newTrust({ roles: [{ name: 'reader' }], project_id: ids.q })).status, 403);
    assert.equal(
      (await newTrust({ roles: [{ name: 'member' }] }, tok.bob)).status,
      403,
      'bob is not the trustor',
    );
    assert.equal((await newTrust({ roles: [{ name: 'member' }], expires_at: 'bad.123Z' })).status, 400);
    assert.equal((await newTrust({ roles: [{ name: 'member' }], impersonation: 'yes' })).status, 400);
    const r = await newTrust({ roles: [{ name: 'member' }] });
    assert.equal(r.status, 201);
    assert.equal(r.body.trust.roles.length, 1);
    assert.equal(r.body.trust.roles[0].name, 'member');
    // Reads: trustor, trustee, cloud admin; carol is none of them.
    const path = `/identity/v3/OS-TRUST/trusts/${r.body.trust.id}`;
    assert.equal((await http('GET', path, tok.bob)).status, 200);
    const carol = await token('carol', { project: { id: ids.q } });
    assert.equal((await http('GET', path, carol)).status, 403);
    assert.equal((await http('GET', '/identity/v3/OS-TRUST/trusts', carol)).status, 403);
    const mine = await http('GET', `/identity/v3/OS-TRUST/trusts?trustee_user_id=${ids.bob}`, tok.bob);
    assert.deepEqual(
      mine.body.trusts.map((t: Obj) => t.id),
      [r.body.trust.id],
    );
    assert.equal((await http('HEAD', `${path}/roles/${ids.member}`, tok.bob)).status, 200);
    assert.equal((await http('GET', `${path}/roles/${ids.ops}`, tok.bob)).status, 404);
    assert.equal((await http('DELETE', path, tok.bob)).status, 403, 'the trustee cannot delete it');
    assert.equal((await http('DELETE', path, tok.alice)).status, 204);
  });

  it('every trust is listed for a cloud admin only, not for the admin of an ordinary project', async () => {
    const r = await newTrust({ roles: [{ name: 'member' }] });
    assert.equal(r.status, 201);
    // The admin role on project q (as Tempest's dynamic admins have on their fresh project).
    await grant(ids.q!, ids.carol!, ids.admin!);
    const projectAdmin = await token('carol', { project: { id: ids.q } });
    assert.equal((await http('GET', '/identity/v3/OS-TRUST/trusts', projectAdmin)).status, 403);
    // The cloud admin with a project-scoped token (the admin project) lists them all.
    const all = await http('GET', '/identity/v3/OS-TRUST/trusts', admin);
    assert.equal(all.status, 200);
    assert.ok(all.body.trusts.some((t: Obj) => t.id === r.body.trust.id));
    assert.equal(
      (await http('DELETE', `/identity/v3/OS-TRUST/trusts/${r.body.trust.id}`, tok.alice)).status,
      204,
    );
    assert.equal(
      (await http('DELETE', `/identity/v3/projects/${ids.q}/users/${ids.carol}/roles/${ids.admin}`, admin))
        .status,
      204,
    );
  });

  it("a trustor holding admin may delegate member: bootstrap's admin -> member -> reader counts", async () => {
    const r = (await made('/projects', 'project', { name: 'r' })).id as string;
    await grant(r, ids.alice!, ids.admin!);
    const aliceOnR = await token('alice', { project: { id: r } });
    const made2 = await http('POST', '/identity/v3/OS-TRUST/trusts', aliceOnR, {
      trust: {
        trustor_user_id: ids.alice,
        trustee_user_id: ids.bob,
        project_id: r,
        impersonation: false,
        roles: [{ name: 'member' }],
      },
    });
    assert.equal(made2.status, 201, JSON.stringify(made2.body));
    const t = await trustToken('bob', made2.body.trust.id);
    assert.equal(t.status, 201);
    const body = ((await t.json()) as Obj).token;
    assert.deepEqual(body.roles.map((x: Obj) => x.name).sort(), ['member', 'reader']);
  });

  it('a trust-scoped token carries the delegated roles only, and dies with the trust', async () => {
    const t = (await newTrust({ roles: [{ name: 'member' }] })).body.trust;
    const r = await trustToken('bob', t.id);
    assert.equal(r.status, 201);
    const body = ((await r.json()) as Obj).token;
    assert.equal(body.user.id, ids.bob);
    assert.equal(body.project.id, ids.p);
    assert.deepEqual(body.roles.map((x: Obj) => x.name).sort(), ['member', 'reader']);
    assert.equal(body['OS-TRUST:trust'].id, t.id);
    assert.equal(body['OS-TRUST:trust'].trustor_user.id, ids.alice);
    const tt = r.headers.get('x-subject-token')!;
    // Carol is not the trustee.
    assert.equal((await trustToken('carol', t.id)).status, 401);
    // A trust-scoped token cannot be rescoped, nor make a trust of its own (no redelegation here).
    const rescope = await http('POST', '/identity/v3/auth/tokens', undefined, {
      auth: { identity: { methods: ['token'], token: { id: tt } }, scope: { project: { id: ids.q } } },
    });
    assert.equal(rescope.status, 403);
    const redelegate = await http('POST', '/identity/v3/OS-TRUST/trusts', tt, {
      trust: {
        trustor_user_id: ids.bob,
        trustee_user_id: ids.carol,
        project_id: ids.p,
        impersonation: false,
        roles: [{ name: 'member' }],
      },
    });
    assert.equal(redelegate.status, 403);
    assert.equal((await http('GET', `/identity/v3/projects/${ids.p}`, tt)).status, 200);
    assert.equal((await http('DELETE', `/identity/v3/OS-TRUST/trusts/${t.id}`, tok.alice)).status, 204);
    assert.equal((await http('GET', `/identity/v3/projects/${ids.p}`, tt)).status, 401);
    assert.equal((await trustToken('bob', t.id)).status, 401);
  });

  it('a trust follows the trustor: a role taken from the trustor is gone from the trust token', async () => {
    const t = (await newTrust({ roles: [{ name: 'ops' }] })).body.trust;
    const tt = (await trustToken('bob', t.id)).headers.get('x-subject-token')!;
    assert.equal((await http('GET', `/identity/v3/projects/${ids.p}`, tt)).status, 200);
    const path = `/identity/v3/projects/${ids.p}/users/${ids.alice}/roles/${ids.ops}`;
    assert.equal((await http('DELETE', path, admin)).status, 204);
    assert.equal((await http('GET', `/identity/v3/projects/${ids.p}`, tt)).status, 401);
    assert.equal((await trustToken('bob', t.id)).status, 401);
    await grant(ids.p!, ids.alice!, ids.ops!);
    // Unassigning revoked alice's tokens: a new one.
    tok.alice = await token('alice', { project: { id: ids.p } });
    await http('DELETE', `/identity/v3/OS-TRUST/trusts/${t.id}`, tok.alice);
  });

  it('impersonation makes the token the trustor; limited uses run out', async () => {
    const t = (await newTrust({ roles: [{ name: 'member' }], impersonation: true, remaining_uses: 1 })).body
      .trust;
    const r = await trustToken('bob', t.id);
    assert.equal(r.status, 201);
    const body = ((await r.json()) as Obj).token;
    assert.equal(body.user.id, ids.alice);
    assert.equal(body['OS-TRUST:trust'].impersonation, true);
    assert.equal((await trustToken('bob', t.id)).status, 401, 'the one use is spent');
  });

  it('redelegation is bounded by its parent', async () => {
    const t = (
      await newTrust({ roles: [{ name: 'member' }], allow_redelegation: true, redelegation_count: 1 })
    ).body.trust;
    assert.equal(t.redelegation_count, 1);
    const tt = (await trustToken('bob', t.id)).headers.get('x-subject-token')!;
    const child = (body: Obj) =>
      http('POST', '/identity/v3/OS-TRUST/trusts', tt, {
        trust: {
          trustor_user_id: ids.bob,
          trustee_user_id: ids.carol,
          project_id: ids.p,
          impersonation: false,
          ...body,
        },
      });
    assert.equal((await child({ roles: [{ name: 'ops' }] })).status, 403, 'ops is not in the parent trust');
    assert.equal((await child({ roles: [{ name: 'member' }], impersonation: true })).status, 403);
    const c = await child({ roles: [{ name: 'member' }], allow_redelegation: true });
    assert.equal(c.status, 201, JSON.stringify(c.body));
    assert.equal(c.body.trust.redelegated_trust_id, t.id);
    assert.equal(c.body.trust.redelegation_count, 0);
    const ct = await trustToken('carol', c.body.trust.id);
    assert.equal(ct.status, 201);
    const ctt = ct.headers.get('x-subject-token')!;
    const grandchild = await http('POST', '/identity/v3/OS-TRUST/trusts', ctt, {
      trust: {
        trustor_user_id: ids.carol,
        trustee_user_id: ids.bob,
        project_id: ids.p,
        impersonation: false,
        roles: [{ name: 'member' }],
      },
    });
    assert.equal(grandchild.status, 403, 'the chain is used up');
    // Deleting the parent ends the child too.
    assert.equal((await http('DELETE', `/identity/v3/OS-TRUST/trusts/${t.id}`, tok.alice)).status, 204);
    assert.equal((await http('GET', `/identity/v3/projects/${ids.p}`, ctt)).status, 401);
  });

  it('a member manages their own credentials only; a cloud admin sees all', async () => {
    const blob = JSON.stringify({ access: 'a1', secret: 's1' });
    const own = await made(
      '/credentials',
      'credential',
      { user_id: ids.alice, project_id: ids.p, type: 'ec2', blob },
      tok.alice,
    );
    assert.equal(own.blob, blob);
    const forBob = await http('POST', '/identity/v3/credentials', tok.alice, {
      credential: { user_id: ids.bob, type: 'totp', blob: 'x' },
    });
    assert.equal(forBob.status, 403);
    const bobs = await made(
      '/credentials',
      'credential',
      { user_id: ids.bob, type: 'totp', blob: 'bob-secret' },
      tok.bob,
    );
    assert.equal((await http('GET', `/identity/v3/credentials/${bobs.id}`, tok.alice)).status, 403);
    assert.equal(
      (
        await http('PATCH', `/identity/v3/credentials/${bobs.id}`, tok.alice, {
          credential: { blob: 'mine' },
        })
      ).status,
      403,
    );
    assert.equal((await http('DELETE', `/identity/v3/credentials/${bobs.id}`, tok.alice)).status, 403);
    const listed = await http('GET', '/identity/v3/credentials', tok.alice);
    assert.deepEqual(
      listed.body.credentials.map((c: Obj) => c.id),
      [own.id],
    );
    const spy = await http('GET', `/identity/v3/credentials?user_id=${ids.bob}`, tok.alice);
    assert.deepEqual(spy.body.credentials, []);
    const all = await http('GET', '/identity/v3/credentials', admin);
    assert.deepEqual(all.body.credentials.map((c: Obj) => c.id).sort(), [own.id, bobs.id].sort());
    const noProject = await http('POST', '/identity/v3/credentials', tok.alice, {
      credential: { user_id: ids.alice, type: 'ec2', blob },
    });
    assert.equal(noProject.status, 400);
    assert.equal(
      (await http('POST', '/identity/v3/credentials', tok.alice, { credential: { user_id: ids.alice } }))
        .status,
      400,
    );
  });

  it('EC2 credentials: create, list, show, delete; only for oneself and a project one holds a role on', async () => {
    const base = `/identity/v3/users/${ids.alice}/credentials/OS-EC2`;
    const r = await http('POST', base, tok.alice, { tenant_id: ids.p });
    assert.equal(r.status, 201);
    const { access, secret } = r.body.credential;
    assert.ok(access && secret);
    assert.equal((await http('POST', base, tok.alice, { tenant_id: ids.q })).status, 403, 'no role on q');
    assert.equal((await http('POST', base, tok.bob, { tenant_id: ids.q })).status, 403, 'not bob’s user');
    assert.equal((await http('GET', `${base}/${access}`, tok.bob)).status, 403);
    assert.equal((await http('GET', `${base}/${access}`, tok.alice)).body.credential.secret, secret);
    assert.ok((await http('GET', base, tok.alice)).body.credentials.some((c: Obj) => c.access === access));
    assert.equal((await http('DELETE', `${base}/${access}`, tok.alice)).status, 204);
    assert.equal((await http('GET', `${base}/${access}`, tok.alice)).status, 404);
  });

  it('OAuth1 consumers, endpoint groups and domain configuration are a cloud admin’s', async () => {
    const c = await made('/OS-OAUTH1/consumers', 'consumer', { description: 'd' });
    assert.ok(c.secret);
    const shown = await http('GET', `/identity/v3/OS-OAUTH1/consumers/${c.id}`, admin);
    assert.equal(shown.body.consumer.secret, undefined, 'the secret is shown once');
    assert.equal((await http('GET', '/identity/v3/OS-OAUTH1/consumers', tok.alice)).status, 403);

    const svc = (await http('GET', '/identity/v3/services', admin)).body.services[0];
    const g = await made('/OS-EP-FILTER/endpoint_groups', 'endpoint_group', {
      name: 'g',
      filters: { service_id: svc.id },
    });
    const eps = await http('GET', `/identity/v3/OS-EP-FILTER/endpoint_groups/${g.id}/endpoints`, admin);
    assert.ok(eps.body.endpoints.length > 0);
    assert.ok(eps.body.endpoints.every((e: Obj) => e.service_id === svc.id));
    const bad = await http('POST', '/identity/v3/OS-EP-FILTER/endpoint_groups', admin, {
      endpoint_group: { name: 'x', filters: { url: 'http://x' } },
    });
    assert.equal(bad.status, 400);
    assert.equal(
      (
        await http('POST', '/identity/v3/OS-EP-FILTER/endpoint_groups', tok.alice, {
          endpoint_group: { name: 'x', filters: { interface: 'public' } },
        })
      ).status,
      403,
    );

    const d = await made('/domains', 'domain', { name: 'cfg' });
    const cfg = `/identity/v3/domains/${d.id}/config`;
    assert.equal((await http('PUT', cfg, admin, { config: { ldap: { url: 'ldap://x' } } })).status, 201);
    assert.equal((await http('PUT', cfg, admin, { config: { ldap: { url: 'ldap://y' } } })).status, 200);
    assert.equal((await http('PUT', cfg, admin, { config: { assignment: { driver: 'x' } } })).status, 403);
    assert.equal((await http('PUT', cfg, admin, { config: { ldap: { nope: 1 } } })).status, 403);
    assert.equal((await http('PUT', cfg, admin, { config: 'x' })).status, 400);
    assert.equal((await http('GET', cfg, tok.alice)).status, 403);
    assert.equal((await http('PUT', cfg, tok.alice, { config: { ldap: { url: 'ldap://z' } } })).status, 403);
    assert.equal((await http('GET', `${cfg}/ldap/url`, admin)).body.config.url, 'ldap://y');
    assert.equal((await http('DELETE', `${cfg}/ldap/url`, admin)).status, 204);
    assert.equal((await http('GET', cfg, admin)).status, 404, 'the last option removed the configuration');
  });

  it('a project acting as a domain is a domain', async () => {
    const p = await made('/projects', 'project', { name: 'as-domain', is_domain: true, domain_id: null });
    assert.equal(p.is_domain, true);
    const domains = (await http('GET', '/identity/v3/domains', admin)).body.domains;
    assert.ok(domains.some((x: Obj) => x.id === p.id));
    const listed = (await http('GET', '/identity/v3/projects?is_domain=true', admin)).body.projects;
    assert.ok(listed.some((x: Obj) => x.id === p.id));
    assert.equal(
      (await http('POST', '/identity/v3/projects', tok.alice, { project: { name: 'x', is_domain: true } }))
        .status,
      403,
    );
    assert.equal(
      (await http('PATCH', `/identity/v3/projects/${p.id}`, admin, { project: { enabled: false } })).status,
      200,
    );
    assert.equal((await http('GET', `/identity/v3/domains/${p.id}`, admin)).body.domain.enabled, false);
    assert.equal((await http('DELETE', `/identity/v3/projects/${p.id}`, admin)).status, 204);
    assert.equal((await http('GET', `/identity/v3/domains/${p.id}`, admin)).status, 404);
  });
});
