/**
 * @module Fuzz test of every API of a site: at least 10,000 malformed or hostile requests, generated
 * from a seeded PRNG over the route table the app itself reports (`printRoutes()`), sent in-process
 * with `app.inject` to a two-site cloud (one request in seven goes to the second site, so forwarding to
 * the owner sees hostile input too). Every answer must be below 500, every 4xx an OpenStack fault in
 * the shape of its API, a rejected request must write nothing, and afterwards the stores must hold
 * together (ports and their IP rows, change log sequence, replicas equal, nothing stuck mid-state).
 * Batches of the hostile inputs of issue 11 go first (pathological regexes for ?name=, a snapshot and
 * a clone of a 200 GiB sparse volume, token spellings; oversize properties and metadata go last), each
 * with the statuses its requests may get. The event loop of this process, which runs both sites, is
 * measured per batch (see eventLoopBatches and MAX_LOOP_DELAY_MS): no hostile batch may hold it for
 * 100 ms, nor 99% of the batches of random requests, nor any batch for a second; the wall-clock
 * delays (perf_hooks.monitorEventLoopDelay) are in the summary.
 *
 * Replay: ATOLL_FUZZ_SEED=<seed> ATOLL_FUZZ_COUNT=<n> node scripts/run-tests.mjs test/fuzz-api.test.ts
 * The summary (fuzz-summary.json and .md) goes to a temp directory, or to $ATOLL_BENCH_OUT when set
 * (ATOLL_BENCH_OUT=bench/results refreshes the committed one).
 */
import assert from 'node:assert/strict';
import { generateKeyPairSync, sign } from 'node:crypto';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { after, before, describe, it } from 'node:test';
import type { Site } from '../src/site/site.ts';
import type { TokenClaims } from '../src/services/identity/domain/tokens.ts';
import { ADMIN, eventually, startLocalCloud } from './support/cloud.ts';
import type { LocalCloud } from './support/cloud.ts';
import { seededRandom } from '../src/core/random.ts';

const SEED = Number(process.env.ATOLL_FUZZ_SEED ?? 20261124);
const COUNT = Number(process.env.ATOLL_FUZZ_COUNT ?? 10_000);
const MIB = 1024 * 1024;
/**
 * How long a batch may hold the event loop with this process's own work (issue 11, class 8): each
 * hostile batch, and 99% of the batches of random requests (one in a hundred may be a GC pause, which
 * the CPU time of V8's parallel threads inflates). The wall-clock delay (monitorEventLoopDelay) is
 * reported, not asserted: on a loaded 2-core machine it also counts the time other processes had the
 * CPU (its p99 went over 100 ms, and its max to 967 ms, in runs next to other suites).
 */
const MAX_LOOP_DELAY_MS = 100;
/** No batch may hold the loop this long: what the stalls of issue 11 looked like (6 s, 17 s). */
const STALL_MS = 1000;
/** Random requests per event-loop batch. */
const LOOP_BATCH = 100;
/** The event-loop monitor's sampling interval. */
const LOOP_RESOLUTION_MS = 5;
/** The sparse volume the hostile batch snapshots and clones, GiB. */
const HUGE_VOLUME_GB = 200;

// ---- seeded randomness ------------------------------------------------------------------------------

/** The same sequence on every machine for a given seed. */
function prng(seed: number) {
  const next = seededRandom(seed);
  const int = (n: number) => Math.floor(next() * n);
  return {
    next,
    int,
    chance: (p: number) => next() < p,
    pick<T>(xs: readonly T[]): T {
      if (xs.length === 0) throw new Error('pick from an empty list');
      return xs[int(xs.length)]!;
    },
    /** Picks by weight: [[weight, value], ...]. */
    weighted<T>(xs: readonly (readonly [number, T])[]): T {
      const total = xs.reduce((s, [w]) => s + w, 0);
      let r = next() * total;
      for (const [w, v] of xs) {
        r -= w;
        if (r < 0) return v;
      }
      return xs[xs.length - 1]![1];
    },
  };
}
type Rng = ReturnType<typeof prng>;

// ---- routes, from the app itself ---------------------------------------------------------------------

interface RouteTemplate {
  path: string;
  methods: string[];
}

/** Parses Fastify's `printRoutes({ commonPrefix: false })` tree into full paths and their methods. */
export function parseRouteTree(tree: string): RouteTemplate[] {
  const out: RouteTemplate[] = [];
  const stack: string[] = [];
  for (const line of tree.split('\n')) {
    const at = line.indexOf('── ');
    if (at < 0) continue;
    const depth = Math.round((at - 1) / 4);
    const rest = line.slice(at + 3);
    const m = /^(.*?)(?: \(([A-Z, ]+)\))?$/.exec(rest);
    if (!m) continue;
    stack.length = depth;
    const path = (depth > 0 ? stack[depth - 1]! : '') + m[1]!;
    stack.push(path);
    if (m[2]) out.push({ path, methods: m[2].split(', ').filter((x) => x !== 'HEAD') });
  }
  return out;
}

// ---- what a request is made of ---------------------------------------------------------------------

type TokenKind =
  | 'admin'
  | 'p1-member'
  | 'p1-reader'
  | 'p2-member'
  | 'missing'
  | 'empty'
  | 'garbage'
  | 'forged-signature'
  | 'tampered-claims'
  | 'alg-none'
  | 'expired'
  | 'revoked'
  | 'trailing-equals'
  | 'non-canonical'
  | 'very-long'
  | 'unicode';

type BodyKind =
  | 'none'
  | 'valid-or-mutated'
  | 'bad-json'
  | 'non-object'
  | 'empty'
  | 'huge'
  | 'proto-pollution'
  | 'deep-nesting'
  | 'random-object'
  | 'binary'
  | 'type-sweep';

interface Planned {
  n: number;
  site: number;
  method: string;
  url: string;
  template: string;
  headers: Record<string, string>;
  payload?: string | Buffer;
  token: TokenKind;
  body: BodyKind;
  pathTrick?: string;
  /** Set for the hostile batches: the event-loop batch it belongs to, and the statuses it may get. */
  batch?: string;
  expect?: number[];
}

const HOSTILE_SEGMENTS = [
  '..',
  '.',
  '%2e%2e',
  '%2E%2E%2F%2E%2E',
  '..%2F..%2Fidentity%2Fv3%2Fusers',
  '%2F',
  'a%2Fb',
  '%00',
  'a%00b',
  '%ff%fe',
  '%',
  '%%32%65',
  '%E2%80%AE',
  '%F0%9F%92%A5',
  '%20',
  '-1',
  '0',
  '99999999999999999999999999999999',
  'x'.repeat(300),
  'y'.repeat(9000),
  'null',
  'undefined',
  '__proto__',
  'constructor',
  'prototype',
  '%27%20OR%20%271%27%3D%271',
  'name%3BDROP%20TABLE%20images',
  '00000000-0000-0000-0000-000000000000',
  'FFFFFFFF-FFFF-FFFF-FFFF-FFFFFFFFFFFF',
  'default',
  'latest',
  'detail',
  '%0d%0aX-Injected:%201',
  '*',
  '~',
];

const PATH_TRICKS: [string, (u: string) => string][] = [
  ['double-slash', (u) => u.replace(/\/(?=[^/]*$)/, '//')],
  ['leading-double-slash', (u) => '/' + u],
  ['trailing-slash', (u) => u + '/'],
  ['dot-segment', (u) => u.replace(/\/(?=[^/]*$)/, '/./')],
  ['dotdot-escape', (u) => u + '/../../../identity/v3/users'],
  ['encoded-dotdot', (u) => u + '/%2e%2e/%2e%2e/identity/v3/users'],
  ['encoded-slash', (u) => u.replace(/\/(?=[^/]*$)/, '%2F')],
  ['upper-case', (u) => u.toUpperCase()],
  ['semicolon-param', (u) => u + ';jsessionid=1'],
  ['fragment', (u) => u + '#frag'],
  ['backslash', (u) => u.replace(/\/(?=[^/]*$)/, '\\')],
  ['nul', (u) => u + '%00'],
  ['extra-segment', (u) => u + '/extra/segments/here'],
];

const CONTENT_TYPES = [
  'text/plain',
  'application/xml',
  'application/x-www-form-urlencoded',
  'multipart/form-data; boundary=xyz',
  'application/octet-stream',
  'application/openstack-images-v2.1-json-patch',
  'application/json; charset=utf-16',
  'APPLICATION/JSON',
  'application/json-patch+json',
  'application/vnd.openstack.volume+json;version=3',
  '',
  ';;;',
  'application/json, text/plain',
];

const MICROVERSION_HEADERS: [string, string][] = [
  ['openstack-api-version', 'compute 2.999'],
  ['openstack-api-version', 'compute latest'],
  ['openstack-api-version', 'compute 1.0'],
  ['openstack-api-version', 'compute abc'],
  ['openstack-api-version', 'volume 3.99'],
  ['openstack-api-version', 'volume 2.0'],
  ['openstack-api-version', 'volume latest'],
  ['openstack-api-version', 'volume 3.'],
  ['openstack-api-version', 'x'.repeat(5000)],
  ['x-openstack-nova-api-version', '2.-1'],
  ['x-openstack-nova-api-version', '99999999999999999999.1'],
  ['x-atoll-forwarded-by', 'site-z'],
  ['x-atoll-forwarded-by', 'site-a'],
  ['x-subject-token', 'garbage'],
  ['x-auth-token', ''],
  ['accept', 'application/xml'],
  ['accept-encoding', 'gzip;q=abc'],
  ['content-length', '5'],
  ['transfer-encoding', 'chunked'],
  ['range', 'bytes=999999999-0'],
  ['if-match', '*'],
];

const QUERY_JUNK = [
  'limit=-1',
  'limit=abc',
  'limit=0',
  'limit=1.5',
  'limit=',
  'limit=99999999999999999999999',
  'limit=1&limit=2',
  'limit[]=1',
  'limit[a]=1',
  'marker=junk',
  'marker=..%2F..',
  'marker=%00',
  'sort_key=name;DROP TABLE networks',
  'sort_key=name%3BDROP%20TABLE%20x',
  'sort_key=__proto__',
  'sort_key=constructor',
  'sort_key=toString',
  'sort_key=hasOwnProperty',
  'sort_key=body',
  'sort_dir=sideways',
  'sort=name:asc,id:desc;DROP',
  'sort=:::,,,',
  'sort=created_at:desc:extra',
  'sort_key=name&sort_key=id&sort_dir=asc&sort_dir=desc',
  'fields=id&fields=name',
  'fields=__proto__',
  'fields=',
  'name=%00',
  'name=%E2%80%AE%F0%9F%92%A5',
  'name=' + 'n'.repeat(4000),
  'all_tenants=1',
  'all_tenants=abc',
  'all_projects=true',
  'status=ACTIVE%27%3B--',
  'changes-since=notadate',
  'changes-since=2026-13-45T99:99:99Z',
  'changes_since=-1',
  'tag=a&tag=b&tag=',
  'visibility=all',
  'visibility=%00',
  'member_status=all',
  'metadata=%7B%27a%27%3A%27b%27%7D',
  'metadata=%7Bbad',
  'metadata=%5B1%2C2%5D',
  'metadata=null',
  '__proto__[polluted]=1',
  'constructor[prototype][polluted]=1',
  'a=%ZZ',
  '%=%',
  '&&&==',
  'deleted=true',
  'with_count=true',
  'offset=-5',
  'is_public=None',
  'enabled=maybe',
  'domain_id=%27%3B',
  'name__icontains=x',
  'parent_id=x',
  'size_min=-1',
  'size_max=abc',
  'ip_version=7',
  'fixed_ips=ip_address%3D10.0.0.1',
  'fixed_ips=subnet_id%3Dnope',
  'router%3Aexternal=true',
  'id=' + 'i'.repeat(300),
  'q=' + encodeURIComponent('\u0000\u0001\u0002\u001b[31m'),
];

const BAD_JSON = [
  '{',
  '{"a":',
  'nul',
  '[1,2',
  "{'single': 1}",
  '{"a":1,}',
  '{"a":01}',
  '{"a":NaN}',
  '{"a":Infinity}',
  '\u0000',
  '{"a":"\u0000"',
  '"unterminated',
  '}{',
  '{"a":1}{"b":2}',
  '\ufeff{"a":1}',
  '{"\\ud800":1',
  '{"a":"\\x41"}',
  '<xml/>',
  'a=b&c=d',
  '{"a":1e999999}',
];

