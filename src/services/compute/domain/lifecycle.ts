/**
 * @module The simple server actions (Nova's stop, start, pause, ... reboot): from which vm_states each
 * may start, the transitional task_state it holds while its host works, the driver operation and the
 * vm_state it ends in. The API runs them; reconciliation retries one whose host work was lost.
 */
import type { AuthContext } from '../../../core/auth.ts';
import { Conflict } from '../../../core/errors.ts';
import type { DriverOp } from '../agent/driver.ts';

export interface Lifecycle {
  /** The action's name in instance actions and conflict messages. */
  name: string;
  from: readonly string[];
  task: string;
  op: DriverOp;
  vm: string;
}

const ALL: readonly (readonly [string, Lifecycle])[] = [
  [
    'os-stop',
    { name: 'stop', from: ['active', 'error'], task: 'powering-off', op: 'power_off', vm: 'stopped' },
  ],
  ['os-start', { name: 'start', from: ['stopped'], task: 'powering-on', op: 'power_on', vm: 'active' }],
  ['pause', { name: 'pause', from: ['active'], task: 'pausing', op: 'pause', vm: 'paused' }],
  ['unpause', { name: 'unpause', from: ['paused'], task: 'unpausing', op: 'unpause', vm: 'active' }],
  ['suspend', { name: 'suspend', from: ['active'], task: 'suspending', op: 'suspend', vm: 'suspended' }],
  ['resume', { name: 'resume', from: ['suspended'], task: 'resuming', op: 'resume', vm: 'active' }],
  // Shelving powers the guest off and (shelved_offload_time 0, Nova's default) offloads it at once;
  // the host keeps its claim here, so an unshelve comes back where it was.
  [
    'shelve',
    {
      name: 'shelve',
      from: ['active', 'stopped', 'paused', 'suspended'],
      task: 'shelving',
      op: 'power_off',
      vm: 'shelved_offloaded',
    },
  ],
  [
    'unshelve',
    {
      name: 'unshelve',
      from: ['shelved', 'shelved_offloaded'],
      task: 'unshelving',
      op: 'power_on',
      vm: 'active',
    },
  ],
  [
    'shelveOffload',
    {
      name: 'shelveOffload',
      from: ['shelved'],
      task: 'shelving_offloading',
      op: 'power_off',
      vm: 'shelved_offloaded',
    },
  ],
  ['reboot:SOFT', { name: 'reboot', from: ['active'], task: 'rebooting', op: 'reboot', vm: 'active' }],
  [
    'reboot:HARD',
    {
      name: 'reboot',
      from: ['active', 'stopped', 'paused', 'suspended', 'error'],
      task: 'rebooting_hard',
      op: 'reboot',
      vm: 'active',
    },
  ],
];

/** By action (the key of the action body; reboot by `reboot:SOFT` / `reboot:HARD`). A Map: body keys are the caller's. */
export const LIFECYCLE: ReadonlyMap<string, Lifecycle> = new Map(ALL);

/** A 409 unless the server is in one of `vmStates` and has no task running (a lock binds non-admins). */
export function checkState(
  s: { id: string; locked: number; vm_state: string; task_state: string | null },
  action: string,
  vmStates: readonly string[],
  auth: AuthContext,
): void {
  if (s.locked && !auth.isAdmin) throw new Conflict(`Instance ${s.id} is locked`);
  if (s.task_state)
    throw new Conflict(`Cannot '${action}' instance ${s.id} while it is in task_state ${s.task_state}`);
  if (!vmStates.includes(s.vm_state))
    throw new Conflict(`Cannot '${action}' instance ${s.id} while it is in vm_state ${s.vm_state}`);
}

/** The simple action holding `task`, if any. */
export function lifecycleOfTask(task: string): Lifecycle | undefined {
  for (const [, l] of ALL) if (l.task === task) return l;
  return undefined;
}
