/**
 * @module The QEMU driver (after nova/virt/libvirt, without libvirt): one qemu-system-x86_64 process
 * per running instance, a qcow2 overlay on a per-site base image cache, a config drive (iso9660
 * labelled config-2, as Nova writes it), the serial console in a log file and a QMP socket for power
 * operations. Every process is spawned asynchronously, so the event loop never waits on qemu.
 */
import { createHash } from 'node:crypto';
import { constants, createWriteStream, existsSync, readFileSync } from 'node:fs';
import {
  access,
  chmod,
  copyFile,
  link,
  mkdir,
  mkdtemp,
  open,
  readdir,
  readFile,
  rename,
  rm,
  stat,
  writeFile,
} from 'node:fs/promises';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { Clock } from '../../../core/ports.ts';
import { PowerState } from '../domain/states.ts';
import type { Vif } from '../../common/vif.ts';
import { run } from '../../common/run-program.ts';
import type {
  BootSpec,
  ComputeDriver,
  DriverOp,
  DriverResult,
  ImageBytes,
  InstanceSpec,
  VolumeFile,
} from './driver.ts';

export type Accel = 'kvm' | 'tcg';

export interface QemuDriverOptions {
  /** Instances and the base image cache live here; ':memory:' uses a temp directory removed by close(). */
  dataDir: string;
  accel: Accel;
  /**
   * The site's clock, for the start deadline, its poll and the shutdown timeout. A QEMU site runs on
   * the system clock (its guests are real processes); run() and qmp() bound a process or a socket
   * and use real timers directly.
   */
  clock: Clock;
  qemu?: string;
  qemuImg?: string;
  genisoimage?: string;
  /** How long a stop waits for the guest to power off after ACPI before quitting qemu (Nova: 60 s). */
  shutdownTimeoutMs?: number;
  /** The whole bytes of an image this site does not store (the image service's verified stream). */
  fetchImage?: (imageId: string) => Promise<Readable>;
}

/** Console output is read from the end of the log, at most this much (a fabric message carries it). */
export const CONSOLE_TAIL_BYTES = 256 * 1024;

interface Vm {
  id: string;
  host: string;
  /** The qemu process (daemonized: not a child of the site, it outlives it), from instances/<id>/pid. */
  pid: number | undefined;
  paused: boolean;
}

/** QEMU names of a volume's block node and device (ids: a letter, then at most 31 characters), its serial. */
function volumeNames(id: string): { node: string; dev: string; serial: string } {
  if (!/^[0-9a-f-]{36}$/.test(id)) throw new Error(`bad volume id ${id}`);
  const short = id.replace(/-/g, '').slice(0, 30);
  return { node: `n${short}`, dev: `v${short}`, serial: id.slice(0, 20) };
}

/**
 * A NIC per port: the tap the network's data plane made on the port's bridge (script=no: qemu only
 * opens it) and a virtio-net device with the port's MAC, as Nova's libvirt driver writes an
 * `<interface type='ethernet'>` with a target tap. The MTU is the tap's (set by the data plane) and
 * reaches the guest by DHCP.
 */
export function nicArgs(nics: readonly Vif[]): string[] {
  return nics.flatMap((n, i) => {
    if (!/^[a-z0-9-]{1,15}$/.test(n.tap) || !/^([0-9a-f]{2}:){5}[0-9a-f]{2}$/.test(n.mac))
      throw new Error(`bad NIC ${n.tap} ${n.mac}`);
    return [
      '-netdev',
      `tap,id=net${i},ifname=${n.tap},script=no,downscript=no`,
      '-device',
      `virtio-net-pci,netdev=net${i},mac=${n.mac},host_mtu=${n.mtu}`,
    ];
  });
}

/** Whether `pid` is the running qemu of instance `id` (not a zombie, not a reused pid). */
function isGuest(pid: number | undefined, id: string): boolean {
  if (!pid) return false;
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes(`guest=${id}`);
  } catch {
    return false;
  }
}

