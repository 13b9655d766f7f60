/**
 * @module Image API v2 as Tempest and Glance's clients expect it, over HTTP against two real sites:
 * metadata definitions (namespaces with objects, properties, tags and resource type associations,
 * written through the site that does not own them), every /schemas document, deactivate and
 * reactivate, list filters by format and size, both JSON-patch dialects, `GET /images/`, and the
 * fault shape Glance's clients parse.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { passwordToken, startLocalCloud } from './support/cloud.ts';
import type { LocalCloud } from './support/cloud.ts';

type Json = Record<string, any>;

describe('image conformance (HTTP, two sites)', () => {
  let cloud: LocalCloud;
  const tokens: string[] = [];
  before(async () => {
    cloud = await startLocalCloud({ sites: 2 });
    tokens.push(await cloud.adminToken(0), await cloud.adminToken(1));
  });
  after(async () => {
    await cloud?.close();
  });

  /** A request to site `site` as the admin; returns the status and the parsed body. */
  const call = async (
    method: string,
    path: string,
    body?: unknown,
    opts: { site?: number; type?: string; headers?: Record<string, string> } = {},
  ): Promise<{ status: number; body: Json }> => {
    const site = opts.site ?? 0;
    const res = await fetch(`${cloud.url(site)}/image/v2${path}`, {
      method,
      headers: {
        'x-auth-token': tokens[site]!,
        ...(body !== undefined ? { 'content-type': opts.type ?? 'application/json' } : {}),
        ...opts.headers,
      },
      ...(body !== undefined ? { body: typeof body === 'string' ? body : JSON.stringify(body) } : {}),
    });
    const text = await res.text();
    return { status: res.status, body: text ? (JSON.parse(text) as Json) : {} };
  };
  const ok = async (method: string, path: string, status: number, body?: unknown, site = 0) => {
    const r = await call(method, path, body, { site });
    assert.equal(r.status, status, `${method} ${path}: ${JSON.stringify(r.body)}`);
    return r.body;
  };

  it('serves every schema document under its own name', async () => {
    const names: Record<string, string> = {
      image: 'image',
      images: 'images',
      member: 'member',
      members: 'members',
      'metadefs/namespace': 'namespace',
      'metadefs/namespaces': 'namespaces',
      'metadefs/object': 'object',
      'metadefs/objects': 'objects',
      'metadefs/property': 'property',
      'metadefs/properties': 'properties',
      'metadefs/tag': 'tag',
      'metadefs/tags': 'tags',
      'metadefs/resource_type': 'resource_type_association',
      'metadefs/resource_types': 'resource_type_associations',
    };
    for (const [path, name] of Object.entries(names)) {
      const doc = await ok('GET', `/schemas/${path}`, 200);
      assert.equal(doc.name, name, path);
      assert.equal(typeof doc.properties, 'object', path);
    }
    const image = await ok('GET', '/schemas/image', 200);
    assert.ok('disk_format' in image.properties);
  });

  it('namespaces: create with associations, read on both sites, protect, update, delete', async () => {
    const types = await ok('GET', '/metadefs/resource_types', 200);
    const rt = types.resource_types[0].name as string;
    const ns = await ok('POST', '/metadefs/namespaces', 201, {
      namespace: 'tempest-ns',
      display_name: 'Tempest NS',
      description: 'test',
      visibility: 'public',
      protected: true,
      resource_type_associations: [{ name: rt }],
    });
    assert.equal(ns.namespace, 'tempest-ns');
    assert.equal(ns.protected, true);
    assert.equal(ns.resource_type_associations[0].name, rt);
    assert.equal(
      (await call('POST', '/metadefs/namespaces', { namespace: 'tempest-ns' })).status,
      409,
      'names are unique',
    );
    await cloud.converged();
    const listed = await ok('GET', '/metadefs/namespaces', 200, undefined, 1);
    assert.ok(listed.namespaces.some((n: Json) => n.namespace === 'tempest-ns'));
    const byType = await ok('GET', `/metadefs/namespaces?resource_types=${rt},OS::Other`, 200);
    assert.deepEqual(
      byType.namespaces.map((n: Json) => n.namespace),
      ['tempest-ns'],
    );
    const other = await ok('GET', '/metadefs/namespaces?resource_types=OS::Nova::Server', 200);
    assert.ok(!other.namespaces.some((n: Json) => n.namespace === 'tempest-ns'));
    assert.equal((await call('DELETE', '/metadefs/namespaces/tempest-ns')).status, 403, 'protected');
    // An update through the other site is carried to the namespace's own site.
    const up = await ok(
      'PUT',
      '/metadefs/namespaces/tempest-ns',
      200,
      { namespace: 'tempest-ns', visibility: 'private', protected: false, description: 'test' },
      1,
    );
    assert.equal(up.visibility, 'private');
    assert.equal(up.protected, false);
    await ok('DELETE', '/metadefs/namespaces/tempest-ns', 204, undefined, 1);
    assert.equal((await call('GET', '/metadefs/namespaces/tempest-ns')).status, 404);
    assert.equal((await call('POST', '/metadefs/namespaces', { visibility: 'public' })).status, 400);
  });

  it('namespace objects, properties, tags and resource type associations', async () => {
    await ok('POST', '/metadefs/namespaces', 201, { namespace: 'items-ns', visibility: 'public' });
    const base = '/metadefs/namespaces/items-ns';
    // objects
    const obj = await ok('POST', `${base}/objects`, 201, { name: 'cpu', description: 'CPU' });
    assert.equal(obj.self, '/v2/metadefs/namespaces/items-ns/objects/cpu');
    const renamed = await ok('PUT', `${base}/objects/cpu`, 200, { name: 'cpu2' });
    assert.equal(renamed.name, 'cpu2');
    assert.equal((await ok('GET', `${base}/objects/cpu2`, 200)).name, 'cpu2');
    assert.deepEqual(
      (await ok('GET', `${base}/objects`, 200)).objects.map((o: Json) => o.name),
      ['cpu2'],
    );
    await ok('DELETE', `${base}/objects/cpu2`, 204);
    assert.deepEqual((await ok('GET', `${base}/objects`, 200)).objects, []);
    // properties (listed as an object keyed by name)
    const enumList = ['xen', 'kvm'];
    const prop = await ok('POST', `${base}/properties`, 201, {
      name: 'hypervisor',
      title: 'Hypervisor',
      type: 'string',
      enum: enumList,
    });
    assert.equal(prop.title, 'Hypervisor');
    assert.equal((await call('POST', `${base}/properties`, { name: 'x', type: 'string' })).status, 400);
    const props = await ok('GET', `${base}/properties`, 200);
    assert.deepEqual(props.properties.hypervisor.enum, enumList);
    const prop2 = await ok('PUT', `${base}/properties/hypervisor`, 200, {
      name: 'hypervisor',
      title: 'HV',
      type: 'string',
    });
    assert.equal(prop2.title, 'HV');
    await ok('DELETE', `${base}/properties/hypervisor`, 204);
    assert.deepEqual((await ok('GET', `${base}/properties`, 200)).properties, {});
    // tags: a set replaces, one by one adds, through the other site too
    const set = await ok('POST', `${base}/tags`, 201, { tags: [{ name: 'a' }, { name: 'b' }] });
    assert.equal(set.tags.length, 2);
    await cloud.converged();
    await ok('POST', `${base}/tags/c`, 201, undefined, 1);
    assert.equal((await call('POST', `${base}/tags/c`)).status, 409);
    const tag = await ok('PUT', `${base}/tags/c`, 200, { name: 'd' });
    assert.equal(tag.name, 'd');
    assert.deepEqual((await ok('GET', `${base}/tags`, 200)).tags.map((t: Json) => t.name).sort(), [
      'a',
      'b',
      'd',
    ]);
    await ok('DELETE', `${base}/tags`, 204);
    assert.deepEqual((await ok('GET', `${base}/tags`, 200)).tags, []);
    // resource type associations
    const rt = await ok('POST', `${base}/resource_types`, 201, { name: 'OS::Glance::Image', prefix: 'hw_' });
    assert.equal(rt.prefix, 'hw_');
    assert.equal((await call('POST', `${base}/resource_types`, { name: 'OS::Nope' })).status, 404);
    const assoc = await ok('GET', `${base}/resource_types`, 200);
    assert.deepEqual(
      assoc.resource_type_associations.map((a: Json) => a.name),
      ['OS::Glance::Image'],
    );
    await ok('DELETE', `${base}/resource_types/OS::Glance::Image`, 204);
    assert.deepEqual((await ok('GET', `${base}/resource_types`, 200)).resource_type_associations, []);
    // Deleting the namespace takes its items with it, on every site.
    await ok('POST', `${base}/objects`, 201, { name: 'left' });
    await ok('DELETE', base, 204);
    await cloud.converged();
    for (const site of cloud.fed.sites) {
      const n = site.ctx.store.db.prepare('SELECT count(*) AS n FROM metadef_items').get() as { n: number };
      assert.equal(n.n, 0, site.ctx.name);
    }
  });

  it('only a cloud admin writes metadefs; a member reads public namespaces, not private ones', async () => {
    await cloud.osJson(['project', 'create', 'md-demo']);
    await cloud.osJson(['user', 'create', '--password', 'md-secret', 'md-alice']);
    const add = await cloud.os(['role', 'add', '--project', 'md-demo', '--user', 'md-alice', 'member']);
    assert.equal(add.code, 0, add.stderr);
    const member = await passwordToken(cloud.url(0), {
      name: 'md-alice',
      password: 'md-secret',
      project: 'md-demo',
    });
    await ok('POST', '/metadefs/namespaces', 201, { namespace: 'md-public', visibility: 'public' });
    await ok('POST', '/metadefs/namespaces', 201, { namespace: 'md-private', visibility: 'private' });
    const as = (method: string, path: string, body?: unknown) =>
      call(method, path, body, { headers: { 'x-auth-token': member } });
    assert.equal((await as('POST', '/metadefs/namespaces', { namespace: 'mine' })).status, 403);
    assert.equal((await as('POST', '/metadefs/namespaces/md-public/objects', { name: 'o' })).status, 403);
    assert.equal((await as('DELETE', '/metadefs/namespaces/md-public')).status, 403);
    assert.equal((await as('GET', '/metadefs/namespaces/md-public')).status, 200);
    assert.equal((await as('GET', '/metadefs/namespaces/md-private')).status, 404);
    const seen = (await as('GET', '/metadefs/namespaces')).body.namespaces.map((n: Json) => n.namespace);
    assert.ok(seen.includes('md-public') && !seen.includes('md-private'));
    await ok('DELETE', '/metadefs/namespaces/md-public', 204);
    await ok('DELETE', '/metadefs/namespaces/md-private', 204);
  });

  /** A new image with `bytes` of data, owned by the admin's project. */
  const imageWith = async (bytes: number, attrs: Json = {}) => {
    const img = await ok('POST', '/images', 201, { disk_format: 'raw', container_format: 'bare', ...attrs });
    if (bytes > 0) {
      const res = await fetch(`${cloud.url(0)}/image/v2/images/${img.id}/file`, {
        method: 'PUT',
        headers: { 'x-auth-token': tokens[0]!, 'content-type': 'application/octet-stream' },
        body: Buffer.alloc(bytes, 7),
      });
      assert.equal(res.status, 204);
    }
    return img as Json;
  };

  it('deactivate and reactivate an image; a queued one cannot be', async () => {
    const img = await imageWith(100);
    await ok('POST', `/images/${img.id}/actions/deactivate`, 204);
    assert.equal((await ok('GET', `/images/${img.id}`, 200)).status, 'deactivated');
    await ok('POST', `/images/${img.id}/actions/reactivate`, 204, undefined, 1);
    assert.equal((await ok('GET', `/images/${img.id}`, 200)).status, 'active');
    const queued = await imageWith(0);
    assert.equal((await call('POST', `/images/${queued.id}/actions/deactivate`)).status, 403);
  });

  it('lists by disk_format, container_format, size, size_min and size_max', async () => {
    const small = await imageWith(1000, { disk_format: 'qcow2' });
    const big = await imageWith(5000, { container_format: 'ova' });
    const ids = async (q: string) =>
      ((await ok('GET', `/images?${q}`, 200)).images as Json[]).map((i) => i.id as string);
    assert.ok((await ids('disk_format=qcow2')).includes(small.id));
    assert.ok(!(await ids('disk_format=qcow2')).includes(big.id));
    assert.deepEqual(await ids('container_format=ova'), [big.id]);
    assert.deepEqual(await ids('size=1000'), [small.id]);
    assert.deepEqual(await ids('size_min=4500&size_max=5500'), [big.id]);
    assert.equal((await call('GET', '/images?size_min=abc')).status, 400);
  });

  it('takes both JSON-patch dialects, an admin may change the owner, os_glance_* is reserved', async () => {
    const img = await imageWith(0);
    const v20 = await call('PATCH', `/images/${img.id}`, [{ replace: '/name', value: 'old-style' }], {
      type: 'application/openstack-images-v2.0-json-patch',
    });
    assert.equal(v20.status, 200, JSON.stringify(v20.body));
    assert.equal(v20.body.name, 'old-style');
    const owner = 'f'.repeat(32);
    const v21 = await call('PATCH', `/images/${img.id}`, [{ op: 'replace', path: '/owner', value: owner }], {
      type: 'application/openstack-images-v2.1-json-patch',
    });
    assert.equal(v21.status, 200, JSON.stringify(v21.body));
    assert.equal(v21.body.owner, owner);
    const reserved = await call('PATCH', `/images/${img.id}`, [{ add: '/os_glance_foo', value: 'bar' }], {
      type: 'application/openstack-images-v2.0-json-patch',
    });
    assert.equal(reserved.status, 403, 'os_glance_* is reserved');
    assert.equal((await call('POST', '/images', { name: 'r', os_glance_foo: 'bar' })).status, 403);
    const bad = await call('PATCH', `/images/${img.id}`, [{ replace: '/name', add: '/x' }], {
      type: 'application/openstack-images-v2.0-json-patch',
    });
    assert.equal(bad.status, 400);
  });

  it("faults are Glance's: every top-level value an object with a message (python-glanceclient)", async () => {
    const r = await call('GET', `/images/${'0'.repeat(8)}-0000-0000-0000-000000000000`);
    assert.equal(r.status, 404);
    assert.deepEqual(Object.keys(r.body), ['error']);
    assert.equal(r.body.error.code, 404);
    assert.match(r.body.error.message, /No image found/);
    const ns = await call('GET', '/metadefs/namespaces/nope');
    assert.equal(ns.status, 404);
    assert.ok(Object.values(ns.body).every((v) => typeof v === 'object' && typeof v.message === 'string'));
  });

  it('GET /images/ (an empty id) is a 404, not the list', async () => {
    assert.equal((await call('GET', '/images/')).status, 404);
    assert.equal((await call('GET', '/images')).status, 200);
  });
});