const NON_OBJECT_JSON = ['[]', '1', '"s"', 'null', 'true', '[{}]', '-0', '1e308', '[[[]]]', '""'];

// ---- sample bodies per route -----------------------------------------------------------------------

interface Pools {
  ids: Record<string, string[]>;
  /** Ids whose writes the fuzz must not make (its own principals, the default domain, builtin roles). */
  protectedIds: Set<string>;
  p1: string;
  p2: string;
  adminProject: string;
  adminUser: string;
  network: string;
  subnet: string;
  extNetwork: string;
  port: string;
  sg: string;
  router: string;
  volume: string;
  volumeType: string;
  image: string;
  flavor: string;
  server?: string;
  service: string;
  /** A HUGE_VOLUME_GB volume of P1's with no data. */
  hugeVolume: string;
  /** P1's server named BACKTRACK_NAME (when compute is there), for the pathological regexes. */
  backtrackServer?: string;
  /** P1's rows that no random request touches (so they are still there for the oversize batch). */
  spare: { image: string; volume: string; network: string };
}

type Sample = (p: Pools, r: Rng) => unknown;

const uniq = (r: Rng, prefix: string) => `${prefix}-${r.int(1e9).toString(36)}`;
const cidr = (r: Rng) => `10.${100 + r.int(150)}.${r.int(256)}.0/24`;

/** A body an OpenStack client could send for `METHOD template` (the mutations start from these). */
const SAMPLES: Record<string, Sample[]> = {
  'POST /identity/v3/auth/tokens': [
    (p, r) => ({
      auth: {
        identity: {
          methods: ['password'],
          password: {
            user: {
              name: r.pick(['admin', 'u1m', 'nobody']),
              domain: { id: 'default' },
              password: r.pick([ADMIN.adminPassword, 'wrong', 'pw-u1m']),
            },
          },
        },
        scope: r.pick([
          { project: { id: p.p1 } },
          { project: { name: 'admin', domain: { id: 'default' } } },
          { domain: { id: 'default' } },
          'unscoped',
          { system: { all: true } },
        ]),
      },
    }),
    () => ({ auth: { identity: { methods: ['token'], token: { id: 'garbage' } } } }),
    () => ({
      auth: {
        identity: { methods: ['application_credential'], application_credential: { id: 'x', secret: 'y' } },
      },
    }),
  ],
  'POST /identity/v3/domains': [
    (_p, r) => ({ domain: { name: uniq(r, 'dom'), description: 'd', enabled: true } }),
  ],
  'PATCH /identity/v3/domains/:domain_id': [() => ({ domain: { description: 'changed', enabled: true } })],
  'POST /identity/v3/projects': [
    (p, r) => ({
      project: {
        name: uniq(r, 'prj'),
        domain_id: 'default',
        description: 'p',
        enabled: true,
        parent_id: r.chance(0.3) ? p.p1 : undefined,
        is_domain: false,
      },
    }),
  ],
  'PATCH /identity/v3/projects/:project_id': [() => ({ project: { description: 'changed', enabled: true } })],
  'POST /identity/v3/users': [
    (p, r) => ({
      user: {
        name: uniq(r, 'usr'),
        domain_id: 'default',
        password: 'pw',
        email: 'a@b.c',
        enabled: true,
        default_project_id: p.p1,
        description: 'u',
      },
    }),
  ],
  'PATCH /identity/v3/users/:user_id': [
    () => ({ user: { description: 'changed', email: 'x@y.z', enabled: true } }),
  ],
  'POST /identity/v3/users/:user_id/password': [
    () => ({ user: { password: 'new', original_password: 'pw' } }),
  ],
  'POST /identity/v3/users/:user_id/application_credentials': [
    (_p, r) => ({
      application_credential: {
        name: uniq(r, 'ac'),
        description: 'x',
        expires_at: '2099-01-01T00:00:00',
        unrestricted: false,
        secret: 's3cret',
      },
    }),
  ],
  'POST /identity/v3/groups': [
    (_p, r) => ({ group: { name: uniq(r, 'grp'), domain_id: 'default', description: 'g' } }),
  ],
  'PATCH /identity/v3/groups/:group_id': [() => ({ group: { description: 'changed', name: 'renamed' } })],
  'POST /identity/v3/roles': [(_p, r) => ({ role: { name: uniq(r, 'role'), description: 'r' } })],
  'PATCH /identity/v3/roles/:role_id': [() => ({ role: { description: 'changed' } })],
  'POST /identity/v3/regions': [
    (_p, r) => ({
      region: {
        id: uniq(r, 'reg'),
        description: 'r',
        parent_region_id: r.chance(0.3) ? 'site-a' : undefined,
      },
    }),
  ],
  'PUT /identity/v3/regions/:region_id': [() => ({ region: { description: 'put' } })],
  'PATCH /identity/v3/regions/:region_id': [() => ({ region: { description: 'patched' } })],
  'POST /identity/v3/services': [
    (_p, r) => ({ service: { type: uniq(r, 'svc'), name: 'fuzz', description: 's', enabled: true } }),
  ],
  'PATCH /identity/v3/services/:service_id': [
    () => ({ service: { description: 'changed', enabled: false } }),
  ],
  'POST /identity/v3/endpoints': [
    (p) => ({
      endpoint: {
        service_id: p.service,
        interface: 'internal',
        url: 'http://127.0.0.1:1/x',
        region_id: 'site-a',
        enabled: true,
      },
    }),
  ],
  'PATCH /identity/v3/endpoints/:endpoint_id': [
    () => ({ endpoint: { url: 'http://127.0.0.1:2/y', interface: 'admin' } }),
  ],

  'POST /image/v2/images': [
    (p, r) => ({
      name: uniq(r, 'img'),
      disk_format: r.pick(['raw', 'qcow2', 'iso']),
      container_format: 'bare',
      visibility: r.pick(['private', 'shared', 'community', 'public']),
      tags: ['a', 'b'],
      min_disk: 0,
      min_ram: 0,
      protected: false,
      custom_prop: 'x',
      ...(r.chance(0.2) ? { owner: p.p2 } : {}),
      ...(r.chance(0.1) ? { id: '11111111-2222-3333-4444-555555555555' } : {}),
    }),
  ],
  'PATCH /image/v2/images/:id': [
    () => [
      { op: 'replace', path: '/name', value: 'renamed' },
      { op: 'add', path: '/custom', value: 'v' },
      { op: 'remove', path: '/custom' },
      { op: 'replace', path: '/min_ram', value: 64 },
    ],
    () => [{ op: 'replace', path: '/visibility', value: 'public' }],
    () => [{ op: 'add', path: '/tags/-', value: 't' }],
  ],
  'POST /image/v2/images/:id/members': [(p) => ({ member: p.p2 })],
  'PUT /image/v2/images/:id/members/:member': [() => ({ status: 'accepted' })],

  'POST /network/v2.0/networks': [
    (_p, r) => ({
      network: {
        name: uniq(r, 'net'),
        admin_state_up: true,
        shared: false,
        mtu: 1450,
        description: 'n',
        port_security_enabled: true,
        'router:external': r.chance(0.1),
        'provider:network_type': r.pick(['vxlan', 'flat', 'vlan']),
        'provider:segmentation_id': 100,
      },
    }),
  ],
  'PUT /network/v2.0/networks/:id': [
    () => ({ network: { name: 'renamed', description: 'd', mtu: 1400, admin_state_up: false } }),
  ],
  'POST /network/v2.0/subnets': [
    (p, r) => {
      const c = cidr(r);
      const base = c.slice(0, c.lastIndexOf('.'));
      return {
        subnet: {
          network_id: p.network,
          cidr: c,
          ip_version: 4,
          name: uniq(r, 'sub'),
          gateway_ip: `${base}.1`,
          enable_dhcp: true,
          allocation_pools: [{ start: `${base}.10`, end: `${base}.200` }],
          dns_nameservers: ['8.8.8.8'],
          host_routes: [{ destination: '192.168.0.0/16', nexthop: `${base}.254` }],
        },
      };
    },
    (p, r) => ({
      subnet: {
        network_id: p.network,
        cidr: `fd00:${r.int(65535).toString(16)}::/64`,
        ip_version: 6,
        ipv6_address_mode: 'slaac',
        ipv6_ra_mode: 'slaac',
      },
    }),
  ],
  'PUT /network/v2.0/subnets/:id': [
    () => ({
      subnet: { name: 'renamed', gateway_ip: '10.1.0.1', dns_nameservers: ['1.1.1.1'], enable_dhcp: false },
    }),
  ],
  'POST /network/v2.0/ports': [
    (p, r) => ({
      port: {
        network_id: p.network,
        name: uniq(r, 'port'),
        fixed_ips: r.pick([
          [{ subnet_id: p.subnet }],
          [{ subnet_id: p.subnet, ip_address: `10.1.0.${2 + r.int(250)}` }],
          [],
          [{ ip_address: '10.1.0.5' }],
        ]),
        security_groups: [p.sg],
        admin_state_up: true,
        device_id: '',
        device_owner: r.pick(['', 'compute:nova', 'network:router_interface', 'network:dhcp']),
        allowed_address_pairs: [{ ip_address: '10.1.0.250', mac_address: 'fa:16:3e:00:00:01' }],
        'binding:host_id': 'h',
        'binding:vnic_type': 'normal',
        port_security_enabled: true,
        ...(r.chance(0.2) ? { mac_address: 'fa:16:3e:11:22:33' } : {}),
      },
    }),
  ],
  'PUT /network/v2.0/ports/:id': [
    (p) => ({
      port: {
        name: 'renamed',
        security_groups: [p.sg],
        fixed_ips: [{ subnet_id: p.subnet }],
        admin_state_up: false,
        device_id: 'x',
      },
    }),
  ],
  'POST /network/v2.0/security-groups': [
    (_p, r) => ({ security_group: { name: uniq(r, 'sg'), description: 's', stateful: true } }),
  ],
  'PUT /network/v2.0/security-groups/:id': [
    () => ({ security_group: { name: 'renamed', description: 'd' } }),
  ],
  'POST /network/v2.0/security-group-rules': [
    (p, r) => ({
      security_group_rule: {
        security_group_id: p.sg,
        direction: r.pick(['ingress', 'egress']),
        ethertype: r.pick(['IPv4', 'IPv6']),
        protocol: r.pick(['tcp', 'udp', 'icmp', '6', null]),
        port_range_min: 22,
        port_range_max: 22 + r.int(100),
        remote_ip_prefix: r.pick(['0.0.0.0/0', '10.0.0.0/8', '::/0']),
        ...(r.chance(0.2) ? { remote_group_id: p.sg } : {}),
      },
    }),
  ],
  'PUT /network/v2.0/security-group-rules/:id': [() => ({ security_group_rule: { description: 'd' } })],
  'POST /network/v2.0/routers': [
    (p, r) => ({
      router: {
        name: uniq(r, 'rtr'),
        admin_state_up: true,
        external_gateway_info: { network_id: p.extNetwork, enable_snat: true },
        routes: [],
        distributed: false,
        ha: false,
      },
    }),
  ],
  'PUT /network/v2.0/routers/:id': [
    (p) => ({
      router: {
        name: 'renamed',
        routes: [{ destination: '172.16.0.0/16', nexthop: '10.1.0.9' }],
        external_gateway_info: { network_id: p.extNetwork },
      },
    }),
  ],
  'PUT /network/v2.0/routers/:id/add_router_interface': [
    (p) => ({ subnet_id: p.subnet }),
    (p) => ({ port_id: p.port }),
  ],
  'PUT /network/v2.0/routers/:id/remove_router_interface': [
    (p) => ({ subnet_id: p.subnet }),
    (p) => ({ port_id: p.port }),
  ],
  'PUT /network/v2.0/routers/:id/add_extraroutes': [
    () => ({ router: { routes: [{ destination: '172.17.0.0/16', nexthop: '10.1.0.9' }] } }),
  ],
  'PUT /network/v2.0/routers/:id/remove_extraroutes': [
    () => ({ router: { routes: [{ destination: '172.17.0.0/16', nexthop: '10.1.0.9' }] } }),
  ],
  'POST /network/v2.0/floatingips': [
    (p, r) => ({
      floatingip: {
        floating_network_id: p.extNetwork,
        description: 'f',
        ...(r.chance(0.5) ? { port_id: p.port } : {}),
        ...(r.chance(0.2) ? { floating_ip_address: '203.0.113.77' } : {}),
      },
    }),
  ],
  'PUT /network/v2.0/floatingips/:id': [
    (p, r) => ({ floatingip: { port_id: r.chance(0.5) ? null : p.port, description: 'x' } }),
  ],
  'PUT /network/v2.0/quotas/:project': [
    () => ({
      quota: {
        network: 100,
        subnet: 100,
        port: 500,
        router: 10,
        floatingip: 50,
        security_group: 10,
        security_group_rule: 100,
      },
    }),
  ],

  'POST /volume/v3/:project/volumes': [
    (p, r) => ({
      volume: {
        size: 1 + r.int(3),
        name: uniq(r, 'vol'),
        description: 'v',
        volume_type: r.pick([p.volumeType, '__DEFAULT__', undefined]),
        availability_zone: r.pick(['site-a', 'site-b', undefined]),
        metadata: { a: 'b' },
        multiattach: false,
        ...(r.chance(0.15) ? { source_volid: p.volume } : {}),
        ...(r.chance(0.15) ? { imageRef: p.image } : {}),
      },
    }),
  ],
  'PUT /volume/v3/:project/volumes/:id': [
    () => ({ volume: { name: 'renamed', description: 'd', metadata: { k: 'v' } } }),
  ],
  'POST /volume/v3/:project/volumes/:id/action': [
    (_p, r) => ({ 'os-extend': { new_size: 2 + r.int(3) } }),
    () => ({ 'os-reset_status': { status: 'available' } }),
    () => ({ 'os-set_bootable': { bootable: true } }),
    () => ({ 'os-update_readonly_flag': { readonly: true } }),
    () => ({ 'os-attach': { instance_uuid: 'x', mountpoint: '/dev/vdb' } }),
    () => ({ 'os-force_delete': {} }),
  ],
  'POST /volume/v3/:project/volumes/:id/metadata': [() => ({ metadata: { k: 'v', k2: 'v2' } })],
  'POST /volume/v3/:project/types': [
    (_p, r) => ({
      volume_type: {
        name: uniq(r, 'vt'),
        description: 't',
        'os-volume-type-access:is_public': true,
        extra_specs: { k: 'v' },
      },
    }),
  ],
  'PUT /volume/v3/:project/types/:id': [
    () => ({ volume_type: { name: 'renamed', description: 'd', is_public: true } }),
  ],
  'POST /volume/v3/:project/types/:id/extra_specs': [() => ({ extra_specs: { k: 'v' } })],
  'POST /volume/v3/:project/snapshots': [
    (p, r) => ({
      snapshot: {
        volume_id: p.volume,
        name: uniq(r, 'snap'),
        description: 's',
        force: r.chance(0.5),
        metadata: { a: 'b' },
      },
    }),
  ],
  'PUT /volume/v3/:project/snapshots/:id': [() => ({ snapshot: { name: 'renamed', description: 'd' } })],
  'PUT /volume/v3/:project/os-quota-sets/:target': [
    () => ({ quota_set: { volumes: 50, gigabytes: 500, snapshots: 50 } }),
  ],

  'POST /compute/v2.1/servers': [
    (p, r) => ({
      server: {
        name: uniq(r, 'vm'),
        flavorRef: p.flavor,
        imageRef: p.image,
        networks: r.pick([[{ uuid: p.network }], 'auto', 'none', [{ port: p.port }]]),
        metadata: { a: 'b' },
        availability_zone: r.pick(['site-a', 'site-b', undefined]),
        min_count: 1,
        max_count: 1 + r.int(2),
        security_groups: [{ name: 'default' }],
        user_data: Buffer.from('#!/bin/sh\necho hi').toString('base64'),
        description: 'd',
        ...(r.chance(0.2) ? { key_name: 'kp1' } : {}),
        ...(r.chance(0.15)
          ? {
              block_device_mapping_v2: [
                { boot_index: 0, uuid: p.volume, source_type: 'volume', destination_type: 'volume' },
              ],
            }
          : {}),
      },
    }),
  ],
  'PUT /compute/v2.1/servers/:id': [() => ({ server: { name: 'renamed', description: 'd' } })],
  'POST /compute/v2.1/servers/:id/action': [
    () => ({ 'os-stop': null }),
    () => ({ 'os-start': null }),
    () => ({ reboot: { type: 'SOFT' } }),
    () => ({ pause: null }),
    () => ({ unpause: null }),
    () => ({ suspend: null }),
    () => ({ resume: null }),
    () => ({ lock: { locked_reason: 'x' } }),
    () => ({ unlock: null }),
    (p) => ({ rebuild: { imageRef: p.image, name: 'rebuilt' } }),
    (p) => ({ resize: { flavorRef: p.flavor } }),
    () => ({ confirmResize: null }),
    () => ({ revertResize: null }),
    () => ({ createImage: { name: 'snap', metadata: { a: 'b' } } }),
    () => ({ addSecurityGroup: { name: 'default' } }),
    () => ({ 'os-getConsoleOutput': { length: 10 } }),
  ],
  'POST /compute/v2.1/servers/:id/metadata': [() => ({ metadata: { k: 'v' } })],
  'POST /compute/v2.1/flavors': [
    (_p, r) => ({
      flavor: {
        name: uniq(r, 'flv'),
        ram: 256,
        vcpus: 1,
        disk: 1,
        swap: 0,
        'OS-FLV-EXT-DATA:ephemeral': 0,
        'os-flavor-access:is_public': r.chance(0.5),
        rxtx_factor: 1.0,
      },
    }),
  ],
  'PUT /compute/v2.1/flavors/:id': [() => ({ flavor: { description: 'd' } })],
  'POST /compute/v2.1/flavors/:id/os-extra_specs': [
    () => ({ extra_specs: { 'hw:cpu_policy': 'dedicated' } }),
  ],
  'PUT /compute/v2.1/flavors/:id/os-extra_specs/:key': [() => ({ 'hw:cpu_policy': 'shared' })],
  'POST /compute/v2.1/flavors/:id/action': [
    (p) => ({ addTenantAccess: { tenant: p.p2 } }),
    (p) => ({ removeTenantAccess: { tenant: p.p2 } }),
  ],
  'POST /compute/v2.1/os-keypairs': [
    (_p, r) => ({ keypair: { name: uniq(r, 'kp'), type: 'ssh' } }),
    (_p, r) => ({
      keypair: {
        name: uniq(r, 'kp'),
        public_key: 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIB7ZpVAzOy7qb0QUCkxbHhnnS1ck3GM6mc6ZuCA+Zg8T fuzz',
      },
    }),
  ],
  'POST /compute/v2.1/os-server-groups': [
    (_p, r) => ({
      server_group: {
        name: uniq(r, 'sg'),
        policies: [r.pick(['affinity', 'anti-affinity', 'soft-affinity'])],
      },
    }),
    (_p, r) => ({
      server_group: { name: uniq(r, 'sg'), policy: 'anti-affinity', rules: { max_server_per_host: 1 } },
    }),
  ],
  'PUT /compute/v2.1/os-quota-sets/:id': [() => ({ quota_set: { instances: 20, cores: 40, ram: 51200 } })],

  'POST /atoll/v1/invites': [() => ({ site: 'site-z', ttlSeconds: 60 })],
};