/**
 * Which acceleration works here. /dev/kvm existing is not enough (on some machines a KVM guest hangs
 * after the firmware), so boot the tiny guest's kernel under KVM with `atoll.poweroff` and take KVM
 * only if it powers off within the timeout. Without a guest kernel to try, TCG.
 */
export async function probeAccel(
  qemu: string,
  guest: { kernel: string; initrd: string } | undefined,
  timeoutMs = 8000,
): Promise<{ accel: Accel; why: string }> {
  try {
    await access('/dev/kvm', constants.R_OK | constants.W_OK);
  } catch {
    return { accel: 'tcg', why: '/dev/kvm is not usable' };
  }
  if (!guest || !existsSync(guest.kernel) || !existsSync(guest.initrd))
    return { accel: 'tcg', why: 'no guest kernel to probe KVM with' };
  const args = ['-accel', 'kvm', '-m', '128', '-nodefaults', '-display', 'none', '-no-user-config'];
  args.push('-serial', 'stdio', '-no-reboot', '-kernel', guest.kernel, '-initrd', guest.initrd);
  args.push('-append', 'console=ttyS0 quiet panic=-1 atoll.poweroff');
  try {
    const out = await run(qemu, args, timeoutMs);
    return out.includes('atoll-guest: booted')
      ? { accel: 'kvm', why: 'a KVM guest booted and powered off' }
      : { accel: 'tcg', why: 'the KVM guest printed nothing' };
  } catch (e) {
    return {
      accel: 'tcg',
      why: `the KVM guest did not finish in ${timeoutMs} ms (${(e as Error).message.slice(0, 120)})`,
    };
  }
}

/**
 * One QMP command on a fresh connection (greeting, qmp_capabilities, the command). The timeout is
 * real time: it bounds a real socket to a real qemu.
 */
export function qmp(
  socket: string,
  command: string,
  timeoutMs = 5000,
  args?: Record<string, unknown>,
): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const c = connect(socket);
    let buf = '';
    let step = 0;
    const t = setTimeout(() => {
      c.destroy();
      reject(new Error(`QMP ${command}: no answer in ${timeoutMs} ms`));
    }, timeoutMs);
    const done = (e: Error | undefined, v?: unknown) => {
      clearTimeout(t);
      c.destroy();
      if (e) reject(e);
      else resolve(v);
    };
    c.on('error', (e) => done(e));
    c.on('data', (d: Buffer) => {
      buf += d.toString();
      let nl;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl).trim();
        buf = buf.slice(nl + 1);
        if (!line) continue;
        const msg = JSON.parse(line) as { QMP?: unknown; return?: unknown; error?: { desc: string } };
        if (msg.error) return done(new Error(`QMP ${command}: ${msg.error.desc}`));
        if (step === 0 && msg.QMP) {
          step = 1;
          c.write(JSON.stringify({ execute: 'qmp_capabilities' }) + '\n');
        } else if (step === 1 && 'return' in msg) {
          step = 2;
          c.write(JSON.stringify({ execute: command, ...(args ? { arguments: args } : {}) }) + '\n');
        } else if (step === 2 && 'return' in msg) return done(undefined, msg.return);
      }
    });
  });
}

export class QemuDriver implements ComputeDriver {
  private vms = new Map<string, Vm>();
  /** Base images being filled, by sha256: concurrent boots of one image share one fetch. */
  private fills = new Map<string, Promise<string>>();
  private root: string | undefined;
  private readonly qemu: string;
  private readonly qemuImg: string;
  private readonly iso: string;

  constructor(private opts: QemuDriverOptions) {
    this.qemu = opts.qemu ?? 'qemu-system-x86_64';
    this.qemuImg = opts.qemuImg ?? 'qemu-img';
    this.iso = opts.genisoimage ?? 'genisoimage';
  }

  get accel(): Accel {
    return this.opts.accel;
  }

