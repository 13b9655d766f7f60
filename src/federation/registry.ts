/**
 * @module The site registry: one row per site, owned by that site and replicated everywhere. It carries
 * what other sites need to trust and reach it: its public token-signing keys, its API endpoint, its
 * version and state. Each site also keeps its private keys in a local, never replicated table.
 */
import { generateKeyPairSync } from 'node:crypto';
import type { Statement } from 'better-sqlite3';
import type { Store } from '../store/db.ts';
import type { ChangeLog } from './changelog.ts';
import { defineKind } from './changelog.ts';
import { AUTHORITY_SQL } from './origin.ts';
import type { OriginRule } from './origin.ts';

export interface SiteKey {
  kid: string;
  /** SPKI PEM of an Ed25519 public key. */
  publicKey: string;
  createdAt: number;
  /** Set when rotated out: tokens signed with it verify until they expire, none are signed any more. */
  retiredAt?: number;
  revoked?: boolean;
}

export interface SiteRow {
  id: string;
  owner: string;
  region: string;
  endpoint: string;
  version: string;
  state: 'active' | 'leaving' | 'left' | 'evicted';
  keys: SiteKey[];
  joined_at: number;
  updated_at: number;
  /** SPKI PEM of the site's identity key: it signs the site's change batches and never rotates. */
  identity_key: string;
}

/** An admission of a site's identity key (by the membership authority). */
export interface AdmissionRow {
  id: string;
  owner: string;
  identity_key: string;
  admitted_at: number;
}

/** A site the membership authority removed from the federation's lists (left, evicted or never admitted):
 * id = `<site>:<authority>`. Every site hides it from `atoll sites`, the AZ list, the regions and the
 * catalog, and refuses it as it refuses an evicted site. */
export interface ForgottenRow {
  id: string;
  owner: string;
  site: string;
  reason: string;
  at: number;
}

/** An eviction of `site` by the membership authority: id = `<site>:<authority>`. */
export interface EvictionRow {
  id: string;
  owner: string;
  site: string;
  reason: string;
  at: number;
}

export const registryMigrations = [
  {
    id: 'federation/002-registry',
    sql: `
      CREATE TABLE sites (
        id         TEXT PRIMARY KEY,
        owner      TEXT NOT NULL,
        region     TEXT NOT NULL,
        endpoint   TEXT NOT NULL,
        version    TEXT NOT NULL,
        state      TEXT NOT NULL,
        keys       TEXT NOT NULL,
        joined_at  INTEGER NOT NULL,
        updated_at INTEGER NOT NULL
      );
      CREATE TABLE site_private_keys (
        kid         TEXT PRIMARY KEY,
        private_key TEXT NOT NULL,
        public_key  TEXT NOT NULL,
        created_at  INTEGER NOT NULL,
        active      INTEGER NOT NULL
      );
    `,
  },
  {
    id: 'federation/003-identity-key',
    sql: `
      ALTER TABLE sites ADD COLUMN identity_key TEXT NOT NULL DEFAULT '';
      CREATE TABLE site_identity (
        id          INTEGER PRIMARY KEY CHECK (id = 1),
        private_key TEXT NOT NULL,
        public_key  TEXT NOT NULL
      );
    `,
  },
  {
    id: 'federation/004-admissions',
    sql: `
      -- A site admitted to the federation by a member (through an invite), with the identity key it
      -- presented. Owned by the admitting site.
      CREATE TABLE site_admissions (
        id TEXT PRIMARY KEY, owner TEXT NOT NULL, identity_key TEXT NOT NULL, admitted_at INTEGER NOT NULL
      );
      -- An eviction of a site by an admin of a member site: id = evicted + ':' + evicting site.
      CREATE TABLE site_evictions (
        id TEXT PRIMARY KEY, owner TEXT NOT NULL, site TEXT NOT NULL, reason TEXT NOT NULL, at INTEGER NOT NULL
      );
      CREATE INDEX site_evictions_site ON site_evictions (site);
      -- One-time join tokens this site issued (local: only the hash of the secret is kept).
      CREATE TABLE site_invites (
        id TEXT PRIMARY KEY, secret_hash TEXT NOT NULL, site_name TEXT, expires_at INTEGER NOT NULL,
        used_at INTEGER, created_at INTEGER NOT NULL
      );
    `,
  },
  {
    id: 'federation/005-anchors',
    sql: `
      -- Identity keys a joining site was told to trust by the member that admitted it (local).
      CREATE TABLE site_anchors (
        site TEXT PRIMARY KEY, identity_key TEXT NOT NULL, added_at INTEGER NOT NULL
      );
    `,
  },
  {
    id: 'federation/006-authority',
    sql: `
      -- Local: the federation's membership authority as this site's inviter named it at join
      -- (src/federation/origin.ts). Without a row, the founder's self-admission names it.
      CREATE TABLE site_authority (
        id INTEGER PRIMARY KEY CHECK (id = 1), site TEXT NOT NULL, set_at INTEGER NOT NULL
      );
    `,
  },
  {
    id: 'federation/007-forgotten',
    sql: `
      -- A site the membership authority forgot (atoll site forget): id = forgotten + ':' + authority.
      CREATE TABLE site_forgotten (
        id TEXT PRIMARY KEY, owner TEXT NOT NULL, site TEXT NOT NULL, reason TEXT NOT NULL, at INTEGER NOT NULL
      );
      CREATE INDEX site_forgotten_site ON site_forgotten (site);
    `,
  },
] as const;

