/**
 * @module Network answers as Neutron gives them, over HTTP against one in-process site: what the
 * interop guideline's Tempest tests (tempest.api.network) found wrong: a router created with an
 * empty `external_gateway_info`, a port create answer without its standard attributes, and
 * Neutron's messages for bad security group rule port ranges. scripts/tempest.mjs runs Tempest itself.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { passwordToken, startLocalCloud } from './support/cloud.ts';
import type { LocalCloud } from './support/cloud.ts';

const N = '/network/v2.0';

describe('Network answers as Neutron gives them (interop guideline)', () => {
  let cloud: LocalCloud;
  let admin: string;
  let member: string;
  const call = async (method: string, path: string, body?: unknown) => {
    const res = await fetch(`${cloud.url()}${path}`, {
      method,
      headers: {
        'x-auth-token': admin,
        ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
      },
      ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
    });
    const text = await res.text();
    return { status: res.status, body: text ? JSON.parse(text) : undefined };
  };
  const ok = (r: { status: number; body: unknown }, status: number) =>
    assert.equal(r.status, status, JSON.stringify(r.body));

  before(async () => {
    cloud = await startLocalCloud({ sites: 1 });
    admin = await cloud.adminToken();
    // A member of a project of its own.
    const project = (
      await call('POST', '/identity/v3/projects', { project: { name: 'nc-p', domain_id: 'default' } })
    ).body.project.id as string;
    const user = (
      await call('POST', '/identity/v3/users', {
        user: { name: 'nc-u', password: 'nc-secret-1', domain_id: 'default' },
      })
    ).body.user.id as string;
    const role = (await call('GET', '/identity/v3/roles?name=member')).body.roles[0].id as string;
    ok(await call('PUT', `/identity/v3/projects/${project}/users/${user}/roles/${role}`), 204);
    member = await passwordToken(cloud.url(), { name: 'nc-u', password: 'nc-secret-1', project: 'nc-p' });
  });
  after(async () => cloud?.close());

  it('a router created with an empty external_gateway_info has no gateway', async () => {
    const r = await call('POST', `${N}/routers`, {
      router: { name: 'nc-r', admin_state_up: false, external_gateway_info: {} },
    });
    ok(r, 201);
    assert.equal(r.body.router.external_gateway_info, null);
    // A gateway without its network is still refused.
    ok(
      await call('POST', `${N}/routers`, {
        router: { name: 'nc-r2', external_gateway_info: { enable_snat: false } },
      }),
      400,
    );
  });

  it('a router on the external network: the gateway shows on create and show', async () => {
    const net = await call('POST', `${N}/networks`, { network: { name: 'nc-pub', 'router:external': true } });
    ok(net, 201);
    ok(
      await call('POST', `${N}/subnets`, {
        subnet: { network_id: net.body.network.id, ip_version: 4, cidr: '172.31.9.0/24' },
      }),
      201,
    );
    const r = await call('POST', `${N}/routers`, {
      router: { name: 'nc-gw', external_gateway_info: { network_id: net.body.network.id } },
    });
    ok(r, 201);
    assert.equal(r.body.router.external_gateway_info.network_id, net.body.network.id);
    const shown = await call('GET', `${N}/routers/${r.body.router.id}`);
    assert.equal(shown.body.router.external_gateway_info.network_id, net.body.network.id);
  });

  it('a port create answer equals its show, standard attributes included', async () => {
    const net = await call('POST', `${N}/networks`, { network: { name: 'nc-net' } });
    ok(net, 201);
    const p = await call('POST', `${N}/ports`, { port: { network_id: net.body.network.id, name: 'nc-p' } });
    ok(p, 201);
    assert.equal(p.body.port.revision_number, 0);
    assert.match(p.body.port.created_at, /^\d{4}-\d{2}-\d{2}T/);
    assert.match(p.body.port.updated_at, /^\d{4}-\d{2}-\d{2}T/);
    const shown = await call('GET', `${N}/ports/${p.body.port.id}`);
    assert.deepEqual(p.body.port, shown.body.port);
    // extra_dhcp_opts on update: added, replaced by name, removed by a null value.
    const opts = [
      { opt_name: 'bootfile-name', opt_value: 'pxelinux.0' },
      { opt_name: 'tftp-server', opt_value: '123.123.123.123' },
    ];
    const up = await call('PUT', `${N}/ports/${p.body.port.id}`, { port: { extra_dhcp_opts: opts } });
    ok(up, 200);
    assert.equal(up.body.port.extra_dhcp_opts.length, 2);
    const up2 = await call('PUT', `${N}/ports/${p.body.port.id}`, {
      port: {
        extra_dhcp_opts: [
          { opt_name: 'bootfile-name', opt_value: 'other.0' },
          { opt_name: 'tftp-server', opt_value: null },
        ],
      },
    });
    ok(up2, 200);
    assert.deepEqual(
      (await call('GET', `${N}/ports/${p.body.port.id}`)).body.port.extra_dhcp_opts.map(
        (o: { opt_name: string; opt_value: string }) => `${o.opt_name}=${o.opt_value}`,
      ),
      ['bootfile-name=other.0'],
    );
  });

  it("bad port ranges get Neutron's messages", async () => {
    const sg = await call('POST', `${N}/security-groups`, { security_group: { name: 'nc-sg' } });
    ok(sg, 201);
    const rule = (protocol: string, min: number | null, max: number | null) =>
      call('POST', `${N}/security-group-rules`, {
        security_group_rule: {
          security_group_id: sg.body.security_group.id,
          direction: 'ingress',
          ethertype: 'IPv4',
          protocol,
          port_range_min: min,
          port_range_max: max,
        },
      });
    for (const [protocol, min, max, msg] of [
      ['tcp', -16, 80, 'Invalid value for port -16'],
      ['tcp', 80, 79, 'port_range_min must be <= port_range_max'],
      ['tcp', 80, 65536, 'Invalid value for port 65536'],
      ['tcp', null, 6, 'port_range_min must be <= port_range_max'],
      ['tcp', -16, 65536, 'Invalid value for port'],
      ['icmp', 1, 256, 'Invalid value for ICMP code'],
      ['icmp', -1, 25, 'Invalid value'],
      ['icmp', null, 6, 'ICMP type (port-range-min) is missing'],
      ['icmp', 300, 1, 'Invalid value for ICMP type'],
    ] as const) {
      const r = await rule(protocol, min, max);
      ok(r, 400);
      assert.ok(
        String(r.body.NeutronError?.message ?? r.body.message ?? JSON.stringify(r.body)).includes(msg),
        `${protocol} ${min}-${max}: ${JSON.stringify(r.body)}`,
      );
    }
    ok(
      await call('PUT', `${N}/security-groups/${sg.body.security_group.id}`, {
        security_group: { name: 'default' },
      }),
      409,
    );
    ok(await rule('tcp', 22, 22), 201);
    ok(await rule('icmp', 8, 0), 201);
  });

  it('routes null clears the extra routes', async () => {
    const net = await call('POST', `${N}/networks`, { network: { name: 'nc-rt' } });
    const sub = await call('POST', `${N}/subnets`, {
      subnet: { network_id: net.body.network.id, ip_version: 4, cidr: '10.77.0.0/24' },
    });
    ok(sub, 201);
    const r = (await call('POST', `${N}/routers`, { router: { name: 'nc-rt' } })).body.router;
    ok(
      await call('PUT', `${N}/routers/${r.id}/add_router_interface`, { subnet_id: sub.body.subnet.id }),
      200,
    );
    const set = await call('PUT', `${N}/routers/${r.id}`, {
      router: { routes: [{ destination: '10.100.1.0/24', nexthop: '10.77.0.5' }] },
    });
    ok(set, 200);
    assert.equal(set.body.router.routes.length, 1);
    const cleared = await call('PUT', `${N}/routers/${r.id}`, { router: { routes: null } });
    ok(cleared, 200);
    assert.deepEqual(cleared.body.router.routes, []);
  });

  it('a router interface on a subnet overlapping an attached one is a 400', async () => {
    const subnet = async (name: string, cidr: string) => {
      const net = await call('POST', `${N}/networks`, { network: { name } });
      const s = await call('POST', `${N}/subnets`, {
        subnet: { network_id: net.body.network.id, ip_version: 4, cidr },
      });
      ok(s, 201);
      return s.body.subnet.id as string;
    };
    const a = await subnet('nc-ov-a', '10.78.0.0/24');
    const b = await subnet('nc-ov-b', '10.78.0.0/24');
    const r = (await call('POST', `${N}/routers`, { router: { name: 'nc-ov' } })).body.router;
    ok(await call('PUT', `${N}/routers/${r.id}/add_router_interface`, { subnet_id: a }), 200);
    const again = await call('PUT', `${N}/routers/${r.id}/add_router_interface`, { subnet_id: b });
    ok(again, 400);
    assert.match(JSON.stringify(again.body), /overlaps with cidr/);
  });

  it('a member sees an external network but not its subnets unless it is shared', async () => {
    const mk = async (name: string, shared: boolean) => {
      const net = await call('POST', `${N}/networks`, {
        network: { name, 'router:external': true, shared },
      });
      ok(net, 201);
      ok(
        await call('POST', `${N}/subnets`, {
          subnet: {
            network_id: net.body.network.id,
            ip_version: 4,
            cidr: shared ? '172.30.1.0/24' : '172.30.2.0/24',
          },
        }),
        201,
      );
      return net.body.network.id as string;
    };
    const hidden = await mk('nc-ext', false);
    const open = await mk('nc-ext-shared', true);
    const as = async (path: string) =>
      (await (await fetch(`${cloud.url()}${path}`, { headers: { 'x-auth-token': member } })).json()) as any;
    const nets = (await as(`${N}/networks?router:external=True`)).networks.map((n: any) => n.id);
    assert.ok(nets.includes(hidden) && nets.includes(open));
    assert.deepEqual((await as(`${N}/subnets?network_id=${hidden}`)).subnets, []);
    assert.equal((await as(`${N}/subnets?network_id=${open}`)).subnets.length, 1);
  });

  it('subnet pools: CRUD, bad prefixes, subnets allocated from a pool, delete refused while used', async () => {
    const ext = await call('GET', `${N}/extensions/subnet_allocation`);
    ok(ext, 200);
    const made = await call('POST', `${N}/subnetpools`, {
      subnetpool: { name: 'nc-pool', prefixes: ['10.201.0.0/22'], min_prefixlen: 24, description: 'd' },
    });
    ok(made, 201);
    const pool = made.body.subnetpool;
    assert.equal(pool.ip_version, 4);
    assert.deepEqual(pool.prefixes, ['10.201.0.0/22']);
    assert.equal(pool.default_prefixlen, '24');
    assert.equal(pool.address_scope_id, null);
    assert.equal(pool.revision_number, 0);
    assert.deepEqual(pool.tags, []);
    assert.equal(pool.tenant_id, pool.project_id);
    assert.ok(pool.created_at && pool.updated_at);
    for (const prefixes of [[], ['10.0.0.0/33'], ['nope'], ['10.0.0.0/8', '2001:db8::/32']])
      ok(await call('POST', `${N}/subnetpools`, { subnetpool: { name: 'bad', prefixes } }), 400);
    const listed = await call('GET', `${N}/subnetpools`);
    assert.ok(listed.body.subnetpools.some((p: { id: string }) => p.id === pool.id));
    const up = await call('PUT', `${N}/subnetpools/${pool.id}`, { subnetpool: { name: 'nc-pool2' } });
    ok(up, 200);
    assert.equal(up.body.subnetpool.name, 'nc-pool2');
    assert.equal(up.body.subnetpool.revision_number, 1);
    ok(await call('GET', `${N}/subnetpools/${pool.id}`), 200);

    const net = await call('POST', `${N}/networks`, { network: { name: 'nc-pooled' } });
    const sub = (o: object) =>
      call('POST', `${N}/subnets`, {
        subnet: { network_id: net.body.network.id, ip_version: 4, subnetpool_id: pool.id, ...o },
      });
    const a = await sub({});
    ok(a, 201);
    assert.equal(a.body.subnet.cidr, '10.201.0.0/24');
    assert.equal(a.body.subnet.subnetpool_id, pool.id);
    const b = await sub({ prefixlen: 25 });
    ok(b, 201);
    assert.equal(b.body.subnet.cidr, '10.201.1.0/25');
    ok(await sub({ cidr: '10.99.0.0/24' }), 400);
    const c = await sub({ cidr: '10.201.3.0/24' });
    ok(c, 201);
    ok(await sub({ prefixlen: 23 }), 400);
    const del = await call('DELETE', `${N}/subnetpools/${pool.id}`);
    ok(del, 409);
    for (const s of [a, b, c]) ok(await call('DELETE', `${N}/subnets/${s.body.subnet.id}`), 204);
    ok(await call('DELETE', `${N}/subnetpools/${pool.id}`), 204);
    ok(await call('GET', `${N}/subnetpools/${pool.id}`), 404);
  });
});