  private async dir(): Promise<string> {
    if (!this.root) {
      this.root =
        this.opts.dataDir === ':memory:'
          ? await mkdtemp(join(tmpdir(), 'atoll-qemu-'))
          : join(this.opts.dataDir, 'qemu');
      await mkdir(join(this.root, 'instances'), { recursive: true, mode: 0o700 });
      await mkdir(join(this.root, 'base'), { recursive: true, mode: 0o700 });
      // A fill the previous run did not finish is not a base image.
      for (const f of await readdir(join(this.root, 'base')))
        if (f.endsWith('.tmp')) await rm(join(this.root, 'base', f), { force: true });
    }
    return this.root;
  }

  /** The instance's directory (kept across hosts of this process, so a resize between them keeps the disk). */
  async instanceDir(id: string): Promise<string> {
    if (!/^[0-9a-f-]{36}$/.test(id)) throw new Error(`bad instance id ${id}`);
    return join(await this.dir(), 'instances', id);
  }

  async run(host: string, op: DriverOp, inst: InstanceSpec): Promise<DriverResult> {
    const vm = this.vms.get(inst.id);
    const dir = await this.instanceDir(inst.id);
    switch (op) {
      case 'spawn':
        await this.create(inst, dir);
        await writeFile(join(dir, 'host'), host);
        this.vms.set(inst.id, { id: inst.id, host, pid: undefined, paused: false });
        await this.start(inst, dir);
        return { powerState: PowerState.Running };
      case 'destroy':
        if (vm && vm.host !== host && this.alive(vm)) return { powerState: PowerState.NoState };
        await this.kill(inst.id, dir);
        this.vms.delete(inst.id);
        await rm(dir, { recursive: true, force: true });
        return { powerState: PowerState.NoState };
      case 'get_console_output':
        return { powerState: this.powerState(inst.id), data: await tail(join(dir, 'console.log')) };
      case 'get_info':
        return { powerState: this.powerState(inst.id) };
      case 'snapshot':
        return { powerState: this.powerState(inst.id), file: await this.snapshot(inst.id, dir) };
    }
    if (!vm) throw new Error(`Instance ${inst.id} could not be found on host ${host}.`);
    switch (op) {
      case 'power_off':
      case 'migrate_disk_and_power_off':
        await this.powerOff(inst.id, dir);
        return { powerState: PowerState.Shutdown };
      case 'power_on':
      case 'finish_migration':
      case 'finish_revert_migration':
        vm.host = host;
        await writeFile(join(dir, 'host'), host);
        if (!this.alive(vm)) {
          await this.resize(dir, inst.diskGb);
          await this.start(inst, dir);
        }
        return { powerState: PowerState.Running };
      case 'reboot':
        if (!this.alive(vm)) await this.start(inst, dir);
        else await qmp(join(dir, 'qmp'), 'system_reset');
        vm.paused = false;
        if (this.alive(vm)) await qmp(join(dir, 'qmp'), 'cont');
        return { powerState: PowerState.Running };
      case 'pause':
      case 'suspend':
        await qmp(join(dir, 'qmp'), 'stop');
        vm.paused = true;
        return { powerState: op === 'pause' ? PowerState.Paused : PowerState.Suspended };
      case 'unpause':
      case 'resume':
        await qmp(join(dir, 'qmp'), 'cont');
        vm.paused = false;
        return { powerState: PowerState.Running };
      case 'rebuild':
        await this.kill(inst.id, dir);
        await rm(join(dir, 'disk.qcow2'), { force: true });
        await this.create(inst, dir);
        await this.start(inst, dir);
        return { powerState: PowerState.Running };
      case 'confirm_migration':
        return { powerState: this.powerState(inst.id) };
      case 'attach_volume':
      case 'detach_volume': {
        if (!inst.volume) throw new Error(`${op} without a volume`);
        if (this.alive(vm)) {
          if (op === 'attach_volume') await this.plug(dir, inst.volume);
          else await this.unplug(dir, inst.volume);
        }
        return { powerState: this.powerState(inst.id) };
      }
    }
    throw new Error(`the QEMU driver does not do ${op}`);
  }

