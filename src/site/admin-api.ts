/**
 * @module Atoll's own admin API (not OpenStack): the federation as this site sees it. Cloud admins only.
 *   GET /atoll/v1/sites   every site with its state, version, replication lag and round-trip time
 */
import type { FastifyInstance } from 'fastify';
import { requireAdmin } from '../core/auth.ts';
import type { SiteContext } from './site.ts';

export function registerAdminApi(app: FastifyInstance, ctx: SiteContext): void {
  app.get('/atoll/v1/sites', async (req) => {
    requireAdmin(ctx.authenticate(req));
    const rows = ctx.registry.list();
    const now = ctx.clock.now();
    const pings = await Promise.all(
      rows.map(async (s) => {
        if (s.id === ctx.name) return 0;
        if (!ctx.replicator.isUp(s.id)) return null;
        try {
          return await ctx.replicator.ping(s.id, 1000);
        } catch {
          return null;
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
          registered_state: s.state,
          state: self ? 'self' : ctx.replicator.isUp(s.id) ? 'up' : 'unreachable',
          last_seen_ms_ago: self ? 0 : peer?.lastSeen ? now - peer.lastSeen : null,
          log_head: self ? ctx.changelog.head() : (peer?.head ?? null),
          applied: self ? ctx.changelog.head() : ctx.changelog.cursor(s.id),
          lag_changes: self ? 0 : ctx.replicator.lag(s.id),
          rtt_ms: pings[i],
        };
      }),
    };
  });
}
