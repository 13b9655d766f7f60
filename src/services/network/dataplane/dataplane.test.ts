/**
 * @module The data plane's pure half and the Linux commands it issues: the desired state from rows
 * (which ports this site plugs, names, MTU, the DHCP hosts), and a reconcile against a fake `ip`
 * that makes what is missing, leaves what matches alone and removes only its own strays.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import type { Obj } from '../../common/input.ts';
import { tapName } from '../../common/vif.ts';
import { bridgeName, desiredState, dhcpNamespace, dhcpVeth, vifsOf } from './dataplane.ts';
import type { DataPlaneRows } from './dataplane.ts';
import { LinuxDataPlane, tapMac } from './linux.ts';
import { nicArgs } from '../../compute/agent/qemu-driver.ts';

const NET = '11111111-2222-3333-4444-555555555555';
const P1 = 'aaaaaaaa-0000-0000-0000-000000000001';
const P2 = 'bbbbbbbb-0000-0000-0000-000000000002';
const P3 = 'cccccccc-0000-0000-0000-000000000003';

function port(id: string, mac: string, ip: string, extra: Obj = {}): Obj {
  return {
    id,
    network_id: NET,
    mac_address: mac,
    fixed_ips: [{ subnet_id: 'sub4', ip_address: ip }],
    device_owner: 'compute:site-a',
    'binding:host_id': 'site-a-host-0',
    ...extra,
  };
}

function rows(ports: { owner: string; body: Obj }[], net: Obj = { id: NET, mtu: 1400 }): DataPlaneRows {
  const subnets: Obj[] = [
    { id: 'sub4', ip_version: 4, cidr: '10.0.0.0/24', gateway_ip: '10.0.0.1', enable_dhcp: true },
    { id: 'sub6', ip_version: 6, cidr: 'fd00::/64', enable_dhcp: true },
  ];
  return {
    network: (id) => (id === NET ? net : undefined),
    subnetsOf: (id) => (id === NET ? subnets : []),
    portsOf: (id) => ports.filter((p) => p.body.network_id === id),
    ports: () => ports,
  };
}

test('desired state: a bridge per network with ports bound here, a tap per port, the DHCP hosts of every port', () => {
  const ps = [
    { owner: 'site-a', body: port(P2, 'fa:16:3e:00:00:02', '10.0.0.3') },
    { owner: 'site-a', body: port(P1, 'fa:16:3e:00:00:01', '10.0.0.2') },
    // unbound, and another site's port: not plugged here, but their addresses are the API's
    { owner: 'site-a', body: port(P3, 'fa:16:3e:00:00:03', '10.0.0.4', { 'binding:host_id': '' }) },
    { owner: 'site-b', body: port('dddddddd-0', 'fa:16:3e:00:00:04', '10.0.0.5') },
  ];
  const want = desiredState('site-a', rows(ps));
  assert.equal(want.networks.length, 1);
  const n = want.networks[0]!;
  assert.equal(n.bridge, 'brq11111111-22');
  assert.equal(n.mtu, 1400);
  assert.deepEqual(
    n.ports.map((p) => p.tap),
    ['tapaaaaaaaa-00', 'tapbbbbbbbb-00'],
  );
  assert.deepEqual(n.dhcp, [
    { id: 'sub4', network: '10.0.0.0', prefix: 24, gateway: '10.0.0.1', dnsServers: [] },
  ]);
  assert.deepEqual(n.hosts, [
    'fa:16:3e:00:00:01,10.0.0.2',
    'fa:16:3e:00:00:02,10.0.0.3',
    'fa:16:3e:00:00:03,10.0.0.4',
    'fa:16:3e:00:00:04,10.0.0.5',
  ]);
  // Names fit Linux's 15 characters.
  for (const name of [n.bridge, ...n.ports.map((p) => p.tap), dhcpVeth(NET).host, dhcpVeth(NET).ns])
    assert.ok(name.length <= 15, name);
  assert.equal(dhcpNamespace(NET), `qdhcp-${NET}`);
  assert.deepEqual(
    desiredState('site-b', rows(ps)).networks[0]?.ports.map((p) => p.id),
    ['dddddddd-0'],
  );
  assert.deepEqual(vifsOf('site-a', rows(ps), [ps[1]!]), [
    { portId: P1, mac: 'fa:16:3e:00:00:01', tap: tapName(P1), mtu: 1400 },
  ]);
  // No port bound here: nothing at all; no MTU on the network: 1500.
  assert.deepEqual(desiredState('site-c', rows(ps)).networks, []);
  assert.equal(desiredState('site-a', rows(ps, { id: NET })).networks[0]?.mtu, 1500);
});

/** A fake `ip`: links as JSON, namespaces, and every command it was asked to run. */
function fakeIp(links: Obj[], netns: string[] = []) {
  const calls: string[] = [];
  const runner = async (cmd: string, args: string[]): Promise<string> => {
    const line = [cmd, ...args].join(' ');
    calls.push(line);
    if (line === 'ip -j link show') return JSON.stringify(links);
    if (line === 'ip netns list') return netns.join('\n');
    if (args.includes('addr') && args.includes('show')) return '[{"addr_info":[]}]';
    return '';
  };
  return { calls, runner };
}

const silent = { info() {}, warn() {}, error() {}, debug() {}, child: () => silent };

