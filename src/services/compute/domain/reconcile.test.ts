/**
 * @module Unit tests of the recovery rule for a server left in a transitional state (after Nova's
 * _init_instance): builds and rebuilds end in ERROR, deletes and simple actions run again, the rest
 * is cleared, and a server at rest is left alone.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { LIFECYCLE } from './lifecycle.ts';
import { recoveryFor } from './reconcile.ts';

describe('recoveryFor', () => {
  it('leaves a server at rest alone', () => {
    for (const vm of ['active', 'stopped', 'error', 'shelved_offloaded'])
      assert.equal(recoveryFor({ vm_state: vm, task_state: null }), undefined);
  });
  it('fails a build that never finished, whatever its task', () => {
    for (const task of ['scheduling', 'spawning', null])
      assert.equal(recoveryFor({ vm_state: 'building', task_state: task })?.kind, 'fail-build');
  });
  it('errors an interrupted rebuild, resize or revert; runs a delete again', () => {
    assert.equal(recoveryFor({ vm_state: 'active', task_state: 'rebuilding' })?.kind, 'error');
    assert.equal(recoveryFor({ vm_state: 'resized', task_state: 'resize_reverting' })?.kind, 'error');
    assert.equal(recoveryFor({ vm_state: 'active', task_state: 'resize_prep' })?.kind, 'fail-resize');
    assert.equal(recoveryFor({ vm_state: 'active', task_state: 'deleting' })?.kind, 'delete');
  });
  it('runs every simple action again with its own operation and end state', () => {
    for (const l of LIFECYCLE.values()) {
      const r = recoveryFor({ vm_state: l.from[0]!, task_state: l.task });
      assert.deepEqual(r, { kind: 'retry', task: l.task, op: l.op, vm: l.vm });
    }
  });
  it('clears a snapshot and any task it does not know', () => {
    assert.equal(recoveryFor({ vm_state: 'active', task_state: 'image_snapshot' })?.kind, 'clear');
    assert.equal(recoveryFor({ vm_state: 'active', task_state: 'something-new' })?.kind, 'clear');
  });
});
