/**
 * @module Unit tests of the BootServers command against in-memory ports (no HTTP, no SQL): a boot
 * writes its rows and starts builds after the unit of work; min_count / max_count stop at the quota;
 * no host is an accepted boot in ERROR; a refusal inside the unit of work leaves nothing behind.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { VirtualClock } from '../../../core/ports.ts';
import type { ServerRow } from '../store/schema.ts';
import type { BootServers, BootServersDeps } from './boot-servers.ts';
import { NO_VALID_HOST, bootServers } from './boot-servers.ts';
import { flavorRow, memberAuth } from './fixtures.ts';

const auth = memberAuth;
const flavor = flavorRow({ id: 'f1', name: 'tiny', vcpus: 2, ram: 512 });

/** Ports over maps; the unit of work snapshots the written state and restores it when fn throws. */
function ports(o: { hosts?: string[]; quota?: Record<string, number>; allocateFails?: number } = {}) {
  let servers = new Map<string, ServerRow>();
  let claims: string[] = [];
  const events: string[] = [];
  let n = 0;
  let allocations = 0;
  const deps: BootServersDeps = {
    site: 'site-a',
    clock: new VirtualClock(1000),
    ids: { uuid: () => `00000000-0000-4000-8000-${String(++n).padStart(12, '0')}` },
    catalog: {
      flavor: (id) => (id === 'f1' ? flavor : undefined),
      hasFlavorAccess: () => false,
      keypair: () => undefined,
      serverGroup: () => undefined,
      groupHosts: () => [],
    },
    quotas: {
      quota: () => (o.quota ? { limits: JSON.stringify(o.quota) } : undefined),
      usage: (p) => {
        const mine = [...servers.values()].filter((s) => s.project_id === p);
        return {
          instances: mine.length,
          cores: mine.reduce((a, s) => a + s.vcpus, 0),
          ram: mine.reduce((a, s) => a + s.ram, 0),
        };
      },
    },
    images: {
      usableImage: (_a, id) =>
        id === 'i1' ? { id, name: 'img', status: 'active', minDisk: 0, minRam: 0, size: 10 } : undefined,
    },
    network: {
      allocateForServer: () => {
        if (++allocations === o.allocateFails) throw new Error('no address left');
        return [];
      },
      releaseForServer: () => undefined,
      addressesOf: () => [],
    },
    schedule: () => (o.hosts?.length ? { host: o.hosts[0]! } : { why: 'RamFilter' }),
    claims: { claim: (id, _s, host) => void claims.push(`${id}@${host}`) },
    servers: { put: (row) => void servers.set(row.id, { ...row }), get: (id) => servers.get(id) },
    unitOfWork(fn) {
      const saved = { servers: new Map(servers), claims: [...claims] };
      try {
        return fn();
      } catch (e) {
        servers = saved.servers;
        claims = saved.claims;
        throw e;
      }
    },
    work: {
      startAction: (s, action) => {
        events.push(`start ${action} ${s.name}`);
        return `act-${s.name}`;
      },
      finishAction: (id, error) => void events.push(`finish ${id}${error ? `: ${error}` : ''}`),
      build: (s) => void events.push(`build ${s.name} on ${s.host}`),
    },
  };
  return { deps, servers: () => servers, claims: () => claims, events };
}

const cmd = (o: Partial<BootServers> = {}): BootServers => ({
  auth,
  projectId: 'p1',
  requestId: 'req-1',
  name: 'vm',
  flavorRef: 'f1',
  imageRef: 'i1',
  keyName: undefined,
  metadata: {},
  userData: undefined,
  nics: 'auto',
  groupId: undefined,
  minCount: 1,
  maxCount: 1,
  description: undefined,
  forceHost: undefined,
  ...o,
});

describe('bootServers', () => {
  it('writes the server spawning on the chosen host, claims it, then starts its build', async () => {
    const p = ports({ hosts: ['h1'] });
    const [b] = await bootServers(p.deps, cmd());
    assert.equal(b!.scheduled, true);
    const row = p.servers().get(b!.row.id)!;
    assert.deepEqual(
      [row.vm_state, row.task_state, row.host, row.owner],
      ['building', 'spawning', 'h1', 'site-a'],
    );
    assert.deepEqual(p.claims(), [`${row.id}@h1`]);
    assert.deepEqual(p.events, ['start create vm', 'build vm on h1']);
  });

  it('boots up to max_count within the quota, numbering the names', async () => {
    const p = ports({ hosts: ['h1'], quota: { instances: 2 } });
    const booted = await bootServers(p.deps, cmd({ minCount: 1, maxCount: 3 }));
    assert.deepEqual(
      booted.map((b) => b.row.name),
      ['vm-1', 'vm-2'],
    );
    await assert.rejects(
      bootServers(ports({ hosts: ['h1'], quota: { instances: 2 } }).deps, cmd({ minCount: 3, maxCount: 3 })),
      /Quota exceeded for instances/,
    );
  });

  it('accepts a boot no host can take, in ERROR with the fault, and finishes its action', async () => {
    const p = ports({ hosts: [] });
    const [b] = await bootServers(p.deps, cmd());
    assert.equal(b!.scheduled, false);
    assert.equal(b!.row.vm_state, 'error');
    assert.equal(JSON.parse(b!.row.fault!).message, NO_VALID_HOST);
    assert.deepEqual(p.claims(), []);
    assert.deepEqual(p.events, ['start create vm', `finish act-vm: ${NO_VALID_HOST}`]);
  });

  it('leaves nothing behind when a server below min_count cannot be allocated', async () => {
    const p = ports({ hosts: ['h1'], allocateFails: 2 });
    await assert.rejects(bootServers(p.deps, cmd({ minCount: 2, maxCount: 2 })), /no address left/);
    assert.equal(p.servers().size, 0);
    assert.deepEqual(p.claims(), []);
    assert.deepEqual(p.events, []);
  });

  it('refuses an unknown flavor, a missing image and a bad count before writing anything', async () => {
    const p = ports({ hosts: ['h1'] });
    await assert.rejects(bootServers(p.deps, cmd({ flavorRef: 'nope' })), /Flavor nope could not be found/);
    await assert.rejects(bootServers(p.deps, cmd({ imageRef: '' })), /Block Device Mapping is Invalid/);
    await assert.rejects(bootServers(p.deps, cmd({ minCount: 2, maxCount: 1 })), /min_count and max_count/);
    assert.equal(p.servers().size, 0);
  });
});
