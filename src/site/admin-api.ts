/**
 * @module Atoll's own admin API (not OpenStack): the federation as this site sees it. Cloud admins only.
 *   GET /atoll/v1/sites   every site with its state, version, replication lag and round-trip time
 *   POST /atoll/v1/leave  this site leaves the federation cleanly (409 while it still owns resources)
 *   POST /atoll/v1/invites              {invite: {site_name?, ttl_seconds?}} -> a one-time join token
 *   POST /atoll/v1/sites/{name}/evict   {evict: {reason}}: every site refuses it from then on
 *   POST /atoll/v1/sites/{name}/forget  {forget: {reason}}: a site that was evicted, left or never made
 *                                       it leaves every list (sites, AZs, regions, catalogs)
 *   POST /atoll/v1/keys/rotate          new token-signing key; old tokens verify until they expire
 * Invites and evictions run at the federation's membership authority (src/federation/origin.ts): from any
 * other site they are forwarded there, and fail fast with a 503 naming it while it is unreachable.
 */

import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { requireAdmin } from '../core/auth.ts';
import { BadRequest, CloudError, Conflict } from '../core/errors.ts';
import { endpointKind, regionKind } from '../services/identity/store/schema.ts';
import { SITE_NAME } from './config.ts';
import type { SiteRuntime } from './context.ts';

/** Kinds a leaving site may still own: its own registry row, catalog entries and revocation events. */
const INFRASTRUCTURE_KINDS = new Set(['site', 'region', 'endpoint', 'revocation']);