/** A site's registry row: written only by that site. */
export const siteKind = defineKind<SiteRow>({
  kind: 'site',
  table: 'sites',
  replicate: 'all',
  origin: { by: 'self', column: 'id' },
});

/**
 * Admissions: written only by the membership authority (or, before any authority is known, a site's
 * admission of itself: the founder's at bootstrap), so no other site can squat a name's key.
 */
export const admissionKind = defineKind<AdmissionRow>({
  kind: 'admission',
  table: 'site_admissions',
  replicate: 'all',
  origin: {
    by: 'site',
    of: 'the membership authority',
    sql: `SELECT COALESCE((${AUTHORITY_SQL}), ?)`,
    args: ['id'],
  },
});

/**
 * The origin rule of a membership verdict on a site (an eviction, a forgetting): only the membership
 * authority writes it, never about itself, keyed `<site>:<authority>`.
 */
const authorityVerdict = (verb: string, noun: string): OriginRule => ({
  by: 'site',
  of: 'the membership authority',
  sql: AUTHORITY_SQL,
  args: [],
  check: (row, origin) =>
    row.site === origin
      ? `the membership authority ${origin} cannot be ${verb}`
      : row.id !== `${String(row.site)}:${origin}`
        ? `${noun} ${String(row.id)} must be keyed ${String(row.site)}:${origin}`
        : undefined,
});

/** Evictions: written only by the membership authority, keyed `<evicted>:<authority>`, never of itself. */
export const evictionKind = defineKind<EvictionRow>({
  kind: 'eviction',
  table: 'site_evictions',
  replicate: 'all',
  origin: authorityVerdict('evicted', 'eviction'),
});

/** Forgotten sites: written only by the membership authority, keyed `<forgotten>:<authority>`. */
export const forgottenKind = defineKind<ForgottenRow>({
  kind: 'forgotten',
  table: 'site_forgotten',
  replicate: 'all',
  origin: authorityVerdict('forgotten', 'forgotten'),
});

type RawSite = Omit<SiteRow, 'keys'> & { keys: string };

export class SiteRegistry {
  private store: Store;
  private changelog: ChangeLog;
  private now: () => number;
  readonly site: string;

  constructor(store: Store, changelog: ChangeLog, now: () => number) {
    this.store = store;
    this.changelog = changelog;
    this.now = now;
    this.site = changelog.site;
  }

  /** Statements prepared once per site: the registry is read on every heartbeat, probe and batch. */
  private statements = new Map<string, Statement>();

  private stmt(sql: string): Statement {
    let s = this.statements.get(sql);
    if (!s) this.statements.set(sql, (s = this.store.db.prepare(sql)));
    return s;
  }