test('linux reconcile: makes what is missing, leaves what matches, removes only its own strays', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'atoll-dp-test-'));
  try {
    const ps = [{ owner: 'site-a', body: port(P1, 'fa:16:3e:00:00:01', '10.0.0.2') }];
    const want = desiredState('site-a', rows(ps));
    const br = bridgeName(NET);
    const tap = tapName(P1);
    const { calls, runner } = fakeIp([
      // the bridge exists and matches; a stray tap of ours; another program's tap, never touched
      { ifname: br, ifalias: `atoll site-a network ${NET}`, mtu: 1400, flags: ['UP'] },
      { ifname: 'tapdeadbeef-00', ifalias: 'atoll site-a port deadbeef-0000' },
      { ifname: 'tap0', ifalias: 'someone else' },
      { ifname: 'tapfeedface-00', ifalias: 'atoll site-b port feedface-0000' },
    ]);
    const plane = new LinuxDataPlane({ site: 'site-a', stateDir: dir, log: silent, runner });
    await plane.reconcile(want);
    const v = dhcpVeth(NET);
    assert.ok(!calls.some((c) => c.startsWith(`ip link add ${br}`)), 'the bridge is not made again');
    assert.ok(!calls.some((c) => c.startsWith(`ip link set dev ${br}`)), 'nor changed');
    assert.ok(calls.includes(`ip tuntap add dev ${tap} mode tap`));
    assert.ok(calls.includes(`ip link set dev ${tap} address ${tapMac('fa:16:3e:00:00:01')}`));
    assert.ok(
      calls.includes(`ip link set dev ${tap} master ${br} mtu 1400 alias atoll site-a port ${P1} up`),
    );
    assert.ok(calls.includes(`ip netns add ${dhcpNamespace(NET)}`));
    assert.ok(
      calls.includes(`ip link add ${v.host} type veth peer name ${v.ns} netns ${dhcpNamespace(NET)}`),
    );
    assert.ok(calls.includes(`ip -n ${dhcpNamespace(NET)} addr add 10.0.0.0/24 dev ${v.ns}`));
    const dnsmasq = calls.find((c) => c.startsWith(`ip netns exec ${dhcpNamespace(NET)} dnsmasq`));
    assert.ok(dnsmasq);
    assert.match(dnsmasq, /--port=0/);
    assert.match(dnsmasq, /--dhcp-range=set:s0,10\.0\.0\.0,static,255\.255\.255\.0,86400s/);
    assert.match(dnsmasq, /option:router,10\.0\.0\.1/);
    assert.match(dnsmasq, /option:mtu,1400/);
    assert.equal(readFileSync(join(dir, 'dhcp', NET, 'hosts'), 'utf8'), 'fa:16:3e:00:00:01,10.0.0.2\n');
    assert.ok(calls.includes('ip tuntap del dev tapdeadbeef-00 mode tap'), 'our stray tap goes');
    assert.ok(!calls.some((c) => c.includes('tap0') || c.includes('tapfeedface')), "others' devices stay");

    // Nothing bound any more: the bridge, the veth and the DHCP namespace go.
    const gone = fakeIp(
      [
        { ifname: br, ifalias: `atoll site-a network ${NET}` },
        { ifname: tap, ifalias: `atoll site-a port ${P1}` },
        { ifname: v.host, ifalias: `atoll site-a dhcp ${NET}` },
      ],
      [dhcpNamespace(NET)],
    );
    await new LinuxDataPlane({ site: 'site-a', stateDir: dir, log: silent, runner: gone.runner }).reconcile({
      networks: [],
    });
    assert.ok(gone.calls.includes(`ip link del dev ${br}`));
    assert.ok(gone.calls.includes(`ip tuntap del dev ${tap} mode tap`));
    assert.ok(gone.calls.includes(`ip link del dev ${v.host}`));
    assert.ok(gone.calls.includes(`ip netns del ${dhcpNamespace(NET)}`));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('linux check: a clear message when a tool is missing', async () => {
  const plane = new LinuxDataPlane({
    site: 'site-a',
    stateDir: '/nonexistent',
    log: silent,
    dnsmasq: 'dnsmasq-not-here',
    runner: async (cmd) => {
      if (cmd === 'dnsmasq-not-here') throw new Error('spawn dnsmasq-not-here ENOENT');
      return '';
    },
  });
  if (process.getuid?.() === 0)
    await assert.rejects(plane.check(), /needs dnsmasq-not-here \(Debian: dnsmasq-base\)/);
  else await assert.rejects(plane.check(), /needs root/);
});

test("the QEMU driver's NICs: the data plane's tap and the port's MAC, bad names refused", () => {
  const [vif] = vifsOf(
    'site-a',
    rows([{ owner: 'site-a', body: port(P1, 'fa:16:3e:00:00:01', '10.0.0.2') }]),
    [{ owner: 'site-a', body: port(P1, 'fa:16:3e:00:00:01', '10.0.0.2') }],
  );
  assert.deepEqual(nicArgs([vif!]), [
    '-netdev',
    'tap,id=net0,ifname=tapaaaaaaaa-00,script=no,downscript=no',
    '-device',
    'virtio-net-pci,netdev=net0,mac=fa:16:3e:00:00:01,host_mtu=1400',
  ]);
  assert.throws(() => nicArgs([{ ...vif!, tap: 'tap,x=y' }]), /bad NIC/);
  assert.throws(() => nicArgs([{ ...vif!, mac: 'fa:16:3e:00:00:01,romfile=/x' }]), /bad NIC/);
});