  private alive(vm: Vm): boolean {
    return isGuest(vm.pid, vm.id);
  }

  /**
   * At start (level-based): every instance directory of a previous run is known again, with the
   * host it was on (instances/<id>/host) and its qemu process when that still runs (pidfile, checked
   * against /proc, then QMP query-status for paused). Returns how many guests were found running.
   */
  async recover(): Promise<number> {
    const root = join(await this.dir(), 'instances');
    let running = 0;
    for (const id of await readdir(root)) {
      if (!/^[0-9a-f-]{36}$/.test(id) || this.vms.has(id)) continue;
      const dir = join(root, id);
      const host = await readFile(join(dir, 'host'), 'utf8').catch(() => undefined);
      if (!host) continue;
      const pid = await this.pidFile(dir);
      const vm: Vm = { id, host: host.trim(), pid: isGuest(pid, id) ? pid : undefined, paused: false };
      this.vms.set(id, vm);
      if (!vm.pid) continue;
      running++;
      try {
        const st = (await qmp(join(dir, 'qmp'), 'query-status')) as { status?: string };
        vm.paused = st.status === 'paused';
      } catch {
        // It runs but does not answer QMP yet: report it running; the next operation will tell.
      }
    }
    return running;
  }

  private async pidFile(dir: string): Promise<number | undefined> {
    const t = await readFile(join(dir, 'pid'), 'utf8').catch(() => '');
    const pid = Number(t.trim());
    return Number.isSafeInteger(pid) && pid > 1 ? pid : undefined;
  }

  /** Waits (polling /proc on the site's clock) until the guest is gone; false after `ms`. */
  private async gone(id: string, pid: number, ms: number): Promise<boolean> {
    const deadline = this.opts.clock.now() + ms;
    while (isGuest(pid, id)) {
      if (this.opts.clock.now() > deadline) return false;
      await new Promise((r) => this.opts.clock.setTimeout(() => r(undefined), 25));
    }
    return true;
  }

  private powerState(id: string): number {
    const vm = this.vms.get(id);
    if (!vm) return PowerState.NoState;
    if (!this.alive(vm)) return PowerState.Shutdown;
    return vm.paused ? PowerState.Paused : PowerState.Running;
  }

  /** The disk (overlay on the cached base), kernel and ramdisk copies, and the config drive. */
  private async create(inst: InstanceSpec, dir: string): Promise<void> {
    const boot = inst.boot;
    if (!boot?.image)
      throw new Error(`the QEMU driver needs the bytes of image ${inst.imageId ?? '(none)'} on this site`);
    await mkdir(dir, { recursive: true, mode: 0o700 });
    await chmod(dir, 0o700);
    const img = boot.image;
    const fmt = img.format === 'qcow2' ? 'qcow2' : 'raw';
    const base = await this.cached(img);
    const disk = join(dir, 'disk.qcow2');
    await run(this.qemuImg, ['create', '-q', '-f', 'qcow2', '-b', base, '-F', fmt, disk]);
    await this.resize(dir, inst.diskGb);
    if (img.kernel) await copyFile(await this.cached(img.kernel), join(dir, 'kernel'));
    if (img.ramdisk) await copyFile(await this.cached(img.ramdisk), join(dir, 'ramdisk'));
    await this.configDrive(inst, boot, dir);
  }

  /** Grows the disk to the flavor's root disk (never shrinks it: qemu-img refuses, and so does Nova). */
  private async resize(dir: string, diskGb: number): Promise<void> {
    if (diskGb <= 0) return;
    const disk = join(dir, 'disk.qcow2');
    const info = JSON.parse(await run(this.qemuImg, ['info', '--output=json', '-U', disk])) as {
      'virtual-size': number;
    };
    const want = diskGb * 1024 ** 3;
    if (info['virtual-size'] < want) await run(this.qemuImg, ['resize', '-q', disk, String(want)]);
  }

