/**
 * @module The Linux data plane with real guests (issue 14): one `atoll site` process with the QEMU
 * driver under TCG and `services.network.dataplane: "linux"`. Two servers on one network get the
 * API's fixed IPs by DHCP (dnsmasq in qdhcp-<network>) and ping each other; a kill -9 of the site,
 * with its bridge, namespace and dnsmasq removed behind its back, converges after the restart (a
 * rebooted guest gets its address and reaches the other again); deleting
 * everything leaves no bridge, tap, namespace or dnsmasq. Skipped when not root or without dnsmasq.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { eventually, startLocalCloud } from './support/cloud.ts';
import { buildGuest, qemuPids, qemuSkip, GuestApi } from './support/guests.ts';
import { startProcessFederation } from './support/processes.ts';
import type { ProcFederation } from './support/processes.ts';
import { defaultGuestDir } from '../src/services/compute/service.ts';
import { tapName } from '../src/services/common/vif.ts';
import { bridgeName, dhcpNamespace } from '../src/services/network/dataplane/dataplane.ts';

function has(cmd: string, arg: string): boolean {
  try {
    execFileSync(cmd, [arg], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

const skip =
  (await qemuSkip()) ??
  (process.getuid?.() !== 0
    ? 'the Linux data plane needs root (bridges, taps, namespaces)'
    : !has('dnsmasq', '--version')
      ? 'dnsmasq is not installed (Debian: dnsmasq-base; sh scripts/install-deps.sh)'
      : !has('ip', '-V')
        ? 'ip (iproute2) is not installed'
        : undefined);

const booted: string[] = [];
const dataplaneNets: string[] = [];
let fed: ProcFederation;
let token: string;

before(async () => {
  if (skip) return;
  await buildGuest();
  const services = {
    compute: { driver: 'qemu', accel: 'tcg', shutdownTimeoutMs: 1000, powerSyncMs: 1000, vcpus: 8 },
    network: { dataplane: 'linux', dataplaneReconcileMs: 1000 },
  };
  fed = await startProcessFederation(1, {
    siteArgs: (_i, dir) => {
      const file = join(dir, 'site.json');
      writeFileSync(file, JSON.stringify({ services }));
      return ['--config', file];
    },
  });
  token = await fed.token(0);
});

after(async () => {
  // Guests outlive their site by design: a failed test must not leave any behind.
  for (const id of booted)
    for (const pid of qemuPids(id))
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // gone
      }
  if (process.env.ATOLL_TEST_SITE_LOG)
    writeFileSync(process.env.ATOLL_TEST_SITE_LOG, fed?.sites[0]?.output ?? '');
  await fed?.stop();
  // So do devices and dnsmasq: a failed test removes what the site made.
  if (skip) return;
  for (const l of ours())
    try {
      execFileSync('ip', ['link', 'del', 'dev', l.ifname], { stdio: 'ignore' });
    } catch {
      // gone with its namespace
    }
  for (const ns of namespaces().filter((n) => dataplaneNets.some((id) => n === dhcpNamespace(id)))) {
    for (const pid of dataplaneNets.flatMap(dnsmasqPids)) process.kill(pid, 'SIGKILL');
    execFileSync('ip', ['netns', 'del', ns]);
  }
});

/** This file's calls, through the shared real-guest client (test/support/guests.ts). */
const client = () => new GuestApi(fed.sites[0]!.url, token, '2.37');
const api = (method: string, path: string, body?: unknown) => client().call(method, path, body);
const image = (name: string, data: Uint8Array, attrs: Record<string, string>) =>
  client().image(name, data, attrs);

const consoleLog = async (id: string) =>
  ((await api('POST', `/compute/v2.1/servers/${id}/action`, { 'os-getConsoleOutput': {} })).body?.output ??
    '') as string;

interface Link {
  ifname: string;
  ifalias?: string;
  master?: string;
  mtu?: number;
}
const links = (): Link[] =>
  JSON.parse(execFileSync('ip', ['-j', 'link', 'show'], { encoding: 'utf8' })) as Link[];
