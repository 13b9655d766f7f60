/**
 * @module What becomes of a server this site owns that is in a transitional state with no host work in
 * flight (the site restarted mid-build, or the work was lost): after Nova's
 * ComputeManager._init_instance on compute start. A build that never finished ends in ERROR with a
 * fault, as does an interrupted rebuild or resize; a delete, and a simple action (stop, start, reboot,
 * ...), is run again; anything else has its task_state cleared. Level-based, as a controller: the
 * decision reads only the row, so running it twice does no harm.
 */
import type { DriverOp } from '../agent/driver.ts';
import { lifecycleOfTask } from './lifecycle.ts';

export type Recovery =
  /** Never built: ERROR with a fault, its claim given back (the build's own failure path). */
  | { kind: 'fail-build'; message: string }
  /** An interrupted resize: ERROR with a fault, the resize claim given back. */
  | { kind: 'fail-resize'; message: string }
  /** An interrupted rebuild or revert: ERROR with a fault. */
  | { kind: 'error'; message: string }
  | { kind: 'delete' }
  /** Run the simple action again (its own failure path clears the task_state). */
  | { kind: 'retry'; task: string; op: DriverOp; vm: string }
  | { kind: 'clear' };

const INTERRUPTED = 'The compute service restarted before this operation finished.';

/** undefined: the server is at rest (no task_state, not building), nothing to do. */
export function recoveryFor(s: { vm_state: string; task_state: string | null }): Recovery | undefined {
  const task = s.task_state;
  if (s.vm_state === 'building' || task === 'scheduling' || task === 'spawning')
    return { kind: 'fail-build', message: `Build of instance aborted: ${INTERRUPTED}` };
  if (!task) return undefined;
  if (task === 'deleting') return { kind: 'delete' };
  if (task === 'rebuilding' || task === 'resize_reverting') return { kind: 'error', message: INTERRUPTED };
  if (task.startsWith('resize_')) return { kind: 'fail-resize', message: INTERRUPTED };
  const l = lifecycleOfTask(task);
  if (l) return { kind: 'retry', task: l.task, op: l.op, vm: l.vm };
  // image_snapshot (Nova clears it too) and any state this code does not know.
  return { kind: 'clear' };
}
