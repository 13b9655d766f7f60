/**
 * @module The fake driver (after nova/virt/fake.py): instances exist only as entries in a map, every
 * operation takes `delayMs` and fails with probability `failureRate` (spawn only, so the failure
 * path of a build can be exercised). Cheap enough for thousands of hosts in one process.
 * The delays run on the site's clock, so under a VirtualClock a boot takes virtual time only.
 */
import type { Clock } from '../../../core/ports.ts';
import type { ComputeDriver, DriverOp, DriverResult, InstanceSpec } from './driver.ts';
import { PowerState } from '../domain/states.ts';

export interface FakeDriverOptions {
  bootDelayMs: number;
  opDelayMs: number;
  failureRate: number;
  clock: Clock;
  random?: () => number;
}

const POWER_AFTER: Record<DriverOp, number | undefined> = {
  spawn: PowerState.Running,
  destroy: PowerState.NoState,
  power_off: PowerState.Shutdown,
  power_on: PowerState.Running,
  reboot: PowerState.Running,
  pause: PowerState.Paused,
  unpause: PowerState.Running,
  suspend: PowerState.Suspended,
  resume: PowerState.Running,
  rebuild: PowerState.Running,
  migrate_disk_and_power_off: PowerState.Shutdown,
  finish_migration: PowerState.Running,
  confirm_migration: undefined,
  finish_revert_migration: PowerState.Running,
  snapshot: undefined,
  get_console_output: undefined,
  get_info: undefined,
  attach_volume: undefined,
  detach_volume: undefined,
};

export class FakeDriver implements ComputeDriver {
  private opts: FakeDriverOptions;
  private random: () => number;
  /** host -> instance id -> power state */
  readonly instances = new Map<string, Map<string, number>>();

  constructor(opts: FakeDriverOptions) {
    this.opts = opts;
    this.random = opts.random ?? Math.random;
  }

  async run(host: string, op: DriverOp, inst: InstanceSpec): Promise<DriverResult> {
    const delay = op === 'spawn' || op === 'rebuild' ? this.opts.bootDelayMs : this.opts.opDelayMs;
    if (delay > 0) await new Promise((r) => this.opts.clock.setTimeout(() => r(undefined), delay));
    let vms = this.instances.get(host);
    if (!vms) this.instances.set(host, (vms = new Map()));
    if (op === 'spawn' && this.opts.failureRate > 0 && this.random() < this.opts.failureRate)
      throw new Error(`fake driver: spawning ${inst.id} on ${host} failed (injected failure)`);
    if (op !== 'spawn' && !vms.has(inst.id) && op !== 'destroy' && op !== 'finish_migration')
      throw new Error(`Instance ${inst.id} could not be found on host ${host}.`);
    if (op === 'destroy' || op === 'confirm_migration') {
      vms.delete(inst.id);
      return { powerState: PowerState.NoState };
    }
    if (op === 'get_console_output') return { powerState: vms.get(inst.id)!, data: '' };
    if (op === 'snapshot') return { powerState: vms.get(inst.id)!, data: `fake disk of ${inst.id}\n` };
    const ps = POWER_AFTER[op] ?? vms.get(inst.id) ?? PowerState.NoState;
    vms.set(inst.id, ps);
    return { powerState: ps };
  }
}