  /**
   * The per-site base image cache, base/<sha256>: a hard link to the image store's blob when this site
   * stores the image (a copy across file systems), else the bytes fetched from the owner through the
   * image service's verified stream and checked against their sha256 before they are renamed into
   * place. A copy once there boots without the owner; concurrent boots of one image share one fill.
   */
  private async cached(ref: ImageBytes): Promise<string> {
    if (!/^[0-9a-f]{64}$/.test(ref.sha256)) throw new Error('bad image checksum');
    const dst = join(await this.dir(), 'base', ref.sha256);
    if (existsSync(dst)) return dst;
    let fill = this.fills.get(ref.sha256);
    if (!fill) {
      fill = this.fill(ref, dst).finally(() => this.fills.delete(ref.sha256));
      this.fills.set(ref.sha256, fill);
    }
    return fill;
  }

  private async fill(ref: ImageBytes, dst: string): Promise<string> {
    const tmp = `${dst}.${process.pid}.tmp`;
    await rm(tmp, { force: true });
    if (ref.path && existsSync(ref.path)) {
      try {
        await link(ref.path, tmp);
      } catch {
        await copyFile(ref.path, tmp);
      }
    } else {
      if (!this.opts.fetchImage) throw new Error(`the bytes of image ${ref.id} are not on this site`);
      const src = await this.opts.fetchImage(ref.id);
      const h = createHash('sha256');
      const hash = new Transform({
        transform(chunk: Buffer, _enc, cb) {
          h.update(chunk);
          cb(null, chunk);
        },
      });
      try {
        await pipeline(src, hash, createWriteStream(tmp, { mode: 0o600 }));
      } catch (e) {
        await rm(tmp, { force: true });
        throw new Error(`fetching the bytes of image ${ref.id} failed: ${(e as Error).message}`);
      }
      if (h.digest('hex') !== ref.sha256) {
        await rm(tmp, { force: true });
        throw new Error(`the bytes fetched for image ${ref.id} do not match its sha256`);
      }
    }
    await rename(tmp, dst);
    return dst;
  }

  /** openstack/latest/{meta_data.json,user_data,network_data.json} on an iso9660 labelled config-2. */
  private async configDrive(inst: InstanceSpec, boot: BootSpec, dir: string): Promise<void> {
    const src = join(dir, 'config');
    const latest = join(src, 'openstack', 'latest');
    await mkdir(latest, { recursive: true });
    const meta = {
      uuid: inst.id,
      name: inst.name,
      hostname: boot.hostname,
      availability_zone: boot.availabilityZone,
      project_id: boot.projectId,
      meta: boot.metadata,
      public_keys: boot.publicKeys,
      launch_index: 0,
    };
    await writeFile(join(latest, 'meta_data.json'), JSON.stringify(meta, null, 1));
    await writeFile(
      join(latest, 'network_data.json'),
      JSON.stringify({ links: [], networks: [], services: [] }),
    );
    if (boot.userData) await writeFile(join(latest, 'user_data'), Buffer.from(boot.userData, 'base64'));
    await run(this.iso, ['-quiet', '-o', join(dir, 'config.iso'), '-V', 'config-2', '-J', '-r', src]);
    await rm(src, { recursive: true, force: true });
  }

