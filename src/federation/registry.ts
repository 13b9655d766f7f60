/**
 * @module The site registry: one row per site, owned by that site and replicated everywhere. It carries
 * what other sites need to trust and reach it: its public token-signing keys, its API endpoint, its
 * version and state. Each site also keeps its private keys in a local, never replicated table.
 */
import { generateKeyPairSync } from 'node:crypto';
import type { Store } from '../store/db.ts';
import type { ChangeLog } from './changelog.ts';

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
] as const;

export const siteKind = { kind: 'site', table: 'sites', replicate: 'all' } as const;

type RawSite = Omit<SiteRow, 'keys'> & { keys: string };

export class SiteRegistry {
  private store: Store;
  private changelog: ChangeLog;
  private now: () => number;
  readonly site: string;
  private keyCache = new Map<string, { publicKey: string; revoked: boolean; siteState: string } | null>();

  constructor(store: Store, changelog: ChangeLog, now: () => number) {
    this.store = store;
    this.changelog = changelog;
    this.now = now;
    this.site = changelog.site;
  }

  /** Makes sure this site has a signing key and an up-to-date row of its own. */
  ensureSelf(opts: { endpoint: string; version: string }): SiteRow {
    return this.store.tx(() => {
      if (!this.activeKey()) this.newKey();
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
      };
      if (
        !cur ||
        cur.endpoint !== row.endpoint ||
        cur.version !== row.version ||
        cur.state !== row.state ||
        JSON.stringify(cur.keys) !== JSON.stringify(row.keys)
      )
        this.changelog.put(siteKind.kind, row as unknown as SiteRow & Record<string, unknown>);
      return row;
    });
  }

  private publicKeys(prev: SiteKey[]): SiteKey[] {
    const mine = this.store.db
      .prepare('SELECT kid, public_key, created_at, active FROM site_private_keys ORDER BY created_at')
      .all() as { kid: string; public_key: string; created_at: number; active: number }[];
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
    this.store.db.prepare('UPDATE site_private_keys SET active = 0').run();
    this.store.db
      .prepare(
        'INSERT INTO site_private_keys (kid, private_key, public_key, created_at, active) VALUES (?, ?, ?, ?, 1)',
      )
      .run(
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
    this.changelog.put(siteKind.kind, {
      ...cur,
      state: 'left',
      updated_at: this.now(),
    } as unknown as SiteRow & Record<string, unknown>);
  }

  /** Rotates the token-signing key: new tokens use the new key, old ones verify until they expire. */
  rotateKey(opts: { endpoint: string; version: string }): string {
    this.store.tx(() => this.newKey());
    this.ensureSelf(opts);
    return this.activeKey()!.kid;
  }

  activeKey(): { kid: string; privateKey: string } | undefined {
    const r = this.store.db
      .prepare('SELECT kid, private_key FROM site_private_keys WHERE active = 1')
      .get() as { kid: string; private_key: string } | undefined;
    return r && { kid: r.kid, privateKey: r.private_key };
  }

  get(id: string): SiteRow | undefined {
    const r = this.store.db.prepare('SELECT * FROM sites WHERE id = ?').get(id) as RawSite | undefined;
    return r && { ...r, keys: JSON.parse(r.keys) as SiteKey[] };
  }

  list(): SiteRow[] {
    return (this.store.db.prepare('SELECT * FROM sites ORDER BY id').all() as RawSite[]).map((r) => ({
      ...r,
      keys: JSON.parse(r.keys) as SiteKey[],
    }));
  }

  /** The public key a token's `kid` names, if its site is known and in good standing. Cached; call
   * invalidate() when the sites table changes. */
  publicKey(kid: string): { publicKey: string; site: string } | undefined {
    const site = kid.slice(0, kid.lastIndexOf('.'));
    const s = this.get(site);
    if (!s || s.state === 'evicted') return undefined;
    const k = s.keys.find((x) => x.kid === kid);
    if (!k || k.revoked) return undefined;
    return { publicKey: k.publicKey, site };
  }

  invalidate(): void {
    this.keyCache.clear();
  }
}
