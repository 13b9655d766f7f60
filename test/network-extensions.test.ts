/**
 * @module Neutron extensions Tempest's network suite (tempest.api.network) found missing, over HTTP
 * against one in-process site: tags on every taggable resource, agents and DHCP/L3 scheduling, metering
 * labels and rules, quota details, the IP substring port filter, admin-only `distributed`, service
 * providers, deleting an external network with a floating IP, and the extensions listed for them.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { passwordToken, startLocalCloud } from './support/cloud.ts';
import type { LocalCloud } from './support/cloud.ts';

const N = '/network/v2.0';

describe('Neutron extensions (tempest.api.network)', () => {
  let cloud: LocalCloud;
  let admin: string;
  let member: string;
  let memberProject: string;
  const callAs = async (token: string, method: string, path: string, body?: unknown) => {
    const res = await fetch(`${cloud.url()}${path}`, {
      method,
      headers: {
        'x-auth-token': token,
        ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
      },
      ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
    });
    const text = await res.text();
    return { status: res.status, body: text ? JSON.parse(text) : undefined };
  };
  const call = (method: string, path: string, body?: unknown) => callAs(admin, method, path, body);
  const ok = (r: { status: number; body: unknown }, status: number) =>
    assert.equal(r.status, status, JSON.stringify(r.body));

  before(async () => {
    cloud = await startLocalCloud({ sites: 1 });
    admin = await cloud.adminToken();
    memberProject = (
      await call('POST', '/identity/v3/projects', { project: { name: 'nx-p', domain_id: 'default' } })
    ).body.project.id as string;
    const user = (
      await call('POST', '/identity/v3/users', {
        user: { name: 'nx-u', password: 'nx-secret-1', domain_id: 'default' },
      })
    ).body.user.id as string;
    const role = (await call('GET', '/identity/v3/roles?name=member')).body.roles[0].id as string;
    ok(await call('PUT', `/identity/v3/projects/${memberProject}/users/${user}/roles/${role}`), 204);
    member = await passwordToken(cloud.url(), { name: 'nx-u', password: 'nx-secret-1', project: 'nx-p' });
  });
  after(async () => cloud?.close());

  it('lists the extensions Tempest looks for, each shown alike', async () => {
    const list = await call('GET', `${N}/extensions`);
    ok(list, 200);
    const aliases = list.body.extensions.map((e: { alias: string }) => e.alias);
    for (const a of [
      'agent',
      'dhcp_agent_scheduler',
      'l3_agent_scheduler',
      'metering',
      'dvr',
      'tag',
      'standard-attr-tag',
      'ip-substring-filtering',
      'service-type',
      'quota_details',
    ])
      assert.ok(aliases.includes(a), a);
    // Not offered: no HA routers, unknown filters are ignored rather than refused.
    assert.ok(!aliases.includes('l3-ha'));
    assert.ok(!aliases.includes('filter-validation'));
    const one = await call('GET', `${N}/extensions/dvr`);
    ok(one, 200);
    assert.deepEqual(
      one.body.extension,
      list.body.extensions.find((e: { alias: string }) => e.alias === 'dvr'),
    );
  });

  it('tags: add, confirm, list, replace, remove one, remove all, filter, bad tags refused', async () => {
    const net = (await call('POST', `${N}/networks`, { network: { name: 'nx-tags' } })).body.network;
    const sub = (
      await call('POST', `${N}/subnets`, {
        subnet: { network_id: net.id, ip_version: 4, cidr: '10.77.0.0/24' },
      })
    ).body.subnet;
    const port = (await call('POST', `${N}/ports`, { port: { network_id: net.id } })).body.port;
    const router = (await call('POST', `${N}/routers`, { router: { name: 'nx-r' } })).body.router;
    const sg = (await call('POST', `${N}/security-groups`, { security_group: { name: 'nx-sg' } })).body
      .security_group;
    for (const [coll, id] of [
      ['networks', net.id],
      ['subnets', sub.id],
      ['ports', port.id],
      ['routers', router.id],
      ['security-groups', sg.id],
    ] as const) {
      const base = `${N}/${coll}/${id}/tags`;
      ok(await call('PUT', `${base}/red`, {}), 201);
      ok(await call('PUT', `${base}/red`, {}), 201); // idempotent
      ok(await call('GET', `${base}/red`), 204);
      ok(await call('GET', `${base}/blue`), 404);
      assert.deepEqual((await call('GET', base)).body, { tags: ['red'] });
      const replaced = await call('PUT', base, { tags: ['a', 'b', 'c'] });
      ok(replaced, 200);
      assert.deepEqual(replaced.body.tags, ['a', 'b', 'c']);
      ok(await call('DELETE', `${base}/a`), 204);
      ok(await call('DELETE', `${base}/a`), 404);
      ok(await call('GET', `${base}/b`), 204);
      ok(await call('DELETE', base), 204);
      assert.deepEqual((await call('GET', base)).body, { tags: [] });
      ok(await call('PUT', base, { tags: 'x' }), 400);
      ok(await call('PUT', base, { tags: ['x'.repeat(61)] }), 400);
      ok(await call('PUT', base, { tags: Array.from({ length: 51 }, (_, i) => `t${i}`) }), 400);
    }
    // The resource body shows its tags, with a new revision; lists filter on them.
    ok(await call('PUT', `${N}/networks/${net.id}/tags`, { tags: ['x', 'y'] }), 200);
    const shown = (await call('GET', `${N}/networks/${net.id}`)).body.network;
    assert.deepEqual(shown.tags, ['x', 'y']);
    assert.ok(shown.revision_number > 0);
    const ids = async (q: string) =>
      (await call('GET', `${N}/networks?${q}`)).body.networks.map((n: { id: string }) => n.id);
    assert.deepEqual(await ids('tags=x,y'), [net.id]);
    assert.deepEqual(await ids('tags=x,z'), []);
    assert.deepEqual(await ids('tags-any=z,y'), [net.id]);
    assert.ok(!(await ids('not-tags=x,y')).includes(net.id));
    assert.ok((await ids('not-tags=x,z')).includes(net.id));
    assert.ok(!(await ids('not-tags-any=z,y')).includes(net.id));
    // A member may not tag what it may only read, nor see what it may not.
    ok(await callAs(member, 'PUT', `${N}/networks/${net.id}/tags/m`, {}), 404);
    ok(await call('PUT', `${N}/networks/no-such/tags/m`, {}), 404);
  });

  it('agents: one DHCP and one L3 agent per site for admins, none for members', async () => {
    const list = await call('GET', `${N}/agents`);
    ok(list, 200);
    const types = list.body.agents.map((a: { agent_type: string }) => a.agent_type).sort();
    assert.deepEqual(types, ['DHCP agent', 'L3 agent']);
    const dhcp = list.body.agents.find((a: { agent_type: string }) => a.agent_type === 'DHCP agent');
    assert.equal(dhcp.alive, true);
    assert.equal(dhcp.host, dhcp.availability_zone);
    assert.equal(typeof dhcp.host, 'string');
    ok(await call('GET', `${N}/agents/${dhcp.id}`), 200);
    assert.deepEqual((await callAs(member, 'GET', `${N}/agents`)).body, { agents: [] });
    ok(await callAs(member, 'GET', `${N}/agents/${dhcp.id}`), 404);
    ok(await call('GET', `${N}/agents/no-such`), 404);

    // DHCP scheduling: a network is on its owner's DHCP agent; an admin may take it off and back.
    const net = (await call('POST', `${N}/networks`, { network: { name: 'nx-dhcp' } })).body.network;
    const hosting = await call('GET', `${N}/networks/${net.id}/dhcp-agents`);
    ok(hosting, 200);
    assert.deepEqual(
      hosting.body.agents.map((a: { id: string }) => a.id),
      [dhcp.id],
    );
    const hosted = async () =>
      (await call('GET', `${N}/agents/${dhcp.id}/dhcp-networks`)).body.networks.some(
        (n: { id: string }) => n.id === net.id,
      );
    assert.equal(await hosted(), true);
    ok(await call('POST', `${N}/agents/${dhcp.id}/dhcp-networks`, { network_id: net.id }), 409);
    ok(await call('DELETE', `${N}/agents/${dhcp.id}/dhcp-networks/${net.id}`), 204);
    assert.equal(await hosted(), false);
    assert.deepEqual((await call('GET', `${N}/networks/${net.id}/dhcp-agents`)).body.agents, []);
    ok(await call('DELETE', `${N}/agents/${dhcp.id}/dhcp-networks/${net.id}`), 409);
    ok(await call('POST', `${N}/agents/${dhcp.id}/dhcp-networks`, { network_id: net.id }), 201);
    assert.equal(await hosted(), true);
    // The flag is never shown on the network.
    const shown = (await call('GET', `${N}/networks/${net.id}`)).body.network;
    assert.ok(!Object.keys(shown).some((k) => k.startsWith('atoll:')));
    ok(await call('POST', `${N}/agents/${dhcp.id}/dhcp-networks`, {}), 400);
    ok(await callAs(member, 'GET', `${N}/agents/${dhcp.id}/dhcp-networks`), 403);

    // L3: a router is on its owner's L3 agent and stays there.
    const l3 = list.body.agents.find((a: { agent_type: string }) => a.agent_type === 'L3 agent');
    const router = (await call('POST', `${N}/routers`, { router: { name: 'nx-l3' } })).body.router;
    const routers = (await call('GET', `${N}/agents/${l3.id}/l3-routers`)).body.routers;
    assert.ok(routers.some((r: { id: string }) => r.id === router.id));
    assert.deepEqual(
      (await call('GET', `${N}/routers/${router.id}/l3-agents`)).body.agents.map((a: { id: string }) => a.id),
      [l3.id],
    );
    ok(await call('POST', `${N}/agents/${l3.id}/l3-routers`, { router_id: router.id }), 409);
    ok(await call('GET', `${N}/agents/${dhcp.id}/l3-routers`), 404);
  });

  it('metering labels and rules: admin CRUD, filters, rules go with their label', async () => {
    const made = await call('POST', `${N}/metering/metering-labels`, {
      metering_label: { name: 'nx-m', description: 'd' },
    });
    ok(made, 201);
    const label = made.body.metering_label;
    assert.equal(label.shared, false);
    assert.equal(label.project_id, label.tenant_id);
    ok(await call('GET', `${N}/metering/metering-labels/${label.id}`), 200);
    assert.equal(
      (await call('GET', `${N}/metering/metering-labels?id=${label.id}`)).body.metering_labels.length,
      1,
    );
    assert.deepEqual((await call('GET', `${N}/metering/metering-labels?id=33`)).body.metering_labels, []);
    const rule = await call('POST', `${N}/metering/metering-label-rules`, {
      metering_label_rule: {
        metering_label_id: label.id,
        direction: 'ingress',
        remote_ip_prefix: '10.0.0.0/24',
      },
    });
    ok(rule, 201);
    assert.equal(rule.body.metering_label_rule.excluded, false);
    assert.equal(rule.body.metering_label_rule.remote_ip_prefix, '10.0.0.0/24');
    const v6 = await call('POST', `${N}/metering/metering-label-rules`, {
      metering_label_rule: {
        metering_label_id: label.id,
        direction: 'egress',
        remote_ip_prefix: 'fd02::/64',
      },
    });
    ok(v6, 201);
    const rules = `${N}/metering/metering-label-rules`;
    ok(await call('GET', `${rules}/${rule.body.metering_label_rule.id}`), 200);
    // Bad rules: 400 before anything is written; the same match twice is 409.
    for (const bad of [
      { metering_label_id: label.id, direction: 'sideways', remote_ip_prefix: '10.0.0.0/24' },
      { metering_label_id: label.id, direction: 'ingress', remote_ip_prefix: 'not-a-cidr' },
      { direction: 'ingress', remote_ip_prefix: '10.0.0.0/24' },
    ])
      ok(await call('POST', rules, { metering_label_rule: bad }), 400);
    ok(
      await call('POST', rules, {
        metering_label_rule: {
          metering_label_id: label.id,
          direction: 'ingress',
          remote_ip_prefix: '10.0.0.0/24',
        },
      }),
      409,
    );
    ok(
      await call('POST', rules, { metering_label_rule: { metering_label_id: 'nope', direction: 'ingress' } }),
      404,
    );
    assert.equal((await call('GET', rules)).body.metering_label_rules.length, 2);
    // No update; members see none and make none.
    ok(
      await call('PUT', `${N}/metering/metering-labels/${label.id}`, { metering_label: { name: 'x' } }),
      405,
    );
    assert.deepEqual((await callAs(member, 'GET', `${N}/metering/metering-labels`)).body.metering_labels, []);
    ok(await callAs(member, 'POST', `${N}/metering/metering-labels`, { metering_label: { name: 'm' } }), 403);
    ok(await call('DELETE', `${N}/metering/metering-labels/${label.id}`), 204);
    assert.deepEqual((await call('GET', rules)).body.metering_label_rules, []);
  });

  it('quota details, also as details.json', async () => {
    for (const p of [`${N}/quotas/${memberProject}/details`, `${N}/quotas/${memberProject}/details.json`]) {
      const r = await call('GET', p);
      ok(r, 200);
      assert.deepEqual(Object.keys(r.body.quota.network).sort(), ['limit', 'reserved', 'used']);
    }
  });

  it('ports filter by an IP address substring', async () => {
    const net = (await call('POST', `${N}/networks`, { network: { name: 'nx-substr' } })).body.network;
    const sub = (
      await call('POST', `${N}/subnets`, {
        subnet: { network_id: net.id, ip_version: 4, cidr: '10.78.0.0/24' },
      })
    ).body.subnet;
    const mk = async (ip: string) =>
      (
        await call('POST', `${N}/ports`, {
          port: { network_id: net.id, fixed_ips: [{ subnet_id: sub.id, ip_address: ip }] },
        })
      ).body.port.id as string;
    const a = await mk('10.78.0.15');
    const b = await mk('10.78.0.27');
    const ids = async (substr: string) =>
      (await call('GET', `${N}/ports?fixed_ips=ip_address_substr=${substr}`)).body.ports.map(
        (p: { id: string }) => p.id,
      );
    assert.deepEqual(await ids('10.78.0.1'), [a]);
    assert.deepEqual((await ids('10.78.0.')).sort(), [a, b].sort());
    assert.deepEqual(await ids('10.79'), []);
  });

  it('distributed and ha are an admin’s: a member gets 403 and does not see them', async () => {
    ok(await callAs(member, 'POST', `${N}/routers`, { router: { name: 'd', distributed: true } }), 403);
    ok(await callAs(member, 'POST', `${N}/routers`, { router: { name: 'h', ha: false } }), 403);
    const mine = await callAs(member, 'POST', `${N}/routers`, { router: { name: 'nx-mine' } });
    ok(mine, 201);
    assert.ok(!('distributed' in mine.body.router));
    const id = mine.body.router.id as string;
    ok(await callAs(member, 'PUT', `${N}/routers/${id}`, { router: { distributed: true } }), 403);
    const up = await call('PUT', `${N}/routers/${id}`, { router: { distributed: true } });
    ok(up, 200);
    assert.equal(up.body.router.distributed, true);
    assert.equal((await call('GET', `${N}/routers/${id}`)).body.router.distributed, true);
    const seen = (await callAs(member, 'GET', `${N}/routers/${id}`)).body.router;
    assert.ok(!('distributed' in seen) && !('ha' in seen));
  });

  it('service providers: an empty list', async () => {
    const r = await call('GET', `${N}/service-providers`);
    ok(r, 200);
    assert.deepEqual(r.body, { service_providers: [] });
  });

  it('an external network is deleted with its unassociated floating IPs', async () => {
    const net = (
      await call('POST', `${N}/networks`, { network: { name: 'nx-ext', 'router:external': true } })
    ).body.network;
    const sub = (
      await call('POST', `${N}/subnets`, {
        subnet: { network_id: net.id, ip_version: 4, cidr: '172.31.9.0/24', enable_dhcp: false },
      })
    ).body.subnet;
    const fip = await call('POST', `${N}/floatingips`, { floatingip: { floating_network_id: net.id } });
    ok(fip, 201);
    // Another port on it still keeps it.
    const port = (await call('POST', `${N}/ports`, { port: { network_id: net.id } })).body.port;
    ok(await call('DELETE', `${N}/networks/${net.id}`), 409);
    ok(await call('GET', `${N}/floatingips/${fip.body.floatingip.id}`), 200);
    ok(await call('DELETE', `${N}/ports/${port.id}`), 204);
    ok(await call('DELETE', `${N}/networks/${net.id}`), 204);
    ok(await call('GET', `${N}/floatingips/${fip.body.floatingip.id}`), 404);
    ok(await call('GET', `${N}/subnets/${sub.id}`), 404);
  });
});