const namespaces = (): string[] =>
  execFileSync('ip', ['netns', 'list'], { encoding: 'utf8' })
    .split('\n')
    .map((l) => l.split(' ')[0]!)
    .filter(Boolean);
/** The dnsmasq processes serving a network (their pid file is under the site's dataplane/dhcp/<network>). */
const dnsmasqPids = (networkId: string): number[] =>
  execFileSync('ps', ['-eo', 'pid=,args='], { encoding: 'utf8' })
    .split('\n')
    .filter((l) => l.includes('dnsmasq') && l.includes(networkId))
    .map((l) => Number(l.trim().split(' ')[0]));
/** Devices the site made (their alias names it): none may be left after a delete. */
const ours = () => links().filter((l) => l.ifalias?.startsWith('atoll site-a '));

test(
  'two guests on one network get their fixed IPs by DHCP and ping each other; kill -9 converges; delete leaves nothing',
  { skip, timeout: 500_000 },
  async () => {
    const guest = defaultGuestDir();
    const kernel = await image('k', readFileSync(join(guest, 'vmlinuz')), { disk_format: 'aki' });
    const ramdisk = await image('r', readFileSync(join(guest, 'initramfs.gz')), { disk_format: 'ari' });
    const root = await image('tiny', new Uint8Array(1024 * 1024), {
      disk_format: 'raw',
      kernel_id: kernel,
      ramdisk_id: ramdisk,
    });
    const fl = await api('POST', '/compute/v2.1/flavors', {
      flavor: { name: 'g', ram: 192, vcpus: 1, disk: 1 },
    });
    assert.equal(fl.status, 200, JSON.stringify(fl.body));

    const n = await api('POST', '/network/v2.0/networks', { network: { name: 'dp', mtu: 1400 } });
    assert.equal(n.status, 201, JSON.stringify(n.body));
    const net = n.body.network.id as string;
    dataplaneNets.push(net);
    const s = await api('POST', '/network/v2.0/subnets', {
      subnet: { network_id: net, ip_version: 4, cidr: '10.77.0.0/24', name: 'dp4' },
    });
    assert.equal(s.status, 201, JSON.stringify(s.body));
    const ports: { id: string; ip: string; mac: string }[] = [];
    for (const name of ['p1', 'p2']) {
      const p = await api('POST', '/network/v2.0/ports', { port: { network_id: net, name } });
      assert.equal(p.status, 201, JSON.stringify(p.body));
      ports.push({
        id: p.body.port.id,
        ip: p.body.port.fixed_ips[0].ip_address,
        mac: p.body.port.mac_address,
      });
    }

    // Each guest pings the other (retrying while the other boots) and prints the outcome.
    const vms: string[] = [];
    for (const [i, p] of ports.entries()) {
      const peer = ports[1 - i]!.ip;
      const script = [
        '#!/bin/sh',
        'i=0',
        `while [ $i -lt 60 ]; do ping -c 1 -W 1 ${peer} >/dev/null 2>&1 && break; i=$((i + 1)); sleep 1; done`,
        `ping -c 3 -W 2 ${peer} >/tmp/ping 2>&1 && echo "atoll-ping: ${peer} ok" || echo "atoll-ping: ${peer} failed"`,
        'grep -E "packets|bytes from" /tmp/ping',
      ].join('\n');
      const c = await api('POST', '/compute/v2.1/servers', {
        server: {
          name: `vm${i + 1}`,
          flavorRef: fl.body.flavor.id,
          imageRef: root,
          networks: [{ port: p.id }],
          user_data: Buffer.from(script + '\n').toString('base64'),
        },
      });
      assert.equal(c.status, 202, JSON.stringify(c.body));
      vms.push(c.body.server.id as string);
      booted.push(c.body.server.id as string);
    }

    // Devices named after the rows: a bridge per network, a tap per port on it, both at the network's MTU.
    const br = bridgeName(net);
    await eventually(
      () => ports.every((p) => links().some((l) => l.ifname === tapName(p.id) && l.master === br)),
      60_000,
      'taps on the bridge',
    );
    const byName = new Map(links().map((l) => [l.ifname, l]));
    assert.equal(byName.get(br)?.mtu, 1400);
    assert.equal(byName.get(br)?.ifalias, `atoll site-a network ${net}`);
    for (const p of ports) assert.equal(byName.get(tapName(p.id))?.mtu, 1400);
    assert.ok(namespaces().includes(dhcpNamespace(net)));
    assert.equal(dnsmasqPids(net).length, 1);

    for (const [i, vm] of vms.entries()) {
      const me = ports[i]!;
      const peer = ports[1 - i]!;
      const out = await eventually(
        async () => {
          const o = await consoleLog(vm);
          return /atoll-ping: \S+ (ok|failed)/.test(o) ? o : undefined;
        },
        240_000,
        `vm${i + 1} pings`,
      );
      process.stdout.write(
        out
          .split('\n')
          .filter((l) => l.includes('atoll-'))
          .map((l) => `# vm${i + 1} ${l}\n`)
          .join(''),
      );
      assert.ok(
        out.includes(`atoll-guest: ip addr eth0 ${me.ip}/24 mtu 1400`),
        `vm${i + 1} has ${me.ip}:\n${out}`,
      );
      assert.ok(out.includes(`atoll-ping: ${peer.ip} ok`), `vm${i + 1} reaches ${peer.ip}:\n${out}`);
    }

    // kill -9, and the bridge, the namespace and dnsmasq go behind the site's back: the restart converges.
    await fed.kill(0);
    for (const pid of dnsmasqPids(net)) process.kill(pid, 'SIGKILL');
    execFileSync('ip', ['netns', 'del', dhcpNamespace(net)]);
    execFileSync('ip', ['link', 'del', 'dev', br]);
    assert.ok(!links().some((l) => l.ifname === br));
    await fed.restart(0);
    token = await fed.token(0);
    await eventually(
      () =>
        ports.every((p) => links().some((l) => l.ifname === tapName(p.id) && l.master === br)) &&
        namespaces().includes(dhcpNamespace(net)) &&
        dnsmasqPids(net).length === 1,
      60_000,
      'bridge, taps, namespace and dnsmasq back after the restart',
    );
    // The path works again: vm1 reboots, gets its address from the new dnsmasq and reaches vm2 over
    // the rebuilt bridge.
    const r = await api('POST', `/compute/v2.1/servers/${vms[0]}/action`, { reboot: { type: 'HARD' } });
    assert.equal(r.status, 202, JSON.stringify(r.body));
    const again = await eventually(
      async () => {
        const o = await consoleLog(vms[0]!);
        return o.split(/atoll-ping: \S+ (?:ok|failed)/).length - 1 >= 2 ? o : undefined;
      },
      240_000,
      'vm1 pings again after the restart',
    );
    const tail = again.slice(again.lastIndexOf('atoll-guest: booted'));
    assert.ok(tail.includes(`atoll-guest: ip addr eth0 ${ports[0]!.ip}/24 mtu 1400`), tail);
    assert.ok(tail.includes(`atoll-ping: ${ports[1]!.ip} ok`), tail);

    // Delete everything: no device, namespace or dnsmasq is left.
    for (const vm of vms) assert.equal((await api('DELETE', `/compute/v2.1/servers/${vm}`)).status, 204);
    for (const vm of vms)
      await eventually(
        async () => (await api('GET', `/compute/v2.1/servers/${vm}`)).status === 404,
        60_000,
        'deleted',
      );
    for (const p of ports) assert.equal((await api('DELETE', `/network/v2.0/ports/${p.id}`)).status, 204);
    assert.equal((await api('DELETE', `/network/v2.0/networks/${net}`)).status, 204);
    await eventually(
      () =>
        ours().length === 0 && !namespaces().includes(dhcpNamespace(net)) && dnsmasqPids(net).length === 0,
      30_000,
      'nothing left behind',
    );
    for (const vm of vms) assert.deepEqual(qemuPids(vm), []);
  },
);

test('a site with an unknown data plane does not start, with a message', async () => {
  await assert.rejects(
    startLocalCloud({ site: { services: { network: { dataplane: 'ovs' } } } }),
    /services\.network\.dataplane must be one of none, linux \(got ovs\)/,
  );
});
