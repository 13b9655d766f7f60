/**
 * @module Identity behaviours Tempest checks that the other identity tests do not: endpoints created
 * with the v2-style `region` make that region when missing (Keystone's compatibility rule), and the
 * project tags API one tag at a time, with its limits and its policy (a member of the project may not
 * change them), an application credential's expiry repeated to the microsecond, in UTC, and the
 * policies API (opaque documents for a cloud admin).
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { passwordLogin, startLocalCloud } from './support/cloud.ts';
import type { LocalCloud } from './support/cloud.ts';
import { httpAt } from './support/http.ts';
import type { Http } from './support/http.ts';

describe('identity conformance details', () => {
  let cloud: LocalCloud;
  let http: Http;
  let admin: string;
  let service: string;
  let project: string;

  before(async () => {
    cloud = await startLocalCloud({ sites: 1 });
    http = httpAt(cloud.url(0));
    admin = await cloud.adminToken(0);
    const s = await http('POST', '/identity/v3/services', admin, { service: { type: 'thing', name: 't' } });
    service = s.body.service.id;
    const p = await http('POST', '/identity/v3/projects', admin, { project: { name: 'tagged' } });
    project = p.body.project.id;
  });
  after(async () => cloud?.close());

  const endpoint = (extra: object) =>
    http('POST', '/identity/v3/endpoints', admin, {
      endpoint: { service_id: service, interface: 'public', url: 'http://x.example/', ...extra },
    });

  it('makes the region of a v2-style `region` when missing, not for region_id (404)', async () => {
    const made = await endpoint({ region: 'legacy-1' });
    assert.equal(made.status, 201, JSON.stringify(made.body));
    assert.equal(made.body.endpoint.region_id, 'legacy-1');
    assert.equal((await http('GET', '/identity/v3/regions/legacy-1', admin)).status, 200);
    assert.equal((await endpoint({ region: 'legacy-1' })).status, 201);
    assert.equal((await endpoint({ region_id: 'never-made' })).status, 404);
    assert.equal((await http('GET', '/identity/v3/regions/never-made', admin)).status, 404);
    assert.equal((await endpoint({ region: 'legacy-2', enabled: 'False' })).status, 400);
  });

  it('adds, checks, lists, replaces and removes project tags one by one', async () => {
    const tags = `/identity/v3/projects/${project}/tags`;
    assert.equal((await http('PUT', `${tags}/blue`, admin)).status, 201);
    assert.equal((await http('PUT', `${tags}/blue`, admin)).status, 201);
    assert.equal((await http('GET', `${tags}/blue`, admin)).status, 204);
    assert.equal((await http('GET', `${tags}/red`, admin)).status, 404);
    assert.deepEqual((await http('GET', tags, admin)).body.tags, ['blue']);
    const all = await http('PUT', tags, admin, { tags: ['a', 'b'] });
    assert.equal(all.status, 200);
    assert.deepEqual(all.body.tags, ['a', 'b']);
    assert.deepEqual((await http('GET', `/identity/v3/projects/${project}`, admin)).body.project.tags, [
      'a',
      'b',
    ]);
    assert.equal((await http('DELETE', `${tags}/a`, admin)).status, 204);
    assert.equal((await http('DELETE', `${tags}/a`, admin)).status, 404);
    assert.equal((await http('DELETE', tags, admin)).status, 204);
    assert.deepEqual((await http('GET', tags, admin)).body.tags, []);
    assert.equal((await http('PUT', `${tags}/${'x'.repeat(256)}`, admin)).status, 400);
    assert.equal((await http('PUT', `${tags}/a,b`, admin)).status, 400);
    assert.equal((await http('PUT', tags, admin, { tags: 'a' })).status, 400);
    const many = Array.from({ length: 80 }, (_v, i) => `t${i}`);
    assert.equal((await http('PUT', tags, admin, { tags: many })).status, 200);
    assert.equal((await http('PUT', `${tags}/one-more`, admin)).status, 400);
    assert.equal((await http('PUT', `/identity/v3/projects/nope/tags/x`, admin)).status, 404);
  });

  it('repeats an application credential expiry to the microsecond, a zoneless time read as UTC', async () => {
    const user = (await http('GET', '/identity/v3/users?name=admin', admin)).body.users[0].id;
    const create = (expires_at: string) =>
      http('POST', `/identity/v3/users/${user}/application_credentials`, admin, {
        application_credential: { name: `ac-${expires_at}`, expires_at },
      });
    const r = await create('2099-01-02T03:04:05.123456');
    assert.equal(r.status, 201, JSON.stringify(r.body));
    assert.equal(r.body.application_credential.expires_at, '2099-01-02T03:04:05.123456');
    const z = await create('2099-01-02T05:04:05+02:00');
    assert.equal(z.body.application_credential.expires_at, '2099-01-02T03:04:05.000000');
    assert.equal((await create('tomorrow')).status, 400);
  });

  it('stores, lists, updates and deletes policy documents, for a cloud admin only', async () => {
    const made = await http('POST', '/identity/v3/policies', admin, {
      policy: { type: 'application/json', blob: '{"a": 1}', note: 'kept' },
    });
    assert.equal(made.status, 201, JSON.stringify(made.body));
    const id = made.body.policy.id as string;
    assert.equal(made.body.policy.note, 'kept');
    assert.ok(
      (await http('GET', '/identity/v3/policies', admin)).body.policies.some((p: any) => p.id === id),
    );
    const up = await http('PATCH', `/identity/v3/policies/${id}`, admin, { policy: { type: 'text/plain' } });
    assert.equal(up.body.policy.type, 'text/plain');
    assert.equal((await http('GET', `/identity/v3/policies/${id}`, admin)).body.policy.blob, '{"a": 1}');
    assert.equal((await http('POST', '/identity/v3/policies', admin, { policy: { type: 'x' } })).status, 400);
    assert.equal((await http('GET', '/identity/v3/policies')).status, 401);
    assert.equal((await http('DELETE', `/identity/v3/policies/${id}`, admin)).status, 204);
    assert.equal((await http('GET', `/identity/v3/policies/${id}`, admin)).status, 404);
  });

  it('lets a member of the project read its tags, not change them (403)', async () => {
    const u = await http('POST', '/identity/v3/users', admin, { user: { name: 'm', password: 'pw' } });
    const roles = (await http('GET', '/identity/v3/roles?name=member', admin)).body.roles;
    const grant = `/identity/v3/projects/${project}/users/${u.body.user.id}/roles/${roles[0].id}`;
    assert.equal((await http('PUT', grant, admin)).status, 204);
    const login = await passwordLogin(
      cloud.url(0),
      { name: 'm', password: 'pw' },
      { project: { id: project } },
    );
    const t = login.headers.get('x-subject-token')!;
    assert.equal((await http('GET', `/identity/v3/projects/${project}/tags`, t)).status, 200);
    assert.equal((await http('PUT', `/identity/v3/projects/${project}/tags/mine`, t)).status, 403);
    assert.equal((await http('DELETE', `/identity/v3/projects/${project}/tags`, t)).status, 403);
    assert.equal((await http('GET', '/identity/v3/policies', t)).status, 403);
  });
});