  private async start(inst: InstanceSpec, dir: string): Promise<void> {
    const vm = this.vms.get(inst.id);
    if (!vm) throw new Error(`Instance ${inst.id} is not known here`);
    const sock = join(dir, 'qmp');
    await rm(sock, { force: true });
    const args = ['-name', `guest=${inst.id}`, '-accel', this.opts.accel, '-nodefaults', '-no-user-config'];
    args.push('-display', 'none', '-m', String(inst.ramMb), '-smp', String(inst.vcpus));
    args.push(
      '-chardev',
      `file,id=console,path=${join(dir, 'console.log')},append=on`,
      '-serial',
      'chardev:console',
    );
    args.push('-qmp', `unix:${sock},server=on,wait=off`);
    args.push('-drive', `file=${join(dir, 'disk.qcow2')},if=virtio,format=qcow2`);
    args.push('-drive', `file=${join(dir, 'config.iso')},if=virtio,format=raw,readonly=on`);
    for (const v of inst.boot?.volumes ?? []) {
      const n = volumeNames(v.id);
      const file = JSON.stringify({ driver: 'file', filename: v.path });
      args.push('-blockdev', `{"driver":"raw","node-name":"${n.node}","file":${file}}`);
      args.push('-device', `virtio-blk-pci,id=${n.dev},drive=${n.node},serial=${n.serial}`);
    }
    args.push(...nicArgs(inst.boot?.nics ?? []));
    if (existsSync(join(dir, 'kernel'))) {
      args.push(
        '-kernel',
        join(dir, 'kernel'),
        '-append',
        inst.boot?.image?.cmdline ?? 'console=ttyS0 quiet panic=-1',
      );
      if (existsSync(join(dir, 'ramdisk'))) args.push('-initrd', join(dir, 'ramdisk'));
    }
    // Daemonized (qemu forks, calls setsid and writes its pidfile once it runs): the guest is not a
    // child of the site and outlives a restart or a kill of it; recover() finds it again.
    const pidFile = join(dir, 'pid');
    await rm(pidFile, { force: true });
    args.push('-daemonize', '-pidfile', pidFile);
    try {
      await run(this.qemu, args, 30_000);
    } catch (e) {
      throw new Error(`qemu exited at start: ${(e as Error).message}`);
    }
    vm.pid = await this.pidFile(dir);
    vm.paused = false;
    // Started once its QMP socket answers.
    const deadline = this.opts.clock.now() + 10_000;
    for (;;) {
      if (!this.alive(vm)) throw new Error('qemu exited at start');
      try {
        await qmp(sock, 'query-status', 1000);
        return;
      } catch {
        if (this.opts.clock.now() > deadline) {
          await this.kill(inst.id, dir);
          throw new Error('qemu did not open its QMP socket');
        }
        await new Promise((r) => this.opts.clock.setTimeout(() => r(undefined), 50));
      }
    }
  }

  /** A volume hot-plugged into the running guest: a raw blockdev on its file and a virtio-blk-pci device. */
  private async plug(dir: string, v: VolumeFile): Promise<void> {
    const n = volumeNames(v.id);
    const sock = join(dir, 'qmp');
    await qmp(sock, 'blockdev-add', 5000, {
      driver: 'raw',
      'node-name': n.node,
      file: { driver: 'file', filename: v.path },
    });
    try {
      await qmp(sock, 'device_add', 5000, {
        driver: 'virtio-blk-pci',
        id: n.dev,
        drive: n.node,
        serial: n.serial,
      });
    } catch (e) {
      await qmp(sock, 'blockdev-del', 5000, { 'node-name': n.node }).catch(() => undefined);
      throw e;
    }
  }

  /**
   * device_del, then wait for the guest to let the device go (it acknowledges the ACPI eject), then
   * blockdev-del (which flushes). A guest that does not let go in 30 s keeps the volume: an error.
   */
  private async unplug(dir: string, v: VolumeFile): Promise<void> {
    const n = volumeNames(v.id);
    const sock = join(dir, 'qmp');
    const present = async () =>
      ((await qmp(sock, 'qom-list', 5000, { path: '/machine/peripheral' })) as { name: string }[]).some(
        (p) => p.name === n.dev,
      );
    if (await present()) {
      await qmp(sock, 'device_del', 5000, { id: n.dev });
      const deadline = this.opts.clock.now() + 30_000;
      while (await present()) {
        if (this.opts.clock.now() > deadline)
          throw new Error(`the guest did not release volume ${v.id} (device_del not acknowledged in 30 s)`);
        await new Promise((r) => this.opts.clock.setTimeout(() => r(undefined), 100));
      }
    }
    await qmp(sock, 'blockdev-del', 5000, { 'node-name': n.node }).catch((e: Error) => {
      if (!/not found|Cannot find/i.test(e.message)) throw e;
    });
  }

