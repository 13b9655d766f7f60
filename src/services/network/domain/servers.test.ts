/**
 * @module Unit tests of the server-port commands (servers.ts) on in-memory ports: no SQLite, no site,
 * which is the point of domain/. A server's ports are made and bound in one transaction, released at
 * its deletion (made ones deleted, given ones unbound by the service itself, no user token involved).
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { AuthContext } from '../../../core/auth.ts';
import type { Obj } from '../../common/input.ts';
import type { ResourceKind } from '../store/schema.ts';
import { asSystem, canSee } from './access.ts';
import type { IpamPort, NetworkDeps, NetworkRepository, StoredRow } from './deps.ts';
import { noopNetworkDriver } from './driver.ts';
import { createNetwork } from './networks.ts';
import { createPort } from './ports.ts';
import { bodyOf } from './records.ts';
import { allocateServerPorts, releaseServerPorts, serverAddresses } from './servers.ts';
import { createSubnet } from './subnets.ts';

const SITE = 'site-a';
type Tables = Map<string, Map<string, StoredRow>>;

/** A NetworkRepository over maps; a transaction restores the maps when it throws. */
function memoryRepository(): NetworkRepository {
  let t: Tables = new Map();
  let depth = 0;
  const table = (k: string) => t.get(k) ?? t.set(k, new Map()).get(k)!;
  const rows = (k: string) => [...table(k).values()];
  const ordered = (xs: StoredRow[]) =>
    [...xs].sort((a, b) => a.created_at - b.created_at || (a.id < b.id ? -1 : 1));
  const put = (k: string, row: Obj & { id: string }) =>
    table(k).set(row.id, { owner: SITE, created_at: 0, updated_at: 0, project_id: '', body: '{}', ...row });
  return {
    tx<T>(fn: () => T): T {
      const saved: Tables = new Map([...t].map(([k, m]) => [k, new Map(m)]));
      depth++;
      try {
        return fn();
      } catch (e) {
        t = saved;
        throw e;
      } finally {
        depth--;
      }
    },
    onCommit: (fn) => fn(),
    row: (kind, id) => table(kind).get(id),
    all: (kind) => rows(kind),
    save: (kind, row) => {
      assert.ok(depth > 0, 'writes happen inside a transaction');
      put(kind, { ...row, body: JSON.stringify(row.body) });
    },
    remove: (kind, id) => void table(kind).delete(id),
    subnetsOf: (n) => rows('subnet').filter((s) => s.network_id === n),
    subnetsOfOrdered: (n) => ordered(rows('subnet').filter((s) => s.network_id === n)),
    subnetIdsOf: (n) => ordered(rows('subnet').filter((s) => s.network_id === n)).map((s) => s.id),
    subnetsOfFamily: (n, v) => rows('subnet').filter((s) => s.network_id === n && s.ip_version === v),
    v4SubnetsOrdered: (n) => ordered(rows('subnet').filter((s) => s.network_id === n && s.ip_version === 4)),
    portsOf: (n) => rows('port').filter((p) => p.network_id === n),
    portsOfExcept: (n, o) => rows('port').filter((p) => p.network_id === n && p.device_owner !== o),
    portsOfDevice: (dev) => rows('port').filter((p) => p.device_id === dev),
    portsOfDeviceOrdered: (dev) => ordered(rows('port').filter((p) => p.device_id === dev)),
    portsOfDeviceOwnedBy: (dev, o) => rows('port').filter((p) => p.device_id === dev && p.device_owner === o),
    portsOfDeviceOwnerLike: (dev, prefix) =>
      rows('port').filter((p) => p.device_id === dev && String(p.device_owner).startsWith(prefix)),
    portsMentioning: (text) => rows('port').filter((p) => p.body.includes(text)),
    macInUse: (n, mac) => rows('port').some((p) => p.network_id === n && p.mac_address === mac),
    portAt: () => undefined,
    rulesOf: (g) => rows('security_group_rule').filter((r) => r.security_group_id === g),
    rulesOfOrdered: (g) => ordered(rows('security_group_rule').filter((r) => r.security_group_id === g)),
    meteringRulesOf: (l) => ordered(rows('metering_label_rule').filter((r) => r.metering_label_id === l)),
    floatingIpsOfPort: (p, o) => rows('floating_ip').filter((f) => f.port_id === p && f.owner === o),
    floatingIpsOnPortExcept: () => [],
    internalNetworksOrdered: () => ordered(rows('network').filter((n) => n.external === 0)),
    projectHome: () => SITE,
    quotaLimits: () => undefined,
    saveQuotaLimits: () => {},
    removeQuotaLimits: () => {},
    countOf: (kind: ResourceKind, p) => rows(kind).filter((r) => r.project_id === p).length,
    serverPorts: (s) =>
      rows('server_port')
        .filter((r) => r.server_id === s)
        .map((r) => ({ id: r.id, created: Number(r.created) })),
    saveServerPort: (id, s, created) =>
      void put('server_port', { id, server_id: s, created: created ? 1 : 0 }),
    removeServerPort: (id) => void table('server_port').delete(id),
  };
}

