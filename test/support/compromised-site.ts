/**
 * @module Test support: a compromised site, one that "signs whatever it likes into its own log" with
 * its REAL keys (issue 11). It reads the site's identity key from its own database and uses the site's
 * own place on the fabric, so everything it sends passes origin signatures and fabric permissions; what
 * stops it must be the receivers' rules.
 *
 * - forgeIntoLog writes an arbitrary row into the site's table and its `changes` table directly,
 *   bypassing ChangeLog.put's checks; the site's own replicator then signs and delivers it like any
 *   change (heartbeats announce the new head, peers pull it). It works on an in-process site's
 *   connection (ctx.store.db) and on a running `atoll site`'s site.db (WAL lets a second writer in).
 * - signedHeartbeat and signedForward build messages with the site's identity and publish them as the
 *   site may: in process on its own MemoryFabric, over NATS with its own least-privilege user
 *   (natsFabricAs).
 */
import { createPrivateKey, randomUUID, sign } from 'node:crypto';
import Database from 'better-sqlite3';
import type { Database as Db } from 'better-sqlite3';
import type { Fabric } from '../../src/fabric/fabric.ts';
import { decodeJson, encodeJson, subjects } from '../../src/fabric/fabric.ts';
import type { RpcReply } from '../../src/fabric/rpc.ts';
import { NatsFabric } from '../../src/fabric/nats/nats-fabric.ts';
import type { KindSpec, Row } from '../../src/federation/changelog.ts';
import type { ForwardedReply, ForwardedRequest } from '../../src/federation/forward.ts';
import { httpRpc } from '../../src/federation/forward.ts';
import { admissionKind, evictionKind, siteKind } from '../../src/federation/registry.ts';
import type { Heartbeat } from '../../src/federation/replicator.ts';
import { PROTOCOL_VERSION } from '../../src/federation/replicator.ts';
import { computeKinds } from '../../src/services/compute/store/schema.ts';
import { identityKinds } from '../../src/services/identity/store/schema.ts';
import { imageKinds } from '../../src/services/image/store/schema.ts';
import { networkKinds } from '../../src/services/network/store/schema.ts';
import { volumeKinds } from '../../src/services/volume/store/schema.ts';
import type { TokenClaims } from '../../src/services/identity/domain/tokens.ts';

const KINDS: readonly KindSpec[] = [
  siteKind,
  admissionKind,
  evictionKind,
  ...identityKinds,
  ...networkKinds,
  ...computeKinds,
  ...imageKinds,
  ...volumeKinds,
];

/** The table of a replicated kind, as the sites register it. */
export function tableOf(kind: string): string {
  const spec = KINDS.find((k) => k.kind === kind);
  if (!spec) throw new Error(`unknown kind ${kind}`);
  return spec.table;
}

/** A running `atoll site`'s database, opened beside the process (WAL: readers and one writer at once). */
export function openSiteDb(path: string, opts: { readonly?: boolean } = {}): Db {
  const db = new Database(path, { fileMustExist: true, readonly: opts.readonly ?? false });
  db.pragma('busy_timeout = 5000');
  return db;
}

/** The site's identity key pair and its name (the registry row that carries that key). */
export function siteIdentity(db: Db): { site: string; privateKey: string; publicKey: string } {
  const k = db.prepare('SELECT private_key, public_key FROM site_identity WHERE id = 1').get() as
    { private_key: string; public_key: string } | undefined;
  if (!k) throw new Error('the site has no identity key yet');
  const site = db.prepare('SELECT id FROM sites WHERE identity_key = ?').pluck().get(k.public_key);
  if (typeof site !== 'string') throw new Error('no registry row carries the site identity key');
  return { site, privateKey: k.private_key, publicKey: k.public_key };
}

function toSql(v: unknown): unknown {
  if (v === undefined) return null;
  if (typeof v === 'boolean') return v ? 1 : 0;
  if (v !== null && typeof v === 'object') return JSON.stringify(v);
  return v;
}

export interface ForgedChange {
  kind: string;
  /** The row as the change carries it; `owner` defaults to the compromised site itself. */
  row: Row;
  op?: 'put' | 'del';
}

/**
 * Writes `change` into the site's own table and change log in one transaction, with none of
 * ChangeLog.put's checks; returns its seq. The site's replicator delivers it on its next heartbeat.
 */