  /**
   * The instance's disk as one standalone qcow2 (the overlay and its backing chain flattened by
   * `qemu-img convert`), in instances/<id>/snapshot.qcow2; the caller streams it and removes it. A
   * running guest is paused for the copy (QMP `stop` drains and flushes its disks) and resumed after,
   * so the image is consistent as a power cut would leave it; a guest paused already stays paused.
   */
  private async snapshot(id: string, dir: string): Promise<string> {
    const vm = this.vms.get(id);
    const out = join(dir, 'snapshot.qcow2');
    await rm(out, { force: true });
    const running = !!vm && this.alive(vm) && !vm.paused;
    if (running) await qmp(join(dir, 'qmp'), 'stop');
    try {
      // -U: the paused qemu keeps its write lock on the overlay; nothing writes to it meanwhile.
      await run(this.qemuImg, ['convert', '-U', '-O', 'qcow2', join(dir, 'disk.qcow2'), out], 600_000);
    } catch (e) {
      await rm(out, { force: true });
      throw e;
    } finally {
      if (running && vm && this.alive(vm)) await qmp(join(dir, 'qmp'), 'cont');
    }
    return out;
  }

  /** ACPI power button, then quit after shutdownTimeoutMs if the guest did not power off. */
  private async powerOff(id: string, dir: string): Promise<void> {
    const vm = this.vms.get(id);
    if (!vm?.pid || !this.alive(vm)) return;
    const pid = vm.pid;
    const sock = join(dir, 'qmp');
    await qmp(sock, 'system_powerdown').catch(() => undefined);
    if (!(await this.gone(id, pid, this.opts.shutdownTimeoutMs ?? 60_000))) {
      await qmp(sock, 'quit').catch(() => undefined);
      if (!(await this.gone(id, pid, 5000))) await this.kill(id, dir);
    }
    vm.paused = false;
  }

  /** SIGKILL to the instance's qemu (known, or from its pidfile) and waits until it is gone. */
  private async kill(id: string, dir?: string): Promise<void> {
    const vm = this.vms.get(id);
    const pid = vm?.pid ?? (dir ? await this.pidFile(dir) : undefined);
    if (pid && isGuest(pid, id)) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // gone already
      }
      if (!(await this.gone(id, pid, 10_000))) throw new Error(`qemu ${pid} of ${id} does not die`);
    }
    if (vm) vm.pid = undefined;
  }

  /** The pids of running guests (tests check that a delete leaves none). */
  pids(): number[] {
    return [...this.vms.values()].flatMap((v) => (v.pid && this.alive(v) ? [v.pid] : []));
  }

  /**
   * Guests outlive the site (recover() finds them at the next start); only an in-memory site, whose
   * instance directories are a temp folder removed here, kills its guests.
   */
  async close(): Promise<void> {
    if (this.opts.dataDir !== ':memory:') return;
    for (const id of this.vms.keys()) await this.kill(id);
    if (this.root) await rm(this.root, { recursive: true, force: true });
  }
}

async function tail(file: string): Promise<string> {
  let fh;
  try {
    fh = await open(file, 'r');
  } catch {
    return '';
  }
  try {
    const size = (await stat(file)).size;
    const len = Math.min(size, CONSOLE_TAIL_BYTES);
    const buf = Buffer.alloc(len);
    await fh.read(buf, 0, len, size - len);
    return buf.toString('utf8');
  } finally {
    await fh.close();
  }
}
