/**
 * @module The Linux data plane: `ip` (links, bridges, taps, veths, namespaces) and dnsmasq, every
 * command spawned asynchronously (the event loop never waits on the kernel). Each link it makes
 * carries an alias `atoll <site> <kind> <id>` (shown by `ip link`), so an operator traces a device to
 * its row and reconcile removes only its own strays, never another program's devices. DHCP state
 * (dnsmasq's pid file and hosts file) lives in `<stateDir>/dhcp/<network id>/`; a namespace there that
 * no row explains is removed with its dnsmasq. Guests and dnsmasq outlive the site: a restart
 * reconciles, it does not rebuild.
 */
import { existsSync, readFileSync } from 'node:fs';
import { mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from '../../../core/ports.ts';
import { run } from '../../common/run-program.ts';
import type { DataPlane, DesiredNetwork, DesiredState } from './dataplane.ts';
import { dhcpNamespace, dhcpVeth } from './dataplane.ts';

/** Runs a program to completion; rejects with its stderr when it fails. */
export type Runner = (cmd: string, args: string[]) => Promise<string>;

export interface LinuxDataPlaneOptions {
  site: string;
  /** Where dnsmasq's files live (one folder per network). */
  stateDir: string;
  log: Logger;
  runner?: Runner;
  ip?: string;
  dnsmasq?: string;
  /** DHCP lease time handed to guests (seconds; Neutron's dhcp_lease_duration: 86400). */
  leaseSeconds?: number;
}

interface Link {
  ifname: string;
  ifalias?: string;
  master?: string;
  mtu?: number;
  address?: string;
  flags?: string[];
}

/** A tap's own MAC: the port's with the first octet fe (as libvirt does), so the bridge never takes the guest's MAC. */
export const tapMac = (mac: string): string => `fe${mac.slice(2)}`;

/** dotted netmask of a prefix length */
function netmask(prefix: number): string {
  const m = prefix === 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0;
  return [24, 16, 8, 0].map((s) => (m >>> s) & 255).join('.');
}

export class LinuxDataPlane implements DataPlane {
  readonly name = 'linux' as const;
  private readonly run: Runner;
  private readonly ip: string;
  private readonly dnsmasq: string;

  constructor(private opts: LinuxDataPlaneOptions) {
    this.run = opts.runner ?? ((cmd, args) => run(cmd, args, 30_000));
    this.ip = opts.ip ?? 'ip';
    this.dnsmasq = opts.dnsmasq ?? 'dnsmasq';
  }

  private alias(kind: string, id: string): string {
    return `atoll ${this.opts.site} ${kind} ${id}`;
  }

  async check(): Promise<void> {
    const need = 'services.network.dataplane "linux"';
    if (typeof process.getuid === 'function' && process.getuid() !== 0)
      throw new Error(`${need} needs root (bridges, taps and namespaces); run as root or set it to "none"`);
    for (const [cmd, arg, pkg] of [
      [this.ip, '-V', 'iproute2'],
      [this.dnsmasq, '--version', 'dnsmasq-base'],
    ] as const) {
      try {
        await this.run(cmd, [arg]);
      } catch (e) {
        throw new Error(`${need} needs ${cmd} (Debian: ${pkg}): ${(e as Error).message.split('\n')[0]}`);
      }
    }
  }

  private async links(): Promise<Link[]> {
    return JSON.parse(await this.run(this.ip, ['-j', 'link', 'show'])) as Link[];
  }

  /** Sets master, MTU, alias and up on a link when they differ (one `ip link set`). */
  private async settle(
    l: Link | undefined,
    name: string,
    want: { master?: string; mtu: number; alias: string },
  ) {
    const args: string[] = [];
    if (want.master && l?.master !== want.master) args.push('master', want.master);
    if (l?.mtu !== want.mtu) args.push('mtu', String(want.mtu));
    if (l?.ifalias !== want.alias) args.push('alias', want.alias);
    if (!l?.flags?.includes('UP')) args.push('up');
    if (args.length) await this.run(this.ip, ['link', 'set', 'dev', name, ...args]);
  }

  async reconcile(want: DesiredState): Promise<void> {
    const have = new Map((await this.links()).map((l) => [l.ifname, l]));
    const keep = new Set<string>();
    const errors: string[] = [];
    const attempt = async (what: string, fn: () => Promise<void>) => {
      try {
        await fn();
      } catch (e) {
        errors.push(`${what}: ${(e as Error).message}`);
      }
    };
    for (const net of want.networks) {
      keep.add(net.bridge);
      await attempt(`bridge ${net.bridge}`, async () => {
        if (!have.has(net.bridge)) await this.run(this.ip, ['link', 'add', net.bridge, 'type', 'bridge']);
        await this.settle(have.get(net.bridge), net.bridge, {
          mtu: net.mtu,
          alias: this.alias('network', net.id),
        });
      });
      for (const p of net.ports) {
        keep.add(p.tap);
        await attempt(`tap ${p.tap}`, async () => {
          const l = have.get(p.tap);
          if (!l) {
            await this.run(this.ip, ['tuntap', 'add', 'dev', p.tap, 'mode', 'tap']);
            await this.run(this.ip, ['link', 'set', 'dev', p.tap, 'address', tapMac(p.mac)]);
          }
          await this.settle(l, p.tap, { master: net.bridge, mtu: net.mtu, alias: this.alias('port', p.id) });
        });
      }
      if (net.dhcp.length) {
        keep.add(dhcpVeth(net.id).host);
        await attempt(`dhcp of ${net.id}`, () => this.dhcp(net, have));
      }
    }
    // Strays: our links that no row explains (a tap of a deleted port, a bridge of a network with no port here).
    const prefix = `atoll ${this.opts.site} `;
    for (const l of have.values()) {
      if (!l.ifalias?.startsWith(prefix) || keep.has(l.ifname)) continue;
      await attempt(`remove ${l.ifname}`, async () => {
        // A tap is a tun device: clearing persist removes it once qemu (if any) has closed it.
        if (l.ifalias!.startsWith(`${prefix}port `))
          await this.run(this.ip, ['tuntap', 'del', 'dev', l.ifname, 'mode', 'tap']);
        else await this.run(this.ip, ['link', 'del', 'dev', l.ifname]);
      });
    }
    const wanted = new Set(want.networks.filter((n) => n.dhcp.length).map((n) => n.id));
    const dir = join(this.opts.stateDir, 'dhcp');
    for (const id of existsSync(dir) ? await readdir(dir) : [])
      if (!wanted.has(id)) await attempt(`remove dhcp of ${id}`, () => this.removeDhcp(id));
    if (errors.length)
      this.opts.log.warn({ errors }, 'data plane: some devices did not converge (retried next pass)');
  }

  private dnsmasqPid(dir: string, networkId: string): number | undefined {
    try {
      const pid = Number(readFileSync(join(dir, 'pid'), 'utf8').trim());
      if (!Number.isSafeInteger(pid) || pid <= 1) return undefined;
      return readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes(networkId) ? pid : undefined;
    } catch {
      return undefined;
    }
  }

  /** The namespace, its veth on the bridge, its addresses, the hosts file and dnsmasq (SIGHUP on change). */
  private async dhcp(net: DesiredNetwork, have: Map<string, Link>): Promise<void> {
    const ns = dhcpNamespace(net.id);
    const v = dhcpVeth(net.id);
    const dir = join(this.opts.stateDir, 'dhcp', net.id);
    await mkdir(dir, { recursive: true, mode: 0o700 });
    const names = (await this.run(this.ip, ['netns', 'list'])).split('\n').map((l) => l.split(' ')[0]);
    if (!names.includes(ns)) await this.run(this.ip, ['netns', 'add', ns]);
    if (!have.has(v.host)) {
      // A half-made pair (site killed between the two steps) is removed first.
      await this.run(this.ip, ['-n', ns, 'link', 'del', v.ns]).catch(() => undefined);
      await this.run(this.ip, ['link', 'add', v.host, 'type', 'veth', 'peer', 'name', v.ns, 'netns', ns]);
    }
    await this.settle(have.get(v.host), v.host, {
      master: net.bridge,
      mtu: net.mtu,
      alias: this.alias('dhcp', net.id),
    });
    await this.run(this.ip, ['-n', ns, 'link', 'set', 'dev', 'lo', 'up']);
    await this.run(this.ip, ['-n', ns, 'link', 'set', 'dev', v.ns, 'mtu', String(net.mtu), 'up']);
    // dnsmasq answers on an address of each subnet; the network address itself is one the API never
    // hands out (Neutron takes a network:dhcp port from the pool instead: not done yet, docs/network.md).
    const addrs = net.dhcp.map((s) => `${s.network}/${s.prefix}`);
    const cur = JSON.parse(await this.run(this.ip, ['-n', ns, '-j', 'addr', 'show', 'dev', v.ns])) as {
      addr_info?: { family: string; local: string; prefixlen: number }[];
    }[];
    const present = new Set(
      (cur[0]?.addr_info ?? []).filter((a) => a.family === 'inet').map((a) => `${a.local}/${a.prefixlen}`),
    );
    for (const a of addrs)
      if (!present.has(a)) await this.run(this.ip, ['-n', ns, 'addr', 'add', a, 'dev', v.ns]);
    for (const a of present)
      if (!addrs.includes(a)) await this.run(this.ip, ['-n', ns, 'addr', 'del', a, 'dev', v.ns]);

    const hostsFile = join(dir, 'hosts');
    const hosts = net.hosts.join('\n') + '\n';
    const old = await readFile(hostsFile, 'utf8').catch(() => undefined);
    if (old !== hosts) await writeFile(hostsFile, hosts);
    const optsFile = join(dir, 'opts');
    const args = this.dnsmasqArgs(net, dir, v.ns);
    const pid = this.dnsmasqPid(dir, net.id);
    const oldArgs = await readFile(optsFile, 'utf8').catch(() => undefined);
    if (pid && oldArgs === args.join('\n')) {
      if (old !== hosts) process.kill(pid, 'SIGHUP'); // dnsmasq rereads --dhcp-hostsfile
      return;
    }
    if (pid) process.kill(pid, 'SIGTERM');
    await writeFile(optsFile, args.join('\n'));
    // dnsmasq forks into the background once it listens, so this returns when it serves.
    await this.run(this.ip, ['netns', 'exec', ns, this.dnsmasq, ...args]);
  }

  private dnsmasqArgs(net: DesiredNetwork, dir: string, dev: string): string[] {
    const lease = this.opts.leaseSeconds ?? 86_400;
    const args = [
      '--conf-file=/dev/null',
      '--no-hosts',
      '--no-resolv',
      // No DNS server: port 0 (DHCP only, as the issue asks).
      '--port=0',
      `--interface=${dev}`,
      '--except-interface=lo',
      '--bind-interfaces',
      // The pid file's path names the network, so the pid check (and an operator's ps) finds it.
      `--pid-file=${join(dir, 'pid')}`,
      `--dhcp-hostsfile=${join(dir, 'hosts')}`,
      '--leasefile-ro',
      '--dhcp-authoritative',
      // Its files are in the site's private data directory (0700), which dnsmasq's default user
      // (nobody) cannot read when SIGHUP makes it reread the hosts file: it keeps root for now.
      '--user=root',
    ];
    net.dhcp.forEach((s, i) => {
      const tag = `s${i}`;
      args.push(`--dhcp-range=set:${tag},${s.network},static,${netmask(s.prefix)},${lease}s`);
      if (s.gateway) args.push(`--dhcp-option=tag:${tag},option:router,${s.gateway}`);
      else args.push(`--dhcp-option=tag:${tag},option:router`);
      if (s.dnsServers.length)
        args.push(`--dhcp-option=tag:${tag},option:dns-server,${s.dnsServers.join(',')}`);
      args.push(`--dhcp-option-force=tag:${tag},option:mtu,${net.mtu}`);
    });
    return args;
  }

  /** Stops the network's dnsmasq, deletes its namespace (and with it the veth) and its folder. */
  private async removeDhcp(networkId: string): Promise<void> {
    const dir = join(this.opts.stateDir, 'dhcp', networkId);
    const pid = this.dnsmasqPid(dir, networkId);
    if (pid) process.kill(pid, 'SIGTERM');
    const ns = dhcpNamespace(networkId);
    const names = (await this.run(this.ip, ['netns', 'list'])).split('\n').map((l) => l.split(' ')[0]);
    if (names.includes(ns)) await this.run(this.ip, ['netns', 'del', ns]);
    await rm(dir, { recursive: true, force: true });
  }
}