// ---- hostile values ----------------------------------------------------------------------------------

function deep(n: number): unknown {
  let v: unknown = 'bottom';
  for (let i = 0; i < n; i++) v = i % 2 ? { d: v } : [v];
  return v;
}

function hostileValue(r: Rng, p: Pools): unknown {
  return r.pick<() => unknown>([
    () => null,
    () => true,
    () => false,
    () => 0,
    () => -1,
    () => -2147483649,
    () => 2 ** 53 + 1,
    () => 1e308,
    () => -1e308,
    () => 0.5,
    () => 1e-320,
    () => '',
    () => ' ',
    () => 'x'.repeat(256),
    () => 'x'.repeat(65_536),
    () => '\u0000',
    () => 'a\u0000b',
    () => '\u202e\u0007\u001b[31mred',
    () => '💥😀'.repeat(70),
    () => '\ud800',
    () => 'e\u0301\u0301\u0301',
    () => 'Ω≈ç√∫',
    () => '../../../../etc/passwd',
    () => "' OR '1'='1",
    () => 'name;DROP TABLE networks',
    () => '<script>alert(1)</script>',
    () => '${jndi:ldap://x}',
    () => '%s%n%x%d',
    () => '10.0.0.0/33',
    () => '::ffff:1.2.3.4/200',
    () => '300.1.1.1',
    () => '1.2.3',
    () => 'fe80::1%eth0',
    () => '0.0.0.0/0',
    () => '::/0',
    () => '10.1.0.1',
    () => 'ff:ff:ff:ff:ff:ff',
    () => '01:00:5e:00:00:01',
    () => '-1',
    () => '1e3',
    () => '0x10',
    () => 'true',
    () => 'null',
    () => '2026-02-30T25:61:61Z',
    () => p.p2,
    () => p.adminProject,
    () => r.pick(Object.values(p.ids).flat()),
    () => [],
    () => [null],
    () => [{}],
    () => [[[]]],
    () => ['a', 1, null, {}],
    () => Array.from({ length: 5000 }, (_, i) => i),
    () => Array.from({ length: 300 }, () => 'x'.repeat(300)),
    () => ({}),
    () => ({ $ne: null }),
    () => JSON.parse('{"__proto__":{"polluted":1},"constructor":{"prototype":{"polluted":1}}}') as unknown,
    () => ({ toString: 'x', valueOf: 1, hasOwnProperty: 'y' }),
    () => deep(40),
    () => deep(200),
  ])();
}

/** Every path (list of keys) to a node inside `v`, the root excluded. */
function paths(
  v: unknown,
  prefix: (string | number)[] = [],
  out: (string | number)[][] = [],
): (string | number)[][] {
  const entries: [string | number, unknown][] = Array.isArray(v)
    ? v.map((x, i) => [i, x])
    : v && typeof v === 'object'
      ? Object.entries(v)
      : [];
  for (const [k, x] of entries) {
    out.push([...prefix, k]);
    paths(x, [...prefix, k], out);
  }
  return out;
}

function setAt(root: unknown, path: (string | number)[], value: unknown, remove = false): void {
  let cur = root as Record<string | number, unknown>;
  for (const k of path.slice(0, -1)) cur = cur[k] as Record<string | number, unknown>;
  const last = path[path.length - 1]!;
  if (remove) {
    if (Array.isArray(cur)) cur.splice(Number(last), 1);
    else delete cur[last];
  } else cur[last] = value;
}

const FIELD_NAMES = [
  'name',
  'id',
  'project_id',
  'tenant_id',
  'owner',
  'is_admin',
  'admin',
  'roles',
  'status',
  'size',
  'network_id',
  'subnet_id',
  'port_id',
  'cidr',
  'fixed_ips',
  'security_groups',
  'device_owner',
  'visibility',
  'protected',
  'domain_id',
  'enabled',
  'password',
  'metadata',
  'extra_specs',
  'flavorRef',
  'imageRef',
  'availability_zone',
  'host',
  'vm_state',
  'task_state',
  'locked',
  'created_at',
  'deleted',
  'constructor',
  'toString',
  '__defineGetter__',
  'body',
  'seq',
  'row',
  'op',
];

function mutate(sample: unknown, r: Rng, p: Pools): unknown {
  const body = structuredClone(sample);
  const n = 1 + r.int(3);
  for (let i = 0; i < n; i++) {
    const all = paths(body);
    const what = r.next();
    if (all.length && what < 0.7) setAt(body, r.pick(all), hostileValue(r, p));
    else if (all.length && what < 0.8) setAt(body, r.pick(all), undefined, true);
    else if (body && typeof body === 'object') {
      // An unknown (or privileged) field, at the top or inside the wrapper.
      const objs = [
        body,
        ...all.map((pt) => pt.reduce<unknown>((o, k) => (o as Record<string | number, unknown>)[k], body)),
      ].filter((o) => o && typeof o === 'object' && !Array.isArray(o)) as Record<string, unknown>[];
      if (objs.length) r.pick(objs)[r.pick(FIELD_NAMES)] = hostileValue(r, p);
    }
  }
  return body;
}

// ---- faults --------------------------------------------------------------------------------------------

