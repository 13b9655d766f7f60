/**
 * @module Who belongs to the federation. An admin of any member site creates a one-time, expiring
 * invite; a new site presents it (with its name and identity public key) to the inviting site over the
 * fabric; the inviter records an admission (replicated) and answers with the identity keys it trusts,
 * which become the newcomer's trust anchors. An admin can evict a site: every site then refuses its
 * change batches, its tokens and its forwarded requests; what it owned stays, marked orphaned.
 * No central authority is involved at run time: any member can admit, and trust follows admissions.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { BadRequest, CloudError, Conflict, Forbidden, NotFound } from '../core/errors.ts';
import type { Clock, Ids } from '../core/ports.ts';
import type { Fabric } from '../fabric/fabric.ts';
import { RemoteCloudError, defineRpc } from '../fabric/rpc.ts';
import type { Store } from '../store/db.ts';
import type { ChangeLog } from './changelog.ts';
import type { SiteRegistry } from './registry.ts';
import { admissionKind, evictionKind, forgottenKind } from './registry.ts';

export interface InviteToken {
  /** inviting site */
  s: string;
  /** invite id */
  i: string;
  /** secret */
  k: string;
  /** the inviter's identity key fingerprint (sha256 of its PEM), so the newcomer can check whom it joins */
  f: string;
  /** How the newcomer's own nats-server links to the inviter's as a leaf node, when the inviter runs a
   * managed nats-server that accepts leaf nodes: URL, leaf credentials and the CA (PEM) to verify it. */
  n?: NatsLeafInvite;
}

export interface NatsLeafInvite {
  url: string;
  user: string;
  password: string;
  ca?: string;
}

/** The fields of an invite token (no check of its secret: only the inviter can do that). */
export function decodeInvite(token: string): InviteToken {
  let t: InviteToken;
  try {
    t = JSON.parse(Buffer.from(token, 'base64url').toString()) as InviteToken;
  } catch {
    throw new BadRequest('malformed invite');
  }
  if (!t || !t.s || !t.i || !t.k) throw new BadRequest('malformed invite');
  return t;
}

export interface JoinRequest {
  invite: string;
  secret: string;
  site: string;
  identityKey: string;
}
export interface JoinReply {
  /** site -> identity key, as the inviter trusts them (the newcomer's anchors) */
  anchors: Record<string, string>;
  /** The membership authority the newcomer must take admissions and evictions from (origin.ts). */
  authority?: string;
}

/** `atoll.<inviter>.rpc.join`: an invite presented -> the anchors; a refusal is an error (rpc.ts). */
export const joinRpc = defineRpc<JoinRequest, JoinReply>({ name: 'join', version: 2 });

const sha = (s: string) => createHash('sha256').update(s).digest('hex');

export class Membership {
  private store: Store;
  private changelog: ChangeLog;
  private registry: SiteRegistry;
  private clock: Clock;
  private ids: Ids;
  private site: string;

  constructor(store: Store, changelog: ChangeLog, registry: SiteRegistry, clock: Clock, ids: Ids) {
    this.store = store;
    this.changelog = changelog;
    this.registry = registry;
    this.clock = clock;
    this.ids = ids;
    this.site = changelog.site;
  }

  /** Admits this site itself (the founder does this at bootstrap). */
  admitSelf(): void {
    if (!this.registry.admittedKey(this.site))
      this.changelog.put(admissionKind, {
        id: this.site,
        identity_key: this.registry.identity().publicKey,
        admitted_at: this.clock.now(),
      });
  }

  createInvite(opts: { siteName?: string; ttlSeconds: number; nats?: NatsLeafInvite }): {
    token: string;
    expiresAt: number;
  } {
    if (opts.ttlSeconds < 1 || opts.ttlSeconds > 7 * 86400) throw new BadRequest('ttl must be 1 s to 7 days');
    const id = this.ids.uuid();
    const secret = randomBytes(24).toString('base64url');
    const expiresAt = this.clock.now() + opts.ttlSeconds * 1000;
    this.store.db
      .prepare(
        'INSERT INTO site_invites (id, secret_hash, site_name, expires_at, created_at) VALUES (?, ?, ?, ?, ?)',
      )
      .run(id, sha(secret), opts.siteName ?? null, expiresAt, this.clock.now());
    const t: InviteToken = {
      s: this.site,
      i: id,
      k: secret,
      f: sha(this.registry.identity().publicKey),
      ...(opts.nats ? { n: opts.nats } : {}),
    };
    return { token: Buffer.from(JSON.stringify(t)).toString('base64url'), expiresAt };
  }