  /** Makes sure this site has a signing key and an up-to-date row of its own. */
  ensureSelf(opts: { endpoint: string; version: string }): SiteRow {
    return this.store.tx(() => {
      if (!this.activeKey()) this.newKey();
      const identity = this.identity();
      const cur = this.get(this.site);
      const row: SiteRow = {
        id: this.site,
        owner: this.site,
        region: this.site,
        endpoint: opts.endpoint,
        version: opts.version,
        state: cur?.state === 'evicted' || cur?.state === 'left' ? cur.state : 'active',
        keys: this.publicKeys(cur?.keys ?? []),
        joined_at: cur?.joined_at ?? this.now(),
        updated_at: this.now(),
        identity_key: identity.publicKey,
      };
      if (
        !cur ||
        cur.endpoint !== row.endpoint ||
        cur.version !== row.version ||
        cur.state !== row.state ||
        cur.identity_key !== row.identity_key ||
        JSON.stringify(cur.keys) !== JSON.stringify(row.keys)
      )
        this.changelog.put(siteKind, row);
      return row;
    });
  }

  private publicKeys(prev: SiteKey[]): SiteKey[] {
    const mine = this.stmt(
      'SELECT kid, public_key, created_at, active FROM site_private_keys ORDER BY created_at',
    ).all() as { kid: string; public_key: string; created_at: number; active: number }[];
    return mine.map((k) => {
      const old = prev.find((p) => p.kid === k.kid);
      const key: SiteKey = { kid: k.kid, publicKey: k.public_key, createdAt: k.created_at };
      if (!k.active) key.retiredAt = old?.retiredAt ?? this.now();
      return key;
    });
  }

  private newKey(): void {
    const { privateKey, publicKey } = generateKeyPairSync('ed25519');
    const kid = `${this.site}.${this.now().toString(36)}`;
    this.stmt('UPDATE site_private_keys SET active = 0').run();
    this.stmt(
      'INSERT INTO site_private_keys (kid, private_key, public_key, created_at, active) VALUES (?, ?, ?, ?, 1)',
    ).run(
      kid,
      privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
      publicKey.export({ type: 'spki', format: 'pem' }).toString(),
      this.now(),
    );
  }

  /** Marks this site as having left the federation (replicates like any change of its row). */
  markLeft(): void {
    const cur = this.get(this.site);
    if (!cur) return;
    this.changelog.put(siteKind, { ...cur, state: 'left', updated_at: this.now() });
  }

  /** Rotates the token-signing key: new tokens use the new key, old ones verify until they expire. */
  rotateKey(opts: { endpoint: string; version: string }): string {
    this.store.tx(() => this.newKey());
    this.ensureSelf(opts);
    return this.activeKey()!.kid;
  }

  /** This site's identity key pair, made on first use; the private half never leaves the site. */
  identity(): { publicKey: string; privateKey: string } {
    let r = this.stmt('SELECT private_key, public_key FROM site_identity WHERE id = 1').get() as
      { private_key: string; public_key: string } | undefined;
    if (!r) {
      const { privateKey, publicKey } = generateKeyPairSync('ed25519');
      r = {
        private_key: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
        public_key: publicKey.export({ type: 'spki', format: 'pem' }).toString(),
      };
      this.stmt('INSERT INTO site_identity (id, private_key, public_key) VALUES (1, ?, ?)').run(
        r.private_key,
        r.public_key,
      );
    }
    return { publicKey: r.public_key, privateKey: r.private_key };
  }

  /** The other site name this data directory's identity key was registered under, if any: a data
   * directory belongs to one site name for good (its log, keys and rows are that site's). */
  formerName(): string | undefined {
    const r = this.stmt('SELECT public_key FROM site_identity WHERE id = 1').get() as
      { public_key: string } | undefined;
    if (!r) return undefined;
    const other = this.stmt(
      'SELECT id FROM sites WHERE identity_key = ? AND id <> ? ORDER BY joined_at LIMIT 1',
    )
      .pluck()
      .get(r.public_key, this.site);
    return typeof other === 'string' ? other : undefined;
  }

  activeKey(): { kid: string; privateKey: string } | undefined {
    const r = this.stmt('SELECT kid, private_key FROM site_private_keys WHERE active = 1').get() as
      { kid: string; private_key: string } | undefined;
    return r && { kid: r.kid, privateKey: r.private_key };
  }

  get(id: string): SiteRow | undefined {
    const r = this.stmt('SELECT * FROM sites WHERE id = ?').get(id) as RawSite | undefined;
    return r && { ...r, keys: JSON.parse(r.keys) as SiteKey[] };
  }