type Flavor = 'keystone' | 'nova' | 'glance' | 'neutron' | 'cinder' | 'plain';
const flavorOf = (url: string): Flavor =>
  url.startsWith('/identity')
    ? 'keystone'
    : url.startsWith('/compute')
      ? 'nova'
      : url.startsWith('/image')
        ? 'glance'
        : url.startsWith('/network')
          ? 'neutron'
          : url.startsWith('/volume')
            ? 'cinder'
            : 'plain';

const apiOf = (url: string) => /^\/(identity|compute|image|network|volume|atoll)\b/.exec(url)?.[1] ?? 'other';

/** Why `body` is not the fault an OpenStack client of this API expects for `status`; undefined if it is. */
function faultProblem(flavor: Flavor, status: number, text: string): string | undefined {
  let b: unknown;
  try {
    b = JSON.parse(text);
  } catch {
    return 'body is not JSON';
  }
  const o = b as Record<string, any>;
  switch (flavor) {
    case 'keystone':
    case 'plain':
      return o?.error?.code === status &&
        typeof o.error.title === 'string' &&
        typeof o.error.message === 'string'
        ? undefined
        : 'not {"error":{code,title,message}}';
    case 'nova':
    case 'cinder': {
      const keys = Object.keys(o ?? {});
      const f = keys.length === 1 ? o[keys[0]!] : undefined;
      return f?.code === status && typeof f.message === 'string'
        ? undefined
        : 'not {"<fault>":{code,message}}';
    }
    case 'neutron':
      return typeof o?.NeutronError?.type === 'string' && typeof o.NeutronError.message === 'string'
        ? undefined
        : 'not {"NeutronError":{type,message,detail}}';
    case 'glance':
      return o?.error?.code === status &&
        typeof o.error.message === 'string' &&
        Object.values(o).every((v) => typeof v === 'object' && v !== null)
        ? undefined
        : 'not a Glance fault {"error":{code,title,message}} (every top-level value an object)';
  }
}

/**
 * Inputs that once gave a 5xx or a half-written server in compute (fixed): still told apart in the
 * report, and a test below asserts that none of them happens any more.
 */
const KNOWN_COMPUTE_5XX: { id: string; matches: (q: Planned) => boolean }[] = [
  {
    id: 'GET /compute/v2.1/servers[/detail]?sort_key=__proto__|constructor|toString|hasOwnProperty: the sort key map is a plain object, so an Object.prototype member passes the check and reaches ORDER BY (SqliteError, 500)',
    matches: (q) =>
      q.template.startsWith('/compute/v2.1/servers') &&
      /sort_key=(__proto__|constructor|toString|hasOwnProperty)/.test(q.url),
  },
  {
    id: 'PUT /compute/v2.1/os-quota-sets/:id with a value like {"toString":"x","valueOf":1}: the 400 message is built with String(v), which throws TypeError (500) (quotas.ts)',
    matches: (q) =>
      q.template === '/compute/v2.1/os-quota-sets/:id' &&
      q.method === 'PUT' &&
      typeof q.payload === 'string' &&
      q.payload.includes('"toString"'),
  },
];

const KNOWN_COMPUTE_HALF_WRITE =
  'POST /compute/v2.1/servers answers 4xx (404 for a port of another project, 409 for a port in use or networks "auto" with max_count > 1) after it already wrote and replicated a server row (its put is the last change when the answer goes out; the row is removed afterwards): Nova validates before it creates any instance';

// ---- the hostile inputs of issue 11, in named batches -----------------------------------------------------

/** Patterns that make a backtracking matcher run for ever, or that it should refuse (Nova treats name as a regex). */
const PATHOLOGICAL_REGEXES = [
  '^(a+)+$',
  '(a|a)*b',
  '(a*)*b',
  '((a+)+)+$',
  '(a|aa)+$',
  '(x+x+)+y',
  '^(\\w+\\s?)*$',
  '.*.*.*.*.*.*.*.*.*.*.*.*!$',
  '^(([a-z])+.)+[A-Z]([a-z])+$',
  '(.*a){20}',
  'a{1000000}',
  '(a{1000}){1000}',
  '(a?){30}a{30}',
  '(a)\\1',
  '(?=a)a',
  '(?<n>a)\\k<n>',
  '[',
  '(',
  'a**',
  '\\',
  'a'.repeat(300),
  '('.repeat(200) + 'a' + ')'.repeat(200),
];

/** A server name that makes `^(a+)+$` backtrack for seconds in a RegExp. */
const BACKTRACK_NAME = 'a'.repeat(30) + '!';

/** Another spelling of a token's signature that decodes to the same bytes (its unused low bits set). */
function nonCanonical(token: string): string {
  const at = token.lastIndexOf('.') + 1;
  const sig = token.slice(at);
  const bytes = Buffer.from(sig, 'base64url');
  for (const c of 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_') {
    const alt = sig.slice(0, -1) + c;
    if (alt !== sig && Buffer.from(alt, 'base64url').equals(bytes)) return token.slice(0, at) + alt;
  }
  throw new Error('the signature has no other spelling');
}

/** Token spellings a validator must refuse (made from P1's member token). */
function tokenVariants(
  t: string,
): Pick<Record<TokenKind, string>, 'trailing-equals' | 'non-canonical' | 'very-long' | 'unicode'> {
  return {
    'trailing-equals': `${t}=`,
    'non-canonical': nonCanonical(t),
    'very-long': `${t}${'A'.repeat(64 * 1024)}`,
    // What a server sees of UTF-8 in a header: its bytes as latin1.
    unicode: Buffer.from(`${t.slice(0, -2)}é\u202e💥`, 'utf8').toString('latin1'),
  };
}

/** The batches of hostile requests from issue 11, each with the statuses its requests may get. */
function hostileBatches(
  p: Pools,
  tokens: Record<TokenKind, string | undefined>,
): { name: string; requests: Planned[]; last?: true; holdLimitMs?: number }[] {
  const req = (
    token: TokenKind,
    method: string,
    url: string,
    expect: number[],
    body?: unknown,
    contentType = 'application/json',
  ): Planned => ({
    n: -1,
    site: 0,
    method,
    url,
    template: url.split('?')[0]!,
    headers: {
      ...(tokens[token] !== undefined ? { 'x-auth-token': tokens[token] } : {}),
      ...(body !== undefined ? { 'content-type': contentType } : {}),
    },
    ...(body !== undefined ? { payload: JSON.stringify(body) } : {}),
    token,
    body: body === undefined ? 'none' : 'valid-or-mutated',
    expect,
  });
  const V = `/volume/v3/${p.p1}`;
  // 300 KB of quotes: each is escaped again in the row's JSON and in the change batch (issue 11, class 3).
  const quotes = '"'.repeat(300 * 1024);
  // Over the 1 MiB body limit once escaped.
  const tooMany = '"'.repeat(600 * 1024);
  const stored = [200, 201, 202, 204, 400, 413];
  const oversize: Planned[] = [
    req(
      'p1-member',
      'PATCH',
      `/image/v2/images/${p.spare.image}`,
      stored,
      [{ op: 'add', path: '/x_fuzz_big', value: quotes }],
      'application/openstack-images-v2.1-json-patch',
    ),
    req('p1-member', 'POST', '/image/v2/images', stored, {
      name: 'big-props',
      disk_format: 'raw',
      container_format: 'bare',
      x_big: quotes,
    }),
    req('p1-member', 'PUT', `${V}/volumes/${p.spare.volume}`, stored, {
      volume: { metadata: { big: quotes } },
    }),
    req('p1-member', 'POST', `${V}/volumes/${p.spare.volume}/metadata`, stored, {
      metadata: { big: quotes },
    }),
    req('p1-member', 'POST', `${V}/volumes`, stored, { volume: { size: 1, description: quotes } }),
    req('p1-member', 'PUT', `/network/v2.0/networks/${p.spare.network}`, stored, {
      network: { description: quotes },
    }),
    req('p1-member', 'POST', '/network/v2.0/ports', stored, {
      port: { network_id: p.spare.network, name: quotes },
    }),
    req('admin', 'POST', '/identity/v3/projects', stored, {
      project: { name: 'big-project', description: quotes },
    }),
    req('admin', 'POST', '/identity/v3/users', stored, { user: { name: 'big-user', description: quotes } }),
    req('p1-member', 'POST', '/compute/v2.1/os-keypairs', stored, {
      keypair: { name: 'big-kp', public_key: quotes },
    }),
    ...(p.backtrackServer
      ? [
          req('p1-member', 'POST', `/compute/v2.1/servers/${p.backtrackServer}/metadata`, stored, {
            metadata: { big: quotes },
          }),
          req('p1-member', 'PUT', `/compute/v2.1/servers/${p.backtrackServer}`, stored, {
            server: { description: quotes },
          }),
        ]
      : []),
    req('p1-member', 'POST', '/image/v2/images', [400, 413], { name: 'too-big', x_big: tooMany }),
    req('p1-member', 'PUT', `${V}/volumes/${p.spare.volume}`, [400, 413], {
      volume: { metadata: { big: tooMany } },
    }),
  ];
  const regexes: Planned[] = PATHOLOGICAL_REGEXES.flatMap((re) =>
    (['admin', 'p1-member'] as const).flatMap((token) =>
      [
        '/compute/v2.1/servers',
        '/compute/v2.1/servers/detail',
        '/image/v2/images',
        '/network/v2.0/networks',
        `${V}/volumes`,
        '/identity/v3/users',
      ].map((path) =>
        req(
          token,
          'GET',
          `${path}?name=${encodeURIComponent(re)}`,
          // The member may not list users; the volume URL names P1's project, which Block Storage
          // refuses to any other token's project, the admin's included (403).
          (token === 'admin' && path === `${V}/volumes`) ||
            (token !== 'admin' && path.startsWith('/identity'))
            ? [200, 400, 403]
            : [200, 400],
        ),
      ),
    ),
  );
  const huge: Planned[] = [
    req('p1-member', 'POST', `${V}/snapshots`, [202], {
      snapshot: { volume_id: p.hugeVolume, name: 'huge-snap' },
    }),
    req('p1-member', 'POST', `${V}/volumes`, [202], {
      volume: { source_volid: p.hugeVolume, name: 'huge-clone' },
    }),
  ];
  const variants = ['trailing-equals', 'non-canonical', 'very-long', 'unicode'] as const;
  const tokenSpellings: Planned[] = variants.flatMap((kind) => [
    ...[
      '/compute/v2.1/servers',
      `${V}/volumes`,
      '/network/v2.0/networks',
      '/image/v2/images',
      '/identity/v3/projects',
    ].map((path) => req(kind, 'GET', path, [401])),
    req(kind, 'POST', `${V}/volumes`, [401], { volume: { size: 1 } }),
    {
      ...req('admin', 'GET', '/identity/v3/auth/tokens', [401, 404]),
      headers: { 'x-auth-token': tokens.admin!, 'x-subject-token': tokens[kind]! },
    },
  ]);
  return [
    { name: 'pathological ?name= regexes', requests: regexes },
    // Before the sweep and the random requests, while P1's quotas leave room for the copies.
    { name: `snapshot and clone of a ${HUGE_VOLUME_GB} GiB sparse volume`, requests: huge },
    { name: 'token spellings', requests: tokenSpellings },
    // Last: should one slip past the row cap (issue 11, class 3), a 300 KB property on a shared row
    // would make every later request that reads it heavier, which the random requests do not measure.
    { name: 'oversize properties and metadata', requests: oversize, last: true },
  ];
}

// ---- the event loop, per batch of requests ---------------------------------------------------------------

interface LoopBatch {
  name: string;
  requests: number;
  /** Timer ticks the monitor saw in the batch. */
  samples: number;
  elapsed_ms: number;
  /** monitorEventLoopDelay: wall-clock delay of the loop's ticks. */
  max_ms: number;
  p99_ms: number;
  /** The longest the loop was held by work of this process's own (CPU time between two ticks). */
  busy_max_ms: number;
}

/**
 * Measures this process's event loop (both sites run in it) per named batch of requests: enter(name)
 * before each request; a new name closes the batch before it. Two measures: monitorEventLoopDelay
 * (wall clock: what a client waits, but on a loaded machine it also counts the time the OS gave the
 * CPU to other processes), and, at each tick of a timer at the same resolution, the CPU time this
 * process used since the tick before, capped by the wall time between them: the loop held by its own
 * work (a sync copy, a backtracking regex, a big JSON), whatever the machine's load.
 *
 * enter() first yields to the event loop: injected requests that never wait on I/O would otherwise run
 * back to back as one long macrotask, and the loop would be measured per batch, not per request.
 * Closing waits two ticks, so a stall at the end of a batch is counted in it; after a reset the monitor
 * drops the delta up to its next tick, so the next batch starts only after that tick.
 */
