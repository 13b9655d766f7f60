/**
 * @module The compute service of one site: api -> conductor -> scheduler -> host agents, as in Nova.
 * The API path is synchronous up to the claim: validation, quota check, scheduling and the claim run in
 * one SQLite transaction with the server row, so concurrent boots never overcommit a host. The host
 * work (spawn, reboot, ...) then runs as a host RPC over the fabric, and its answer moves the server to
 * its next state. Servers, flavors, keypairs, groups and quotas replicate; hosts and claims stay local.
 */
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { ServiceCall } from './api/proxy.ts';
import type { AuthContext } from '../../core/auth.ts';
import { CloudError, NotFound } from '../../core/errors.ts';
import type { TimerHandle } from '../../core/ports.ts';
import type { ServiceContext } from '../common/module.ts';
import type { ImageForVolumes, NetworkForCompute, VolumeForCompute } from '../common/internal.ts';
import { ImageApi, NetworkApi, VolumeApi } from '../common/internal.ts';
import type { ImageForComputeSnapshots } from '../image/index.ts';
import { cpus, homedir, totalmem } from 'node:os';
import { createReadStream, existsSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import type {
  BootSpec,
  ComputeDriver,
  DriverOp,
  DriverResult,
  ImageBytes,
  InstanceSpec,
  VolumeFile,
} from './agent/driver.ts';
import { COMPUTE_DRIVERS } from './agent/driver.ts';
import { FakeDriver } from './agent/fake-driver.ts';
import { run as runProgram } from '../common/run-program.ts';
import { QemuDriver, probeAccel } from './agent/qemu-driver.ts';
import { HostAgentPool, callHost } from './agent/host-agents.ts';
import type { BootServersDeps } from './domain/boot-servers.ts';
import { NO_VALID_HOST } from './domain/boot-servers.ts';
import { checkState } from './domain/lifecycle.ts';
import { recoveryFor } from './domain/reconcile.ts';
import type { ResizeDeps } from './domain/resize-server.ts';
import type { ServerActionDeps } from './domain/server-actions.ts';
import { selectHost } from './domain/scheduler.ts';
import type { HostState, ResourceRequest } from './domain/scheduler.ts';
import { PowerState } from './domain/states.ts';
import { ComputeRepo } from './store/repo.ts';
import type { FlavorRow, HostRow, ServerRow } from './store/schema.ts';
import { serverKind } from './store/schema.ts';

export interface ComputeOptions {
  /** Number of fake compute hosts this site runs. */
  hosts: number;
  vcpus: number;
  ramMb: number;
  diskGb: number;
  bootDelayMs: number;
  opDelayMs: number;
  /** Probability that a spawn fails (the build ends in ERROR with a fault). */
  failureRate: number;
  /** How long the controller waits for a host agent. */
  hostTimeoutMs: number;
  /** The hypervisor of this site's hosts: 'fake' (default) or 'qemu' (real guests, docs/compute.md). */
  driver: 'fake' | 'qemu';
  /** QEMU: 'auto' probes KVM at start and falls back to TCG. */
  accel: 'auto' | 'kvm' | 'tcg';
  /** QEMU: how long a stop waits after ACPI power-off before quitting the guest (Nova: 60 s). */
  shutdownTimeoutMs: number;
  /** QEMU: the tiny guest (scripts/build-guest.sh) whose kernel the KVM probe boots. */
  guestDir?: string;
  /** How often servers left in a transitional state with no host work in flight are reconciled. */
  reconcileMs: number;
  /** How often the power state of running guests is checked (0: never; the QEMU driver: 5000). */
  powerSyncMs: number;
}

export const defaultComputeOptions: ComputeOptions = {
  hosts: 3,
  vcpus: 64,
  ramMb: 262_144,
  diskGb: 4096,
  bootDelayMs: 0,
  opDelayMs: 0,
  failureRate: 0,
  hostTimeoutMs: 30_000,
  driver: 'fake',
  accel: 'auto',
  shutdownTimeoutMs: 60_000,
  reconcileMs: 60_000,
  powerSyncMs: 0,
};

/** The site's compute settings over the defaults; a bad driver or accel stops the site at start. */
export function computeOptions(ctx: ServiceContext): ComputeOptions {
  const c = (ctx.config.services.compute ?? {}) as Partial<ComputeOptions>;
  // A QEMU site is, unless told otherwise, one host the size of this machine.
  const real: Partial<ComputeOptions> =
    c.driver === 'qemu'
      ? {
          hosts: 1,
          vcpus: cpus().length,
          ramMb: Math.floor(totalmem() / 2 ** 20),
          diskGb: 100,
          // A spawn may first fetch the image's bytes from its owner site.
          hostTimeoutMs: 600_000,
          powerSyncMs: 5000,
        }
      : {};
  const o = { ...defaultComputeOptions, ...real, ...c };
  if (!(COMPUTE_DRIVERS as readonly string[]).includes(o.driver))
    throw new Error(
      `services.compute.driver must be one of ${COMPUTE_DRIVERS.join(', ')} (got ${String(o.driver)})`,
    );
  if (!['auto', 'kvm', 'tcg'].includes(o.accel))
    throw new Error(`services.compute.accel must be auto, kvm or tcg (got ${String(o.accel)})`);
  return o;
}

/** Where scripts/build-guest.sh puts the tiny guest. */
export function defaultGuestDir(): string {
  const env = process.env;
  return env.ATOLL_GUEST_DIR ?? join(env.XDG_CACHE_HOME ?? join(homedir(), '.cache'), 'atoll', 'guest');
}

/** The host operations after which a guest runs (and needs its NICs plugged). */
const STARTS_GUEST: ReadonlySet<DriverOp> = new Set([
  'spawn',
  'power_on',
  'reboot',
  'rebuild',
  'finish_migration',
  'finish_revert_migration',
]);

export const hostState = (h: HostRow): HostState => ({
  id: h.id,
  vcpus: h.vcpus,
  ramMb: h.ram_mb,
  diskGb: h.disk_gb,
  usedVcpus: h.used_vcpus,
  usedRamMb: h.used_ram_mb,
  usedDiskGb: h.used_disk_gb,
  runningVms: h.running_vms,
  up: h.state === 'up',
  enabled: h.status === 'enabled',
});

export { NO_VALID_HOST };

/** A server action one of Nova's proxy modules answers (api/network-proxy.ts, api/volume-proxy.ts...). */
export type ProxyAction = (
  req: FastifyRequest,
  reply: FastifyReply,
  auth: AuthContext,
  s: ServerRow,
  arg: unknown,
) => Promise<unknown>;

export class ComputeService {
  readonly repo: ComputeRepo;
  readonly opts: ComputeOptions;
  readonly agents: HostAgentPool;
  driver: ComputeDriver;
  /** What os-hypervisors shows: 'fake', or 'QEMU' with the acceleration in use (kvm | tcg). */
  hypervisor: { type: string; version: number; accel?: string; why?: string } = {
    type: 'fake',
    version: 1000,
  };
  /** Host work in flight, so close() can wait for it. */
  private inflight = new Set<Promise<unknown>>();
  /** Servers with host work in flight (how many pieces): reconciliation leaves these alone. */
  private busy = new Map<string, number>();
  private reconcileTimer: TimerHandle | undefined;
  private powerSyncTimer: TimerHandle | undefined;
  private closing = false;
  readonly stats = { builds: 0, active: 0, failed: 0 };
  /** Server actions registered by the API's proxy modules, by action name (servers.ts runs them). */
  readonly proxyActions = new Map<string, ProxyAction>();
  /** The API's in-process caller of the other services (api/proxy.ts), set when routes register. */
  imageCaller: ServiceCall | undefined;

  constructor(readonly ctx: ServiceContext) {
    this.repo = new ComputeRepo(ctx.store.db, ctx.name);
    this.opts = computeOptions(ctx);
    this.driver = new FakeDriver({
      bootDelayMs: this.opts.bootDelayMs,
      opDelayMs: this.opts.opDelayMs,
      failureRate: this.opts.failureRate,
      clock: ctx.clock,
    });
    this.agents = new HostAgentPool(ctx.fabric, ctx.name, {
      run: (host, op, inst) => this.driver.run(host, op, inst),
    });
  }

  /** The ports BootServers runs against (domain/boot-servers.ts). */
  get bootDeps(): BootServersDeps {
    return {
      site: this.ctx.name,
      clock: this.ctx.clock,
      ids: this.ctx.ids,
      catalog: this.repo,
      quotas: this.repo,
      images: this.image,
      network: this.network,
      schedule: (req) => this.schedule(req),
      claims: this.repo,
      servers: { put: (row) => void this.putServer(row), get: (id) => this.repo.server(id) },
      unitOfWork: (fn) => this.ctx.store.tx(fn),
      work: {
        startAction: (s, action, auth, requestId) => this.startAction(s, action, auth, requestId),
        finishAction: (id, error) => this.finishAction(id, error),
        build: (s, actionId) => this.build(s, actionId),
      },
    };
  }

  /** The ports ResizeServer, ConfirmResize and RevertResize run against (domain/resize-server.ts). */
  get resizeDeps(): ResizeDeps {
    return {
      clock: this.ctx.clock,
      catalog: this.repo,
      quotas: this.repo,
      schedule: (req) => this.schedule(req),
      claims: this.repo,
      update: (id, patch) => this.update(id, patch),
      unitOfWork: (fn) => this.ctx.store.tx(fn),
      actions: {
        start: (s, action, auth, requestId) => this.startAction(s, action, auth, requestId),
        finish: (id, error) => this.finishAction(id, error),
      },
      host: (host, op, s) => this.host(host, op, s),
      background: (p, serverId) => this.background(p, serverId),
    };
  }

  /** The ports of the simple actions, lock, unlock, reset and delete (domain/server-actions.ts). */
  get actionDeps(): ServerActionDeps {
    return {
      update: (id, patch) => this.update(id, patch),
      actions: {
        start: (s, action, auth, requestId) => this.startAction(s, action, auth, requestId),
        finish: (id, error) => this.finishAction(id, error),
      },
      lifecycle: (s, opts) => this.lifecycle(s, opts),
      destroy: (s) => this.destroy(s),
      background: (p, serverId) => this.background(p, serverId),
    };
  }

  get network(): NetworkForCompute | undefined {
    return this.ctx.use(NetworkApi);
  }
  get volume(): VolumeForCompute | undefined {
    return this.ctx.use(VolumeApi);
  }
  get image(): (ImageForComputeSnapshots & ImageForVolumes) | undefined {
    return this.ctx.use(ImageApi);
  }

  /**
   * A new image of `auth`'s project, owned by this site (the server's owner), from the server's disk
   * (Nova's snapshot). The fake driver answers with the bytes; a real driver with a standalone qcow2
   * file on this site, streamed into a queued image (never held in memory) and removed after; a
   * failed fill leaves no image behind. The kernel and ramdisk of an AMI-style source image are kept
   * as properties, so a server booted from the snapshot boots as the first one did.
   */
  async snapshotImage(
    auth: AuthContext,
    s: ServerRow,
    name: string,
    properties: Record<string, string>,
  ): Promise<string> {
    const api = this.image;
    if (!api) throw new CloudError(503, 'The image service is not available on this site.');
    const r = await this.host(s.host!, 'snapshot', s);
    if (r.file === undefined) return api.snapshot(auth, name, properties, Buffer.from(r.data ?? ''));
    const file = r.file;
    try {
      const src = s.image_id ? api.imageFile?.(s.image_id)?.properties : undefined;
      const props: Record<string, string> = {};
      for (const k of ['kernel_id', 'ramdisk_id', 'os_command_line'])
        if (typeof src?.[k] === 'string') props[k] = src[k];
      const img = api.createQueued(
        auth,
        { name, disk_format: 'qcow2', container_format: 'bare', visibility: 'private' },
        { ...props, ...properties },
      );
      try {
        await api.fill(auth, img.id, createReadStream(file));
      } catch (e) {
        await api.discard(auth, img.id);
        throw e;
      }
      return img.id;
    } finally {
      await rm(file, { force: true });
    }
  }

  /** Picks the driver: for QEMU, checks that qemu runs and probes KVM (a short boot with a timeout). */
  async startDriver(): Promise<void> {
    if (this.opts.driver !== 'qemu') return;
    let version: string;
    try {
      version = await runProgram('qemu-system-x86_64', ['-version'], 10_000);
    } catch (e) {
      throw new Error(`compute driver qemu: qemu-system-x86_64 does not run here (${(e as Error).message})`);
    }
    const guestDir = this.opts.guestDir ?? defaultGuestDir();
    const probe =
      this.opts.accel === 'auto'
        ? await probeAccel('qemu-system-x86_64', {
            kernel: join(guestDir, 'vmlinuz'),
            initrd: join(guestDir, 'initramfs.gz'),
          })
        : { accel: this.opts.accel, why: 'set in the site config' };
    const m = /version (\d+)\.(\d+)\.(\d+)/.exec(version);
    this.hypervisor = {
      type: 'QEMU',
      version: m ? Number(m[1]) * 1_000_000 + Number(m[2]) * 1000 + Number(m[3]) : 0,
      accel: probe.accel,
      why: probe.why,
    };
    const qemu = new QemuDriver({
      dataDir: this.ctx.config.dataDir,
      accel: probe.accel,
      clock: this.ctx.clock,
      shutdownTimeoutMs: this.opts.shutdownTimeoutMs,
      fetchImage: (imageId) => {
        const bytes = this.image?.imageBytes;
        if (!bytes) throw new Error('this site has no image service to fetch image bytes from');
        return bytes(imageId);
      },
    });
    // Guests of the previous run outlive it: known again before the reconciler looks at any server.
    const running = await qemu.recover();
    this.driver = qemu;
    this.ctx.log.info({ accel: probe.accel, why: probe.why, running }, 'compute driver qemu');
  }

  /** Registers this site's hosts (records kept across restarts) and starts their agents. */
  startHosts(): void {
    const now = this.ctx.clock.now();
    this.ctx.store.tx(() => {
      for (let i = 1; i <= this.opts.hosts; i++)
        this.repo.upsertHost({
          id: this.hostName(i),
          vcpus: this.opts.vcpus,
          ramMb: this.opts.ramMb,
          diskGb: this.opts.diskGb,
          serviceId: this.ctx.ids.uuid(),
          at: now,
        });
    });
    for (const h of this.repo.hosts()) this.agents.add(h.id);
    this.agents.start();
  }

  hostName(i: number): string {
    return `${this.ctx.name}-cmp${String(i).padStart(4, '0')}`;
  }

  /** Runs scheduling for `req` (call inside the claim's transaction). */
  schedule(req: ResourceRequest): { host?: string; why?: string } {
    const hosts = this.repo.candidateHosts(req.vcpus, req.ramMb, req.diskGb).map(hostState);
    const r = selectHost(hosts, req);
    if (r.host) return { host: r.host.id };
    return { why: r.rejectedBy ?? 'RamFilter' };
  }

  putServer(row: ServerRow): ServerRow {
    this.ctx.changelog.put(serverKind, row);
    return row;
  }

  /** Reads the server again and applies `patch` when it still exists (state moves are level-based). */
  update(
    id: string,
    patch: Partial<ServerRow> | ((s: ServerRow) => Partial<ServerRow> | undefined),
  ): ServerRow | undefined {
    return this.ctx.store.tx(() => {
      const cur = this.repo.server(id);
      if (!cur) return undefined;
      const p = typeof patch === 'function' ? patch(cur) : patch;
      if (!p) return cur;
      return this.putServer({ ...cur, ...p, updated_at: this.ctx.clock.now() });
    });
  }

  flavorOf(s: ServerRow): FlavorRow {
    return JSON.parse(s.flavor) as FlavorRow;
  }

  spec(s: ServerRow): InstanceSpec {
    const spec: InstanceSpec = {
      id: s.id,
      name: s.name,
      vcpus: s.vcpus,
      ramMb: s.ram,
      diskGb: s.disk,
      imageId: s.image_id,
    };
    if (this.opts.driver === 'fake') return spec;
    return { ...spec, boot: this.bootSpec(s) };
  }

  /** What a real driver needs: the image's bytes here (and its kernel / ramdisk) and the config drive. */
  bootSpec(s: ServerRow): BootSpec {
    const files = this.image?.imageFile;
    const file = (id: unknown) => (typeof id === 'string' && files ? files(id) : undefined);
    const img = file(s.image_id);
    const keys: Record<string, string> = {};
    const kp = s.key_name ? this.repo.keypair(s.user_id, s.key_name) : undefined;
    if (kp) keys[kp.name] = kp.public_key;
    const spec: BootSpec = {
      hostname:
        s.name
          .toLowerCase()
          .replace(/[^a-z0-9-]+/g, '-')
          .slice(0, 63) || 'server',
      projectId: s.project_id,
      availabilityZone: this.ctx.name,
      metadata: JSON.parse(s.metadata) as Record<string, string>,
      userData: s.user_data,
      publicKeys: keys,
      volumes: (this.volume?.attachmentsOf(s.id) ?? []).flatMap((a) => {
        const v = this.volumeFile(a.volumeId);
        return v ? [v] : [];
      }),
    };
    const nics = this.network?.vifsOf?.(s.id) ?? [];
    if (nics.length) spec.nics = nics;
    const bytes = (id: unknown): ImageBytes | undefined => {
      const f = file(id);
      return f && { id: id as string, sha256: f.sha256, ...(f.path ? { path: f.path } : {}) };
    };
    if (img && s.image_id) {
      const kernel = bytes(img.properties.kernel_id);
      const ramdisk = bytes(img.properties.ramdisk_id);
      const cmdline = img.properties.os_command_line;
      spec.image = {
        id: s.image_id,
        ...(img.path ? { path: img.path } : {}),
        sha256: img.sha256,
        format: img.diskFormat,
        ...(kernel ? { kernel } : {}),
        ...(ramdisk ? { ramdisk } : {}),
        ...(typeof cmdline === 'string' ? { cmdline } : {}),
      };
    }
    return spec;
  }

  /**
   * Where a volume's bytes are when the volume service's file backend holds them on disk here
   * (`<dataDir>/volumes/vol-<id>.img`, backend/file-driver.ts); undefined otherwise (the fake backend,
   * or an in-memory site whose volumes are in a temp folder): such a volume is attached in the API only.
   */
  volumeFile(volumeId: string): VolumeFile | undefined {
    const cfg = this.ctx.config;
    if (cfg.dataDir === ':memory:' || String(cfg.services.volume?.driver ?? 'file') !== 'file')
      return undefined;
    if (!/^[0-9a-f-]{36}$/.test(volumeId)) return undefined;
    const path = join(cfg.dataDir, 'volumes', `vol-${volumeId}.img`);
    return existsSync(path) ? { id: volumeId, path } : undefined;
  }

  /** The file of a volume to hot-plug into or out of `s`'s running guest (QEMU driver), if there is one. */
  private guestVolume(s: ServerRow, volumeId: string): VolumeFile | undefined {
    if (this.opts.driver !== 'qemu' || !s.host || s.vm_state !== 'active') return undefined;
    return this.volumeFile(volumeId);
  }

  /**
   * After the API attached a volume (the volume service marked it in-use): with the QEMU driver and
   * the guest running, hot-plug it (attach_volume on the host, after the API answered, as Nova); a
   * failure detaches it again and ends the instance action in error. A stopped guest gets it at start.
   */
  attachToGuest(s: ServerRow, volumeId: string, auth: AuthContext, actionId: string): void {
    const v = this.guestVolume(s, volumeId);
    if (!v) return this.finishAction(actionId);
    this.background(
      (async () => {
        try {
          await this.host(s.host!, 'attach_volume', s, v);
          this.finishAction(actionId);
        } catch (e) {
          const msg = (e as Error).message;
          this.ctx.log.warn({ server: s.id, volume: volumeId, err: msg }, 'volume hot-plug failed');
          try {
            this.volume?.detach(auth, volumeId, s.id);
          } catch (d) {
            this.ctx.log.warn(
              { server: s.id, volume: volumeId, err: String(d) },
              'undoing the attach failed',
            );
          }
          this.finishAction(actionId, msg);
        }
      })(),
      s.id,
    );
  }

  /**
   * A detach: with the QEMU driver and the guest running, the host unplugs the volume first (the guest
   * lets go of it), then the volume service detaches it, after the API answered; a guest that does not
   * let go keeps it attached and the instance action ends in error. Otherwise at once.
   */
  detachFromGuest(
    volumes: VolumeForCompute,
    s: ServerRow,
    volumeId: string,
    auth: AuthContext,
    requestId: string,
  ): void {
    const v = this.guestVolume(s, volumeId);
    if (!v) {
      volumes.detach(auth, volumeId, s.id);
      return this.finishAction(this.startAction(s, 'detach_volume', auth, requestId));
    }
    if (!volumes.attachmentsOf(s.id).some((a) => a.volumeId === volumeId))
      throw new NotFound(`Volume ${volumeId} is not attached to server ${s.id}.`);
    const actionId = this.startAction(s, 'detach_volume', auth, requestId);
    this.background(
      (async () => {
        try {
          await this.host(s.host!, 'detach_volume', s, v);
          volumes.detach(auth, volumeId, s.id);
          this.finishAction(actionId);
        } catch (e) {
          this.ctx.log.warn({ server: s.id, volume: volumeId, err: String(e) }, 'volume unplug failed');
          this.finishAction(actionId, (e as Error).message);
        }
      })(),
      s.id,
    );
  }

  /** Starts an instance action (os-instance-actions) and returns its id. */
  startAction(s: ServerRow, action: string, auth: AuthContext, requestId: string): string {
    const id = this.ctx.ids.uuid();
    const now = this.ctx.clock.now();
    this.repo.addAction({
      id,
      owner: this.ctx.name,
      server_id: s.id,
      request_id: requestId,
      action,
      user_id: auth.userId,
      project_id: s.project_id,
      message: null,
      start_time: now,
      updated_at: now,
      events: JSON.stringify([
        {
          event: `compute_${action}`,
          start_time: now,
          finish_time: null,
          result: null,
          traceback: null,
          host: s.host,
        },
      ]),
    });
    return id;
  }

  finishAction(actionId: string, error?: string): void {
    const stored = this.repo.actionEvents(actionId);
    if (stored === undefined) return;
    const now = this.ctx.clock.now();
    const events = (JSON.parse(stored) as Record<string, unknown>[]).map((e) =>
      e.finish_time === null
        ? { ...e, finish_time: now, result: error ? 'Error' : 'Success', traceback: error ?? null }
        : e,
    );
    this.repo.updateAction(actionId, JSON.stringify(events), error ? 'Error' : null, now);
  }

  /**
   * Runs host work in the background; close() waits for what is in flight. With `serverId`, the
   * server counts as busy until the work settles (call in the same tick as the task_state write, so a
   * reconciliation pass never sees the state without the work).
   */
  background(p: Promise<unknown>, serverId?: string): void {
    const done = serverId ? this.working(serverId) : () => undefined;
    const q = p
      .catch((e: unknown) => this.ctx.log.error({ err: String(e) }, 'compute background task failed'))
      .finally(done);
    this.inflight.add(q);
    void q.finally(() => this.inflight.delete(q));
  }

  /** Marks host work on a server in flight; the returned function marks it done (once). */
  working(serverId: string): () => void {
    this.busy.set(serverId, (this.busy.get(serverId) ?? 0) + 1);
    let done = false;
    return () => {
      if (done) return;
      done = true;
      const n = (this.busy.get(serverId) ?? 1) - 1;
      if (n > 0) this.busy.set(serverId, n);
      else this.busy.delete(serverId);
    };
  }

  /**
   * Reconciles at once, then every reconcileMs on the site's clock. At start nothing is in flight, so
   * every server of this site still in a transitional state was left by the previous run.
   */
  startReconciler(): void {
    const tick = () => {
      if (this.closing) return;
      try {
        this.reconcile();
      } catch (e) {
        this.ctx.log.error({ err: String(e) }, 'compute reconciliation failed');
      }
      // A floor, so a mistaken 0 in the config cannot turn the pass into a busy loop.
      this.reconcileTimer = this.ctx.clock.setTimeout(tick, Math.max(10, this.opts.reconcileMs));
    };
    tick();
  }

  /** Syncs power states every powerSyncMs on the site's clock (after the first reconciliation). */
  startPowerSync(): void {
    if (this.opts.powerSyncMs <= 0) return;
    const tick = () => {
      if (this.closing) return;
      const p = this.syncPowerStates().catch((e: unknown) =>
        this.ctx.log.error({ err: String(e) }, 'compute power state sync failed'),
      );
      this.background(
        p.then(() => {
          if (!this.closing)
            this.powerSyncTimer = this.ctx.clock.setTimeout(tick, Math.max(100, this.opts.powerSyncMs));
        }),
      );
    };
    tick();
  }

  /**
   * One pass of Nova's power state sync (with what its lifecycle events do): a server at rest that
   * should run (active, paused, suspended) whose guest is gone is stopped, as by itself: SHUTOFF,
   * power_state SHUTDOWN and a `stop` instance action, as Nova's "Instance shutdown by itself. Calling
   * the stop API." Level-based: the row is read again, and left alone if anything started meanwhile.
   * Returns how many servers it stopped.
   */
  async syncPowerStates(): Promise<number> {
    let n = 0;
    for (const s of this.repo.runningServers()) {
      if (this.busy.has(s.id) || !s.host) continue;
      let ps: number;
      try {
        ps = (await this.host(s.host, 'get_info', s)).powerState;
      } catch {
        continue;
      }
      if (ps !== PowerState.Shutdown && ps !== PowerState.NoState && ps !== PowerState.Crashed) continue;
      let stopped = false;
      this.update(s.id, (cur) => {
        if (this.busy.has(cur.id) || cur.task_state !== null || cur.vm_state !== s.vm_state) return undefined;
        stopped = true;
        return { vm_state: 'stopped', power_state: PowerState.Shutdown };
      });
      if (!stopped) continue;
      n++;
      this.ctx.log.warn({ server: s.id, host: s.host }, 'Instance shutdown by itself. Calling the stop API.');
      const auth = { userId: s.user_id, projectId: s.project_id } as AuthContext;
      this.finishAction(this.startAction(s, 'stop', auth, `req-${this.ctx.ids.uuid()}`));
    }
    return n;
  }

  /**
   * One pass: every server this site owns in a transitional state with no host work in flight
   * converges (domain/reconcile.ts). Returns how many were acted on.
   */
  reconcile(): number {
    let n = 0;
    for (const s of this.repo.unsettledServers()) {
      if (this.busy.has(s.id)) continue;
      const r = recoveryFor(s);
      if (!r) continue;
      n++;
      this.ctx.log.warn(
        { server: s.id, vm_state: s.vm_state, task_state: s.task_state, recovery: r.kind },
        'reconciling a server left in a transitional state',
      );
      // The newest unfinished instance action is the interrupted one: it records the outcome.
      const open = this.openActions(s.id)[0];
      const finish = (error?: string) => {
        if (open) this.finishAction(open, error);
      };
      switch (r.kind) {
        case 'fail-build':
          this.stats.failed++;
          this.failBuild(s.id, r.message);
          finish(r.message);
          // As Nova cleans up after a failed build: whatever the spawn left on the host goes.
          if (s.host) this.background(this.host(s.host, 'destroy', s), s.id);
          break;
        case 'fail-resize':
          this.ctx.store.tx(() => {
            this.repo.release(`${s.id}:resize`);
            this.update(s.id, { vm_state: 'error', task_state: null, fault: this.fault(r.message) });
          });
          finish(r.message);
          break;
        case 'error':
          this.update(s.id, { vm_state: 'error', task_state: null, fault: this.fault(r.message) });
          finish(r.message);
          break;
        case 'clear':
          this.update(s.id, { task_state: null });
          finish('The compute service restarted before this operation finished.');
          break;
        case 'delete':
          this.background(this.destroy(s), s.id);
          finish();
          break;
        case 'retry':
          this.lifecycle(s, {
            task: r.task,
            op: r.op,
            actionId: open ?? '',
            after: () => ({ vm_state: r.vm }),
          });
          break;
      }
    }
    return n;
  }

  /** Ids of the server's instance actions with an event not finished yet, newest first. */
  private openActions(serverId: string): string[] {
    return this.repo
      .actions(serverId)
      .filter((a) => (JSON.parse(a.events) as { finish_time: unknown }[]).some((e) => e.finish_time === null))
      .map((a) => a.id);
  }

  private fault(message: string): string {
    return JSON.stringify({ code: 500, message, created: this.ctx.clock.now() });
  }

  async host(host: string, op: DriverOp, s: ServerRow, volume?: VolumeFile): Promise<DriverResult> {
    // A guest that starts finds its taps on their bridges (the network's data plane makes them).
    if (this.opts.driver !== 'fake' && STARTS_GUEST.has(op)) await this.network?.plugServer?.(s.id);
    return callHost(
      this.ctx.fabric,
      this.ctx.name,
      host,
      op,
      { ...this.spec(s), ...(volume ? { volume } : {}) },
      this.opts.hostTimeoutMs + this.opts.bootDelayMs,
    );
  }

  /** The build after the claim: spawn on the chosen host, then ACTIVE, or ERROR with the claim released. */
  build(s: ServerRow, actionId: string): void {
    this.stats.builds++;
    this.background(
      (async () => {
        try {
          const r = await this.host(s.host!, 'spawn', s);
          const now = this.ctx.clock.now();
          const done = this.update(s.id, (cur) =>
            cur.task_state === 'deleting'
              ? undefined
              : { vm_state: 'active', task_state: null, power_state: r.powerState, launched_at: now },
          );
          if (done) this.stats.active++;
          this.finishAction(actionId);
        } catch (e) {
          this.stats.failed++;
          this.failBuild(s.id, (e as Error).message);
          this.finishAction(actionId, (e as Error).message);
        }
      })(),
      s.id,
    );
  }

  failBuild(id: string, message: string): void {
    this.ctx.store.tx(() => {
      this.repo.release(id);
      this.update(id, {
        vm_state: 'error',
        task_state: null,
        power_state: PowerState.NoState,
        fault: JSON.stringify({ code: 500, message, created: this.ctx.clock.now() }),
      });
    });
  }

  /** Deletes the server row after its host let go of it: claims, ports and attachments go with it. */
  async destroy(s: ServerRow): Promise<void> {
    for (const h of new Set([s.host, s.old_host])) {
      if (!h) continue;
      try {
        await this.host(h, 'destroy', s);
      } catch (e) {
        this.ctx.log.warn(
          { server: s.id, host: h, err: String(e) },
          'destroy on host failed; deleting anyway',
        );
      }
    }
    this.ctx.store.tx(() => {
      this.repo.release(s.id);
      this.repo.release(`${s.id}:resize`);
      this.ctx.changelog.remove(serverKind, s.id);
    });
    try {
      this.network?.releaseForServer(s.id);
      this.volume?.detachAll(s.id);
      for (const v of JSON.parse(s.delete_volumes ?? '[]') as string[]) this.volume?.deleteDetached?.(v);
    } catch (e) {
      this.ctx.log.warn(
        { server: s.id, err: String(e) },
        'releasing ports or volumes of a deleted server failed',
      );
    }
  }

  /** A 409 unless the server is in one of `vmStates` and has no task running (domain/lifecycle.ts). */
  checkState(s: ServerRow, action: string, vmStates: readonly string[], auth: AuthContext): void {
    checkState(s, action, vmStates, auth);
  }

  /** A host operation with a transitional task_state, then `after` (level-based: re-read before writing). */
  lifecycle(
    s: ServerRow,
    opts: {
      task: string;
      op: DriverOp;
      actionId: string;
      after: (powerState: number) => Partial<ServerRow>;
      auth?: AuthContext;
    },
  ): void {
    this.update(s.id, { task_state: opts.task });
    this.background(
      (async () => {
        try {
          const r = await this.hostWork(s, opts.task, opts.op, opts.auth);
          this.update(s.id, (cur) =>
            cur.task_state === opts.task
              ? { ...opts.after(r.powerState), task_state: null, power_state: r.powerState }
              : undefined,
          );
          this.finishAction(opts.actionId);
        } catch (e) {
          this.update(s.id, (cur) => (cur.task_state === opts.task ? { task_state: null } : undefined));
          this.finishAction(opts.actionId, (e as Error).message);
        }
      })(),
      s.id,
    );
  }

  /**
   * A lifecycle's host work. On a real driver (QEMU) shelve and unshelve move the disk as Nova does
   * (shelved_offload_time 0): shelve powers the guest off, snapshots its disk into an image of the
   * caller's project (`<name>-shelved`), records it (shelved_image_id) and destroys the guest and its
   * instance directory; unshelve spawns from that image. The host keeps its claim meanwhile, so the
   * unshelve comes back where it was. The fake driver only powers off and on.
   */
  private async hostWork(
    s: ServerRow,
    task: string,
    op: DriverOp,
    auth?: AuthContext,
  ): Promise<DriverResult> {
    if (!(this.driver instanceof QemuDriver)) return this.host(s.host!, op, s);
    if (task === 'shelving' && auth) {
      await this.host(s.host!, 'power_off', s);
      const props = { instance_uuid: s.id, image_type: 'snapshot' };
      const image = await this.snapshotImage(auth, s, `${s.name}-shelved`, props);
      this.update(s.id, { shelved_image_id: image });
      return this.host(s.host!, 'destroy', s);
    }
    const shelved = this.repo.server(s.id)?.shelved_image_id;
    if (task === 'unshelving' && shelved) {
      const r = await this.host(s.host!, 'spawn', { ...s, image_id: shelved });
      this.update(s.id, { shelved_image_id: null });
      // The guest runs on its own disk now (the base copy stays cached): the snapshot goes, as in Nova.
      if (auth)
        await this.image?.deleteImage(auth, shelved).catch((e: Error) => {
          this.ctx.log.warn(
            { server: s.id, image: shelved, err: String(e) },
            'deleting the shelved image failed',
          );
        });
      return r;
    }
    return this.host(s.host!, op, s);
  }

  async close(): Promise<void> {
    this.closing = true;
    this.reconcileTimer?.cancel();
    this.powerSyncTimer?.cancel();
    await Promise.allSettled([...this.inflight]);
    this.agents.close();
    if (this.driver instanceof QemuDriver) await this.driver.close();
  }
}

export function noValidHost(why: string): CloudError {
  return new CloudError(500, `${NO_VALID_HOST} (rejected by ${why})`);
}
