/**
 * @module Application credential access rules over HTTP on two sites: a credential made through the
 * site that does not own its user (forwarded) carries its rules; a user's identical rules are one
 * rule; a rule in use cannot be deleted; bad rules are a 400 with nothing written; a token from a
 * credential with rules makes only the requests they match (401 otherwise), on either site.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { passwordLogin, startLocalCloud } from './support/cloud.ts';
import type { LocalCloud } from './support/cloud.ts';
import { httpAt } from './support/http.ts';
import type { Http } from './support/http.ts';

type Obj = Record<string, any>;

describe('application credential access rules (HTTP, two sites)', () => {
  let cloud: LocalCloud;
  let a: Http;
  let b: Http;
  let admin: string;
  let user: string;
  let token: string;
  const base = () => `/identity/v3/users/${user}`;
  const ipsRule = { path: '/v2.1/servers/*/ips', method: 'GET', service: 'compute' };

  before(async () => {
    cloud = await startLocalCloud({ sites: 2 });
    a = httpAt(cloud.url(0));
    b = httpAt(cloud.url(1));
    admin = await cloud.adminToken(0);
    const roles = (await a('GET', '/identity/v3/roles', admin)).body.roles as Obj[];
    const member = roles.find((r) => r.name === 'member')!.id as string;
    const p = (await a('POST', '/identity/v3/projects', admin, { project: { name: 'ar-p' } })).body.project;
    user = (await a('POST', '/identity/v3/users', admin, { user: { name: 'ar-u', password: 'ar-pw' } })).body
      .user.id;
    assert.equal(
      (await a('PUT', `/identity/v3/projects/${p.id}/users/${user}/roles/${member}`, admin)).status,
      204,
    );
    await cloud.converged();
    const res = await passwordLogin(
      cloud.url(1),
      { name: 'ar-u', password: 'ar-pw' },
      { project: { id: p.id } },
    );
    assert.equal(res.status, 201);
    token = res.headers.get('x-subject-token')!;
  });
  after(async () => cloud?.close());

  const create = (http: Http, name: string, rules: unknown) =>
    http('POST', `${base()}/application_credentials`, token, {
      application_credential: { name, access_rules: rules },
    });

  it('stores the rules of a credential made at the non-owner site, one rule per content', async () => {
    const r = await create(b, 'ac-1', [ipsRule]);
    assert.equal(r.status, 201, JSON.stringify(r.body));
    const rule = r.body.application_credential.access_rules[0] as Obj;
    const { id, ...rest } = rule;
    assert.deepEqual(rest, ipsRule);
    const again = await create(b, 'ac-2', [ipsRule]);
    assert.equal(again.status, 201);
    assert.equal(again.body.application_credential.access_rules[0].id, id, 'the same rule is reused');
    await cloud.converged();
    for (const http of [a, b]) {
      const list = await http('GET', `${base()}/access_rules`, token);
      assert.equal(list.status, 200);
      assert.deepEqual(
        list.body.access_rules.map((x: Obj) => x.id),
        [id],
      );
      const one = await http('GET', `${base()}/access_rules/${id}`, token);
      assert.equal(one.body.access_rule.service, 'compute');
    }
    // In use by both credentials: 403, forwarded or not.
    assert.equal((await b('DELETE', `${base()}/access_rules/${id}`, token)).status, 403);
    for (const ac of [r.body.application_credential.id, again.body.application_credential.id])
      assert.equal((await b('DELETE', `${base()}/application_credentials/${ac}`, token)).status, 204);
    assert.equal((await b('GET', `${base()}/access_rules`, token)).body.access_rules.length, 1);
    assert.equal((await b('DELETE', `${base()}/access_rules/${id}`, token)).status, 204);
    await cloud.converged();
    assert.equal((await a('GET', `${base()}/access_rules`, token)).body.access_rules.length, 0);
  });

  it('refuses bad rules with a 400 and writes nothing', async () => {
    const bad: unknown[] = [
      'not a list',
      [{ ...ipsRule, method: 'FETCH' }],
      [{ ...ipsRule, path: 'no-slash' }],
      [{ ...ipsRule, path: `/${'x'.repeat(300)}` }],
      [{ ...ipsRule, service: '' }],
      [{ ...ipsRule, extra: 1 }],
      ['a string'],
    ];
    for (const rules of bad) {
      const r = await create(b, 'ac-bad', rules);
      assert.equal(r.status, 400, JSON.stringify(rules));
    }
    assert.equal((await create(a, 'ac-bad', [{ id: 'nope' }])).status, 404);
    const creds = await a('GET', `${base()}/application_credentials`, token);
    assert.equal(creds.body.application_credentials.length, 0);
    assert.equal((await a('GET', `${base()}/access_rules`, token)).body.access_rules.length, 0);
  });

  it('lets a token from the credential make only the requests its rules match, at either site', async () => {
    const r = await create(b, 'ac-run', [
      { path: '/v2/images', method: 'GET', service: 'image' },
      { path: '/v2.1/servers/**', method: 'GET', service: 'compute' },
    ]);
    assert.equal(r.status, 201);
    const { id, secret } = r.body.application_credential;
    await cloud.converged();
    const login = await fetch(`${cloud.url(0)}/identity/v3/auth/tokens?nocatalog`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        auth: { identity: { methods: ['application_credential'], application_credential: { id, secret } } },
      }),
    });
    assert.equal(login.status, 201, await login.clone().text());
    const acToken = login.headers.get('x-subject-token')!;
    for (const http of [a, b]) {
      assert.equal((await http('GET', '/image/v2/images', acToken)).status, 200);
      assert.equal((await http('GET', '/image/v2/images?limit=1', acToken)).status, 200);
      assert.notEqual((await http('GET', '/compute/v2.1/servers/x/ips', acToken)).status, 401);
      assert.equal((await http('GET', '/image/v2/info/import', acToken)).status, 401);
      assert.equal((await http('GET', '/compute/v2.1/flavors', acToken)).status, 401);
      assert.equal((await http('POST', '/image/v2/images', acToken, { name: 'x' })).status, 401);
      assert.equal((await http('GET', '/network/v2.0/networks', acToken)).status, 401);
      assert.equal((await http('GET', `${base()}/application_credentials`, acToken)).status, 401);
    }
  });
});