function eventLoopBatches() {
  const h = monitorEventLoopDelay({ resolution: LOOP_RESOLUTION_MS });
  const run = monitorEventLoopDelay({ resolution: LOOP_RESOLUTION_MS });
  h.enable();
  run.enable();
  let busy = 0;
  let busyRun = 0;
  let last = { wall: performance.now(), cpu: process.cpuUsage() };
  const ticker = setInterval(() => {
    const now = { wall: performance.now(), cpu: process.cpuUsage() };
    const cpuMs = (now.cpu.user + now.cpu.system - last.cpu.user - last.cpu.system) / 1000;
    const held = Math.max(0, Math.min(now.wall - last.wall, cpuMs) - LOOP_RESOLUTION_MS);
    busy = Math.max(busy, held);
    busyRun = Math.max(busyRun, held);
    last = now;
  }, LOOP_RESOLUTION_MS);
  const done: LoopBatch[] = [];
  let name = '';
  let requests = 0;
  let t0 = performance.now();
  const ms = (ns: number) => Number(ns.toFixed(1));
  const settle = () => new Promise((r) => setTimeout(r, 2 * LOOP_RESOLUTION_MS));
  const yieldToLoop = () => new Promise((r) => setImmediate(r));
  const finish = async () => {
    if (requests === 0) return;
    await settle();
    done.push({
      name,
      requests,
      samples: h.count,
      elapsed_ms: ms(performance.now() - t0),
      max_ms: ms(h.max / 1e6),
      p99_ms: ms(h.percentile(99) / 1e6),
      busy_max_ms: ms(busy),
    });
    h.reset();
    busy = 0;
    await settle();
    requests = 0;
  };
  return {
    async enter(batch: string) {
      await yieldToLoop();
      if (batch !== name) {
        await finish();
        name = batch;
        t0 = performance.now();
      }
      requests++;
    },
    async close() {
      await finish();
      clearInterval(ticker);
      h.disable();
      run.disable();
      return {
        batches: done,
        run: {
          samples: run.count,
          p99_ms: ms(run.percentile(99) / 1e6),
          max_ms: ms(run.max / 1e6),
          busy_max_ms: ms(busyRun),
        },
      };
    },
  };
}

/** What the summary says of the event loop: over the run, the worst batches, and every hostile batch. */
function loopSummary({ batches, run }: Awaited<ReturnType<ReturnType<typeof eventLoopBatches>['close']>>) {
  const random = (b: LoopBatch) => /^(random|type sweep) #/.test(b.name);
  return {
    resolution_ms: LOOP_RESOLUTION_MS,
    busy_limit_ms: MAX_LOOP_DELAY_MS,
    run,
    batches: batches.length,
    hostile_batches: batches.filter((b) => !random(b)),
    worst_batches: [...batches].sort((a, b) => b.max_ms - a.max_ms).slice(0, 5),
    busiest_batches: [...batches].sort((a, b) => b.busy_max_ms - a.busy_max_ms).slice(0, 5),
  };
}

// ---- the test ---------------------------------------------------------------------------------------------

interface Outcome {
  n: number;
  status: number;
  ms: number;
  what: string;
}