export function registerAdminApi(
  app: FastifyInstance,
  ctx: SiteRuntime,
  events: {
    /** This site has left the federation: whoever runs it stops it (Site.left). */
    left: () => void;
  },
): void {
  /** Forwards a membership change to the authority, or returns undefined when this site is it. */
  const atAuthority = (req: FastifyRequest, reply: FastifyReply) => {
    const authority = ctx.registry.authority();
    if (authority === undefined)
      throw new CloudError(503, 'No membership authority is known to this site yet; try its founder.');
    return authority === ctx.name ? undefined : ctx.forwardTo(authority, req, reply);
  };

  app.post('/atoll/v1/leave', async (req, reply) => {
    requireAdmin(ctx.authenticate(req));
    const db = ctx.store.db;
    const owned: string[] = [];
    for (const k of ctx.changelog.kindSpecs()) {
      if (INFRASTRUCTURE_KINDS.has(k.kind) || k.replicate === 'none') continue;
      const { n } = db.prepare(`SELECT count(*) AS n FROM ${k.table} WHERE owner = ?`).get(ctx.name) as {
        n: number;
      };
      if (n > 0) owned.push(`${n} ${k.kind}`);
    }
    if (owned.length > 0)
      throw new Conflict(
        `Site ${ctx.name} still owns ${owned.join(', ')}: delete or move them (or evict the site) before it leaves.`,
      );
    ctx.store.tx(() => {
      for (const kind of [endpointKind, regionKind]) {
        const rows = db.prepare(`SELECT id FROM ${kind.table} WHERE owner = ?`).all(ctx.name) as {
          id: string;
        }[];
        for (const r of rows) ctx.changelog.remove(kind, r.id);
      }
      ctx.registry.markLeft();
    });
    const behind = await ctx.replicator.waitPeersCaughtUp(10_000);
    reply.code(202);
    ctx.clock.setTimeout(() => events.left(), 100);
    return { site: ctx.name, state: 'left', peers_not_confirmed: behind };
  });

  app.post('/atoll/v1/invites', async (req, reply) => {
    requireAdmin(ctx.authenticate(req));
    const fwd = atAuthority(req, reply);
    if (fwd) return fwd;
    const body = (req.body ?? {}) as { invite?: { site_name?: unknown; ttl_seconds?: unknown } };
    const inv = body.invite ?? {};
    const siteName =
      inv.site_name === undefined || inv.site_name === null ? undefined : String(inv.site_name);
    if (siteName !== undefined && !SITE_NAME.test(siteName))
      throw new BadRequest('site_name must match [a-z0-9-]');
    const ttl = inv.ttl_seconds === undefined ? 3600 : Number(inv.ttl_seconds);
    if (!Number.isInteger(ttl)) throw new BadRequest('ttl_seconds must be an integer');
    const { token, expiresAt } = ctx.membership.createInvite({
      ...(siteName ? { siteName } : {}),
      ttlSeconds: ttl,
      ...(ctx.config.natsLeafInvite ? { nats: ctx.config.natsLeafInvite } : {}),
    });
    reply.code(201);
    return {
      invite: {
        token,
        inviter: ctx.name,
        site_name: siteName ?? null,
        expires_at: new Date(expiresAt).toISOString(),
      },
    };
  });

  app.post('/atoll/v1/sites/:name/evict', async (req, reply) => {
    requireAdmin(ctx.authenticate(req));
    const fwd = atAuthority(req, reply);
    if (fwd) return fwd;
    const { name } = req.params as { name: string };
    const body = (req.body ?? {}) as { evict?: { reason?: unknown } };
    ctx.membership.evict(name, String(body.evict?.reason ?? 'evicted by an administrator'));
    reply.code(202);
    return { site: name, state: 'evicted', by: ctx.name };
  });

  app.post('/atoll/v1/sites/:name/forget', async (req, reply) => {
    requireAdmin(ctx.authenticate(req));
    const fwd = atAuthority(req, reply);
    if (fwd) return fwd;
    const { name } = req.params as { name: string };
    if (!SITE_NAME.test(name)) throw new BadRequest('site name must match [a-z0-9-]');
    const body = (req.body ?? {}) as { forget?: { reason?: unknown } };
    const { already } = ctx.membership.forget(
      name,
      String(body.forget?.reason ?? 'forgotten by an administrator'),
      { isUp: (s) => ctx.replicator.isUp(s), admittedOnly: ctx.config.trust === 'admitted' },
    );
    reply.code(202);
    return { site: name, state: 'forgotten', by: ctx.name, already_forgotten: already };
  });

  app.post('/atoll/v1/keys/rotate', async (req, reply) => {
    requireAdmin(ctx.authenticate(req));
    const kid = ctx.registry.rotateKey({
      endpoint: ctx.publicUrl(),
      version: ctx.registry.get(ctx.name)?.version ?? '',
    });
    ctx.tokens?.invalidate();
    reply.code(201);
    return { site: ctx.name, kid };
  });

  /** What `atoll sites` shows: how this site deals with the other one now. */
  const standing = (s: { id: string; state: string }) =>
    s.id === ctx.name
      ? 'self'
      : ctx.registry.isEvicted(s.id)
        ? 'evicted'
        : ctx.replicator.refusal(s.id)
          ? 'conflict'
          : s.state === 'left'
            ? 'left'
            : ctx.replicator.isUp(s.id)
              ? 'up'
              : 'unreachable';

  app.get('/atoll/v1/sites', async (req) => {
    requireAdmin(ctx.authenticate(req));
    const rows = ctx.registry.list();
    const now = ctx.clock.now();
    const pings = await Promise.all(
      rows.map(async (s) => {
        if (s.id === ctx.name) return 0;
        if (!ctx.registry.inGoodStanding(s.id) || !ctx.replicator.isUp(s.id)) return null;
        try {
          return await ctx.replicator.ping(s.id, 1000);
        } catch {
          // A round trip over a second: the last one measured by a pull, rather than nothing.
          return ctx.replicator.peers.get(s.id)?.rttMs ?? null;
        }
      }),
    );
    return {
      site: ctx.name,
      sites: rows.map((s, i) => {
        const peer = ctx.replicator.peers.get(s.id);
        const self = s.id === ctx.name;
        return {
          name: s.id,
          region: s.region,
          endpoint: s.endpoint,
          version: self ? s.version : (peer?.version ?? s.version),
          registered_state: ctx.registry.isEvicted(s.id) ? 'evicted' : s.state,
          state: standing(s),
          conflict: self ? null : (ctx.replicator.refusal(s.id) ?? null),
          last_seen_ms_ago: self ? 0 : peer?.lastSeen ? Math.max(0, now - peer.lastSeen) : null,
          log_head: self ? ctx.changelog.head() : (peer?.head ?? null),
          applied: self ? ctx.changelog.head() : ctx.changelog.cursor(s.id),
          lag_changes: self ? 0 : ctx.replicator.lag(s.id),
          rtt_ms: pings[i],
        };
      }),
    };
  });
}
