/**
 * @module The server actions with no lookups of their own (Nova's stop, start, pause, ... reboot,
 * lock, unlock, os-resetState and delete), after the API parsed and authorized them, against ports.
 * Host work runs in the background and moves the server to its next state when it answers.
 */
import type { AuthContext } from '../../../core/auth.ts';
import { Conflict } from '../../../core/errors.ts';
import type { DriverOp } from '../agent/driver.ts';
import type { ServerRow } from '../store/schema.ts';
import type { Lifecycle } from './lifecycle.ts';
import { checkState } from './lifecycle.ts';

export interface ServerActionDeps {
  /** Re-reads the server and applies the patch (level-based); undefined when it is gone. */
  update(id: string, patch: Partial<ServerRow>): ServerRow | undefined;
  actions: {
    start(s: ServerRow, action: string, auth: AuthContext, requestId: string): string;
    finish(actionId: string, error?: string): void;
  };
  /** Sets the transitional task_state, runs the host operation in the background, then `after`. */
  lifecycle(
    s: ServerRow,
    opts: {
      task: string;
      op: DriverOp;
      actionId: string;
      after: (powerState: number) => Partial<ServerRow>;
      /** Who asked: shelve on a real driver makes an image of their project. */
      auth?: AuthContext;
    },
  ): void;
  /** Deletes the server after its host let go of it (claims, ports and attachments go with it). */
  destroy(s: ServerRow): Promise<void>;
  /** Host work after the answer; the server counts as busy until it settles. */
  background(p: Promise<unknown>, serverId?: string): void;
}

export interface ServerAction {
  auth: AuthContext;
  requestId: string;
  server: ServerRow;
}

/** A simple action (domain/lifecycle.ts): its state check, its instance action, its host work. */
export function runLifecycle(deps: ServerActionDeps, cmd: ServerAction & { lifecycle: Lifecycle }): void {
  const { auth, server: s, lifecycle: l } = cmd;
  checkState(s, l.name, l.from, auth);
  const actionId = deps.actions.start(s, l.name, auth, cmd.requestId);
  deps.lifecycle(s, { task: l.task, op: l.op, actionId, auth, after: () => ({ vm_state: l.vm }) });
}

export function lockServer(deps: ServerActionDeps, cmd: ServerAction & { reason: string | null }): void {
  const { auth, server: s } = cmd;
  if (s.locked && !auth.isAdmin) throw new Conflict(`Instance ${s.id} is locked`);
  deps.update(s.id, { locked: 1, locked_reason: cmd.reason });
  deps.actions.finish(deps.actions.start(s, 'lock', auth, cmd.requestId));
}

export function unlockServer(deps: ServerActionDeps, cmd: ServerAction): void {
  deps.update(cmd.server.id, { locked: 0, locked_reason: null });
  deps.actions.finish(deps.actions.start(cmd.server, 'unlock', cmd.auth, cmd.requestId));
}

/** os-resetState (the API checked admin): Nova's two states, any task in progress cleared. */
export function resetState(deps: ServerActionDeps, cmd: ServerAction & { state: 'active' | 'error' }): void {
  deps.update(cmd.server.id, { vm_state: cmd.state, task_state: null });
  deps.actions.finish(deps.actions.start(cmd.server, 'resetState', cmd.auth, cmd.requestId));
}

/** Marks the server deleting and lets its host go in the background; a second delete is a no-op. */
export function deleteServer(deps: ServerActionDeps, cmd: ServerAction): void {
  const { auth, server: s } = cmd;
  if (s.locked && !auth.isAdmin) throw new Conflict(`Instance ${s.id} is locked`);
  if (s.task_state === 'deleting') return;
  deps.actions.start(s, 'delete', auth, cmd.requestId);
  const marked = deps.update(s.id, { task_state: 'deleting' })!;
  deps.background(deps.destroy(marked), s.id);
}
