/**
 * @module A compromised site-c against honest site-a (the founder) and site-b (issue 11, classes 1, 2
 * and 7). site-c holds its real keys and its own place on the fabric (test/support/compromised-site.ts):
 * it writes arbitrary rows into its own signed log and sends signed heartbeats and forwarded requests.
 * The same cases run over the in-process fabric with permissions enforced and over real nats-servers
 * with the least-privilege configuration (three `atoll site` processes, site-c's own NATS user).
 *
 * Class 2 is written to the origin rules of docs/security.md ("who may originate a row"): users,
 * projects and groups only by their domain's home site, role assignments only by the owner of their
 * target, a `sites` row only by that site, admissions and evictions only by the membership authority
 * (the founder), never evicting the authority. A receiver rejects anything else and moves on.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { generateKeyPairSync, randomBytes, randomUUID } from 'node:crypto';
import { join } from 'node:path';
import type { Database as Db } from 'better-sqlite3';
import type { Fabric } from '../src/fabric/fabric.ts';
import { decodeJson, encodeJson, subjects } from '../src/fabric/fabric.ts';
import type { ChangeBatch } from '../src/federation/replicator.ts';
import type { TokenClaims } from '../src/services/identity/domain/tokens.ts';
import { eventually, passwordToken, startLocalCloud } from './support/cloud.ts';
import {
  cursorAt,
  forgeIntoLog,
  heardInstance,
  natsFabricAs,
  openSiteDb,
  signedForward,
  signedHeartbeat,
  signToken,
} from './support/compromised-site.ts';
import type { ForgedChange } from './support/compromised-site.ts';
import { startProcessFederation } from './support/processes.ts';

/** Three sites, site-c (index 2) compromised, however they run. */
interface Arena {
  url(i: number): string;
  /** Site i's database, to read what it holds. */
  db(i: number): Db;
  /** The compromised site-c: its writable database and its own connection to the fabric. */
  evil: { db: Db; fabric: Fabric; instance: string };
  /** Takes site i off the fabric (cut off or killed) and brings it back. */
  down(i: number): Promise<void>;
  up(i: number): Promise<void>;
  converged(): Promise<void>;
  close(): Promise<void>;
}

const EVIL = 2;
const names = ['site-a', 'site-b', 'site-c'];

async function inProcessArena(): Promise<Arena> {
  const cloud = await startLocalCloud({ sites: 3 }); // permissions enforced
  const ctx = (i: number) => cloud.fed.sites[i]!.ctx;
  return {
    url: (i) => cloud.url(i),
    db: (i) => ctx(i).store.db,
    evil: { db: ctx(EVIL).store.db, fabric: ctx(EVIL).fabric, instance: ctx(EVIL).replicator.instance },
    down: async (i) => cloud.fed.network.isolate(names[i]!),
    up: async () => cloud.fed.network.heal(),
    converged: () => cloud.converged(),
    close: () => cloud.close(),
  };
}

async function natsArena(): Promise<Arena> {
  const fed = await startProcessFederation(3, { secure: {} });
  const dbPath = (i: number) => join(fed.dir, names[i]!, 'site.db');
  const dbs = [0, 1].map((i) => openSiteDb(dbPath(i), { readonly: true }));
  const evilDb = openSiteDb(dbPath(EVIL));
  const c = fed.sites[EVIL]!;
  const fabric = await natsFabricAs(c.name, `nats://127.0.0.1:${c.natsPort}`, {
    user: c.nats!.user,
    pass: c.nats!.password,
  });
  const instance = await heardInstance(fabric, c.name);
  return {
    url: (i) => fed.sites[i]!.url,
    db: (i) => (i === EVIL ? evilDb : dbs[i]!),
    evil: { db: evilDb, fabric, instance },
    down: (i) => fed.kill(i),
    up: (i) => fed.restart(i),
    converged: () => fed.converged(),
    async close() {
      await fabric.close();
      for (const db of [...dbs, evilDb]) db.close();
      await fed.stop();
    },
  };
}

const json = (method: string, token: string | undefined, body?: unknown): RequestInit => ({
  method,
  headers: {
    ...(token ? { 'x-auth-token': token } : {}),
    ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
  },
  ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
});

