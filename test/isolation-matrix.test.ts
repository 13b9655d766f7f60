/**
 * @module Cross-project isolation matrix over two sites. Project P1 owns resources on site-a (network,
 * subnet, port, security group and rule, router, volume, snapshot, private image, keypair, server when
 * compute is in the catalog); P2's reader and member try every read and write of them, directly at
 * site-a and through site-b (reads from its replica, writes forwarded to the owner). Each attempt must be
 * denied the way OpenStack denies it: Nova, Neutron and Cinder answer 404 for another project's
 * resource, Glance 404 for a private image, Keystone 403, Cinder 403 for another project's URL. Lists
 * never show P1's resources to P2. Only admin on the admin project is a cloud admin (Keystone's
 * `is_admin_project`), so P2's admin is refused P1's resources like P2's member: asserted too.
 * A few cases go through Debian's real `openstack` CLI.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startLocalCloud } from './support/cloud.ts';
import type { LocalCloud } from './support/cloud.ts';

interface Answer {
  status: number;
  text: string;
  json: any;
}

interface Case {
  what: string;
  method: string;
  /** Path on the site, built once the resources exist. */
  path: string;
  body?: unknown;
  contentType?: string;
  /** The status OpenStack gives another project's user. */
  expect: number;
}

describe('isolation matrix: P2 cannot see or touch P1 resources, at the owner site or through another', () => {
  let cloud: LocalCloud;
  let hasCompute = false;
  const ids = {} as Record<string, string>;
  const tok = {} as Record<'admin' | 'p1member' | 'p2reader' | 'p2member' | 'p2admin', string>;
  const counts = { cases: 0, lists: 0, cli: 0 };

  const http = async (
    site: number,
    token: string | undefined,
    method: string,
    path: string,
    body?: unknown,
    contentType = 'application/json',
  ): Promise<Answer> => {
    const res = await fetch(`${cloud.url(site)}${path}`, {
      method,
      headers: {
        ...(token ? { 'x-auth-token': token } : {}),
        ...(body !== undefined ? { 'content-type': contentType } : {}),
      },
      ...(body !== undefined
        ? { body: Buffer.isBuffer(body) ? new Uint8Array(body) : JSON.stringify(body) }
        : {}),
    });
    const text = await res.text();
    let json: unknown;
    try {
      json = text ? JSON.parse(text) : undefined;
    } catch {
      json = undefined;
    }
    return { status: res.status, text, json };
  };
  const ok = async (
    site: number,
    token: string,
    method: string,
    path: string,
    body?: unknown,
    ct?: string,
  ) => {
    const r = await http(site, token, method, path, body, ct);
    assert.ok(r.status < 300, `${method} ${path}: ${r.status} ${r.text}`);
    return r.json;
  };
  const login = async (name: string, password: string, project: string, site = 0) => {
    const res = await fetch(`${cloud.url(site)}/identity/v3/auth/tokens`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        auth: {
          identity: {
            methods: ['password'],
            password: { user: { name, domain: { id: 'default' }, password } },
          },
          scope: { project: { id: project } },
        },
      }),
    });
    assert.equal(res.status, 201, await res.text());
    return res.headers.get('x-subject-token')!;
  };

  before(async () => {
    cloud = await startLocalCloud({ sites: 2 });
    tok.admin = await cloud.adminToken(0);
    const a = tok.admin;
    const catalog = (await ok(0, a, 'GET', '/identity/v3/auth/catalog')) as { catalog: { type: string }[] };
    hasCompute = catalog.catalog.some((c) => c.type === 'compute');
    const roles = ((await ok(0, a, 'GET', '/identity/v3/roles')) as { roles: { id: string; name: string }[] })
      .roles;
    const role = (n: string) => roles.find((r) => r.name === n)!.id;
    ids['role:member'] = role('member');
    for (const p of ['iso-p1', 'iso-p2'])
      ids[p] = (
        (await ok(0, a, 'POST', '/identity/v3/projects', { project: { name: p, domain_id: 'default' } })) as {
          project: { id: string };
        }
      ).project.id;
    const users: [string, string, string][] = [
      ['p1member', 'iso-p1', 'member'],
      ['p2reader', 'iso-p2', 'reader'],
      ['p2member', 'iso-p2', 'member'],
      ['p2admin', 'iso-p2', 'admin'],
    ];
    for (const [name, project, r] of users) {
      const u = (await ok(0, a, 'POST', '/identity/v3/users', {
        user: { name, domain_id: 'default', password: `pw-${name}`, default_project_id: ids[project] },
      })) as { user: { id: string } };
      ids[`user:${name}`] = u.user.id;
      await ok(0, a, 'PUT', `/identity/v3/projects/${ids[project]}/users/${u.user.id}/roles/${role(r)}`);
      tok[name as 'p1member'] = await login(name, `pw-${name}`, ids[project]!);
    }
    const t = tok.p1member;
    const P1 = ids['iso-p1']!;
    ids.network = (
      (await ok(0, t, 'POST', '/network/v2.0/networks', { network: { name: 'p1-net' } })) as any
    ).network.id;
    ids.subnet = (
      (await ok(0, t, 'POST', '/network/v2.0/subnets', {
        subnet: { network_id: ids.network, cidr: '10.42.0.0/24', ip_version: 4, name: 'p1-sub' },
      })) as any
    ).subnet.id;
    ids.port = (
      (await ok(0, t, 'POST', '/network/v2.0/ports', {
        port: { network_id: ids.network, name: 'p1-port' },
      })) as any
    ).port.id;
    ids.sg = (
      (await ok(0, t, 'POST', '/network/v2.0/security-groups', { security_group: { name: 'p1-sg' } })) as any
    ).security_group.id;
    ids.rule = (
      (await ok(0, t, 'POST', '/network/v2.0/security-group-rules', {
        security_group_rule: {
          security_group_id: ids.sg,
          direction: 'ingress',
          protocol: 'tcp',
          port_range_min: 22,
          port_range_max: 22,
        },
      })) as any
    ).security_group_rule.id;
    ids.router = (
      (await ok(0, t, 'POST', '/network/v2.0/routers', { router: { name: 'p1-router' } })) as any
    ).router.id;
    ids.volume = (
      (await ok(0, t, 'POST', `/volume/v3/${P1}/volumes`, { volume: { size: 1, name: 'p1-vol' } })) as any
    ).volume.id;
    ids.snapshot = (
      (await ok(0, t, 'POST', `/volume/v3/${P1}/snapshots`, {
        snapshot: { volume_id: ids.volume, name: 'p1-snap' },
      })) as any
    ).snapshot.id;
    ids.image = (
      (await ok(0, t, 'POST', '/image/v2/images', {
        name: 'p1-image',
        disk_format: 'raw',
        container_format: 'bare',
        visibility: 'private',
      })) as any
    ).id;
    await ok(
      0,
      t,
      'PUT',
      `/image/v2/images/${ids.image}/file`,
      Buffer.alloc(2048, 1),
      'application/octet-stream',
    );
    if (hasCompute) {
      ids.keypair = (
        (await ok(0, t, 'POST', '/compute/v2.1/os-keypairs', { keypair: { name: 'p1-key' } })) as any
      ).keypair.name;
      const flavor = (
        (await ok(0, a, 'POST', '/compute/v2.1/flavors', {
          flavor: { name: 'iso.tiny', ram: 256, vcpus: 1, disk: 1 },
        })) as any
      ).flavor.id;
      ids.server = (
        (await ok(0, t, 'POST', '/compute/v2.1/servers', {
          server: {
            name: 'p1-server',
            flavorRef: flavor,
            imageRef: ids.image,
            networks: [{ uuid: ids.network }],
            key_name: 'p1-key',
          },
        })) as any
      ).server.id;
      const deadline = Date.now() + 20_000;
      for (;;) {
        const s = (await ok(0, t, 'GET', `/compute/v2.1/servers/${ids.server}`)) as any;
        if (s.server.status === 'ACTIVE') break;
        assert.ok(Date.now() < deadline && s.server.status !== 'ERROR', `p1-server: ${s.server.status}`);
        await new Promise((r) => setTimeout(r, 50));
      }
    }
    await cloud.converged();
  });
  after(async () => cloud?.close());

  /** Every read and write of P1's resources, with the status OpenStack answers another project's user. */
  const cases = (): Case[] => {
    const P1 = ids['iso-p1']!;
    const P2 = ids['iso-p2']!;
    const N = '/network/v2.0';
    const out: Case[] = [];
    const neutron: [string, string, string, Record<string, unknown>][] = [
      ['network', 'networks', ids.network!, { network: { name: 'stolen' } }],
      ['subnet', 'subnets', ids.subnet!, { subnet: { name: 'stolen' } }],
      ['port', 'ports', ids.port!, { port: { name: 'stolen' } }],
      ['security group', 'security-groups', ids.sg!, { security_group: { name: 'stolen' } }],
      [
        'security group rule',
        'security-group-rules',
        ids.rule!,
        { security_group_rule: { description: 'stolen' } },
      ],
      ['router', 'routers', ids.router!, { router: { name: 'stolen' } }],
    ];
    for (const [what, coll, id, body] of neutron) {
      out.push({ what: `${what} show`, method: 'GET', path: `${N}/${coll}/${id}`, expect: 404 });
      out.push({ what: `${what} update`, method: 'PUT', path: `${N}/${coll}/${id}`, body, expect: 404 });
      out.push({ what: `${what} delete`, method: 'DELETE', path: `${N}/${coll}/${id}`, expect: 404 });
    }
    out.push(
      {
        what: 'port create on P1 network',
        method: 'POST',
        path: `${N}/ports`,
        body: { port: { network_id: ids.network } },
        expect: 404,
      },
      {
        what: 'subnet create on P1 network',
        method: 'POST',
        path: `${N}/subnets`,
        body: { subnet: { network_id: ids.network, cidr: '10.43.0.0/24', ip_version: 4 } },
        expect: 404,
      },
      {
        what: 'rule create in P1 security group',
        method: 'POST',
        path: `${N}/security-group-rules`,
        body: { security_group_rule: { security_group_id: ids.sg, direction: 'ingress' } },
        expect: 404,
      },
      {
        what: 'router interface on P1 router',
        method: 'PUT',
        path: `${N}/routers/${ids.router}/add_router_interface`,
        body: { subnet_id: ids.subnet },
        expect: 404,
      },
      {
        what: 'network IP availability',
        method: 'GET',
        path: `${N}/network-ip-availabilities/${ids.network}`,
        expect: 403,
      },
      {
        what: 'quota of P1 (Neutron)',
        method: 'PUT',
        path: `${N}/quotas/${P1}`,
        body: { quota: { network: 1 } },
        expect: 403,
      },
    );
    const V1 = `/volume/v3/${P1}`;
    const V2 = `/volume/v3/${P2}`;
    for (const [base, expect, how] of [
      [V2, 404, 'own project URL'],
      [V1, 403, "P1's project URL"],
    ] as const) {
      out.push(
        { what: `volume show (${how})`, method: 'GET', path: `${base}/volumes/${ids.volume}`, expect },
        {
          what: `volume update (${how})`,
          method: 'PUT',
          path: `${base}/volumes/${ids.volume}`,
          body: { volume: { name: 'stolen' } },
          expect,
        },
        { what: `volume delete (${how})`, method: 'DELETE', path: `${base}/volumes/${ids.volume}`, expect },
        {
          what: `volume extend (${how})`,
          method: 'POST',
          path: `${base}/volumes/${ids.volume}/action`,
          body: { 'os-extend': { new_size: 5 } },
          expect,
        },
        {
          what: `volume metadata (${how})`,
          method: 'POST',
          path: `${base}/volumes/${ids.volume}/metadata`,
          body: { metadata: { a: 'b' } },
          expect,
        },
        {
          what: `volume metadata show (${how})`,
          method: 'GET',
          path: `${base}/volumes/${ids.volume}/metadata`,
          expect,
        },
        { what: `snapshot show (${how})`, method: 'GET', path: `${base}/snapshots/${ids.snapshot}`, expect },
        {
          what: `snapshot update (${how})`,
          method: 'PUT',
          path: `${base}/snapshots/${ids.snapshot}`,
          body: { snapshot: { name: 'stolen' } },
          expect,
        },
        {
          what: `snapshot delete (${how})`,
          method: 'DELETE',
          path: `${base}/snapshots/${ids.snapshot}`,
          expect,
        },
      );
    }
    out.push(
      {
        what: 'snapshot of P1 volume',
        method: 'POST',
        path: `${V2}/snapshots`,
        body: { snapshot: { volume_id: ids.volume } },
        expect: 404,
      },
      {
        what: 'volume cloned from P1 volume',
        method: 'POST',
        path: `${V2}/volumes`,
        body: { volume: { size: 1, source_volid: ids.volume } },
        expect: 404,
      },
      {
        what: 'quota of P1 (Cinder)',
        method: 'PUT',
        path: `${V2}/os-quota-sets/${P1}`,
        body: { quota_set: { volumes: 1 } },
        expect: 403,
      },
    );
    const I = `/image/v2/images/${ids.image}`;
    out.push(
      { what: 'private image show', method: 'GET', path: I, expect: 404 },
      { what: 'private image data', method: 'GET', path: `${I}/file`, expect: 404 },
      {
        what: 'private image update',
        method: 'PATCH',
        path: I,
        body: [{ op: 'replace', path: '/name', value: 'stolen' }],
        contentType: 'application/openstack-images-v2.1-json-patch',
        expect: 404,
      },
      { what: 'private image delete', method: 'DELETE', path: I, expect: 404 },
      { what: 'private image tag', method: 'PUT', path: `${I}/tags/stolen`, expect: 404 },
      {
        what: 'private image share to self',
        method: 'POST',
        path: `${I}/members`,
        body: { member: P2 },
        expect: 404,
      },
      { what: 'private image members', method: 'GET', path: `${I}/members`, expect: 404 },
      {
        what: 'private image upload',
        method: 'PUT',
        path: `${I}/file`,
        body: Buffer.alloc(16),
        contentType: 'application/octet-stream',
        expect: 404,
      },
      // Cinder answers 400 "Invalid image identifier or unable to access requested image" here.
      {
        what: 'volume from P1 private image',
        method: 'POST',
        path: `${V2}/volumes`,
        body: { volume: { size: 1, imageRef: ids.image } },
        expect: 400,
      },
    );
    out.push(
      { what: 'P1 project show (Keystone)', method: 'GET', path: `/identity/v3/projects/${P1}`, expect: 403 },
      {
        what: 'P1 project update',
        method: 'PATCH',
        path: `/identity/v3/projects/${P1}`,
        body: { project: { description: 'stolen' } },
        expect: 403,
      },
      { what: 'P1 project delete', method: 'DELETE', path: `/identity/v3/projects/${P1}`, expect: 403 },
      {
        what: 'P1 user show',
        method: 'GET',
        path: `/identity/v3/users/${ids['user:p1member']}`,
        expect: 403,
      },
      {
        what: 'P1 user update',
        method: 'PATCH',
        path: `/identity/v3/users/${ids['user:p1member']}`,
        body: { user: { enabled: false } },
        expect: 403,
      },
      {
        what: "P1 user's projects",
        method: 'GET',
        path: `/identity/v3/users/${ids['user:p1member']}/projects`,
        expect: 403,
      },
      {
        what: "P1 user's application credentials",
        method: 'GET',
        path: `/identity/v3/users/${ids['user:p1member']}/application_credentials`,
        expect: 403,
      },
      {
        what: 'grant self a role on P1',
        method: 'PUT',
        path: `/identity/v3/projects/${P1}/users/${ids['user:p2member']}/roles/${ids['role:member']}`,
        expect: 403,
      },
      {
        what: "P1's role assignments",
        method: 'GET',
        path: `/identity/v3/role_assignments?scope.project.id=${P1}`,
        expect: 403,
      },
      { what: 'project list', method: 'GET', path: '/identity/v3/projects', expect: 403 },
    );
    if (hasCompute) {
      const S = `/compute/v2.1/servers/${ids.server}`;
      out.push(
        { what: 'server show', method: 'GET', path: S, expect: 404 },
        { what: 'server update', method: 'PUT', path: S, body: { server: { name: 'stolen' } }, expect: 404 },
        { what: 'server delete', method: 'DELETE', path: S, expect: 404 },
        { what: 'server stop', method: 'POST', path: `${S}/action`, body: { 'os-stop': null }, expect: 404 },
        {
          what: 'server reboot',
          method: 'POST',
          path: `${S}/action`,
          body: { reboot: { type: 'HARD' } },
          expect: 404,
        },
        {
          what: 'server snapshot',
          method: 'POST',
          path: `${S}/action`,
          body: { createImage: { name: 'stolen' } },
          expect: 404,
        },
        { what: 'server metadata', method: 'GET', path: `${S}/metadata`, expect: 404 },
        {
          what: 'server metadata set',
          method: 'POST',
          path: `${S}/metadata`,
          body: { metadata: { a: 'b' } },
          expect: 404,
        },
        { what: 'server actions', method: 'GET', path: `${S}/os-instance-actions`, expect: 404 },
        {
          what: 'keypair show (per user)',
          method: 'GET',
          path: `/compute/v2.1/os-keypairs/${ids.keypair}`,
          expect: 404,
        },
        {
          what: 'keypair delete (per user)',
          method: 'DELETE',
          path: `/compute/v2.1/os-keypairs/${ids.keypair}`,
          expect: 404,
        },
        {
          what: 'server on P1 network port',
          method: 'POST',
          path: '/compute/v2.1/servers',
          body: {
            server: { name: 'x', flavorRef: 'iso.tiny', imageRef: ids.image, networks: [{ port: ids.port }] },
          },
          expect: 400,
        },
        {
          what: 'P1 compute quota update',
          method: 'PUT',
          path: `/compute/v2.1/os-quota-sets/${P1}`,
          body: { quota_set: { instances: 1 } },
          expect: 403,
        },
      );
    }
    return out;
  };

  /** Lists P2 may call; none may contain any of P1's ids. */
  const lists = (): string[] => {
    const P1 = ids['iso-p1']!;
    const P2 = ids['iso-p2']!;
    const N = '/network/v2.0';
    const l = [
      ...[
        'networks',
        'subnets',
        'ports',
        'security-groups',
        'security-group-rules',
        'routers',
        'floatingips',
      ].flatMap((c) => [`${N}/${c}`, `${N}/${c}?project_id=${P1}`, `${N}/${c}?tenant_id=${P1}`]),
      `${N}/ports?network_id=${ids.network}`,
      `${N}/subnets?network_id=${ids.network}`,
      `/volume/v3/${P2}/volumes/detail`,
      `/volume/v3/${P2}/volumes/detail?all_tenants=1`,
      `/volume/v3/${P2}/volumes?project_id=${P1}&all_tenants=1`,
      `/volume/v3/${P2}/snapshots/detail?all_tenants=1`,
      '/image/v2/images',
      '/image/v2/images?visibility=private',
      '/image/v2/images?visibility=all',
      `/image/v2/images?owner=${P1}`,
      '/image/v2/images?member_status=all',
      `/identity/v3/users/${ids['user:p2member']}/projects`,
      '/identity/v3/auth/projects',
    ];
    if (hasCompute)
      l.push(
        '/compute/v2.1/servers',
        '/compute/v2.1/servers/detail',
        '/compute/v2.1/servers/detail?all_tenants=1',
        `/compute/v2.1/servers/detail?all_tenants=1&project_id=${P1}`,
        `/compute/v2.1/servers/detail?tenant_id=${P1}`,
        '/compute/v2.1/os-keypairs',
        `/compute/v2.1/os-keypairs?user_id=${ids['user:p1member']}`,
      );
    return l;
  };

  const p1Ids = () =>
    [
      'iso-p1',
      'network',
      'subnet',
      'port',
      'sg',
      'rule',
      'router',
      'volume',
      'snapshot',
      'image',
      'server',
      'user:p1member',
    ]
      .map((k) => ids[k])
      .filter((x): x is string => !!x);

  for (const site of [0, 1]) {
    for (const who of ['p2reader', 'p2member'] as const) {
      it(`${who} at ${site === 0 ? 'site-a (owner)' : 'site-b (forwarding)'}: every read and write of P1's resources is denied`, async () => {
        const wrong: string[] = [];
        for (const c of cases()) {
          const r = await http(site, tok[who], c.method, c.path, c.body, c.contentType);
          counts.cases++;
          // A reader is refused a write by role before the lookup: 403 is what OpenStack answers then.
          const readerWrite = who === 'p2reader' && c.method !== 'GET' && c.expect !== 403;
          const allowed = readerWrite ? [403, 404] : [c.expect];
          if (!allowed.includes(r.status))
            wrong.push(
              `${c.what}: ${c.method} ${c.path} -> ${r.status} (want ${allowed.join('/')}) ${r.text.slice(0, 160)}`,
            );
          if (r.status < 400) continue;
          // A fault may repeat an id the caller sent (Neutron: "Network <id> could not be found"), no other.
          const sent = c.path + JSON.stringify(c.body ?? '');
          for (const id of p1Ids())
            if (r.text.includes(id) && !sent.includes(id)) wrong.push(`${c.what}: the fault leaks ${id}`);
        }
        assert.deepEqual(wrong, []);
      });
      it(`${who} at ${site === 0 ? 'site-a' : 'site-b'}: no list shows P1's resources`, async () => {
        const leaks: string[] = [];
        for (const path of lists()) {
          const r = await http(site, tok[who], 'GET', path);
          counts.lists++;
          if (r.status >= 500 || (r.status >= 300 && r.status !== 403 && r.status !== 400))
            leaks.push(`${path} -> ${r.status} ${r.text.slice(0, 120)}`);
          for (const id of p1Ids()) if (r.text.includes(id)) leaks.push(`${path} shows ${id}`);
        }
        assert.deepEqual(leaks, []);
      });
    }
  }

  it("control: P1's own member reads each of those resources at both sites (so a 404 above means denied)", async () => {
    const P2 = ids['iso-p2']!;
    const reads = cases().filter(
      (c) =>
        c.method === 'GET' &&
        c.expect === 404 &&
        !c.path.includes(`/volume/v3/${P2}/`) &&
        !c.path.includes('os-keypairs'),
    );
    assert.ok(reads.length >= 10, `${reads.length} reads`);
    for (const site of [0, 1])
      for (const c of reads) {
        const r = await http(site, tok.p1member, 'GET', c.path);
        assert.equal(r.status, 200, `${c.what} at site ${site}: ${r.status} ${r.text.slice(0, 160)}`);
      }
  });

  it("P1's resources are unchanged after all those attempts", async () => {
    const t = tok.p1member;
    const P1 = ids['iso-p1']!;
    const N = '/network/v2.0';
    assert.equal(((await ok(0, t, 'GET', `${N}/networks/${ids.network}`)) as any).network.name, 'p1-net');
    assert.equal(((await ok(0, t, 'GET', `${N}/ports/${ids.port}`)) as any).port.name, 'p1-port');
    assert.equal(((await ok(0, t, 'GET', `${N}/routers/${ids.router}`)) as any).router.name, 'p1-router');
    assert.equal(
      ((await ok(0, t, 'GET', `${N}/security-groups/${ids.sg}`)) as any).security_group.name,
      'p1-sg',
    );
    const vol = ((await ok(0, t, 'GET', `/volume/v3/${P1}/volumes/${ids.volume}`)) as any).volume;
    assert.equal(vol.name, 'p1-vol');
    assert.equal(vol.size, 1);
    assert.deepEqual(vol.metadata, {});
    const img = (await ok(0, t, 'GET', `/image/v2/images/${ids.image}`)) as any;
    assert.equal(img.name, 'p1-image');
    assert.deepEqual(img.tags, []);
    assert.equal(img.visibility, 'private');
    assert.deepEqual(((await ok(0, t, 'GET', `/image/v2/images/${ids.image}/members`)) as any).members, []);
    if (hasCompute) {
      const s = ((await ok(0, t, 'GET', `/compute/v2.1/servers/${ids.server}`)) as any).server;
      assert.equal(s.name, 'p1-server');
      assert.equal(s.status, 'ACTIVE');
      assert.deepEqual(s.metadata, {});
    }
    assert.equal(
      ((await ok(0, tok.admin, 'GET', `/identity/v3/projects/${P1}`)) as any).project.description ?? '',
      '',
    );
  });

  it('admin on P2 is not a cloud admin (only the admin project is): P1 resources stay hidden', async () => {
    for (const site of [0, 1]) {
      assert.equal(
        (await http(site, tok.p2admin, 'GET', `/network/v2.0/networks/${ids.network}`)).status,
        404,
      );
      assert.equal((await http(site, tok.p2admin, 'GET', `/image/v2/images/${ids.image}`)).status, 404);
      assert.equal(
        (await http(site, tok.p2admin, 'GET', `/identity/v3/projects/${ids['iso-p1']}`)).status,
        403,
      );
      assert.equal((await http(site, tok.admin, 'GET', `/network/v2.0/networks/${ids.network}`)).status, 200);
      if (hasCompute)
        assert.equal(
          (await http(site, tok.p2admin, 'GET', `/compute/v2.1/servers/${ids.server}`)).status,
          404,
        );
    }
  });

  it('the openstack CLI as P2 member: show, delete and list of P1 resources fail or hide them', async () => {
    const env = (site: number) =>
      cloud.env(site, { username: 'p2member', password: 'pw-p2member', project: 'iso-p2' });
    for (const site of [0, 1]) {
      for (const args of [
        ['network', 'show', ids.network!],
        ['port', 'delete', ids.port!],
        ['volume', 'show', ids.volume!],
        ['image', 'delete', ids.image!],
        ...(hasCompute ? [['server', 'stop', ids.server!]] : []),
      ]) {
        const r = await cloud.os(args, { env: env(site) });
        counts.cli++;
        assert.notEqual(r.code, 0, `openstack ${args.join(' ')} at site ${site} succeeded: ${r.stdout}`);
        assert.match(
          r.stderr,
          /No (Network|Port|Volume|Image|Server)|not (be )?found|404|Failed to delete/i,
          r.stderr,
        );
      }
      for (const args of [
        ['network', 'list'],
        ['volume', 'list'],
        ['image', 'list'],
        ...(hasCompute ? [['server', 'list']] : []),
      ]) {
        const r = await cloud.os([...args, '-f', 'json'], { env: env(site) });
        counts.cli++;
        assert.equal(r.code, 0, r.stderr);
        for (const id of p1Ids())
          assert.ok(!r.stdout.includes(id), `openstack ${args.join(' ')} shows ${id}`);
      }
    }
    console.log(
      `isolation matrix: ${counts.cases} denied attempts, ${counts.lists} lists, ${counts.cli} CLI runs`,
    );
  });
});
