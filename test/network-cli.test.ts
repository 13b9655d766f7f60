/**
 * @module The network API through Debian's real `openstack` CLI: networks, subnets, ports, routers,
 * security groups and floating IPs, and the Neutron faults of the failure cases.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { startLocalCloud } from './support/cloud.ts';
import type { LocalCloud } from './support/cloud.ts';

describe('network API through the openstack CLI', () => {
  let cloud: LocalCloud;
  before(async () => {
    cloud = await startLocalCloud({ sites: 1 });
  });
  after(async () => cloud?.close());

  it('creates, lists, shows and deletes networks, subnets and ports', async () => {
    const net = await cloud.osJson(['network', 'create', '--mtu', '1400', 'net1']);
    assert.equal(net.name, 'net1');
    assert.equal(net.mtu, 1400);
    const sub = await cloud.osJson([
      'subnet',
      'create',
      '--network',
      'net1',
      '--subnet-range',
      '10.1.0.0/24',
      '--dns-nameserver',
      '10.1.0.53',
      '--allocation-pool',
      'start=10.1.0.10,end=10.1.0.20',
      'sub1',
    ]);
    assert.equal(sub.cidr, '10.1.0.0/24');
    assert.equal(sub.gateway_ip, '10.1.0.1');
    const sub6 = await cloud.osJson([
      'subnet',
      'create',
      '--network',
      'net1',
      '--ip-version',
      '6',
      '--subnet-range',
      'fd00:1::/64',
      'sub6',
    ]);
    assert.equal(sub6.ip_version, 6);
    assert.equal(sub6.gateway_ip, 'fd00:1::1');
    const overlap = await cloud.os([
      'subnet',
      'create',
      '--network',
      'net1',
      '--subnet-range',
      '10.1.0.128/25',
      'bad',
    ]);
    assert.notEqual(overlap.code, 0);
    assert.match(overlap.stderr, /overlaps/);

    const port = await cloud.osJson(['port', 'create', '--network', 'net1', 'p1']);
    const fixed = port.fixed_ips as { subnet_id: string; ip_address: string }[] | string;
    const text = typeof fixed === 'string' ? fixed : JSON.stringify(fixed);
    assert.match(text, /10\.1\.0\.10/);
    assert.match(text, /fd00:1::2/);
    assert.match(port.mac_address, /^fa:16:3e(:[0-9a-f]{2}){3}$/);

    const chosen = await cloud.osJson([
      'port',
      'create',
      '--network',
      'net1',
      '--fixed-ip',
      'subnet=sub1,ip-address=10.1.0.15',
      'p2',
    ]);
    assert.match(JSON.stringify(chosen.fixed_ips), /10\.1\.0\.15/);
    const again = await cloud.os([
      'port',
      'create',
      '--network',
      'net1',
      '--fixed-ip',
      'subnet=sub1,ip-address=10.1.0.15',
      'p3',
    ]);
    assert.notEqual(again.code, 0);
    assert.match(again.stderr, /10\.1\.0\.15/);

    const list = await cloud.osJson(['port', 'list', '--network', 'net1']);
    assert.equal(list.length, 2);
    const shown = await cloud.osJson(['port', 'show', 'p1']);
    assert.equal(shown.id, port.id);
    const nets = await cloud.osJson(['network', 'list']);
    assert.ok(nets.some((n: { Name: string }) => n.Name === 'net1'));
    const shownNet = await cloud.osJson(['network', 'show', 'net1']);
    assert.equal(shownNet.id, net.id);

    const inUse = await cloud.os(['network', 'delete', 'net1']);
    assert.notEqual(inUse.code, 0);
    const subInUse = await cloud.os(['subnet', 'delete', 'sub1']);
    assert.notEqual(subInUse.code, 0);

    assert.equal((await cloud.os(['port', 'delete', 'p1', 'p2'])).code, 0);
    assert.equal((await cloud.os(['subnet', 'delete', 'sub6'])).code, 0);
    assert.equal((await cloud.os(['network', 'delete', 'net1'])).code, 0);
    const gone = await cloud.os(['network', 'show', 'net1']);
    assert.notEqual(gone.code, 0);
  });

  it('security groups: a default group with its rules, custom groups and rules', async () => {
    const groups = await cloud.osJson(['security', 'group', 'list']);
    assert.ok(groups.some((g: { Name: string }) => g.Name === 'default'));
    const sg = await cloud.osJson(['security', 'group', 'create', '--description', 'web', 'web']);
    assert.equal(sg.name, 'web');
    const rule = await cloud.osJson([
      'security',
      'group',
      'rule',
      'create',
      '--protocol',
      'tcp',
      '--dst-port',
      '22',
      '--remote-ip',
      '0.0.0.0/0',
      'web',
    ]);
    assert.equal(rule.port_range_min, 22);
    const dup = await cloud.os([
      'security',
      'group',
      'rule',
      'create',
      '--protocol',
      'tcp',
      '--dst-port',
      '22',
      '--remote-ip',
      '0.0.0.0/0',
      'web',
    ]);
    assert.notEqual(dup.code, 0);
    const rules = await cloud.osJson(['security', 'group', 'rule', 'list', 'web']);
    assert.equal(rules.length, 3); // two default egress rules + ours
    assert.equal((await cloud.os(['security', 'group', 'rule', 'delete', rule.id])).code, 0);
    assert.equal((await cloud.os(['security', 'group', 'delete', 'web'])).code, 0);
  });

  it('routers with interfaces and an external gateway, and floating IPs', async () => {
    await cloud.osJson(['network', 'create', '--external', 'ext']);
    await cloud.osJson([
      'subnet',
      'create',
      '--network',
      'ext',
      '--subnet-range',
      '203.0.113.0/24',
      '--no-dhcp',
      'ext-sub',
    ]);
    await cloud.osJson(['network', 'create', 'priv']);
    await cloud.osJson([
      'subnet',
      'create',
      '--network',
      'priv',
      '--subnet-range',
      '192.168.5.0/24',
      'priv-sub',
    ]);
    const router = await cloud.osJson(['router', 'create', 'r1']);
    assert.equal(router.name, 'r1');
    assert.equal((await cloud.os(['router', 'add', 'subnet', 'r1', 'priv-sub'])).code, 0);
    assert.equal((await cloud.os(['router', 'set', '--external-gateway', 'ext', 'r1'])).code, 0);
    const shown = await cloud.osJson(['router', 'show', 'r1']);
    assert.match(JSON.stringify(shown.external_gateway_info), /203\.0\.113\./);
    const ifaces = await cloud.osJson(['port', 'list', '--router', 'r1']);
    assert.ok(
      ifaces.some((p: { 'Fixed IP Addresses': unknown }) =>
        JSON.stringify(p['Fixed IP Addresses']).includes('192.168.5.1'),
      ),
    );

    const vm = await cloud.osJson(['port', 'create', '--network', 'priv', 'vm-port']);
    const fip = await cloud.osJson(['floating', 'ip', 'create', 'ext']);
    assert.match(fip.floating_ip_address, /^203\.0\.113\./);
    assert.equal((await cloud.os(['floating', 'ip', 'set', '--port', 'vm-port', fip.id])).code, 0);
    const fshown = await cloud.osJson(['floating', 'ip', 'show', fip.id]);
    assert.equal(fshown.port_id, vm.id);
    const fl = await cloud.osJson(['floating', 'ip', 'list']);
    assert.equal(fl.length, 1);

    const busy = await cloud.os(['router', 'delete', 'r1']);
    assert.notEqual(busy.code, 0);
    assert.equal((await cloud.os(['floating', 'ip', 'delete', fip.id])).code, 0);
    assert.equal((await cloud.os(['port', 'delete', 'vm-port'])).code, 0);
    assert.equal((await cloud.os(['router', 'remove', 'subnet', 'r1', 'priv-sub'])).code, 0);
    assert.equal((await cloud.os(['router', 'unset', '--external-gateway', 'r1'])).code, 0);
    assert.equal((await cloud.os(['router', 'delete', 'r1'])).code, 0);
    assert.equal((await cloud.os(['network', 'delete', 'priv', 'ext'])).code, 0);
  });

  it('a full subnet fails with IpAddressGenerationFailure', async () => {
    await cloud.osJson(['network', 'create', 'tiny']);
    await cloud.osJson([
      'subnet',
      'create',
      '--network',
      'tiny',
      '--subnet-range',
      '10.9.0.0/29',
      'tiny-sub',
    ]);
    // /29: .1 is the gateway, .2-.6 are the pool
    for (let i = 0; i < 5; i++) await cloud.osJson(['port', 'create', '--network', 'tiny', `t${i}`]);
    const full = await cloud.os(['port', 'create', '--network', 'tiny', 't5']);
    assert.notEqual(full.code, 0);
    assert.match(full.stderr, /No more IP addresses available/);
  });

  it('a router refuses a second interface on an overlapping subnet; extra routes set and cleared', async () => {
    for (const [net, cidr] of [
      ['ov-a', '10.61.0.0/24'],
      ['ov-b', '10.61.0.0/25'],
    ] as const) {
      await cloud.osJson(['network', 'create', net]);
      await cloud.osJson(['subnet', 'create', '--network', net, '--subnet-range', cidr, `${net}-sub`]);
    }
    await cloud.osJson(['router', 'create', 'ov-r']);
    assert.equal((await cloud.os(['router', 'add', 'subnet', 'ov-r', 'ov-a-sub'])).code, 0);
    const clash = await cloud.os(['router', 'add', 'subnet', 'ov-r', 'ov-b-sub']);
    assert.notEqual(clash.code, 0);
    assert.match(clash.stderr, /overlaps with cidr/);
    const route = ['--route', 'destination=10.62.0.0/24,gateway=10.61.0.9'];
    assert.equal((await cloud.os(['router', 'set', ...route, 'ov-r'])).code, 0);
    assert.equal((await cloud.osJson(['router', 'show', 'ov-r'])).routes.length, 1);
    assert.equal((await cloud.os(['router', 'set', '--no-route', 'ov-r'])).code, 0);
    assert.deepEqual((await cloud.osJson(['router', 'show', 'ov-r'])).routes, []);
  });

  it("bad security group rule ports get Neutron's message", async () => {
    await cloud.osJson(['security', 'group', 'create', 'ports']);
    const bad = await cloud.os([
      'security',
      'group',
      'rule',
      'create',
      '--protocol',
      'tcp',
      '--dst-port',
      '80:65536',
      'ports',
    ]);
    assert.notEqual(bad.code, 0);
    assert.match(bad.stderr, /Invalid value for port 65536/);
  });
});