  /** Every registered site but the forgotten ones. */
  list(): SiteRow[] {
    const rows = this.stmt(
      'SELECT * FROM sites WHERE id NOT IN (SELECT site FROM site_forgotten) ORDER BY id',
    ).all() as RawSite[];
    return rows.map((r) => ({
      ...r,
      keys: JSON.parse(r.keys) as SiteKey[],
    }));
  }

  /** The public key a token's `kid` names, if its site is known and in good standing. Read from the
   * table on each call; the token service keeps the KeyObjects and drops them on invalidation. */
  publicKey(kid: string): { publicKey: string; site: string; retiredAt?: number } | undefined {
    const site = kid.slice(0, kid.lastIndexOf('.'));
    const s = this.get(site);
    if (!s || s.state === 'evicted' || this.isEvicted(site)) return undefined;
    const k = s.keys.find((x) => x.kid === kid);
    if (!k || k.revoked) return undefined;
    return { publicKey: k.publicKey, site, ...(k.retiredAt !== undefined ? { retiredAt: k.retiredAt } : {}) };
  }

  /** The identity key the federation knows for a site: the one it was admitted with, else its row's. */
  identityKeyOf(site: string): string | undefined {
    return this.admittedKey(site) ?? (this.get(site)?.identity_key || undefined);
  }

  /** A registered site that was not evicted: its heartbeats, changes and requests are heard. Asked of
   * every message a site receives, so answered from memory until the trust data changes (epoch). */
  isMember(site: string): boolean {
    if (this.membersEpoch !== this.epoch) {
      this.members.clear();
      this.membersEpoch = this.epoch;
    }
    const hit = this.members.get(site);
    if (hit !== undefined) return hit;
    const state = this.stmt('SELECT state FROM sites WHERE id = ?').pluck().get(site);
    const member = typeof state === 'string' && state !== 'evicted' && !this.isEvicted(site);
    // Inside a transaction the answer may yet be rolled back: not kept.
    if (!this.store.inTransaction) {
      if (this.members.size >= 10_000) this.members.clear();
      this.members.set(site, member);
    }
    return member;
  }
  private members = new Map<string, boolean>();
  private membersEpoch = -1;

  /** The identity key a member admitted this site with, if any. */
  admittedKey(site: string): string | undefined {
    const r = this.stmt('SELECT identity_key FROM site_admissions WHERE id = ?').get(site) as
      { identity_key: string } | undefined;
    if (r) return r.identity_key;
    const anchor = this.stmt('SELECT identity_key FROM site_anchors WHERE site = ?').get(site) as
      { identity_key: string } | undefined;
    return anchor?.identity_key;
  }

  /** The federation's membership authority, the only site that admits and evicts (origin.ts). */
  authority(): string | undefined {
    const r = this.stmt(AUTHORITY_SQL).pluck().get();
    return typeof r === 'string' ? r : undefined;
  }

  /** Records the authority a joining site's inviter named (kept over what the log says later). */
  pinAuthority(site: string): void {
    this.stmt('INSERT OR IGNORE INTO site_authority (id, site, set_at) VALUES (1, ?, ?)').run(
      site,
      this.now(),
    );
  }

  /** A site other sites deal with: registered, not evicted, not gone (it serves an AZ and endpoints). */
  inGoodStanding(site: string): boolean {
    const s = this.get(site);
    return !!s && (s.state === 'active' || s.state === 'leaving') && !this.isEvicted(site);
  }

  /** Evicted, or forgotten (a forgotten site is refused as an evicted one is). */
  isEvicted(site: string): boolean {
    return (
      !!this.stmt('SELECT 1 FROM site_evictions WHERE site = ? LIMIT 1').get(site) || this.isForgotten(site)
    );
  }

  /** The membership authority removed this site from the federation's lists (atoll site forget). */
  isForgotten(site: string): boolean {
    return !!this.stmt('SELECT 1 FROM site_forgotten WHERE site = ? LIMIT 1').get(site);
  }

  /** Whether the site was evicted (not merely forgotten). */
  wasEvicted(site: string): boolean {
    return !!this.stmt('SELECT 1 FROM site_evictions WHERE site = ? LIMIT 1').get(site);
  }

  /** Bumped whenever trust data (sites, admissions, evictions) changes; caches compare against it. */
  epoch = 0;

  invalidate(): void {
    this.epoch++;
  }
}