export function forgeIntoLog(db: Db, change: ForgedChange): number {
  const table = tableOf(change.kind);
  const op = change.op ?? 'put';
  const row: Row = { ...change.row, owner: change.row.owner ?? siteIdentity(db).site };
  return db.transaction(() => {
    if (op === 'del') db.prepare(`DELETE FROM ${table} WHERE id = ?`).run(row.id);
    else {
      const cols = Object.keys(row);
      db.prepare(
        `INSERT OR REPLACE INTO ${table} (${cols.join(',')}) VALUES (${cols.map(() => '?').join(',')})`,
      ).run(...cols.map((c) => toSql(row[c])));
    }
    const info = db
      .prepare('INSERT INTO changes (kind, id, op, row, at) VALUES (?, ?, ?, ?, ?)')
      .run(change.kind, row.id, op, op === 'del' ? null : JSON.stringify(row), Date.now());
    return Number(info.lastInsertRowid);
  })();
}

/** How far site `db` has applied `origin`'s log (its cursor). */
export function cursorAt(db: Db, origin: string): number {
  const seq = db.prepare('SELECT seq FROM cursors WHERE origin = ?').pluck().get(origin);
  return typeof seq === 'number' ? seq : 0;
}

const b64 = (b: Buffer | string) => Buffer.from(b).toString('base64url');

function signJson(privateKeyPem: string, value: unknown): string {
  return b64(sign(null, Buffer.from(JSON.stringify(value)), createPrivateKey(privateKeyPem)));
}

/**
 * Publishes a heartbeat on the sender's own subject (the only one its permissions allow), signed with
 * its identity key (`sig` over the heartbeat without it). `hb` overrides any field, `site` included.
 */
export function signedHeartbeat(fabric: Fabric, db: Db, hb: Partial<Heartbeat> = {}): Heartbeat {
  const me = siteIdentity(db);
  const body: Heartbeat = {
    v: PROTOCOL_VERSION,
    site: me.site,
    version: '0.1.0',
    head: 0,
    endpoint: '',
    sentAt: Date.now(),
    ...hb,
  };
  const msg = { ...body, sig: signJson(me.privateKey, body) };
  fabric.publish(subjects.heartbeat(fabric.site), encodeJson(msg));
  return body;
}

/** The instance id a site's heartbeats carry (a compromised site knows its own process's). */
export function heardInstance(fabric: Fabric, site: string, ms = 10_000): Promise<string> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      unsub();
      reject(new Error(`no heartbeat from ${site}`));
    }, ms);
    const unsub = fabric.subscribe(subjects.heartbeat(site), (m) => {
      const hb = decodeJson<Heartbeat>(m.data);
      if (!hb.instance) return;
      clearTimeout(timer);
      unsub();
      resolve(hb.instance);
    });
  });
}

/**
 * Sends a forwarded request to `to`'s http service, built and signed with the site's identity key as
 * Forwarder.forward does (`sig` over the request without it). `req` overrides any field, `from`
 * included; `sign: false` sends it unsigned. Answers the owner's reply.
 */
export async function signedForward(
  fabric: Fabric,
  db: Db,
  to: string,
  req: Partial<ForwardedRequest> & { method: string; url: string; json?: unknown },
  opts: { sign?: boolean; timeoutMs?: number } = {},
): Promise<ForwardedReply> {
  const me = siteIdentity(db);
  const { json, ...given } = req;
  const fwd: ForwardedRequest = {
    v: httpRpc.version,
    from: me.site,
    headers: {},
    ...(json !== undefined ? { body: Buffer.from(JSON.stringify(json)).toString('base64') } : {}),
    at: Date.now(),
    id: randomUUID(),
    ...given,
  };
  if (json !== undefined) fwd.headers = { 'content-type': 'application/json', ...fwd.headers };
  if (opts.sign !== false) fwd.sig = signJson(me.privateKey, fwd);
  const raw = await fabric.request(subjects.rpc(to, 'http'), encodeJson(fwd), opts.timeoutMs ?? 5000);
  // The owner's answer comes in the RPC envelope (src/fabric/rpc.ts).
  const reply = decodeJson<RpcReply<ForwardedReply>>(raw);
  if (!reply.ok) throw new Error(`${reply.error.code}: ${reply.error.message}`);
  return reply.result;
}

/** A compact JWS as TokenService.issue makes it, signed by any Ed25519 key under any kid. */
export function signToken(kid: string, privateKeyPem: string, claims: TokenClaims): string {
  const h = b64(JSON.stringify({ alg: 'EdDSA', typ: 'JWT', kid }));
  const p = b64(JSON.stringify(claims));
  return `${h}.${p}.${b64(sign(null, Buffer.from(`${h}.${p}`), createPrivateKey(privateKeyPem)))}`;
}

/** A connection to NATS as `site`, with its own least-privilege user (what a compromised site holds). */
export function natsFabricAs(site: string, servers: string, creds: { user: string; pass: string }) {
  return NatsFabric.connect(site, { servers, user: creds.user, pass: creds.pass, checkPermissions: true });
}
