/**
 * @module Compute answers as Nova gives them, over HTTP against one real site: what Tempest's
 * tempest.api.compute suite found wrong in a first pass (issue 17): flavor booleans as strings,
 * `forced_down` only from 2.11, `all_tenants` refused to non-admins, server metadata limits,
 * `maxImageMeta`, the version document, `/extensions`, `/servers/{id}/ips`, `os-resetState`, the
 * given `adminPass`, the update view without extension attributes, the `/images` and
 * `os-security-groups` proxies, host aggregates, simple tenant usage, os-hosts, shelve and
 * unshelve, hypervisor search and servers, the usage audit log, server password and diagnostics.
 * scripts/tempest.mjs runs Tempest itself.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { eventually, passwordToken, startLocalCloud } from './support/cloud.ts';
import type { LocalCloud } from './support/cloud.ts';

const C = '/compute/v2.1';

describe('Compute answers as Nova gives them (Tempest schemas, first pass)', () => {
  let cloud: LocalCloud;
  let admin: string;
  let member: string;
  let image: string;
  let flavor: string;
  const call = async (
    method: string,
    path: string,
    body?: unknown,
    o: { token?: string; headers?: Record<string, string> } = {},
  ) => {
    const res = await fetch(`${cloud.url()}${path}`, {
      method,
      headers: {
        'x-auth-token': o.token ?? admin,
        ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
        ...o.headers,
      },
      ...(body !== undefined ? { body: typeof body === 'string' ? body : JSON.stringify(body) } : {}),
    });
    const text = await res.text();
    let parsed: any;
    try {
      parsed = text ? JSON.parse(text) : undefined;
    } catch {
      parsed = text;
    }
    return { status: res.status, body: parsed, headers: res.headers };
  };
  const ok = (r: { status: number; body: unknown }, status: number) =>
    assert.equal(r.status, status, JSON.stringify(r.body));
  const newServer = async (extra: Record<string, unknown> = {}, token = admin) => {
    const r = await call(
      'POST',
      `${C}/servers`,
      { server: { name: 's', imageRef: image, flavorRef: flavor, ...extra } },
      { token },
    );
    return r;
  };
  const activeServer = async () => {
    const r = await newServer();
    ok(r, 202);
    const id = r.body.server.id as string;
    await eventually(
      async () => (await call('GET', `${C}/servers/${id}`)).body.server.status === 'ACTIVE',
      10_000,
      'ACTIVE',
    );
    return id;
  };

  before(async () => {
    cloud = await startLocalCloud({ sites: 1 });
    admin = await cloud.adminToken();
    // A member of a project of its own, for the non-admin cases.
    const project = (
      await call('POST', '/identity/v3/projects', { project: { name: 'cc-p', domain_id: 'default' } })
    ).body.project.id as string;
    const user = (
      await call('POST', '/identity/v3/users', {
        user: { name: 'cc-u', password: 'cc-secret-1', domain_id: 'default' },
      })
    ).body.user.id as string;
    const role = (await call('GET', '/identity/v3/roles?name=member')).body.roles[0].id as string;
    ok(await call('PUT', `/identity/v3/projects/${project}/users/${user}/roles/${role}`), 204);
    member = await passwordToken(cloud.url(), { name: 'cc-u', password: 'cc-secret-1', project: 'cc-p' });
    // A public image with bytes and a flavor to boot from.
    const img = await call('POST', '/image/v2/images', {
      name: 'cc-img',
      disk_format: 'raw',
      container_format: 'bare',
      visibility: 'public',
      cc_prop: 'one',
    });
    ok(img, 201);
    image = img.body.id;
    const up = await call('PUT', `/image/v2/images/${image}/file`, 'x'.repeat(1024), {
      headers: { 'content-type': 'application/octet-stream' },
    });
    ok(up, 204);
    // A string is_public, as Tempest's create_flavor sends it.
    const f = await call('POST', `${C}/flavors`, {
      flavor: { name: 'cc-f', ram: '512', vcpus: 1, disk: 1, 'os-flavor-access:is_public': 'True' },
    });
    ok(f, 200);
    assert.equal(f.body.flavor['os-flavor-access:is_public'], true);
    flavor = f.body.flavor.id;
  });
  after(async () => cloud?.close());

  it('flavor create takes Nova boolean strings for is_public, refuses others', async () => {
    const priv = await call('POST', `${C}/flavors`, {
      flavor: { name: 'cc-priv', ram: 64, vcpus: 1, disk: 0, 'os-flavor-access:is_public': 'False' },
    });
    ok(priv, 200);
    assert.equal(priv.body.flavor['os-flavor-access:is_public'], false);
    const bad = await call('POST', `${C}/flavors`, {
      flavor: { name: 'cc-bad', ram: 64, vcpus: 1, disk: 0, 'os-flavor-access:is_public': 'maybe' },
    });
    ok(bad, 400);
  });

  it('os-services: forced_down only from 2.11', async () => {
    const at21 = (await call('GET', `${C}/os-services`)).body.services;
    assert.ok(at21.length > 0 && at21.every((s: object) => !('forced_down' in s)));
    const at211 = (
      await call('GET', `${C}/os-services`, undefined, {
        headers: { 'openstack-api-version': 'compute 2.11' },
      })
    ).body.services;
    assert.ok(at211.every((s: object) => 'forced_down' in s));
  });

  it('all_tenants by a non-admin is a 403; a bad value is a 400', async () => {
    ok(await call('GET', `${C}/servers/detail?all_tenants=1`, undefined, { token: member }), 403);
    ok(await call('GET', `${C}/servers?all_tenants`, undefined, { token: member }), 403);
    ok(await call('GET', `${C}/servers?all_tenants=0`, undefined, { token: member }), 200);
    ok(await call('GET', `${C}/servers?all_tenants=abc`), 400);
    ok(await call('GET', `${C}/servers?changes-since=not-a-date`), 400);
    // ISO 8601 only, as Nova reads it (Date.parse would take the slashes).
    ok(await call('GET', `${C}/servers?changes-since=2011/01/01`), 400);
    ok(await call('GET', `${C}/servers?changes-since=2011-01-01T00:00:00Z`), 200);
  });

  it('server metadata: keys of 1 to 255, values up to 255 (400), at most metadata_items (403)', async () => {
    ok(await newServer({ metadata: { '': 'v' } }), 400);
    ok(await newServer({ metadata: { ['k'.repeat(256)]: 'v' } }), 400);
    ok(await newServer({ metadata: { a: 'b'.repeat(256) } }), 400);
    const many = Object.fromEntries(Array.from({ length: 129 }, (_, i) => [`k${i}`, 'v']));
    ok(await newServer({ metadata: many }), 403);
    const limits = (await call('GET', `${C}/limits`)).body.limits.absolute;
    assert.equal(limits.maxImageMeta, 128);
    const at239 = (
      await call('GET', `${C}/limits`, undefined, { headers: { 'openstack-api-version': 'compute 2.39' } })
    ).body.limits.absolute;
    assert.ok(!('maxImageMeta' in at239));
  });

  it('create answers with the adminPass given; update answers without the extension attributes', async () => {
    const r = await newServer({ adminPass: 'testpassword' });
    ok(r, 202);
    assert.equal(r.body.server.adminPass, 'testpassword');
    assert.equal(r.headers.get('x-compute-request-id'), r.headers.get('x-openstack-request-id'));
    const u = await call('PUT', `${C}/servers/${r.body.server.id}`, { server: { name: 'renamed' } });
    ok(u, 200);
    for (const k of [
      'OS-EXT-AZ:availability_zone',
      'OS-EXT-STS:vm_state',
      'key_name',
      'config_drive',
      'security_groups',
    ])
      assert.ok(!(k in u.body.server), k);
    const full = await call(
      'PUT',
      `${C}/servers/${r.body.server.id}`,
      { server: { name: 'again' } },
      {
        headers: { 'openstack-api-version': 'compute 2.75' },
      },
    );
    assert.ok('OS-EXT-STS:vm_state' in full.body.server);
  });

  it('/servers/{id}/ips, os-resetState (admin only)', async () => {
    const id = await activeServer();
    const ips = await call('GET', `${C}/servers/${id}/ips`);
    ok(ips, 200);
    assert.equal(typeof ips.body.addresses, 'object');
    ok(await call('GET', `${C}/servers/${id}/ips/no-such-net`), 404);
    ok(await call('POST', `${C}/servers/${id}/action`, { 'os-resetState': { state: 'bogus' } }), 400);
    ok(await call('POST', `${C}/servers/${id}/action`, { 'os-resetState': { state: 'error' } }), 202);
    assert.equal((await call('GET', `${C}/servers/${id}`)).body.server.status, 'ERROR');
  });

  it('the version document lists v2.0 then v2.1, each with a followable self link; /extensions', async () => {
    const v = (await call('GET', '/compute')).body.versions;
    assert.deepEqual(
      v.map((x: { id: string }) => x.id),
      ['v2.0', 'v2.1'],
    );
    for (const x of v) {
      const self = new URL(x.links.find((l: { rel: string }) => l.rel === 'self').href);
      const doc = await call('GET', self.pathname);
      ok(doc, 200);
      assert.equal(doc.body.version.id, x.id);
    }
    const ext = (await call('GET', `${C}/extensions`)).body.extensions;
    assert.ok(ext.some((e: { name: string }) => e.name === 'Hosts'));
    assert.equal((await call('GET', `${C}/extensions/os-consoles`)).body.extension.alias, 'os-consoles');
    ok(await call('GET', `${C}/extensions/nope`), 404);
  });

  it('the /images proxy: list, show with metadata, metadata items, gone from 2.36', async () => {
    const list = (await call('GET', `${C}/images`)).body.images;
    assert.ok(list.some((i: { id: string }) => i.id === image));
    const shown = await call('GET', `${C}/images/${image}`);
    ok(shown, 200);
    assert.equal(shown.body.image.status, 'ACTIVE');
    assert.equal(shown.body.image.metadata.cc_prop, 'one');
    const set = await call('POST', `${C}/images/${image}/metadata`, { metadata: { k2: 'v2' } });
    ok(set, 200);
    assert.equal(set.body.metadata.k2, 'v2');
    assert.deepEqual((await call('GET', `${C}/images/${image}/metadata/k2`)).body, { meta: { k2: 'v2' } });
    ok(await call('DELETE', `${C}/images/${image}/metadata/k2`), 204);
    ok(await call('GET', `${C}/images/${image}/metadata/k2`), 404);
    ok(await call('GET', `${C}/images/not-there`), 404);
    // Property filters: the test image is no server's snapshot.
    assert.deepEqual((await call('GET', `${C}/images?type=snapshot`)).body.images, []);
    assert.deepEqual(
      (await call('GET', `${C}/images/detail?server=${'0'.repeat(8)}-0000-0000-0000-${'0'.repeat(12)}`)).body
        .images,
      [],
    );
    ok(
      await call('GET', `${C}/images`, undefined, { headers: { 'openstack-api-version': 'compute 2.36' } }),
      404,
    );
    ok(await call('GET', `${C}/images/${image}`, undefined, { token: 'bogus' }), 401);
  });

  it("os-aggregates: create, names unique, add and remove this site's hosts, metadata, delete when empty", async () => {
    const host = (await call('GET', `${C}/os-services?binary=nova-compute`)).body.services[0].host as string;
    const c = await call('POST', `${C}/os-aggregates`, {
      aggregate: { name: 'cc-agg', availability_zone: null },
    });
    ok(c, 200);
    const id = c.body.aggregate.id;
    assert.equal(typeof id, 'number');
    assert.ok(!('hosts' in c.body.aggregate));
    ok(await call('POST', `${C}/os-aggregates`, { aggregate: { name: 'cc-agg' } }), 409);
    ok(await call('POST', `${C}/os-aggregates`, { aggregate: { name: '' } }), 400);
    ok(await call('GET', `${C}/os-aggregates`, undefined, { token: member }), 403);
    const act = (body: unknown) => call('POST', `${C}/os-aggregates/${id}/action`, body);
    ok(await act({ add_host: { host: 'no-such-host' } }), 404);
    const added = await act({ add_host: { host } });
    ok(added, 200);
    assert.deepEqual(added.body.aggregate.hosts, [host]);
    ok(await act({ add_host: { host } }), 409);
    ok(await call('DELETE', `${C}/os-aggregates/${id}`), 400);
    const md = await act({ set_metadata: { metadata: { k: 'v' } } });
    assert.deepEqual(md.body.aggregate.metadata, { k: 'v' });
    ok(await act({ remove_host: { host } }), 200);
    ok(await act({ remove_host: { host } }), 404);
    const upd = await call('PUT', `${C}/os-aggregates/${id}`, { aggregate: { name: 'cc-agg2' } });
    assert.equal(upd.body.aggregate.name, 'cc-agg2');
    ok(await call('DELETE', `${C}/os-aggregates/${id}`), 200);
    ok(await call('GET', `${C}/os-aggregates/${id}`), 404);
    ok(await call('GET', `${C}/os-aggregates/abc`), 404);
  });

  it("the os-security-groups proxy: Network service groups and ingress rules in Nova's shape", async () => {
    const c = await call(
      'POST',
      `${C}/os-security-groups`,
      { security_group: { name: 'cc-sg', description: 'd' } },
      { token: member },
    );
    ok(c, 200);
    const sg = c.body.security_group;
    assert.deepEqual(Object.keys(sg).sort(), ['description', 'id', 'name', 'rules', 'tenant_id']);
    assert.ok(sg.rules.length === 0, 'egress rules are not shown');
    ok(
      await call('POST', `${C}/os-security-groups`, { security_group: { name: ' ' } }, { token: member }),
      400,
    );
    const rule = (body: object) =>
      call(
        'POST',
        `${C}/os-security-group-rules`,
        { security_group_rule: { parent_group_id: sg.id, ...body } },
        { token: member },
      );
    const r = await rule({ ip_protocol: 'tcp', from_port: 22, to_port: 22, cidr: '10.0.0.0/8' });
    ok(r, 200);
    assert.deepEqual(r.body.security_group_rule.ip_range, { cidr: '10.0.0.0/8' });
    assert.equal(r.body.security_group_rule.from_port, 22);
    ok(await rule({ ip_protocol: 'tcp', from_port: 22, to_port: 22, cidr: '10.0.0.0/8' }), 400);
    ok(await rule({ ip_protocol: 'tcp', from_port: 23, to_port: 22 }), 400);
    ok(await rule({ ip_protocol: 'tcp', from_port: 70000, to_port: 22 }), 400);
    ok(await rule({ ip_protocol: 'bogus', from_port: 22, to_port: 22 }), 400);
    const shown = await call('GET', `${C}/os-security-groups/${sg.id}`, undefined, { token: member });
    assert.equal(shown.body.security_group.rules.length, 1);
    const listed = (await call('GET', `${C}/os-security-groups`, undefined, { token: member })).body
      .security_groups;
    assert.ok(listed.some((g: { id: string }) => g.id === sg.id));
    ok(await call('GET', `${C}/os-security-groups/not-a-uuid`, undefined, { token: member }), 400);
    ok(
      await call(
        'GET',
        `${C}/os-security-groups/${'0'.repeat(8)}-0000-0000-0000-${'0'.repeat(12)}`,
        undefined,
        { token: member },
      ),
      404,
    );
    const upd = await call(
      'PUT',
      `${C}/os-security-groups/${sg.id}`,
      { security_group: { name: 'cc-sg2' } },
      { token: member },
    );
    assert.equal(upd.body.security_group.name, 'cc-sg2');
    ok(
      await call('DELETE', `${C}/os-security-group-rules/${r.body.security_group_rule.id}`, undefined, {
        token: member,
      }),
      202,
    );
    ok(await call('DELETE', `${C}/os-security-groups/${sg.id}`, undefined, { token: member }), 202);
    const dflt = listed.find((g: { name: string }) => g.name === 'default');
    if (dflt)
      ok(await call('DELETE', `${C}/os-security-groups/${dflt.id}`, undefined, { token: member }), 400);
    ok(
      await call('GET', `${C}/os-security-groups`, undefined, {
        token: member,
        headers: { 'openstack-api-version': 'compute 2.36' },
      }),
      404,
    );
  });

  it('os-simple-tenant-usage: admin lists all projects, a member reads its own; os-hosts', async () => {
    const id = await activeServer();
    const now = Date.now();
    const iso = (ms: number) => new Date(ms).toISOString().slice(0, 19);
    const span = `start=${iso(now - 86_400_000)}&end=${iso(now + 86_400_000)}`;
    const all = await call('GET', `${C}/os-simple-tenant-usage?${span}&detailed=1`);
    ok(all, 200);
    const mine = all.body.tenant_usages.find((u: { server_usages: { instance_id: string }[] }) =>
      u.server_usages.some((s) => s.instance_id === id),
    );
    assert.ok(mine && mine.total_hours >= 0);
    ok(await call('GET', `${C}/os-simple-tenant-usage?${span}`, undefined, { token: member }), 403);
    ok(
      await call(
        'GET',
        `${C}/os-simple-tenant-usage/${mine.tenant_id}?start=${iso(now + 1000)}&end=${iso(now - 1000)}`,
      ),
      400,
    );
    const one = await call('GET', `${C}/os-simple-tenant-usage/${mine.tenant_id}?${span}`);
    assert.ok(one.body.tenant_usage.server_usages.some((s: { instance_id: string }) => s.instance_id === id));

    const hosts = (await call('GET', `${C}/os-hosts`)).body.hosts;
    const compute = hosts.find((h: { service: string }) => h.service === 'compute');
    assert.ok(compute);
    const shown = await call('GET', `${C}/os-hosts/${compute.host_name}`);
    assert.equal(shown.body.host[0].resource.project, '(total)');
    ok(await call('GET', `${C}/os-hosts/nope`), 404);
    ok(await call('GET', `${C}/os-hosts`, undefined, { token: member }), 403);
    ok(
      await call('PUT', `${C}/os-hosts/${compute.host_name}`, { status: 'bogus', maintenance_mode: null }),
      400,
    );
    ok(await call('PUT', `${C}/os-hosts/nope`, { status: 'enable' }), 404);
  });

  it('shelve and unshelve; hypervisor search and servers below 2.53', async () => {
    const id = await activeServer();
    const status = async () => (await call('GET', `${C}/servers/${id}`)).body.server.status;
    ok(await call('POST', `${C}/servers/${id}/action`, { unshelve: null }), 409);
    ok(await call('POST', `${C}/servers/${id}/action`, { shelve: null }), 202);
    await eventually(async () => (await status()) === 'SHELVED_OFFLOADED', 10_000, 'SHELVED_OFFLOADED');
    ok(await call('POST', `${C}/servers/${id}/action`, { shelve: null }), 409);
    ok(await call('POST', `${C}/servers/${id}/action`, { unshelve: null }), 202);
    await eventually(async () => (await status()) === 'ACTIVE', 10_000, 'ACTIVE again');

    const host = (await call('GET', `${C}/servers/${id}`)).body.server['OS-EXT-SRV-ATTR:host'] as string;
    const found = await call('GET', `${C}/os-hypervisors/${host}/search`);
    ok(found, 200);
    assert.equal(found.body.hypervisors[0].hypervisor_hostname, host);
    const withServers = await call('GET', `${C}/os-hypervisors/${host}/servers`);
    assert.ok(withServers.body.hypervisors[0].servers.some((x: { uuid: string }) => x.uuid === id));
    ok(await call('GET', `${C}/os-hypervisors/no-such-host/search`), 404);
    ok(await call('GET', `${C}/os-hypervisors/${host}/search`, undefined, { token: member }), 403);
  });

  it('the usage audit log says no host ran it; server password and diagnostics', async () => {
    const log = await call('GET', `${C}/os-instance_usage_audit_log`);
    ok(log, 200);
    const l = log.body.instance_usage_audit_logs;
    assert.equal(l.num_hosts_not_run, l.num_hosts);
    ok(
      await call('GET', `${C}/os-instance_usage_audit_log/${encodeURIComponent('2026-01-02 03:04:05')}`),
      200,
    );
    ok(await call('GET', `${C}/os-instance_usage_audit_log/invalid_time`), 400);
    ok(await call('GET', `${C}/os-instance_usage_audit_log`, undefined, { token: member }), 403);
    const id = await activeServer();
    assert.deepEqual((await call('GET', `${C}/servers/${id}/os-server-password`)).body, { password: '' });
    ok(await call('DELETE', `${C}/servers/${id}/os-server-password`), 204);
    ok(await call('GET', `${C}/servers/${id}/diagnostics`), 200);
    ok(await call('GET', `${C}/servers/${id}/diagnostics`, undefined, { token: member }), 404);
  });

  it('accessIPv4 / accessIPv6 are kept as given on create, update and rebuild; bad forms are 400s', async () => {
    ok(await newServer({ accessIPv6: 'notvalid' }), 400);
    ok(await newServer({ accessIPv4: '2001:db8::1' }), 400);
    const r = await newServer({
      accessIPv4: '1.1.1.1',
      accessIPv6: '0000:0000:0000:0000:0000:babe:220.12.22.2',
    });
    ok(r, 202);
    const id = r.body.server.id as string;
    const shown = (await call('GET', `${C}/servers/${id}`)).body.server;
    assert.equal(shown.accessIPv4, '1.1.1.1');
    assert.equal(shown.accessIPv6, '::babe:dc0c:1602');
    const up = await call('PUT', `${C}/servers/${id}`, { server: { accessIPv4: '2.2.2.2', accessIPv6: '' } });
    ok(up, 200);
    assert.equal(up.body.server.accessIPv4, '2.2.2.2');
    assert.equal(up.body.server.accessIPv6, '');
    ok(await call('PUT', `${C}/servers/${id}`, { server: { accessIPv4: 'nope' } }), 400);
    const plain = (await call('GET', `${C}/servers/${await activeServer()}`)).body.server;
    assert.equal(plain.accessIPv4, '');
  });

  it('a stopped server rebuilt stays stopped', async () => {
    const id = await activeServer();
    ok(await call('POST', `${C}/servers/${id}/action`, { 'os-stop': null }), 202);
    const status = async () => (await call('GET', `${C}/servers/${id}`)).body.server.status;
    await eventually(async () => (await status()) === 'SHUTOFF', 10_000, 'SHUTOFF');
    ok(await call('POST', `${C}/servers/${id}/action`, { rebuild: { imageRef: image } }), 202);
    await eventually(
      async () => (await call('GET', `${C}/servers/${id}`)).body.server['OS-EXT-STS:task_state'] === null,
      10_000,
      'rebuilt',
    );
    assert.equal(await status(), 'SHUTOFF');
  });

  it('server metadata: replace all, read, set and delete one item', async () => {
    const r = await newServer({ metadata: { a: '1', b: '2' } });
    ok(r, 202);
    const id = r.body.server.id as string;
    const md = `${C}/servers/${id}/metadata`;
    const put = await call('PUT', md, { metadata: { c: '3' } });
    ok(put, 200);
    assert.deepEqual(put.body.metadata, { c: '3' });
    assert.deepEqual((await call('GET', md)).body.metadata, { c: '3' });
    const item = await call('PUT', `${md}/d`, { meta: { d: '4' } });
    ok(item, 200);
    assert.deepEqual(item.body.meta, { d: '4' });
    assert.deepEqual((await call('GET', `${md}/d`)).body.meta, { d: '4' });
    ok(await call('PUT', `${md}/d`, { meta: { e: '5' } }), 400);
    ok(await call('PUT', `${md}/d`, { meta: { d: '4', e: '5' } }), 400);
    ok(await call('DELETE', `${md}/c`), 204);
    ok(await call('GET', `${md}/c`), 404);
    assert.deepEqual((await call('GET', md)).body.metadata, { d: '4' });
  });

  it('microversioned views: rebuild key_name (2.54) and user_data (2.57), server_groups (2.71), cpu_info object (2.28), no group metadata (2.64)', async () => {
    const id = await activeServer();
    const mv = (v: string) => ({ headers: { 'openstack-api-version': `compute ${v}` } });
    const rb = async (v: string) =>
      (await call('POST', `${C}/servers/${id}/action`, { rebuild: { imageRef: image } }, mv(v))).body.server;
    const at253 = await rb('2.53');
    assert.ok(!('key_name' in at253) && !('user_data' in at253));
    const at254 = await rb('2.54');
    assert.ok('key_name' in at254 && !('user_data' in at254));
    const at257 = await rb('2.57');
    assert.ok('key_name' in at257 && 'user_data' in at257);
    const at275 = await rb('2.75');
    assert.ok('user_data' in at275 && Array.isArray(at275.server_groups));
    const shown = async (v: string) =>
      (await call('GET', `${C}/servers/${id}`, undefined, mv(v))).body.server;
    assert.ok(!('server_groups' in (await shown('2.70'))));
    assert.deepEqual((await shown('2.71')).server_groups, []);
    const hyp = async (v: string) =>
      (await call('GET', `${C}/os-hypervisors/detail`, undefined, mv(v))).body.hypervisors[0].cpu_info;
    assert.equal(typeof (await hyp('2.27')), 'string');
    assert.equal(typeof (await hyp('2.28')), 'object');
    const g = await call(
      'POST',
      `${C}/os-server-groups`,
      { server_group: { name: 'g', policy: 'affinity' } },
      mv('2.64'),
    );
    ok(g, 200);
    assert.ok(!('metadata' in g.body.server_group));
    const g2 = await call('POST', `${C}/os-server-groups`, {
      server_group: { name: 'g2', policies: ['affinity'] },
    });
    assert.deepEqual(g2.body.server_group.metadata, {});
  });

  // ---- issue 17, second pass: proxies, tags, disk config, security groups on servers, boot from volume
  const at = (v: string) => ({ headers: { 'openstack-api-version': `compute ${v}` } });
  before(async () => {
    // Room for the servers below, beside those of the first pass.
    const adminProject = (await call('GET', '/identity/v3/projects?name=admin')).body.projects[0].id;
    const q = { quota_set: { instances: 100, cores: 200, ram: 1_000_000 } };
    ok(await call('PUT', `${C}/os-quota-sets/${adminProject}`, q), 200);
  });
  const newVolume = async (size = 1) => {
    const r = await call('POST', `${C}/os-volumes`, {
      volume: { size, display_name: 'pv', metadata: { a: 'b' } },
    });
    ok(r, 200);
    const id = r.body.volume.id as string;
    await eventually(
      async () => (await call('GET', `${C}/os-volumes/${id}`)).body.volume.status === 'available',
      10_000,
      'available',
    );
    return id;
  };

  it("os-volumes and os-snapshots: Block Storage in Nova's shape; bad sizes are 400s; gone from 2.36", async () => {
    const id = await newVolume();
    const v = (await call('GET', `${C}/os-volumes/${id}`)).body.volume;
    assert.equal(v.displayName, 'pv');
    assert.equal(v.size, 1);
    assert.deepEqual(v.attachments, [{}]);
    assert.deepEqual(v.metadata, { a: 'b' });
    assert.ok('createdAt' in v && 'availabilityZone' in v && 'volumeType' in v && 'snapshotId' in v);
    assert.ok((await call('GET', `${C}/os-volumes/detail`)).body.volumes.some((x: any) => x.id === id));
    assert.equal((await call('GET', `${C}/os-volumes?limit=1`)).body.volumes.length, 1);
    for (const size of ['#$%', '', '0', 0])
      ok(await call('POST', `${C}/os-volumes`, { volume: { size } }), 400);
    ok(await call('GET', `${C}/os-volumes/`), 404);
    ok(await call('GET', `${C}/os-volumes/${'0'.repeat(8)}-0000-0000-0000-000000000000`), 404);
    ok(await call('GET', `${C}/os-volumes`, undefined, at('2.36')), 404);
    const snap = await call('POST', `${C}/os-snapshots`, {
      snapshot: { volume_id: id, display_name: 'ps', force: false },
    });
    ok(snap, 200);
    assert.equal(snap.body.snapshot.volumeId, id);
    assert.equal(snap.body.snapshot.displayName, 'ps');
    const sid = snap.body.snapshot.id as string;
    assert.ok((await call('GET', `${C}/os-snapshots`)).body.snapshots.some((x: any) => x.id === sid));
    ok(await call('GET', `${C}/os-snapshots/${sid}`), 200);
    await eventually(
      async () => (await call('GET', `${C}/os-snapshots/${sid}`)).body.snapshot.status === 'available',
      10_000,
      'snapshot available',
    );
    ok(await call('DELETE', `${C}/os-snapshots/${sid}`), 202);
  });

  it('attaching an attached volume is a 400; a swap to a volume that does not exist is a 400', async () => {
    const sid = await activeServer();
    const vid = await newVolume();
    ok(
      await call('POST', `${C}/servers/${sid}/os-volume_attachments`, {
        volumeAttachment: { volumeId: vid },
      }),
      200,
    );
    ok(
      await call('POST', `${C}/servers/${sid}/os-volume_attachments`, {
        volumeAttachment: { volumeId: vid },
      }),
      400,
    );
    const v = (await call('GET', `${C}/os-volumes/${vid}`)).body.volume;
    assert.equal(v.attachments[0].serverId, sid);
    const swap = (volumeId: string, token = admin) =>
      call(
        'PUT',
        `${C}/servers/${sid}/os-volume_attachments/${vid}`,
        { volumeAttachment: { volumeId } },
        { token },
      );
    ok(await swap('5a2b4c6d-0000-4000-8000-000000000000'), 400);
    ok(await swap(vid, member), 403); // a swap is an admin's
    const other = await newVolume();
    ok(await swap(other), 202);
    const atts = (await call('GET', `${C}/servers/${sid}/os-volume_attachments`)).body.volumeAttachments;
    assert.deepEqual(
      atts.map((a: any) => a.volumeId),
      [other],
    );
  });

  it('os-floating-ips, pools, os-networks and os-tenant-networks: Network service views', async () => {
    const net = await call('POST', '/network/v2.0/networks', {
      network: { name: 'ext', 'router:external': true },
    });
    ok(net, 201);
    ok(
      await call('POST', '/network/v2.0/subnets', {
        subnet: { network_id: net.body.network.id, ip_version: 4, cidr: '172.30.0.0/24' },
      }),
      201,
    );
    const pools = (await call('GET', `${C}/os-floating-ip-pools`)).body.floating_ip_pools;
    assert.ok(pools.some((p: any) => p.name === 'ext'));
    const f = await call('POST', `${C}/os-floating-ips`, { pool: 'ext' });
    ok(f, 200);
    const fip = f.body.floating_ip;
    assert.deepEqual(Object.keys(fip).sort(), ['fixed_ip', 'id', 'instance_id', 'ip', 'pool']);
    assert.equal(fip.pool, 'ext');
    assert.equal(fip.instance_id, null);
    assert.deepEqual((await call('GET', `${C}/os-floating-ips/${fip.id}`)).body.floating_ip, fip);
    assert.ok(
      (await call('GET', `${C}/os-floating-ips`)).body.floating_ips.some((x: any) => x.id === fip.id),
    );
    ok(await call('POST', `${C}/os-floating-ips`, { pool: 'no-such-pool' }), 404);
    ok(await call('GET', `${C}/os-floating-ips/5a2b4c6d-0000-4000-8000-000000000000`), 404);
    // Actions: a bad address is a 400, an unknown one a 404, a server with no port a 400.
    const sid = await activeServer();
    const act = (body: unknown) => call('POST', `${C}/servers/${sid}/action`, body);
    ok(await act({ addFloatingIp: { address: '' } }), 400);
    ok(await act({ addFloatingIp: { address: '0.0.0.0' } }), 404);
    ok(await act({ removeFloatingIp: { address: '0.0.0.0' } }), 404);
    ok(await act({ addFloatingIp: { address: fip.ip } }), 400);
    ok(await act({ removeFloatingIp: { address: fip.ip } }), 409);
    ok(await call('DELETE', `${C}/os-floating-ips/${fip.id}`), 202);
    ok(await call('DELETE', `${C}/os-floating-ips/${fip.id}`), 404);
    const nets = (await call('GET', `${C}/os-networks`)).body.networks;
    const mine = nets.find((n: any) => n.id === net.body.network.id);
    assert.equal(mine.label, 'ext');
    assert.equal((await call('GET', `${C}/os-networks/${mine.id}`)).body.network.label, 'ext');
    const tn = (await call('GET', `${C}/os-tenant-networks/${mine.id}`)).body.network;
    assert.deepEqual(tn, { id: mine.id, cidr: null, label: 'ext' });
    ok(await call('GET', `${C}/os-networks/5a2b4c6d-0000-4000-8000-000000000000`), 404);
    ok(await call('GET', `${C}/os-networks`, undefined, at('2.36')), 404);
  });

  it('server tags (2.26): put, list, check, delete, replace all, filters; 404 below 2.26', async () => {
    const sid = await activeServer();
    const t = (m: string, path = '', body?: unknown, v = '2.26') =>
      call(m, `${C}/servers/${sid}/tags${path}`, body, at(v));
    ok(await t('GET', '', undefined, '2.25'), 404);
    assert.deepEqual((await t('GET')).body.tags, []);
    ok(await t('PUT', '/a'), 201);
    ok(await t('PUT', '/a'), 204);
    ok(await t('GET', '/a'), 204);
    ok(await t('GET', '/b'), 404);
    ok(await t('PUT', '/a,b'), 400);
    assert.deepEqual((await t('PUT', '', { tags: ['x', 'y'] })).body.tags, ['x', 'y']);
    ok(await t('PUT', '', { tags: Array.from({ length: 51 }, (_, i) => `t${i}`) }), 400);
    const shown = await call('GET', `${C}/servers/${sid}`, undefined, at('2.26'));
    assert.deepEqual(shown.body.server.tags, ['x', 'y']);
    const listed = async (q: string) =>
      (await call('GET', `${C}/servers?${q}`, undefined, at('2.26'))).body.servers.map((s: any) => s.id);
    assert.ok((await listed('tags=x,y')).includes(sid));
    assert.ok(!(await listed('tags=x,z')).includes(sid));
    assert.ok((await listed('tags-any=z,y')).includes(sid));
    assert.ok(!(await listed('not-tags-any=y')).includes(sid));
    ok(await t('DELETE', '/x'), 204);
    ok(await t('DELETE', '/x'), 404);
    ok(await t('DELETE'), 204);
    assert.deepEqual((await t('GET')).body.tags, []);
    const tagged = await newServer({ tags: ['born'] }, admin);
    ok(tagged, 400); // tags at create only from 2.52
  });

  it('OS-DCF:diskConfig is kept from create, rebuild and update; a bad value is a 400', async () => {
    const r = await newServer({ 'OS-DCF:diskConfig': 'AUTO' });
    ok(r, 202);
    assert.equal(r.body.server['OS-DCF:diskConfig'], 'AUTO');
    const id = r.body.server.id as string;
    assert.equal((await call('GET', `${C}/servers/${id}`)).body.server['OS-DCF:diskConfig'], 'AUTO');
    ok(await newServer({ 'OS-DCF:diskConfig': 'SOMETIMES' }), 400);
    const u = await call('PUT', `${C}/servers/${id}`, { server: { 'OS-DCF:diskConfig': 'MANUAL' } });
    ok(u, 200);
    assert.equal((await call('GET', `${C}/servers/${id}`)).body.server['OS-DCF:diskConfig'], 'MANUAL');
  });

  it('security groups: a create naming one that does not exist is a 400; add and remove need ports', async () => {
    const r = await newServer({ security_groups: [{ name: 'does_not_exist' }] });
    ok(r, 400);
    const g = await call('POST', `${C}/os-security-groups`, {
      security_group: { name: 'sg-a', description: 'd' },
    });
    ok(g, 200);
    const sid = await activeServer();
    const act = (body: unknown) => call('POST', `${C}/servers/${sid}/action`, body);
    ok(await act({ addSecurityGroup: { name: 'no-such-group' } }), 404);
    ok(await act({ addSecurityGroup: { name: 'sg-a' } }), 404); // the server has no port
    ok(await act({ removeSecurityGroup: { name: 'sg-a' } }), 400);
    // Rules naming a deleted group as their peer go with it.
    const peer = await call('POST', `${C}/os-security-groups`, {
      security_group: { name: 'sg-b', description: 'd' },
    });
    const rule = await call('POST', `${C}/os-security-group-rules`, {
      security_group_rule: {
        parent_group_id: g.body.security_group.id,
        ip_protocol: 'tcp',
        from_port: 22,
        to_port: 22,
        group_id: peer.body.security_group.id,
      },
    });
    ok(rule, 200);
    ok(await call('DELETE', `${C}/os-security-groups/${peer.body.security_group.id}`), 202);
    const left = (await call('GET', `${C}/os-security-groups/${g.body.security_group.id}`)).body
      .security_group;
    assert.deepEqual(left.rules, []);
  });

  it('boot from volume: the volume at /dev/vda, no image, delete_on_termination; invalid mappings are 400s', async () => {
    const vid = await newVolume();
    const project = (await call('GET', '/identity/v3/projects?name=admin')).body.projects[0].id;
    const bootable = (b: boolean) =>
      call('POST', `/volume/v3/${project}/volumes/${vid}/action`, { 'os-set_bootable': { bootable: b } });
    ok(
      await newServer({
        imageRef: '',
        block_device_mapping_v2: [
          { uuid: vid, source_type: 'volume', destination_type: 'volume', boot_index: 0 },
        ],
      }),
      400,
    );
    ok(await bootable(true), 200);
    const bdm = (extra: Record<string, unknown> = {}) => [
      {
        uuid: vid,
        source_type: 'volume',
        destination_type: 'volume',
        boot_index: 0,
        delete_on_termination: true,
        ...extra,
      },
    ];
    ok(await newServer({ imageRef: '', block_device_mapping_v2: bdm({ destination_type: 'invalid' }) }), 400);
    ok(await newServer({ imageRef: '', block_device_mapping_v2: bdm({ boot_index: 1 }) }), 400);
    ok(
      await newServer({
        imageRef: '',
        block_device_mapping_v2: bdm({ uuid: '5a2b4c6d-0000-4000-8000-000000000000' }),
      }),
      400,
    );
    ok(
      await newServer({
        block_device_mapping_v2: [
          { source_type: 'image', uuid: image, boot_index: 0, destination_type: 'local' },
          { source_type: 'volume', uuid: vid, destination_type: 'invalid' },
        ],
      }),
      400,
    );
    const r = await newServer({ imageRef: '', block_device_mapping_v2: bdm() });
    ok(r, 202);
    const id = r.body.server.id as string;
    await eventually(
      async () => (await call('GET', `${C}/servers/${id}`)).body.server.status === 'ACTIVE',
      10_000,
      'ACTIVE',
    );
    const s = (await call('GET', `${C}/servers/${id}`, undefined, at('2.3'))).body.server;
    assert.equal(s.image, '');
    assert.deepEqual(s['os-extended-volumes:volumes_attached'], [{ id: vid, delete_on_termination: true }]);
    const atts = (await call('GET', `${C}/servers/${id}/os-volume_attachments`)).body.volumeAttachments;
    assert.equal(atts[0].device, '/dev/vda');
    assert.equal((await call('GET', `${C}/os-volumes/${vid}`)).body.volume.status, 'in-use');
    ok(await newServer({ imageRef: '', block_device_mapping_v2: bdm() }), 400); // in use now
    ok(await call('DELETE', `${C}/servers/${id}`), 204);
    await eventually(
      async () => (await call('GET', `${C}/os-volumes/${vid}`)).status === 404,
      10_000,
      'the boot volume deleted with its server',
    );
  });

  it('external events (admin), os-migrations, restore without soft delete, deleted instance actions (2.21)', async () => {
    const sid = await activeServer();
    const ev = (events: unknown, token = admin) =>
      call('POST', `${C}/os-server-external-events`, { events }, { token });
    const r = await ev([{ name: 'network-changed', server_uuid: sid }]);
    ok(r, 200);
    assert.deepEqual(r.body.events, [
      { server_uuid: sid, name: 'network-changed', status: 'completed', code: 200 },
    ]);
    const gone = '5a2b4c6d-0000-4000-8000-000000000000';
    ok(await ev([{ name: 'network-changed', server_uuid: gone }]), 404);
    ok(
      await ev([
        { name: 'network-changed', server_uuid: sid },
        { name: 'network-changed', server_uuid: gone },
      ]),
      207,
    );
    ok(await ev([{ name: 'no-such-event', server_uuid: sid }]), 400);
    ok(await ev([{ name: 'network-changed', server_uuid: sid }], member), 403);
    assert.deepEqual((await call('GET', `${C}/os-migrations`)).body, { migrations: [] });
    ok(await call('GET', `${C}/os-migrations`, undefined, { token: member }), 403);
    ok(await call('POST', `${C}/servers/${sid}/action`, { restore: null }), 409);
    ok(await call('DELETE', `${C}/servers/${sid}`), 204);
    await eventually(
      async () => (await call('GET', `${C}/servers/${sid}`)).status === 404,
      10_000,
      'deleted',
    );
    ok(await call('GET', `${C}/servers/${sid}/os-instance-actions`, undefined, at('2.20')), 404);
    const acts = await call('GET', `${C}/servers/${sid}/os-instance-actions`, undefined, at('2.21'));
    ok(acts, 200);
    assert.deepEqual(acts.body.instanceActions.map((a: any) => a.action).sort(), ['create', 'delete']);
  });

  it('rescue and unrescue (fake driver): RESCUE with an adminPass, refusals while rescued; migrate state checks', async () => {
    const sid = await activeServer();
    const act = (body: unknown) => call('POST', `${C}/servers/${sid}/action`, body);
    const status = async () => (await call('GET', `${C}/servers/${sid}`)).body.server.status;
    const r = await act({ rescue: { adminPass: 'rescue-pw' } });
    ok(r, 200);
    assert.equal(r.body.adminPass, 'rescue-pw');
    await eventually(async () => (await status()) === 'RESCUE', 10_000, 'RESCUE');
    ok(await act({ reboot: { type: 'HARD' } }), 409);
    ok(await act({ rescue: {} }), 409);
    ok(await act({ migrate: null }), 409);
    ok(await act({ unrescue: null }), 202);
    await eventually(async () => (await status()) === 'ACTIVE', 10_000, 'ACTIVE');
    ok(await act({ rescue: { rescue_image_ref: 'no-such-image' } }), 400);
    ok(await act({ 'os-migrateLive': { host: 'elsewhere-cmp0001', block_migration: 'auto' } }), 400);
    ok(await act({ suspend: null }), 202);
    await eventually(async () => (await status()) === 'SUSPENDED', 10_000, 'SUSPENDED');
    ok(await act({ 'os-migrateLive': { host: null, block_migration: 'auto' } }), 409);
    ok(await act({ migrate: null }), 409);
  });

  it('createBackup: backup images of the server, the newest `rotation` kept; bad arguments are 400s', async () => {
    const sid = await activeServer();
    const backup = (name: string, rotation: unknown = 2) =>
      call(
        'POST',
        `${C}/servers/${sid}/action`,
        { createBackup: { name, backup_type: 'daily', rotation } },
        at('2.45'),
      );
    ok(await backup('b0', -1), 400);
    ok(await call('POST', `${C}/servers/${sid}/action`, { createBackup: { name: 'b', rotation: 1 } }), 400);
    const ids: string[] = [];
    for (const n of ['b1', 'b2', 'b3']) {
      const r = await backup(n);
      ok(r, 202);
      ids.push(r.body.image_id);
      await eventually(
        async () => (await call('GET', `${C}/servers/${sid}`)).body.server['OS-EXT-STS:task_state'] === null,
        10_000,
        'no task',
      );
    }
    const left = (await call('GET', `/image/v2/images?limit=1000`)).body.images.filter(
      (i: any) => i.instance_uuid === sid && i.image_type === 'backup',
    );
    assert.deepEqual(left.map((i: any) => i.id).sort(), ids.slice(1).sort());
    assert.equal(left[0].backup_type, 'daily');
  });
});