/** Hands out .10, .11, ... of a /24 (enough for these tests). */
function memoryIpam(): IpamPort {
  const used = new Map<string, string>();
  let next = 10;
  return {
    allocate: (s, portId) => {
      const ip = `10.0.0.${next++}`;
      used.set(`${s.id}/${ip}`, portId);
      return ip;
    },
    release: (subnetId, ip) => void used.delete(`${subnetId}/${ip}`),
    releasePort: (portId) => {
      for (const [k, v] of used) if (v === portId) used.delete(k);
    },
    inUse: (subnetId) => [...used.keys()].some((k) => k.startsWith(`${subnetId}/`)),
    dropSubnet: () => {},
    freeCount: () => 100,
    usage: () => ({ used: used.size, total: 254n }),
  };
}

function deps(): NetworkDeps {
  let n = 0;
  return {
    repo: memoryRepository(),
    ipam: memoryIpam(),
    driver: noopNetworkDriver,
    site: { name: SITE, owns: (o) => o === SITE, knows: (s) => s === SITE },
    clock: { now: () => 1_700_000_000_000 },
    ids: { uuid: () => `00000000-0000-4000-a000-${String(++n).padStart(12, '0')}` },
    randomBytes: (k) => Uint8Array.from({ length: k }, (_, i) => (n * 7 + i) & 0xff),
    macPrefix: 'fa:16:3e',
  };
}

function user(projectId: string): AuthContext {
  return {
    token: 't',
    userId: `u-${projectId}`,
    userName: `u-${projectId}`,
    userDomainId: 'default',
    userDomainName: 'Default',
    projectId,
    roles: ['member', 'reader'],
    roleRefs: [],
    isAdmin: false,
    methods: ['password'],
    issuedAt: 0,
    expiresAt: Number.MAX_SAFE_INTEGER,
    auditIds: [],
    issuer: SITE,
  };
}

function withNetwork() {
  const d = deps();
  const alice = user('p1');
  const net = createNetwork(d, alice, 'p1', { name: 'net1' });
  createSubnet(d, alice, 'p1', net, { cidr: '10.0.0.0/24', ip_version: 4 });
  return { d, alice, net };
}

describe('server ports (domain)', () => {
  it('makes a bound port on the network, records it as made, and shows its address', () => {
    const { d, alice, net } = withNetwork();
    const server = { id: 'srv-1', projectId: 'p1', host: 'host-1' };
    const [port] = allocateServerPorts(d, alice, server, [{ networkId: net.id }]);
    const b = bodyOf(port!);
    assert.equal(b.device_id, 'srv-1');
    assert.equal(b.device_owner, `compute:${SITE}`);
    assert.equal(b['binding:host_id'], 'host-1');
    assert.deepEqual(d.repo.serverPorts('srv-1'), [{ id: port!.id, created: 1 }]);
    assert.deepEqual(
      serverAddresses(d, 'srv-1').map((a) => [a.networkName, a.addr, a.version]),
      [['net1', '10.0.0.10', 4]],
    );
  });

  it('allocates all or nothing: an unknown network leaves no port behind', () => {
    const { d, alice, net } = withNetwork();
    const server = { id: 'srv-2', projectId: 'p1', host: 'host-1' };
    assert.throws(
      () => allocateServerPorts(d, alice, server, [{ networkId: net.id }, { networkId: 'nope' }]),
      /Network nope could not be found/,
    );
    assert.deepEqual(d.repo.all('port'), []);
    assert.deepEqual(d.repo.serverPorts('srv-2'), []);
  });

  it('at deletion deletes the ports it made and unbinds the ones it was given, as the service itself', () => {
    const { d, alice, net } = withNetwork();
    const given = createPort(d, alice, 'p1', net, { name: 'mine' });
    const server = { id: 'srv-3', projectId: 'p1', host: 'host-1' };
    const ports = allocateServerPorts(d, alice, server, [
      { networkId: net.id },
      { portId: String(given.id) },
    ]);
    assert.equal(ports.length, 2);
    const made = ports.find((p) => p.id !== given.id)!;

    assert.deepEqual(releaseServerPorts(d, 'srv-3'), []);
    assert.equal(d.repo.row('port', made.id), undefined);
    const kept = bodyOf(d.repo.row('port', String(given.id))!);
    assert.equal(kept.device_id, '');
    assert.equal(kept.device_owner, '');
    assert.equal(kept.status, 'DOWN');
    assert.deepEqual(d.repo.serverPorts('srv-3'), []);
    assert.deepEqual(serverAddresses(d, 'srv-3'), []);
  });

  it('lets the system caller see what a user of another project may not', () => {
    const { d, net } = withNetwork();
    assert.equal(canSee(d, user('p2'), 'network', net), false);
    assert.equal(canSee(d, asSystem('test'), 'network', net), true);
  });
});