describe('fuzz: hostile requests against every API of a site', () => {
  let cloud: LocalCloud;
  let sites: Site[];
  let pools: Pools;
  const tokens = {} as Record<TokenKind, string | undefined>;
  const revokedToken = { v: '' };
  const knownCompute: string[] = [];

  /** One request over inject: a body is JSON, sent as is when it is a string or a Buffer already. */
  const inject = (
    site: number,
    method: string,
    url: string,
    token: string | undefined,
    body?: unknown,
    headers: Record<string, string> = {},
  ) =>
    sites[site]!.app.inject({
      method: method as 'GET',
      url,
      headers: {
        ...(token ? { 'x-auth-token': token } : {}),
        ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
        ...headers,
      },
      ...(body !== undefined
        ? { payload: typeof body === 'string' || Buffer.isBuffer(body) ? body : JSON.stringify(body) }
        : {}),
    });
  /** JSON over inject, for setup: throws unless the status is 2xx. */
  const call = async (
    method: string,
    url: string,
    token: string | undefined,
    body?: unknown,
    site = 0,
    headers: Record<string, string> = {},
  ): Promise<{ status: number; body: any; headers: Record<string, unknown> }> => {
    const res = await inject(site, method, url, token, body, headers);
    if (res.statusCode >= 300) throw new Error(`${method} ${url}: ${res.statusCode} ${res.body}`);
    return {
      status: res.statusCode,
      body: res.body ? (JSON.parse(res.body) as unknown) : undefined,
      headers: res.headers,
    };
  };
  const login = async (name: string, password: string, project: string) => {
    const res = await call('POST', '/identity/v3/auth/tokens', undefined, {
      auth: {
        identity: {
          methods: ['password'],
          password: { user: { name, domain: { id: 'default' }, password } },
        },
        scope: { project: { id: project } },
      },
    });
    return String(res.headers['x-subject-token']);
  };

  before(async () => {
    cloud = await startLocalCloud({ sites: 2 });
    sites = cloud.fed.sites;
    const admin = await cloud.adminToken(0);
    tokens.admin = admin;
    const me = await call('GET', '/identity/v3/auth/tokens', admin, undefined, 0, {
      'x-subject-token': admin,
    });
    const adminUser = String(me.body.token.user.id);
    const adminProject = String(me.body.token.project.id);
    const roles = (await call('GET', '/identity/v3/roles', admin)).body.roles as {
      id: string;
      name: string;
    }[];
    const roleId = (n: string) => roles.find((x) => x.name === n)!.id;
    const project = async (name: string) =>
      String(
        (await call('POST', '/identity/v3/projects', admin, { project: { name, domain_id: 'default' } })).body
          .project.id,
      );
    const p1 = await project('fuzz-p1');
    const p2 = await project('fuzz-p2');
    const user = async (name: string, proj: string, role: string) => {
      const u = await call('POST', '/identity/v3/users', admin, {
        user: { name, domain_id: 'default', password: `pw-${name}`, default_project_id: proj },
      });
      const id = String(u.body.user.id);
      await call('PUT', `/identity/v3/projects/${proj}/users/${id}/roles/${roleId(role)}`, admin);
      return id;
    };
    const u1m = await user('u1m', p1, 'member');
    const u1r = await user('u1r', p1, 'reader');
    const u2m = await user('u2m', p2, 'member');
    tokens['p1-member'] = await login('u1m', 'pw-u1m', p1);
    tokens['p1-reader'] = await login('u1r', 'pw-u1r', p1);
    tokens['p2-member'] = await login('u2m', 'pw-u2m', p2);
    revokedToken.v = await login('u1m', 'pw-u1m', p1);
    await call('DELETE', '/identity/v3/auth/tokens', admin, undefined, 0, {
      'x-subject-token': revokedToken.v,
    });
    tokens.revoked = revokedToken.v;
    tokens.missing = undefined;
    tokens.empty = '';
    tokens.garbage = 'gAAAAABnot-a-token.' + 'z'.repeat(200);

    // Tokens that look right and are not: another key, altered claims, alg "none", expired (signed here).
    const [h, pl] = admin.split('.') as [string, string];
    const claims = JSON.parse(Buffer.from(pl, 'base64url').toString()) as TokenClaims;
    const b64 = (x: string | Buffer) => Buffer.from(x).toString('base64url');
    const { privateKey } = generateKeyPairSync('ed25519');
    tokens['forged-signature'] = `${h}.${pl}.${b64(sign(null, Buffer.from(`${h}.${pl}`), privateKey))}`;
    const p1Claims = JSON.parse(
      Buffer.from(tokens['p1-member'].split('.')[1]!, 'base64url').toString(),
    ) as TokenClaims;
    tokens['tampered-claims'] =
      `${tokens['p1-member'].split('.')[0]}.${b64(JSON.stringify({ ...p1Claims, p: adminProject }))}.${tokens['p1-member'].split('.')[2]}`;
    tokens['alg-none'] =
      `${b64(JSON.stringify({ alg: 'none', typ: 'JWT', kid: JSON.parse(Buffer.from(h, 'base64url').toString()).kid }))}.${b64(JSON.stringify({ ...claims, exp: Date.now() + 3600e3 }))}.`;
    const issuer = sites[0]!.ctx.tokens as unknown as { issue(c: TokenClaims): string };
    tokens.expired = issuer.issue({ ...claims, iat: Date.now() - 7200e3, exp: Date.now() - 3600e3 });
    Object.assign(tokens, tokenVariants(tokens['p1-member']));

    // Resources: most of them P1's on site-a (member), a few the admin's, one of P2.
    const t1 = tokens['p1-member'];
    const V = `/volume/v3/${p1}`;
    const ext = await call('POST', '/network/v2.0/networks', admin, {
      network: { name: 'ext', 'router:external': true },
    });
    const extNetwork = String(ext.body.network.id);
    await call('POST', '/network/v2.0/subnets', admin, {
      subnet: { network_id: extNetwork, cidr: '203.0.113.0/24', ip_version: 4, enable_dhcp: false },
    });
    const network = String(
      (await call('POST', '/network/v2.0/networks', t1, { network: { name: 'n1' } })).body.network.id,
    );
    const subnet = String(
      (
        await call('POST', '/network/v2.0/subnets', t1, {
          subnet: { network_id: network, cidr: '10.1.0.0/24', ip_version: 4 },
        })
      ).body.subnet.id,
    );
    const sg = String(
      (await call('POST', '/network/v2.0/security-groups', t1, { security_group: { name: 'sg1' } })).body
        .security_group.id,
    );
    const rule = String(
      (
        await call('POST', '/network/v2.0/security-group-rules', t1, {
          security_group_rule: {
            security_group_id: sg,
            direction: 'ingress',
            protocol: 'tcp',
            port_range_min: 22,
            port_range_max: 22,
          },
        })
      ).body.security_group_rule.id,
    );
    const port = String(
      (await call('POST', '/network/v2.0/ports', t1, { port: { network_id: network, name: 'p1' } })).body.port
        .id,
    );
    const router = String(
      (
        await call('POST', '/network/v2.0/routers', t1, {
          router: { name: 'r1', external_gateway_info: { network_id: extNetwork } },
        })
      ).body.router.id,
    );
    await call('PUT', `/network/v2.0/routers/${router}/add_router_interface`, t1, { subnet_id: subnet });
    const fip = String(
      (
        await call('POST', '/network/v2.0/floatingips', t1, {
          floatingip: { floating_network_id: extNetwork, port_id: port },
        })
      ).body.floatingip.id,
    );
    const p2Net = String(
      (await call('POST', '/network/v2.0/networks', tokens['p2-member'], { network: { name: 'n2' } })).body
        .network.id,
    );
    const volumeType = String(
      (await call('POST', `/volume/v3/${adminProject}/types`, admin, { volume_type: { name: 'fuzz-type' } }))
        .body.volume_type.id,
    );
    const volume = String(
      (await call('POST', `${V}/volumes`, t1, { volume: { size: 1, name: 'v1' } })).body.volume.id,
    );
    const snapshot = String(
      (await call('POST', `${V}/snapshots`, t1, { snapshot: { volume_id: volume, name: 's1' } })).body
        .snapshot.id,
    );
    const spare = {
      volume: String(
        (await call('POST', `${V}/volumes`, t1, { volume: { size: 1, name: 'spare' } })).body.volume.id,
      ),
      network: String(
        (await call('POST', '/network/v2.0/networks', t1, { network: { name: 'spare' } })).body.network.id,
      ),
      image: String(
        (
          await call('POST', '/image/v2/images', t1, {
            name: 'spare',
            disk_format: 'raw',
            container_format: 'bare',
          })
        ).body.id,
      ),
    };
    const hugeVolume = String(
      (await call('POST', `${V}/volumes`, t1, { volume: { size: HUGE_VOLUME_GB, name: 'huge' } })).body.volume
        .id,
    );
    const image = String(
      (
        await call('POST', '/image/v2/images', admin, {
          name: 'cirros',
          disk_format: 'raw',
          container_format: 'bare',
          visibility: 'public',
        })
      ).body.id,
    );
    await call('PUT', `/image/v2/images/${image}/file`, admin, Buffer.alloc(4096, 7), 0, {
      'content-type': 'application/octet-stream',
    });
    const privImage = String(
      (
        await call('POST', '/image/v2/images', t1, {
          name: 'p1-img',
          disk_format: 'raw',
          container_format: 'bare',
        })
      ).body.id,
    );
    await call('POST', `/image/v2/images/${privImage}/members`, t1, { member: p2 }).catch(() => undefined);
    const group = String(
      (await call('POST', '/identity/v3/groups', admin, { group: { name: 'g1' } })).body.group.id,
    );
    const role = String(
      (await call('POST', '/identity/v3/roles', admin, { role: { name: 'fuzz-role' } })).body.role.id,
    );
    const domain = String(
      (await call('POST', '/identity/v3/domains', admin, { domain: { name: 'fuzz-dom' } })).body.domain.id,
    );
    const region = String(
      (await call('POST', '/identity/v3/regions', admin, { region: { id: 'fuzz-region' } })).body.region.id,
    );
    const service = String(
      (await call('POST', '/identity/v3/services', admin, { service: { type: 'fuzz', name: 'fuzz' } })).body
        .service.id,
    );
    const endpoint = String(
      (
        await call('POST', '/identity/v3/endpoints', admin, {
          endpoint: {
            service_id: service,
            interface: 'public',
            url: 'http://127.0.0.1:9/',
            region_id: 'site-a',
          },
        })
      ).body.endpoint.id,
    );
    const appCred = String(
      (
        await call('POST', `/identity/v3/users/${u1m}/application_credentials`, t1, {
          application_credential: { name: 'ac1' },
        })
      ).body.application_credential.id,
    );

    let flavor = 'none';
    let server: string | undefined;
    let keypair = 'kp1';
    let serverGroup = 'none';
    let backtrackServer: string | undefined;
    try {
      flavor = String(
        (
          await call('POST', '/compute/v2.1/flavors', admin, {
            flavor: { name: 'm1.tiny', ram: 256, vcpus: 1, disk: 1 },
          })
        ).body.flavor.id,
      );
      keypair = String(
        (await call('POST', '/compute/v2.1/os-keypairs', t1, { keypair: { name: 'kp1' } })).body.keypair.name,
      );
      serverGroup = String(
        (
          await call('POST', '/compute/v2.1/os-server-groups', t1, {
            server_group: { name: 'sg1', policies: ['anti-affinity'] },
          })
        ).body.server_group.id,
      );
      server = String(
        (
          await call('POST', '/compute/v2.1/servers', t1, {
            server: { name: 'vm1', flavorRef: flavor, imageRef: image, networks: [{ uuid: network }] },
          })
        ).body.server.id,
      );
      const sid = server;
      await eventually(
        async () => (await call('GET', `/compute/v2.1/servers/${sid}`, t1)).body.server.status === 'ACTIVE',
        20_000,
        'vm1 ACTIVE',
      );
      // For the pathological regexes: a name a backtracking matcher chokes on.
      backtrackServer = String(
        (
          await call('POST', '/compute/v2.1/servers', t1, {
            server: {
              name: BACKTRACK_NAME,
              flavorRef: flavor,
              imageRef: image,
              networks: [{ uuid: network }],
            },
          })
        ).body.server.id,
      );
    } catch (e) {
      // Compute is finished by another engineer: the fuzz runs against whatever it answers.
      console.log(`compute setup incomplete: ${String(e).slice(0, 300)}`);
    }

    const protectedIds = new Set([
      adminUser,
      adminProject,
      p1,
      p2,
      u1m,
      u1r,
      u2m,
      'default',
      'site-a',
      'site-b',
      ...roles.map((x) => x.id),
    ]);
    pools = {
      ids: {
        networks: [network, extNetwork, p2Net],
        subnets: [subnet],
        ports: [port],
        'security-groups': [sg],
        'security-group-rules': [rule],
        routers: [router],
        floatingips: [fip],
        'network-ip-availabilities': [network],
        quotas: [p1, p2],
        extensions: ['router', 'quotas', 'nope'],
        volumes: [volume],
        snapshots: [snapshot],
        types: [volumeType],
        'os-quota-sets': [p1, p2, adminProject],
        images: [image, privImage],
        members: [p2, p1],
        tags: ['a', 'fuzz'],
        servers: server ? [server] : [],
        flavors: flavor !== 'none' ? [flavor] : [],
        'os-extra_specs': ['hw:cpu_policy'],
        'os-keypairs': [keypair],
        'os-server-groups': [serverGroup],
        'os-hypervisors': ['1', 'site-a-host-0'],
        'os-instance-actions': ['req-x'],
        metadata: ['a', 'k'],
        project: [p1, p2, adminProject],
        target: [p1, p2],
        project_id: [p1, p2, adminProject],
        domain_id: ['default', domain],
        user_id: [adminUser, u1m, u1r, u2m],
        group_id: [group],
        role_id: [role, ...roles.map((x) => x.id)],
        region_id: ['site-a', region],
        service_id: [service],
        endpoint_id: [endpoint],
        application_credentials: [appCred],
        sites: ['site-a', 'site-b', 'site-z'],
      },
      protectedIds,
      p1,
      p2,
      adminProject,
      adminUser,
      network,
      subnet,
      extNetwork,
      port,
      sg,
      router,
      volume,
      volumeType,
      image,
      flavor,
      service,
      hugeVolume,
      ...(backtrackServer ? { backtrackServer } : {}),
      spare,

      ...(server ? { server } : {}),
    };
    await cloud.converged();
  });
  after(async () => cloud?.close());

  it(`answers ${COUNT} hostile requests (seed ${SEED}) with 4xx faults or valid 2xx, never 5xx, and writes nothing when it rejects`, async () => {
    const r = prng(SEED);
    const routes = parseRouteTree(sites[0]!.app.printRoutes({ commonPrefix: false }));
    assert.ok(routes.length > 100, `only ${routes.length} routes parsed`);
    const byStatus: Record<string, number> = {};
    const byApi: Record<string, Record<string, number>> = {};
    const byToken: Record<string, Record<string, number>> = {};
    const byBody: Record<string, Record<string, number>> = {};
    const byHostile: Record<string, Record<string, number>> = {};
    const problems: string[] = [];
    const serverErrors: { req: Planned; status: number; body: string }[] = [];
    const halfWritten: string[] = [];
    const bump = (m: Record<string, Record<string, number>>, k: string, s: string) => {
      m[k] ??= {};
      m[k][s] = (m[k][s] ?? 0) + 1;
    };
    const outcomes: Outcome[] = [];
    const seenIds = [new Set<string>(), new Set<string>()];
    const changes = (i: number, from: number) =>
      sites[i]!.ctx.store.db.prepare('SELECT seq, kind, id, op FROM changes WHERE seq > ? ORDER BY seq').all(
        from,
      ) as {
        seq: number;
        kind: string;
        id: string;
        op: string;
      }[];
    for (const i of [0, 1]) for (const c of changes(i, 0)) seenIds[i]!.add(`${c.kind}/${c.id}`);

    const writeRoutes = routes.filter((x) => x.methods.some((m) => m !== 'GET'));
    const plan = (n: number): Planned => {
      // Half the picks among routes that take a write, so bodies get as much attention as paths.
      const route = r.chance(0.5) ? r.pick(writeRoutes) : r.pick(routes);
      let method = r.chance(0.04)
        ? r.pick(['GET', 'POST', 'PUT', 'PATCH', 'DELETE', 'HEAD', 'OPTIONS'])
        : r.pick(route.methods);
      if (method === 'GET' && r.chance(0.05)) method = 'HEAD';
      const write = !['GET', 'HEAD', 'OPTIONS'].includes(method);
      const segs = route.path.split('/');
      const url0 = segs
        .map((s, i) => {
          if (!s.startsWith(':')) return s;
          const name = s.slice(1);
          const key = ['id', 'name', 'key', 'member', 'rid', 'alias', 'tag'].includes(name)
            ? segs[i - 1]!
            : name;
          let pool = pools.ids[key] ?? pools.ids[name] ?? [];
          if (write) pool = pool.filter((x) => !pools.protectedIds.has(x));
          if (!pool.length || r.chance(0.3)) return r.pick(HOSTILE_SEGMENTS);
          return encodeURIComponent(r.pick(pool));
        })
        .join('/');
      let url = url0;
      let pathTrick: string | undefined;
      if (r.chance(0.1)) {
        const [name, fn] = r.pick(PATH_TRICKS);
        pathTrick = name;
        url = fn(url);
      }
      if (r.chance(route.path.includes(':') ? 0.15 : 0.45)) {
        const q = Array.from({ length: 1 + r.int(3) }, () =>
          r.chance(0.2)
            ? `marker=${encodeURIComponent(r.pick(Object.values(pools.ids).flat()))}`
            : r.pick(QUERY_JUNK),
        );
        url += (url.includes('?') ? '&' : '?') + q.join('&');
      }
      // The site's own admin API: the fuzz never lets an admin make a site leave or evict its peer.
      const atoll = route.path.startsWith('/atoll');
      let token = r.weighted<TokenKind>([
        [26, 'admin'],
        [22, 'p1-member'],
        [10, 'p1-reader'],
        [14, 'p2-member'],
        [6, 'missing'],
        [2, 'empty'],
        [3, 'garbage'],
        [4, 'forged-signature'],
        [4, 'tampered-claims'],
        [3, 'alg-none'],
        [4, 'expired'],
        [2, 'revoked'],
        [2, 'trailing-equals'],
        [2, 'non-canonical'],
        [1, 'very-long'],
        [1, 'unicode'],
      ]);
      if (atoll && write && token === 'admin') token = 'p1-member';
      const headers: Record<string, string> = {};
      const t = tokens[token];
      if (t !== undefined) headers['x-auth-token'] = t;
      if (r.chance(0.08)) {
        const [k, v] = r.pick(MICROVERSION_HEADERS);
        if (!(k === 'x-auth-token' && token === 'admin')) headers[k] = v;
      } else if (route.path.startsWith('/compute') && r.chance(0.3)) {
        headers['openstack-api-version'] = `compute 2.${r.int(100)}`;
      } else if (route.path.startsWith('/volume') && r.chance(0.3)) {
        headers['openstack-api-version'] = `volume 3.${r.int(70)}`;
      }
      if (method === 'DELETE' && route.path === '/identity/v3/auth/tokens')
        headers['x-subject-token'] = r.chance(0.5) ? tokens.expired! : tokens.garbage!;
      if (method === 'GET' && route.path === '/identity/v3/auth/tokens')
        headers['x-subject-token'] =
          tokens[r.pick<TokenKind>(['forged-signature', 'expired', 'p2-member', 'garbage'])] ?? '';

      let body: BodyKind = 'none';
      let payload: string | Buffer | undefined;
      let contentType: string | undefined = 'application/json';
      const key = `${method} ${route.path}`;
      const samples = SAMPLES[key];
      if (write || r.chance(0.05)) {
        body = r.weighted<BodyKind>([
          [samples ? 55 : 10, 'valid-or-mutated'],
          [10, 'bad-json'],
          [6, 'non-object'],
          [5, 'empty'],
          [4, 'huge'],
          [5, 'proto-pollution'],
          [2, 'deep-nesting'],
          [samples ? 5 : 40, 'random-object'],
          [3, 'binary'],
          [samples ? 5 : 20, 'none'],
        ]);
        switch (body) {
          case 'valid-or-mutated': {
            const base = samples ? r.pick(samples)(pools, r) : { [r.pick(FIELD_NAMES)]: 'x' };
            payload = JSON.stringify(r.chance(0.25) ? base : mutate(base, r, pools));
            break;
          }
          case 'bad-json':
            payload = r.pick(BAD_JSON);
            break;
          case 'non-object':
            payload = r.pick(NON_OBJECT_JSON);
            break;
          case 'empty':
            payload = r.pick(['', ' ', '\n\n']);
            break;
          case 'huge':
            payload = JSON.stringify({ pad: 'h'.repeat(MIB + r.int(64 * 1024)) });
            break;
          case 'proto-pollution': {
            const base = samples ? (r.pick(samples)(pools, r) as object) : {};
            const inner = Object.keys(base)[0];
            const evil =
              '"__proto__":{"isAdmin":true,"is_admin":true,"polluted":1},"constructor":{"prototype":{"polluted":1}}';
            payload = JSON.stringify(base).replace(/^\{/, `{${evil},`).replace(/,\}$/, '}');
            if (inner) payload = payload.replace(`"${inner}":{`, `"${inner}":{${evil},`).replace(/,\}/g, '}');
            break;
          }
          case 'deep-nesting':
            payload = '['.repeat(5000) + ']'.repeat(5000);
            if (r.chance(0.5)) payload = '{"a":'.repeat(3000) + '1' + '}'.repeat(3000);
            break;
          case 'random-object': {
            const o: Record<string, unknown> = {};
            for (let i = 0; i < 1 + r.int(4); i++) o[r.pick(FIELD_NAMES)] = hostileValue(r, pools);
            payload = JSON.stringify(
              r.chance(0.5)
                ? o
                : {
                    [route.path
                      .split('/')
                      .filter((s) => s && !s.startsWith(':'))
                      .pop()!
                      .replace(/s$/, '')]: o,
                  },
            );
            break;
          }
          case 'binary':
            payload = Buffer.from(Array.from({ length: 1 + r.int(2048) }, () => r.int(256)));
            break;
          case 'none':
            contentType = undefined;
            break;
        }
        if (route.path.endsWith('/file') && method === 'PUT' && r.chance(0.6))
          contentType = 'application/octet-stream';
        else if (route.path === '/image/v2/images/:id' && method === 'PATCH' && r.chance(0.7))
          contentType = 'application/openstack-images-v2.1-json-patch';
        else if (r.chance(0.12)) contentType = r.pick(CONTENT_TYPES);
      }
      if (contentType !== undefined && payload !== undefined) headers['content-type'] = contentType;
      const site = r.chance(1 / 7) ? 1 : 0;
      return {
        n,
        site,
        method,
        url,
        template: route.path,
        headers,
        ...(payload !== undefined ? { payload } : {}),
        token,
        body,
        ...(pathTrick ? { pathTrick } : {}),
      };
    };

    const db = (i: number) => sites[i]!.ctx.store.db;
    const started = Date.now();
    // Phase 1, a sweep: every field of every create/update body (every sample) replaced in turn by a
    // value of each wrong type, sent by the admin and by P1's member. Phase 2: COUNT random requests.
    const WRONG_TYPES: unknown[] = [null, 0, -1, true, 'x'.repeat(300), '\u0000', [], {}, [{}], 1e308];
    const sweep: Planned[] = [];
    for (const [key, variants] of Object.entries(SAMPLES)) {
      const [method, template] = key.split(' ') as [string, string];
      if (template.startsWith('/atoll')) continue;
      const segs = template.split('/');
      const url = segs
        .map((seg, i) => {
          if (!seg.startsWith(':')) return seg;
          const name = seg.slice(1);
          const k = ['id', 'name', 'key', 'member', 'rid'].includes(name) ? segs[i - 1]! : name;
          const pool = (pools.ids[k] ?? pools.ids[name] ?? []).filter((x) => !pools.protectedIds.has(x));
          return encodeURIComponent(pool[0] ?? (name === 'project' ? pools.p1 : 'none'));
        })
        .join('/');
      variants.forEach((variant) => {
        const base = variant(pools, prng(SEED));
        for (const path of paths(base))
          for (const v of WRONG_TYPES) {
            const body = structuredClone(base);
            setAt(body, path, v);
            const token: TokenKind = sweep.length % 2 ? 'p1-member' : 'admin';
            sweep.push({
              n: -1,
              site: sweep.length % 7 === 3 ? 1 : 0,
              method,
              url,
              template,
              headers: {
                'x-auth-token': tokens[token]!,
                'content-type':
                  template === '/image/v2/images/:id' && method === 'PATCH'
                    ? 'application/openstack-images-v2.1-json-patch'
                    : 'application/json',
              },
              payload: JSON.stringify(body),
              token,
              body: 'type-sweep',
            });
          }
      });
    }
    // The hostile batches of issue 11 go before them (and one after: see hostileBatches).
    const batches = hostileBatches(pools, tokens);
    const tagged = (last: boolean) =>
      batches
        .filter((b) => !!b.last === last)
        .flatMap((b) => b.requests.map((q) => ({ ...q, batch: b.name })));
    const fixed = [...tagged(false), ...sweep];
    const trailing = tagged(true);
    const total = fixed.length + COUNT + trailing.length;
    const loop = eventLoopBatches();
    for (let n = 0; n < total; n++) {
      const q =
        n < fixed.length
          ? { ...fixed[n]!, n }
          : n < fixed.length + COUNT
            ? plan(n)
            : { ...trailing[n - fixed.length - COUNT]!, n };
      await loop.enter(
        q.batch ?? `${n < fixed.length ? 'type sweep' : 'random'} #${Math.floor(n / LOOP_BATCH)}`,
      );
      if (q.batch) bump(byHostile, q.batch, 'sent');
      const heads = [sites[0]!.ctx.changelog.head(), sites[1]!.ctx.changelog.head()];
      const t0 = performance.now();
      let res;
      try {
        res = await sites[q.site]!.app.inject({
          method: q.method as 'GET',
          url: q.url,
          headers: q.headers,
          ...(q.payload !== undefined ? { payload: q.payload } : {}),
        });
      } catch (e) {
        problems.push(`#${n} ${q.method} ${q.url.slice(0, 200)}: inject threw ${String(e)}`);
        continue;
      }
      const ms = performance.now() - t0;
      const status = res.statusCode;
      outcomes.push({ n, status, ms, what: `${q.method} ${q.url.slice(0, 120)} [${q.token}/${q.body}]` });
      const s = String(status);
      byStatus[s] = (byStatus[s] ?? 0) + 1;
      if (q.batch) bump(byHostile, q.batch, s);
      if (q.expect && !q.expect.includes(status))
        problems.push(
          `#${n} [${q.batch}] ${q.method} ${q.url.slice(0, 160)} [${q.token}] -> ${status}, expected ${q.expect.join('/')}: ${res.body.slice(0, 200)}`,
        );
      bump(byApi, apiOf(q.template), s);
      bump(byToken, q.token, s);
      bump(byBody, q.body, s);
      if (status >= 500) {
        const known = KNOWN_COMPUTE_5XX.find((k) => k.matches(q));
        if (known) knownCompute.push(`#${n} ${q.method} ${q.url.slice(0, 200)} -> ${status}: ${known.id}`);
        else serverErrors.push({ req: q, status, body: res.body.slice(0, 500) });
      } else if (status >= 400 && q.method !== 'HEAD') {
        const clean = !q.pathTrick && !/%2e|%2f|\.\.|\/\//i.test(q.url.split('?')[0]!);
        const flavor = flavorOf(q.url);
        const bad = clean
          ? faultProblem(flavor, status, res.body)
          : (['keystone', 'nova', 'glance', 'neutron'] as Flavor[]).every((f) =>
                faultProblem(f, status, res.body),
              )
            ? 'not any OpenStack fault'
            : undefined;
        if (bad)
          problems.push(
            `#${n} ${q.method} ${q.url.slice(0, 160)} -> ${status} ${bad}: ${res.body.slice(0, 200)}`,
          );
        if (!String(res.headers['content-type'] ?? '').startsWith('application/json'))
          problems.push(
            `#${n} ${q.method} ${q.url.slice(0, 160)} -> ${status} content-type ${String(res.headers['content-type'])}`,
          );
      }
      if (
        q.body === 'huge' &&
        status < 400 &&
        ['POST', 'PUT', 'PATCH'].includes(q.method) &&
        !q.url.includes('/file')
      )
        problems.push(
          `#${n} ${q.method} ${q.url.slice(0, 160)}: a ${MIB}+ byte body was accepted (${status})`,
        );
      // A rejected request writes nothing new: no row created in either site's change log. (Updates of rows
      // that already existed may come from background work, e.g. a server finishing a reboot.)
      // A rejected request leaves no new row behind: nothing it created is still there when it answers.
      // (Updates of rows that existed may come from background work, e.g. a server finishing a reboot;
      // an address block a site leases for itself is pool bookkeeping, kept for the next port.)
      for (const i of [0, 1]) {
        const last = new Map<string, string>();
        for (const c of changes(i, heads[i]!)) {
          const k = `${c.kind}/${c.id}`;
          if (!seenIds[i]!.has(k)) last.set(k, c.op);
          seenIds[i]!.add(k);
        }
        if (status < 400) continue;
        for (const [k, op] of last) {
          if (op !== 'put' || k.startsWith('ip_block/')) continue;
          if (q.template === '/compute/v2.1/servers' && k.startsWith('server/')) {
            const row = db(i)
              .prepare('SELECT vm_state, task_state FROM servers WHERE id = ?')
              .get(k.slice(7)) as { vm_state: string; task_state: string | null } | undefined;
            knownCompute.push(
              `#${n} ${q.method} ${q.url.slice(0, 120)} -> ${status} left ${k} (${row?.vm_state}/${row?.task_state}): ${KNOWN_COMPUTE_HALF_WRITE}`,
            );
            continue;
          }
          halfWritten.push(
            `#${n} site ${q.site} ${q.method} ${q.url.slice(0, 160)} [${q.token}] ${typeof q.payload === 'string' ? q.payload.slice(0, 300) : ''} -> ${status} left new ${k} at site ${i}`,
          );
        }
      }
    }
    const loopStats = await loop.close();
    const elapsed = Date.now() - started;

    // ---- invariants after the storm ----
    const invariants: Record<string, string> = {};
    for (const i of [0, 1]) {
      const name = sites[i]!.ctx.name;
      const head = sites[i]!.ctx.changelog.head();
      const count = (db(i).prepare('SELECT count(*) AS n FROM changes').get() as { n: number }).n;
      invariants[`${name}: change log head equals committed changes`] =
        head === count ? 'ok' : `head ${head}, rows ${count}`;
      const ports = db(i).prepare('SELECT id, body FROM net_ports WHERE owner = ?').all(name) as {
        id: string;
        body: string;
      }[];
      const missing: string[] = [];
      for (const p of ports) {
        for (const f of (JSON.parse(p.body) as { fixed_ips?: { subnet_id: string; ip_address: string }[] })
          .fixed_ips ?? []) {
          const a = db(i)
            .prepare('SELECT port_id FROM net_ip_allocations WHERE subnet_id = ? AND ip = ?')
            .get(f.subnet_id, f.ip_address) as { port_id: string } | undefined;
          if (a?.port_id !== p.id) missing.push(`${p.id} ${f.ip_address}`);
        }
      }
      invariants[`${name}: every port has its IP allocation rows (${ports.length} ports)`] = missing.length
        ? `missing: ${missing.slice(0, 5).join(', ')}`
        : 'ok';
      const orphans = db(i)
        .prepare(
          'SELECT a.id FROM net_ip_allocations a LEFT JOIN net_ports p ON p.id = a.port_id WHERE a.owner = ? AND p.id IS NULL',
        )
        .all(name) as { id: string }[];
      invariants[`${name}: no IP allocation without its port`] = orphans.length
        ? `orphans: ${orphans
            .slice(0, 5)
            .map((o) => o.id)
            .join(', ')}`
        : 'ok';
    }
    // Nothing left mid-way once background work had time to finish.
    const stuck = async () => {
      const out: string[] = [];
      for (const i of [0, 1]) {
        const name = sites[i]!.ctx.name;
        for (const v of db(i)
          .prepare(
            "SELECT id, status FROM vol_volumes WHERE owner = ? AND status IN ('creating','deleting','extending','attaching','detaching','downloading','uploading','retyping')",
          )
          .all(name) as { id: string; status: string }[])
          out.push(`volume ${v.id} ${v.status}`);
        for (const v of db(i)
          .prepare(
            "SELECT id, status FROM vol_snapshots WHERE owner = ? AND status IN ('creating','deleting')",
          )
          .all(name) as { id: string; status: string }[])
          out.push(`snapshot ${v.id} ${v.status}`);
        for (const v of db(i)
          .prepare("SELECT id, status FROM images WHERE owner = ? AND status IN ('saving','importing')")
          .all(name) as { id: string; status: string }[])
          out.push(`image ${v.id} ${v.status}`);
        for (const v of db(i)
          .prepare('SELECT id, vm_state, task_state FROM servers WHERE owner = ? AND task_state IS NOT NULL')
          .all(name) as { id: string; vm_state: string; task_state: string }[])
          out.push(`server ${v.id} ${v.vm_state}/${v.task_state}`);
      }
      return out;
    };
    let left: string[] = [];
    try {
      await eventually(
        async () => (left = await stuck()).length === 0,
        20_000,
        'transitional states to settle',
      );
    } catch {
      /* reported below */
    }
    invariants['no volume, snapshot, image or server left in a transitional state'] = left.length
      ? left.slice(0, 8).join('; ')
      : 'ok';
    let convergedOk = 'ok';
    try {
      await cloud.converged(20_000);
      for (const [table, col] of [
        ['net_ports', 'owner'],
        ['net_networks', 'owner'],
        ['vol_volumes', 'owner'],
        ['images', 'owner'],
        ['servers', 'owner'],
      ] as const) {
        const ids = (i: number) =>
          (
            db(i).prepare(`SELECT id FROM ${table} WHERE ${col} = 'site-a' ORDER BY id`).all() as {
              id: string;
            }[]
          )
            .map((x) => x.id)
            .join(',');
        if (ids(0) !== ids(1)) convergedOk = `${table}: site-b's replica differs from site-a`;
      }
    } catch (e) {
      convergedOk = String(e);
    }
    invariants['replicas of site-a rows equal on site-b after convergence'] = convergedOk;
    for (const i of [0, 1]) {
      const h = await sites[i]!.app.inject({ method: 'GET', url: '/healthz' });
      invariants[`${sites[i]!.ctx.name}: /healthz answers 200 after the run`] =
        h.statusCode === 200 ? 'ok' : String(h.statusCode);
    }

    // ---- report ----
    const sortedMs = outcomes.map((o) => o.ms).sort((a, b) => a - b);
    const pct = (p: number) =>
      Number(
        (sortedMs[Math.min(sortedMs.length - 1, Math.floor((p / 100) * sortedMs.length))] ?? 0).toFixed(2),
      );
    const summary = {
      test: 'test/fuzz-api.test.ts',
      seed: SEED,
      requests: outcomes.length,
      type_sweep_requests: sweep.length,
      routes: routes.length,
      sites: 2,
      elapsed_ms: elapsed,
      latency_ms: { p50: pct(50), p99: pct(99), max: pct(100) },
      slowest: [...outcomes]
        .sort((a, b) => b.ms - a.ms)
        .slice(0, 10)
        .map((o) => `${o.ms.toFixed(1)} ms #${o.n} ${o.what} -> ${o.status}`),
      by_status: byStatus,
      by_api: byApi,
      by_token: byToken,
      by_body: byBody,
      by_hostile_batch: byHostile,
      event_loop: loopSummary(loopStats),
      server_errors: serverErrors.length,
      known_compute_server_errors: knownCompute.length,
      known_compute_bugs: [...KNOWN_COMPUTE_5XX.map((k) => k.id), KNOWN_COMPUTE_HALF_WRITE],
      first_known_compute: knownCompute.slice(0, 10),
      fault_shape_problems: problems.length,
      half_written: halfWritten.length,
      invariants,
      first_server_errors: serverErrors.slice(0, 20).map((e) => ({
        n: e.req.n,
        site: e.req.site,
        method: e.req.method,
        url: e.req.url.slice(0, 300),
        token: e.req.token,
        body:
          typeof e.req.payload === 'string'
            ? e.req.payload.slice(0, 300)
            : e.req.payload
              ? '<binary>'
              : undefined,
        status: e.status,
        answer: e.body,
      })),
      first_fault_problems: problems.slice(0, 20),
      first_half_written: halfWritten.slice(0, 20),
      note: 'In-process (app.inject). Replay with ATOLL_FUZZ_SEED and ATOLL_FUZZ_COUNT.',
    };
    writeSummary(summary);

    assert.deepEqual(
      serverErrors.map(
        (e) =>
          `#${e.req.n} site ${e.req.site} ${e.req.method} ${e.req.url.slice(0, 200)} [${e.req.token}/${e.req.body}] ${typeof e.req.payload === 'string' ? e.req.payload.slice(0, 200) : ''} -> ${e.status} ${e.body.slice(0, 200)}`,
      ),
      [],
    );
    assert.deepEqual(problems.slice(0, 30), []);
    assert.deepEqual(halfWritten.slice(0, 30), []);
    for (const [k, v] of Object.entries(invariants)) assert.equal(v, 'ok', k);
    assert.ok(outcomes.length >= total, `${outcomes.length} answers for ${total} requests`);
    const limitOf = new Map(batches.map((b) => [b.name, b.holdLimitMs ?? MAX_LOOP_DELAY_MS]));
    assert.deepEqual(
      loopStats.batches
        .filter((b) => b.busy_max_ms >= (limitOf.get(b.name) ?? STALL_MS))
        .map(
          (b) =>
            `${b.name}: event loop held ${b.busy_max_ms} ms (wall-clock delay max ${b.max_ms} ms, p99 ${b.p99_ms} ms)`,
        ),
      [],
      `no hostile batch holds the event loop ${MAX_LOOP_DELAY_MS} ms, no batch ${STALL_MS} ms`,
    );
    const held = loopStats.batches
      .filter((b) => !limitOf.has(b.name))
      .map((b) => b.busy_max_ms)
      .sort((a, b) => a - b);
    const p99 = held[Math.floor(0.99 * (held.length - 1))] ?? 0;
    assert.ok(
      p99 < MAX_LOOP_DELAY_MS,
      `99% of the batches of random requests hold the event loop under ${MAX_LOOP_DELAY_MS} ms (p99 ${p99} ms)`,
    );
  });

  it('compute answers no 5xx and leaves no half-written server for the inputs that once did', async () => {
    // Sends each input of KNOWN_COMPUTE_5XX and KNOWN_COMPUTE_HALF_WRITE itself (run alone, it still
    // checks them), then also checks what the random run above saw of them, if it ran.
    const seen: string[] = [];
    const send = async (
      site: number,
      method: string,
      url: string,
      token: string | undefined,
      body?: object,
    ): Promise<number> => {
      const res = await inject(site, method, url, token, body);
      if (res.statusCode >= 500)
        seen.push(`${method} ${url} -> ${res.statusCode}: ${res.body.slice(0, 200)}`);
      return res.statusCode;
    };
    for (const key of ['__proto__', 'constructor', 'toString', 'hasOwnProperty'])
      for (const path of ['/compute/v2.1/servers', '/compute/v2.1/servers/detail'])
        await send(0, 'GET', `${path}?sort_key=${key}`, tokens['p1-member']);
    await send(0, 'PUT', `/compute/v2.1/os-quota-sets/${pools.p1}`, tokens.admin, {
      quota_set: { cores: { toString: 'x', valueOf: 1 } },
    });
    // Creates that must be refused before any server row is written: networks "auto" with
    // max_count > 1, and a port of another project.
    const creates: [string | undefined, Record<string, unknown>][] = [
      [tokens['p1-member'], { networks: 'auto', max_count: 2, min_count: 2 }],
      [tokens['p2-member'], { networks: [{ port: pools.port }] }],
    ];
    for (const [token, extra] of creates) {
      const head = sites[0]!.ctx.changelog.head();
      const status = await send(0, 'POST', '/compute/v2.1/servers', token, {
        server: { name: 'half-write', flavorRef: pools.flavor, imageRef: pools.image, ...extra },
      });
      assert.ok(status >= 400 && status < 500, `create with ${JSON.stringify(extra)} refused (${status})`);
      const puts = sites[0]!.ctx.store.db
        .prepare("SELECT id FROM changes WHERE seq > ? AND kind = 'server' AND op = 'put'")
        .all(head) as { id: string }[];
      for (const p of puts)
        seen.push(`create with ${JSON.stringify(extra)} -> ${status} wrote server ${p.id}`);
    }
    assert.deepEqual([...seen, ...knownCompute].slice(0, 10), []);
  });
});