function compromisedSiteCases(start: () => Promise<Arena>): void {
  let arena: Arena;
  let admin: string;
  before(async () => {
    arena = await start();
    admin = await passwordToken(arena.url(0));
    await arena.converged();
  });
  after(async () => arena?.close());

  const call = (i: number, method: string, path: string, token?: string, body?: unknown) =>
    fetch(`${arena.url(i)}${path}`, json(method, token, body));
  /** Token validation at site i, the token authenticating itself (Keystone: GET /v3/auth/tokens). */
  const status = async (i: number, token: string) =>
    (
      await fetch(`${arena.url(i)}/identity/v3/auth/tokens?nocatalog`, {
        headers: { 'x-auth-token': token, 'x-subject-token': token },
      })
    ).status;
  const metric = async (i: number, name: string) => {
    const text = await (await call(i, 'GET', '/metrics')).text();
    const line = text.split('\n').find((l) => l.startsWith(`${name} `));
    return Number(line?.split(' ')[1] ?? 0);
  };
  const sitesAt = async (i: number) =>
    (
      (await (await call(i, 'GET', '/atoll/v1/sites', admin)).json()) as {
        sites: { name: string; state: string; version: string }[];
      }
    ).sites;
  const has = (i: number, table: string, id: string) =>
    arena.db(i).prepare(`SELECT 1 FROM ${table} WHERE id = ?`).get(id) !== undefined;
  const idOf = (table: string, name: string) =>
    arena.db(0).prepare(`SELECT id FROM ${table} WHERE name = ?`).pluck().get(name) as string;

  /** Forges changes into site-c's log and waits until both honest sites have processed them. */
  const forge = async (...changes: ForgedChange[]) => {
    let seq = 0;
    for (const c of changes) seq = forgeIntoLog(arena.evil.db, c);
    for (const i of [0, 1])
      await eventually(() => cursorAt(arena.db(i), 'site-c') >= seq, 15_000, `${names[i]} to process`);
  };
  /** A fresh Ed25519 key pair (PEM) that site-c controls. */
  const keyOf = () => {
    const { privateKey, publicKey } = generateKeyPairSync('ed25519');
    return {
      privateKey: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
      publicKey: publicKey.export({ type: 'spki', format: 'pem' }).toString(),
    };
  };
  const adminClaims = (): TokenClaims =>
    JSON.parse(Buffer.from(admin.split('.')[1]!, 'base64url').toString()) as TokenClaims;

  describe('class 7: fabric messages bound to what the fabric authenticates', () => {
    it('a forwarded request claiming another site is refused (403); signed as itself it runs', async () => {
      const token = await passwordToken(arena.url(EVIL));
      const create = (from?: string) => ({
        method: 'POST',
        url: '/identity/v3/projects',
        headers: { 'x-auth-token': token },
        json: { project: { name: `fwd-${randomUUID()}`, domain_id: 'default' } },
        ...(from ? { from } : {}),
      });
      const { db, fabric } = arena.evil;
      assert.equal((await signedForward(fabric, db, 'site-a', create('site-b'))).status, 403);
      assert.equal((await signedForward(fabric, db, 'site-a', create(), { sign: false })).status, 403);
      assert.equal((await signedForward(fabric, db, 'site-a', create())).status, 201);
    });

    it('a heartbeat claiming another (down) site is ignored: it stays down, its version unchanged', async () => {
      await arena.down(1);
      try {
        const b = await eventually(
          async () => (await sitesAt(0)).find((s) => s.name === 'site-b' && s.state === 'unreachable'),
          20_000,
          'site-b down at site-a',
        );
        const dropped = await metric(0, 'atoll_heartbeats_dropped_total');
        const { db, fabric, instance } = arena.evil;
        for (let i = 0; i < 5; i++) {
          signedHeartbeat(fabric, db, { site: 'site-b', version: '6.6.6-evil', head: 1e9, instance });
          // Another site's subject: refused by the fabric (in process it throws, NATS drops it).
          try {
            fabric.publish(subjects.heartbeat('site-b'), encodeJson({ v: 1, site: 'site-b' }));
          } catch {
            /* refused */
          }
        }
        await eventually(
          async () => (await metric(0, 'atoll_heartbeats_dropped_total')) >= dropped + 5,
          10_000,
          'site-a to drop the spoofed heartbeats',
        );
        const now = (await sitesAt(0)).find((s) => s.name === 'site-b')!;
        assert.equal(now.state, 'unreachable');
        assert.equal(now.version, b.version);
      } finally {
        await arena.up(1);
      }
      await arena.converged();
    });

    it('20,000 unknown names grow no peer table and no /metrics series', async () => {
      const before = await Promise.all([0, 1].map((i) => metric(i, 'atoll_heartbeats_dropped_total')));
      const size = (await (await call(0, 'GET', '/metrics')).text()).length;
      const { db, fabric, instance } = arena.evil;
      for (let i = 0; i < 20_000; i++) {
        signedHeartbeat(fabric, db, { site: `fake-${i}`, instance });
        if (i % 500 === 0) await new Promise((r) => setImmediate(r));
      }
      for (const i of [0, 1])
        await eventually(
          async () => (await metric(i, 'atoll_heartbeats_dropped_total')) >= before[i]! + 20_000,
          60_000,
          `${names[i]} to drop 20,000 heartbeats`,
        );
      for (const i of [0, 1]) {
        const text = await (await call(i, 'GET', '/metrics')).text();
        assert.ok(!text.includes('fake-'), `fake names in /metrics of ${names[i]}`);
        assert.ok(text.split('\n').filter((l) => l.startsWith('atoll_peer_up{')).length <= 2);
        assert.equal((await sitesAt(i)).length, 3);
      }
      const grown = (await (await call(0, 'GET', '/metrics')).text()).length;
      assert.ok(grown < size + 2000, `/metrics grew from ${size} to ${grown}`);
    });
  });

  describe('class 1: a rolled-back request does not silence the change log', () => {
    it('after a failing router update, a revocation is pushed to the other site and listeners run', async () => {
      const mk = async (path: string, key: string, body: unknown, token = admin) => {
        const r = await call(0, 'POST', path, token, { [key]: body });
        assert.equal(r.status, 201, await r.clone().text());
        return ((await r.json()) as Record<string, { id: string }>)[key]!.id;
      };
      const project = await mk('/identity/v3/projects', 'project', { name: 'rb', domain_id: 'default' });
      const user = await mk('/identity/v3/users', 'user', {
        name: 'rb-member',
        password: 'rb-pw',
        domain_id: 'default',
      });
      const member = idOf('roles', 'member');
      assert.equal(
        (await call(0, 'PUT', `/identity/v3/projects/${project}/users/${user}/roles/${member}`, admin))
          .status,
        204,
      );
      await arena.converged();
      const login = () =>
        passwordToken(arena.url(0), { name: 'rb-member', password: 'rb-pw', project: 'rb' });
      const [revoked, cached] = [await login(), await login()];
      const router = await mk('/network/v2.0/routers', 'router', { name: 'rb-router' }, revoked);
      for (const i of [0, 1])
        await eventually(async () => (await status(i, revoked)) === 200, 10_000, 'the token everywhere');
      assert.equal(await status(0, cached), 200);

      // Pushes are what site-a publishes on its changes subject (pull replies travel as replies).
      const pushed: string[] = [];
      const unsub = arena.evil.fabric.subscribe(subjects.changes('site-a'), (m) =>
        pushed.push(decodeJson<ChangeBatch>(m.data).body),
      );
      try {
        // The update writes the router, then fails on the gateway's network: the transaction rolls back.
        const bad = await call(0, 'PUT', `/network/v2.0/routers/${router}`, revoked, {
          router: { name: 'rb-renamed', external_gateway_info: { network_id: randomUUID() } },
        });
        assert.ok(bad.status >= 400 && bad.status < 500, `PUT answered ${bad.status}`);
        const del = await fetch(`${arena.url(0)}/identity/v3/auth/tokens`, {
          method: 'DELETE',
          headers: { 'x-auth-token': revoked, 'x-subject-token': revoked },
        });
        assert.equal(del.status, 204);
        await eventually(async () => (await status(1, revoked)) === 401, 10_000, 'revoked at site-b');
        await eventually(() => pushed.some((b) => b.includes('"revocation"')), 10_000, 'a pushed revocation');
      } finally {
        unsub();
      }
      // A change listener (the token cache) still runs: a disabled user's cached token is refused.
      const off = await call(0, 'PATCH', `/identity/v3/users/${user}`, admin, { user: { enabled: false } });
      assert.equal(off.status, 200);
      assert.equal(await status(0, cached), 401);
    });
  });

  describe('class 2: a site originates only rows it may own', () => {
    it('a user and an admin assignment in the Default domain (homed at site-a) are applied nowhere', async () => {
      const rejected = await Promise.all([0, 1].map((i) => metric(i, 'atoll_changes_rejected_total')));
      const uid = randomBytes(16).toString('hex');
      const assignment = `UserProject:${uid}:${idOf('projects', 'admin')}:${idOf('roles', 'admin')}`;
      await forge(
        {
          kind: 'user',
          row: {
            id: uid,
            name: 'backdoor',
            domain_id: 'default',
            default_project_id: null,
            description: '',
            email: null,
            enabled: 1,
            password_hash: null,
            password_expires_at: null,
            extra: '{}',
            created_at: Date.now(),
          },
        },
        {
          kind: 'role_assignment',
          row: {
            id: assignment,
            type: 'UserProject',
            actor_id: uid,
            target_id: idOf('projects', 'admin'),
            role_id: idOf('roles', 'admin'),
            inherited: 0,
          },
        },
      );
      for (const i of [0, 1]) {
        assert.equal(has(i, 'users', uid), false, `the user at ${names[i]}`);
        assert.equal(has(i, 'role_assignments', assignment), false, `the assignment at ${names[i]}`);
        assert.ok((await metric(i, 'atoll_changes_rejected_total')) >= rejected[i]! + 2);
      }
    });

    it("an admin assignment on the system (granted only at the admin project's owner) is applied nowhere", async () => {
      const rejected = await Promise.all([0, 1].map((i) => metric(i, 'atoll_changes_rejected_total')));
      // Not the admin user: bootstrap grants it admin on the system, so that row exists for real.
      const [uid, rid] = [randomBytes(16).toString('hex'), idOf('roles', 'admin')];
      const assignment = `UserSystem:${uid}:system:${rid}`;
      await forge({
        kind: 'role_assignment',
        row: {
          id: assignment,
          type: 'UserSystem',
          actor_id: uid,
          target_id: 'system',
          role_id: rid,
          inherited: 0,
        },
      });
      for (const i of [0, 1]) {
        assert.equal(has(i, 'role_assignments', assignment), false, `the assignment at ${names[i]}`);
        assert.ok((await metric(i, 'atoll_changes_rejected_total')) >= rejected[i]! + 1);
      }
    });

    it('a sites row for a name that never joined is applied nowhere; its tokens get 401', async () => {
      const key = keyOf();
      const now = Date.now();
      await forge({
        kind: 'site',
        row: {
          id: 'site-z',
          region: 'site-z',
          endpoint: '',
          version: '0.1.0',
          state: 'active',
          keys: [{ kid: 'site-z.1', publicKey: key.publicKey, createdAt: now }],
          joined_at: now,
          updated_at: now,
          identity_key: key.publicKey,
        },
      });
      for (const i of [0, 1]) assert.equal(has(i, 'sites', 'site-z'), false, `site-z at ${names[i]}`);
      const token = signToken('site-z.1', key.privateKey, {
        ...adminClaims(),
        iss: 'site-z',
        iat: now,
        exp: now + 600_000,
        ai: [randomBytes(16).toString('base64url')],
      });
      assert.equal(await status(0, token), 401);
    });

    it('an admission for a name that never joined is applied nowhere', async () => {
      await forge({
        kind: 'admission',
        row: { id: 'site-z', identity_key: keyOf().publicKey, admitted_at: Date.now() },
      });
      for (const i of [0, 1])
        assert.equal(has(i, 'site_admissions', 'site-z'), false, `admission at ${names[i]}`);
    });

    it('an eviction of honest site-b is applied nowhere: its tokens and later changes still hold', async () => {
      await forge({
        kind: 'eviction',
        row: { id: 'site-b:site-c', site: 'site-b', reason: 'forged', at: Date.now() },
      });
      for (const i of [0, 1])
        assert.equal(has(i, 'site_evictions', 'site-b:site-c'), false, `eviction at ${names[i]}`);
      const tokenB = await passwordToken(arena.url(1));
      assert.equal(await status(0, tokenB), 200);
      const r = await call(1, 'POST', '/network/v2.0/networks', tokenB, {
        network: { name: 'after-forgery' },
      });
      assert.equal(r.status, 201);
      const net = ((await r.json()) as { network: { id: string } }).network.id;
      await eventually(() => has(0, 'net_networks', net), 10_000, "site-b's network at site-a");
    });

    it('the real eviction of site-c still works after site-c tried to pre-empt it', async () => {
      const tokenC = await passwordToken(arena.url(EVIL));
      // Rows with the ids an eviction of site-c made at site-a or site-b would take.
      await forge(
        ...['site-a', 'site-b'].map((by) => ({
          kind: 'eviction',
          row: { id: `site-c:${by}`, site: 'site-y', reason: 'squatted', at: Date.now() },
        })),
      );
      const r = await call(0, 'POST', '/atoll/v1/sites/site-c/evict', admin, {
        evict: { reason: 'compromised' },
      });
      assert.equal(r.status, 202, await r.clone().text());
      for (const i of [0, 1])
        await eventually(
          async () => (await status(i, tokenC)) === 401,
          15_000,
          `site-c refused at ${names[i]}`,
        );
    });
  });
}

describe('a compromised site, in-process fabric with permissions enforced', () => {
  compromisedSiteCases(inProcessArena);
});

describe('a compromised site, real nats-servers with least privilege (atoll site processes)', () => {
  compromisedSiteCases(natsArena);
});
