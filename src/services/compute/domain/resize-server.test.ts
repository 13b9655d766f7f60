/**
 * @module Unit tests of ResizeServer, ConfirmResize and RevertResize against in-memory ports: the
 * destination claim and the move in one unit of work, the hosts' migration in the background, confirm
 * keeping the destination's claim, revert going back to the old flavor and host, and the refusals.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { VirtualClock } from '../../../core/ports.ts';
import type { ServerRow } from '../store/schema.ts';
import type { ResizeDeps } from './resize-server.ts';
import { flavorRow, memberAuth } from './fixtures.ts';
import { confirmResize, resizeServer, revertResize } from './resize-server.ts';

const auth = memberAuth;
const flavor = (id: string, vcpus: number, disk = 1) =>
  flavorRow({ id, name: `f-${id}`, vcpus, ram: 512 * vcpus, disk });
const small = flavor('small', 1);
const big = flavor('big', 2);

function server(): ServerRow {
  return {
    id: 's1',
    owner: 'site-a',
    project_id: 'p1',
    user_id: 'u1',
    name: 'vm',
    host: 'h1',
    flavor_id: small.id,
    flavor: JSON.stringify(small),
    vcpus: small.vcpus,
    ram: small.ram,
    disk: small.disk,
    image_id: 'i1',
    key_name: null,
    metadata: '{}',
    user_data: null,
    vm_state: 'active',
    task_state: null,
    power_state: 1,
    locked: 0,
    locked_reason: null,
    fault: null,
    addresses: '[]',
    server_group_id: null,
    old_flavor: null,
    old_host: null,
    description: null,
    created_at: 0,
    updated_at: 0,
    launched_at: 0,
  };
}

function ports(o: { dest?: string; failOp?: string } = {}) {
  const rows = new Map<string, ServerRow>([['s1', server()]]);
  const claims = new Map<string, string>([['s1', 'h1']]);
  const calls: string[] = [];
  const work: Promise<unknown>[] = [];
  const deps: ResizeDeps = {
    clock: new VirtualClock(0),
    catalog: { flavor: (id) => [small, big].find((f) => f.id === id), hasFlavorAccess: () => false },
    quotas: { quota: () => undefined, usage: () => ({ instances: 1, cores: 1, ram: 512 }) },
    schedule: () => (o.dest ? { host: o.dest } : { why: 'RamFilter' }),
    claims: {
      claim: (id, _s, host) => void claims.set(id, host),
      release: (id) => void claims.delete(id),
      moveClaim: (from, to) => {
        const h = claims.get(from);
        claims.delete(from);
        if (h) claims.set(to, h);
      },
    },
    update: (id, patch) => {
      const cur = rows.get(id);
      if (!cur) return undefined;
      const next = { ...cur, ...patch };
      rows.set(id, next);
      return next;
    },
    unitOfWork: (fn) => fn(),
    actions: {
      start: (_s, action) => `act-${action}`,
      finish: (id, e) => void calls.push(`finish ${id}${e ? ' ' + e : ''}`),
    },
    host: async (host, op) => {
      calls.push(`${op}@${host}`);
      if (op === o.failOp) throw new Error(`${op} failed`);
      return { powerState: 1 };
    },
    background: (p) => void work.push(p),
  };
  return { deps, rows, claims, calls, settled: () => Promise.all(work) };
}

describe('resize', () => {
  it('claims the destination, moves the server, migrates, then confirm keeps the destination', async () => {
    const p = ports({ dest: 'h2' });
    resizeServer(p.deps, { auth, requestId: 'r1', server: server(), flavorRef: 'big' });
    assert.equal(p.rows.get('s1')!.task_state, 'resize_prep');
    assert.deepEqual(
      [...p.claims],
      [
        ['s1', 'h1'],
        ['s1:resize', 'h2'],
      ],
    );
    await p.settled();
    const s = p.rows.get('s1')!;
    assert.deepEqual(
      [s.vm_state, s.task_state, s.host, s.old_host, s.vcpus],
      ['resized', null, 'h2', 'h1', 2],
    );
    assert.deepEqual(p.calls, ['migrate_disk_and_power_off@h1', 'finish_migration@h2', 'finish act-resize']);
    confirmResize(p.deps, { auth, requestId: 'r2', server: s });
    assert.deepEqual([...p.claims], [['s1', 'h2']]);
    assert.equal(p.rows.get('s1')!.vm_state, 'active');
    await p.settled();
    assert.ok(p.calls.includes('confirm_migration@h1'));
  });

  it('revert goes back to the old flavor and host and drops the destination claim', async () => {
    const p = ports({ dest: 'h2' });
    resizeServer(p.deps, { auth, requestId: 'r1', server: server(), flavorRef: 'big' });
    await p.settled();
    revertResize(p.deps, { auth, requestId: 'r2', server: p.rows.get('s1')! });
    assert.deepEqual([...p.claims], [['s1', 'h1']]);
    await p.settled();
    const s = p.rows.get('s1')!;
    assert.deepEqual(
      [s.vm_state, s.task_state, s.host, s.flavor_id, s.old_host],
      ['active', null, 'h1', 'small', null],
    );
    assert.ok(p.calls.includes('destroy@h2') && p.calls.includes('finish_revert_migration@h1'));
  });

  it('a failed migration is ERROR with a fault and the destination claim released', async () => {
    const p = ports({ dest: 'h2', failOp: 'finish_migration' });
    resizeServer(p.deps, { auth, requestId: 'r1', server: server(), flavorRef: 'big' });
    await p.settled();
    const s = p.rows.get('s1')!;
    assert.equal(s.vm_state, 'error');
    assert.equal(JSON.parse(s.fault!).message, 'finish_migration failed');
    assert.deepEqual([...p.claims], [['s1', 'h1']]);
  });

  it('refuses the same flavor, no host, and a confirm of a server not resized', () => {
    assert.throws(
      () =>
        resizeServer(ports({ dest: 'h2' }).deps, {
          auth,
          requestId: 'r',
          server: server(),
          flavorRef: 'small',
        }),
      /must change flavor/,
    );
    const p = ports();
    assert.throws(
      () => resizeServer(p.deps, { auth, requestId: 'r', server: server(), flavorRef: 'big' }),
      /No valid host was found/,
    );
    assert.deepEqual([...p.claims], [['s1', 'h1']]);
    assert.throws(
      () => confirmResize(p.deps, { auth, requestId: 'r', server: server() }),
      /Cannot 'confirmResize'/,
    );
  });
});