function writeSummary(summary: {
  seed: number;
  event_loop: ReturnType<typeof loopSummary>;
  by_hostile_batch: Record<string, Record<string, number>>;
  requests: number;
  type_sweep_requests: number;
  routes: number;
  elapsed_ms: number;
  latency_ms: Record<string, number>;
  by_status: Record<string, number>;
  by_api: Record<string, Record<string, number>>;
  by_token: Record<string, Record<string, number>>;
  by_body: Record<string, Record<string, number>>;
  server_errors: number;
  known_compute_server_errors: number;
  known_compute_bugs: string[];
  fault_shape_problems: number;
  half_written: number;
  invariants: Record<string, string>;
}): void {
  const dir = process.env.ATOLL_BENCH_OUT ?? mkdtempSync(join(tmpdir(), 'atoll-fuzz-'));
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'fuzz-summary.json'), JSON.stringify(summary, null, 2) + '\n');
  const statuses = Object.keys(summary.by_status).sort();
  const table = (title: string, m: Record<string, Record<string, number>>) => [
    `### ${title}`,
    '',
    `| | ${statuses.join(' | ')} | total |`,
    `|---|${statuses.map(() => '---:').join('|')}|---:|`,
    ...Object.keys(m)
      .sort()
      .map((k) => {
        const row = m[k]!;
        return `| ${k} | ${statuses.map((s) => row[s] ?? 0).join(' | ')} | ${Object.values(row).reduce((a, b) => a + b, 0)} |`;
      }),
    '',
  ];
  const md = [
    '# Fuzz: hostile requests against every API of a site',
    '',
    `Generated by \`test/fuzz-api.test.ts\` (seed ${summary.seed}, ${summary.requests} requests — ${summary.type_sweep_requests} in a sweep that puts a wrong-typed value in every field of every create/update body, the rest random — over ${summary.routes} route templates from \`printRoutes()\`, two sites, in-process \`inject\`) in ${(summary.elapsed_ms / 1000).toFixed(1)} s; p50 ${summary.latency_ms.p50} ms, p99 ${summary.latency_ms.p99} ms per request.`,
    '',
    `5xx answers: **${summary.server_errors}** (plus ${summary.known_compute_server_errors} from known compute bugs, left to the compute owner: ${summary.known_compute_bugs.join('; ')}). Faults not in their API's shape: **${summary.fault_shape_problems}**. Rejected requests that wrote a new row: **${summary.half_written}**.`,
    '',
    `By status: ${statuses.map((s) => `${s}: ${summary.by_status[s]}`).join(', ')}.`,
    '',
    ...table('By API (route prefix)', summary.by_api),
    ...table('By token', summary.by_token),
    ...table('By body', summary.by_body),
    '### Hostile batches (issue 11)',
    '',
    ...Object.entries(summary.by_hostile_batch).map(
      ([k, v]) =>
        `- ${k}: ${Object.entries(v)
          .map(([s, n]) => `${s}: ${n}`)
          .join(', ')}`,
    ),
    '',
    '### Event loop',
    '',
    `Measured in the process that runs both sites, over the run and per batch (${LOOP_BATCH} random or sweep requests, or one hostile batch), ${summary.event_loop.resolution_ms} ms resolution: the wall-clock delay of its ticks (monitorEventLoopDelay; on a loaded machine it includes time other processes had the CPU), and how long the loop was held by this process's own work (CPU time between two ticks, capped by the wall time). The test fails when a hostile batch holds the loop ${summary.event_loop.busy_limit_ms} ms or more, when more than 1% of the other batches do, or when any batch holds it ${STALL_MS} ms. Over the run (${summary.event_loop.run.samples} samples): delay p99 ${summary.event_loop.run.p99_ms} ms, max ${summary.event_loop.run.max_ms} ms; held at most ${summary.event_loop.run.busy_max_ms} ms.`,
    '',
    '| batch | requests | loop samples | delay max ms | delay p99 ms | held max ms |',
    '|---|---:|---:|---:|---:|---:|',
    ...[
      ...new Map(
        [
          ...summary.event_loop.hostile_batches,
          ...summary.event_loop.worst_batches,
          ...summary.event_loop.busiest_batches,
        ].map((b) => [b.name, b]),
      ).values(),
    ].map(
      (b) => `| ${b.name} | ${b.requests} | ${b.samples} | ${b.max_ms} | ${b.p99_ms} | ${b.busy_max_ms} |`,
    ),
    '',
    '### Invariants after the run',
    '',
    ...Object.entries(summary.invariants).map(([k, v]) => `- ${k}: ${v}`),
    '',
  ];
  writeFileSync(join(dir, 'fuzz-summary.md'), md.join('\n'));
  console.log(`fuzz summary: ${join(dir, 'fuzz-summary.md')}`);
}
