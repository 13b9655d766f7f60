/**
 * @module Least privilege on the fabric, as data: what one site may publish and subscribe to. The same
 * rules drive the nats-server configuration (nats/server-config.ts writes them as each site's user
 * permissions) and the in-process MemoryNetwork (`enforcePermissions`), so the lab and a deployment refuse
 * the same things. See docs/security.md, "Links and least privilege on the fabric".
 *
 * A site that adds a request/reply service callable by other sites adds its name to RPC_SERVICES; a
 * service used only inside a site (compute hosts, `atoll.<site>.rpc.host.*`) needs nothing here.
 */
import { subjectMatches } from './fabric.ts';

/** The `atoll.<site>.rpc.<name>` services a site may call on another site. */
export const RPC_SERVICES = ['changes', 'ping', 'cursor', 'http', 'join', 'ipam', 'image'] as const;
export type RpcService = (typeof RPC_SERVICES)[number];

export interface SubjectPermissions {
  /** Subjects (NATS wildcards allowed) the site may publish on, requests included. */
  publish: readonly string[];
  /** Subjects the site may subscribe to (and serve); a wildcard subscription must lie within one. */
  subscribe: readonly string[];
  /** The site may answer a request it received, whatever the reply subject (NATS `allow_responses`). */
  allowResponses: boolean;
}

/** A site name is one subject token: it must not split (`.`), match (`*`, `>`) or break a line. */
const SITE_NAME = /^[A-Za-z0-9_-]+$/;

export function assertSiteName(site: string): void {
  if (!SITE_NAME.test(site))
    throw new RangeError(`site name ${JSON.stringify(site)} is not one subject token ([A-Za-z0-9_-]+)`);
}

/** Prefix of the site's reply subjects; only that site may subscribe under it, so no site reads another's
 * replies (nats.js `inboxPrefix`). */
export function inboxPrefix(site: string): string {
  return `_INBOX_${site}`;
}

/** Least privilege of `site` on the fabric. */
export function sitePermissions(site: string): SubjectPermissions {
  assertSiteName(site);
  return {
    publish: [`atoll.${site}.>`, ...RPC_SERVICES.map((s) => `atoll.*.rpc.${s}`)],
    subscribe: ['atoll.*.changes', 'atoll.*.heartbeat', `atoll.${site}.>`, `${inboxPrefix(site)}.>`],
    allowResponses: true,
  };
}

/** True when every subject matched by `pattern` is also matched by `allowed` (NATS's subset match). */
export function patternWithin(pattern: string, allowed: string): boolean {
  const p = pattern.split('.');
  const a = allowed.split('.');
  for (let i = 0; i < a.length; i++) {
    const at = a[i]!;
    const pt = p[i];
    if (pt === undefined) return false;
    if (at === '>') return true;
    if (pt === '>') return false;
    if (at === '*') continue;
    if (pt === '*' || pt !== at) return false;
  }
  return p.length === a.length;
}

export function mayPublish(perms: SubjectPermissions, subject: string): boolean {
  return perms.publish.some((allowed) => subjectMatches(allowed, subject));
}

export function maySubscribe(perms: SubjectPermissions, pattern: string): boolean {
  return perms.subscribe.some((allowed) => patternWithin(pattern, allowed));
}