  /** The inviter's side of a join: checks the invite, admits the newcomer, returns the anchors. */
  redeem(req: JoinRequest): JoinReply {
    return this.store.tx(() => {
      const inv = this.store.db.prepare('SELECT * FROM site_invites WHERE id = ?').get(String(req.invite)) as
        | { secret_hash: string; site_name: string | null; expires_at: number; used_at: number | null }
        | undefined;
      const given = Buffer.from(sha(String(req.secret)));
      if (!inv || !timingSafeEqual(given, Buffer.from(inv.secret_hash)))
        throw new Forbidden('invalid invite');
      if (inv.used_at !== null) throw new Forbidden('invite already used');
      if (inv.expires_at <= this.clock.now()) throw new Forbidden('invite expired');
      if (inv.site_name && inv.site_name !== req.site)
        throw new Forbidden(`invite is for site ${inv.site_name}`);
      if (this.registry.isEvicted(req.site)) throw new Forbidden(`site ${req.site} was evicted`);
      // A name belongs to one site for good: a name some site already registered (its own `sites`
      // row) or was admitted under, with another identity key, is never handed to a newcomer, named
      // invite or not. Admitting it would make every site trust the newcomer's key for that name and
      // refuse the real site's batches (issue 11, class 5).
      const existing = this.registry.admittedKey(req.site);
      const registered = this.registry.get(req.site)?.identity_key || undefined;
      if ((existing && existing !== req.identityKey) || (registered && registered !== req.identityKey))
        throw new Conflict(`site name ${req.site} is taken by another site; choose a new name`);
      this.store.db
        .prepare('UPDATE site_invites SET used_at = ? WHERE id = ?')
        .run(this.clock.now(), req.invite);
      if (!existing)
        this.changelog.put(admissionKind, {
          id: req.site,
          identity_key: req.identityKey,
          admitted_at: this.clock.now(),
        });
      return { anchors: this.trusted(), authority: this.registry.authority() ?? this.site };
    });
  }

  /** site -> identity key for every site this one trusts (admitted, or known in open mode). */
  trusted(): Record<string, string> {
    const out: Record<string, string> = {};
    for (const s of this.registry.list())
      if (s.identity_key && !this.registry.isEvicted(s.id)) out[s.id] = s.identity_key;
    const rows = this.store.db.prepare('SELECT id, identity_key FROM site_admissions').all() as {
      id: string;
      identity_key: string;
    }[];
    for (const r of rows) if (!this.registry.isEvicted(r.id)) out[r.id] = r.identity_key;
    out[this.site] = this.registry.identity().publicKey;
    return out;
  }

  /** The newcomer's side: present the invite to the inviter and record the anchors it returns. */
  async join(fabric: Fabric, token: string, timeoutMs = 10_000): Promise<string> {
    const t = decodeInvite(token);
    const req: JoinRequest = {
      invite: t.i,
      secret: t.k,
      site: this.site,
      identityKey: this.registry.identity().publicKey,
    };
    let reply: JoinReply;
    try {
      reply = await joinRpc.call(fabric, t.s, req, { timeoutMs });
    } catch (e) {
      // Whatever the inviter answered against it (a 403, 409, 400 there) is a refusal here.
      if (e instanceof RemoteCloudError) throw new Forbidden(`join refused by ${t.s}: ${e.message}`);
      throw e;
    }
    if (!reply.anchors) throw new Forbidden(`join refused by ${t.s}: no reason`);
    if (t.f && sha(reply.anchors[t.s] ?? '') !== t.f)
      throw new Forbidden(`${t.s} answered with another identity key`);
    this.store.tx(() => {
      for (const [site, key] of Object.entries(reply.anchors))
        this.store.db
          .prepare('INSERT OR IGNORE INTO site_anchors (site, identity_key, added_at) VALUES (?, ?, ?)')
          .run(site, key, this.clock.now());
      if (reply.authority) this.registry.pinAuthority(reply.authority);
    });
    this.registry.invalidate();
    return t.s;
  }

  serveJoin(fabric: Fabric): () => void {
    return joinRpc.serve(fabric, (req) => this.redeem(req), {
      internal: (e) => new CloudError(500, e instanceof Error ? e.message : String(e)),
    });
  }

  evict(site: string, reason: string): void {
    if (site === this.registry.authority())
      throw new BadRequest(`${site} is the federation's membership authority and cannot be evicted`);
    if (site === this.site) throw new BadRequest('a site cannot evict itself; use leave');
    if (!this.registry.get(site) && !this.registry.admittedKey(site))
      throw new NotFound(`unknown site ${site}`);
    this.changelog.put(evictionKind, { id: `${site}:${this.site}`, site, reason, at: this.clock.now() });
  }

  /**
   * Removes a site from every site's lists (`atoll sites`, AZs, regions, catalogs): one that was
   * evicted, that left, or that never made it: admitted but never registered, or (where only admitted
   * sites are trusted) registered but never admitted. Any other site is a member, up or not: evict it
   * first. A forgotten name is refused from then on, as an evicted one is.
   */
  forget(
    site: string,
    reason: string,
    opts: { isUp: (site: string) => boolean; admittedOnly: boolean },
  ): { already: boolean } {
    if (site === this.registry.authority())
      throw new BadRequest(`${site} is the federation's membership authority and cannot be forgotten`);
    if (site === this.site) throw new BadRequest('a site cannot forget itself; use leave');
    const row = this.registry.get(site);
    const admitted = this.registry.admittedKey(site) !== undefined;
    if (!row && !admitted) throw new NotFound(`unknown site ${site}`);
    if (this.registry.isForgotten(site)) return { already: true };
    const gone = this.registry.wasEvicted(site) || row?.state === 'evicted' || row?.state === 'left';
    if (!gone) {
      if (opts.isUp(site))
        throw new Conflict(
          `Site ${site} is up: only a site that was evicted, left or never made it can be forgotten (atoll site evict ${site} first).`,
        );
      const neverMadeIt = !row || (opts.admittedOnly && !admitted);
      if (!neverMadeIt)
        throw new Conflict(
          `Site ${site} is a member (unreachable now, not evicted): evict it first (atoll site evict ${site}), then forget it.`,
        );
    }
    this.changelog.put(forgottenKind, { id: `${site}:${this.site}`, site, reason, at: this.clock.now() });
    return { already: false };
  }
}
