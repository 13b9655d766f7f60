/**
 * @module OpenStack's default policies where Atoll was looser (issue 11, class 10), over HTTP: Glance's
 * publicize_image, Neutron's admin-only gateway fixed IPs and its caller-scoped remote_group_id, image
 * size cap and per-project image quotas (413, enforced while the data streams), equal password-hash
 * work for unknown users (no enumeration by timing), and who may read /metrics.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { passwordLogin, startLocalCloud } from './support/cloud.ts';
import type { LocalCloud } from './support/cloud.ts';
import type { IdentityModule } from '../src/services/identity/index.ts';

const MiB = 1024 * 1024;

describe('default policies: members get what OpenStack gives them, no more', () => {
  let cloud: LocalCloud;
  let admin: string;
  const ids: Record<string, string> = {};
  const tok: Record<string, string> = {};

  const http = async (method: string, path: string, token?: string, body?: unknown, ct?: string) => {
    const res = await fetch(`${cloud.url(0)}${path}`, {
      method,
      headers: {
        ...(token ? { 'x-auth-token': token } : {}),
        ...(body !== undefined ? { 'content-type': ct ?? 'application/json' } : {}),
      },
      ...(body !== undefined
        ? { body: Buffer.isBuffer(body) ? new Uint8Array(body) : JSON.stringify(body) }
        : {}),
    });
    const text = await res.text();
    let json: any;
    try {
      json = text ? JSON.parse(text) : undefined;
    } catch {
      json = undefined;
    }
    return { status: res.status, body: json, text };
  };
  const ok = async (method: string, path: string, token: string, body?: unknown, ct?: string) => {
    const r = await http(method, path, token, body, ct);
    assert.ok(r.status < 300, `${method} ${path}: ${r.status} ${r.text}`);
    return r.body;
  };
  const login = (name: string, password: string, project?: string) =>
    passwordLogin(cloud.url(0), { name, password }, project ? { project: { id: project } } : undefined);

  before(async () => {
    cloud = await startLocalCloud({
      sites: 1,
      site: {
        services: { image: { imageSizeCap: MiB, imageCountTotal: 4, imageSizeTotal: 1.5 * MiB } },
      },
    });
    admin = await cloud.adminToken(0);
    const roles = (await ok('GET', '/identity/v3/roles', admin)).roles as { id: string; name: string }[];
    const member = roles.find((r) => r.name === 'member')!.id;
    for (const n of ['p1', 'p2']) {
      ids[n] = (
        await ok('POST', '/identity/v3/projects', admin, { project: { name: `pd-${n}` } })
      ).project.id;
      const u = (
        await ok('POST', '/identity/v3/users', admin, { user: { name: `pd-${n}-m`, password: 'pw' } })
      ).user.id;
      await ok('PUT', `/identity/v3/projects/${ids[n]}/users/${u}/roles/${member}`, admin);
      const r = await login(`pd-${n}-m`, 'pw', ids[n]);
      assert.equal(r.status, 201);
      tok[n] = r.headers.get('x-subject-token')!;
    }
  });
  after(async () => cloud?.close());

  it("refuses a member making an image public (publicize_image); community is the owner's, public the admin's", async () => {
    const t = tok.p1!;
    assert.equal(
      (await http('POST', '/image/v2/images', t, { name: 'pub', visibility: 'public' })).status,
      403,
    );
    const img = (await ok('POST', '/image/v2/images', t, { name: 'mine' })).id as string;
    const patch = (token: string, value: string) =>
      http(
        'PATCH',
        `/image/v2/images/${img}`,
        token,
        [{ op: 'replace', path: '/visibility', value }],
        'application/openstack-images-v2.1-json-patch',
      );
    assert.equal((await patch(t, 'public')).status, 403);
    assert.equal((await ok('GET', `/image/v2/images/${img}`, t)).visibility, 'shared');
    assert.equal((await patch(t, 'community')).status, 200);
    assert.equal((await patch(admin, 'public')).status, 200);
    await ok('DELETE', `/image/v2/images/${img}`, admin);
  });

  it('refuses a member external gateway fixed IPs (admin only), not the gateway itself', async () => {
    const ext = (
      await ok('POST', '/network/v2.0/networks', admin, { network: { name: 'ext', 'router:external': true } })
    ).network.id as string;
    const sub = (
      await ok('POST', '/network/v2.0/subnets', admin, {
        subnet: { network_id: ext, cidr: '198.51.100.0/24', ip_version: 4 },
      })
    ).subnet.id as string;
    const t = tok.p1!;
    const router = (await ok('POST', '/network/v2.0/routers', t, { router: { name: 'r1' } })).router.id;
    const gw = (fixed: boolean) => ({
      router: {
        external_gateway_info: {
          network_id: ext,
          ...(fixed ? { external_fixed_ips: [{ subnet_id: sub, ip_address: '198.51.100.77' }] } : {}),
        },
      },
    });
    const refused = await http('PUT', `/network/v2.0/routers/${router}`, t, gw(true));
    assert.equal(refused.status, 403, refused.text);
    assert.ok(refused.body.NeutronError);
    const plain = await ok('PUT', `/network/v2.0/routers/${router}`, t, gw(false));
    assert.notEqual(plain.router.external_gateway_info.external_fixed_ips[0].ip_address, '198.51.100.77');
    const r2 = (await ok('POST', '/network/v2.0/routers', t, { router: { name: 'r2' } })).router.id;
    const byAdmin = await ok('PUT', `/network/v2.0/routers/${r2}`, admin, gw(true));
    assert.equal(byAdmin.router.external_gateway_info.external_fixed_ips[0].ip_address, '198.51.100.77');
  });

  it("answers 404 for another project's security group as remote_group_id", async () => {
    const other = (
      await ok('POST', '/network/v2.0/security-groups', tok.p2!, { security_group: { name: 'p2-sg' } })
    ).security_group.id;
    const mine = (
      await ok('POST', '/network/v2.0/security-groups', tok.p1!, { security_group: { name: 'p1-sg' } })
    ).security_group.id;
    const rule = (remote: string) => ({
      security_group_rule: { security_group_id: mine, direction: 'ingress', remote_group_id: remote },
    });
    const r = await http('POST', '/network/v2.0/security-group-rules', tok.p1!, rule(other));
    assert.equal(r.status, 404, r.text);
    assert.ok(!r.text.includes('p2-sg'));
    const rules = (await ok('GET', `/network/v2.0/security-group-rules?security_group_id=${mine}`, tok.p1!))
      .security_group_rules as { remote_group_id: string | null }[];
    assert.ok(!rules.some((x) => x.remote_group_id === other), 'nothing written');
    assert.equal((await http('POST', '/network/v2.0/security-group-rules', tok.p1!, rule(mine))).status, 201);
  });

  it('caps image size and enforces image_count_total / image_size_total with 413, streaming', async () => {
    const t = tok.p2!;
    const create = async () =>
      (await ok('POST', '/image/v2/images', t, { name: 'q', disk_format: 'raw', container_format: 'bare' }))
        .id as string;
    const upload = (id: string, bytes: number) =>
      http('PUT', `/image/v2/images/${id}/file`, t, Buffer.alloc(bytes, 1), 'application/octet-stream');
    const a = await create();
    const over = await upload(a, MiB + 1);
    assert.equal(over.status, 413, over.text);
    assert.equal((await ok('GET', `/image/v2/images/${a}`, t)).status, 'queued', 'nothing half-written');
    // Without a declared length (chunked), the cap holds while the data streams.
    const chunks = new ReadableStream({
      start(c) {
        for (let i = 0; i < 20; i++) c.enqueue(new Uint8Array(128 * 1024));
        c.close();
      },
    });
    const chunked = await fetch(`${cloud.url(0)}/image/v2/images/${a}/file`, {
      method: 'PUT',
      headers: { 'x-auth-token': t, 'content-type': 'application/octet-stream' },
      body: chunks,
      duplex: 'half',
    } as RequestInit);
    assert.equal(chunked.status, 413, await chunked.text());
    assert.equal((await upload(a, MiB)).status, 204);
    const b = await create();
    const storage = await upload(b, MiB);
    assert.equal(storage.status, 413, 'image_size_total: 1 MiB stored, 0.5 MiB left');
    assert.equal((await upload(b, 256 * 1024)).status, 204);
    await create();
    await create();
    const fifth = await http('POST', '/image/v2/images', t, { name: 'fifth' });
    assert.equal(fifth.status, 413, fifth.text);
    // Quotas are per project: p1 is not affected.
    assert.equal((await http('POST', '/image/v2/images', tok.p1!, { name: 'p1-img' })).status, 201);
  });

  it('runs the same password hash work for unknown, disabled and existing users', async () => {
    const mod = cloud.fed.sites[0]!.modules.find((m) => m.name === 'identity') as IdentityModule;
    const stats = mod.ic!.passwords.stats;
    await ok('POST', '/identity/v3/users', admin, {
      user: { name: 'pd-off', password: 'pw', enabled: false },
    });
    const time = async (name: string) => {
      const t0 = process.hrtime.bigint();
      const r = await login(name, 'wrong');
      await r.text();
      assert.equal(r.status, 401);
      return Number(process.hrtime.bigint() - t0) / 1e6;
    };
    for (const name of ['pd-p1-m', 'no-such-user', 'pd-off']) {
      const before = stats.kdfRuns;
      await time(name);
      assert.equal(stats.kdfRuns, before + 1, `${name}: one hash run`);
    }
    const decoys = stats.decoys;
    await time('no-such-user');
    assert.equal(stats.decoys, decoys + 1, 'the unknown user ran a decoy hash');
    const median = async (name: string) => {
      const xs: number[] = [];
      for (let i = 0; i < 9; i++) xs.push(await time(name));
      return xs.sort((x, y) => x - y)[4]!;
    };
    const known = await median('pd-p1-m');
    const unknown = await median('no-such-user');
    const ratio = Math.max(known, unknown) / Math.min(known, unknown);
    assert.ok(ratio < 3, `median ${known.toFixed(2)} ms (known) vs ${unknown.toFixed(2)} ms (unknown)`);
  });

  it('serves /metrics to loopback and cloud admins only by default', async () => {
    const app = cloud.fed.sites[0]!.app;
    const get = (headers: Record<string, string>, remoteAddress = '203.0.113.9') =>
      app.inject({ method: 'GET', url: '/metrics', headers, remoteAddress });
    assert.equal((await get({})).statusCode, 401, 'a remote client without a token');
    assert.equal((await get({ 'x-auth-token': tok.p1! })).statusCode, 403, 'a member');
    assert.equal((await get({ 'x-auth-token': admin })).statusCode, 200, 'a cloud admin');
    assert.equal((await get({ 'x-atoll-forwarded-by': 'site-x' }, '127.0.0.1')).statusCode, 401, 'forwarded');
    const local = await fetch(`${cloud.url(0)}/metrics`);
    assert.equal(local.status, 200, 'loopback');
    assert.match(await local.text(), /atoll_changelog_head/);
  });
});
