/**
 * @module What every identity resource file shares: links in Keystone's shape, list filters as the
 * `openstack` CLI sends them, `extra` attributes, and the ownership gate that forwards a write to the
 * home site of the object's domain (or to the site that made a role, region or service).
 * https://docs.openstack.org/api-ref/identity/v3/
 */
import type { FastifyReply, FastifyRequest } from 'fastify';
import { forwardIfRemote } from '../../common/owner.ts';
import type { AuthContext } from '../../../core/auth.ts';
import { ADMIN_PROJECT } from '../../../core/auth.ts';
import { BadRequest, NotFound } from '../../../core/errors.ts';
import type { Obj } from '../../common/input.ts';
import { isObj, query } from '../../common/input.ts';
import type { IdentityContext } from '../context.ts';
import { notFound } from '../domain/common.ts';
import { requireDomainAdmin } from './policy.ts';

export const v3Url = (ic: IdentityContext, path: string): string =>
  `${ic.site.publicUrl()}/identity/v3/${path}`;

export const selfLinks = (ic: IdentityContext, path: string) => ({ self: v3Url(ic, path) });

/** A collection body: { <key>: [...], links: { self, previous, next } }. */
export function collection(ic: IdentityContext, req: FastifyRequest, key: string, items: unknown[]): Obj {
  const qs = req.url.includes('?') ? req.url.slice(req.url.indexOf('?')) : '';
  const path = req.url.split('?')[0]!.replace(/^\/identity\/v3\//, '');
  return { [key]: items, links: { self: v3Url(ic, path) + qs, previous: null, next: null } };
}

/** The query string as flat strings (last value wins). */
export const q = (req: FastifyRequest): Record<string, string> => query(req.query);

/** Keystone's reading of a boolean query value: absent = undefined, '0'/'false'/'no' false, else true. */
export function queryBool(v: string | undefined): boolean | undefined {
  if (v === undefined) return undefined;
  return !['0', 'false', 'no', 'off'].includes(v.toLowerCase());
}

/** Keeps items whose fields match the given query filters exactly (enabled as a boolean). */
export function filterBy<T extends object>(
  items: T[],
  qs: Record<string, string>,
  fields: readonly (keyof T & string)[],
): T[] {
  const field = (x: T, f: string): unknown => (x as Record<string, unknown>)[f];
  let out = items;
  for (const f of fields) {
    const want = qs[f];
    if (want === undefined) continue;
    if (f === 'enabled') {
      const b = queryBool(want);
      out = out.filter((x) => Boolean(field(x, f)) === b);
    } else out = out.filter((x) => String(field(x, f) ?? '') === want);
  }
  return out;
}

/** A list response: the rows the query's filters on `fields` keep, each rendered by `view`. */
export function filteredCollection<T extends object>(
  ic: IdentityContext,
  req: FastifyRequest,
  key: string,
  rows: T[],
  fields: readonly (keyof T & string)[],
  view: (ic: IdentityContext, row: T) => Obj,
): Obj {
  return collection(
    ic,
    req,
    key,
    filterBy(rows, q(req), fields).map((r) => view(ic, r)),
  );
}

/** Unknown attributes of a create/update body are kept in `extra` and returned as-is (Keystone does this). */
export function extraOf(body: Obj, known: readonly string[], current: string | undefined): string {
  const extra = current ? (JSON.parse(current) as Obj) : {};
  for (const [k, v] of Object.entries(body)) if (!known.includes(k) && k !== 'links') extra[k] = v;
  return JSON.stringify(extra);
}

export function parseExtra(s: string | null | undefined): Obj {
  if (!s) return {};
  try {
    const v = JSON.parse(s) as unknown;
    return isObj(v) ? v : {};
  } catch {
    return {};
  }
}

/** A path parameter: the only way a route reads :id, so a missing one is a 400, not a crash. */
export function param(req: FastifyRequest, name: string): string {
  const v = (req.params as Record<string, unknown> | undefined)?.[name];
  if (typeof v !== 'string' || v === '') throw new BadRequest(`Missing ${name} in the path.`);
  return v;
}

/**
 * The site that writes grants on the system and role inference rules: the admin project's owner (the
 * origin rule of those kinds in store/schema.ts). 404 on a cloud without an admin project.
 */
export function adminProjectOwner(ic: IdentityContext): string {
  const p = ic.reader.projectByName(ADMIN_PROJECT.domainId, ADMIN_PROJECT.name);
  if (!p || p.is_domain) throw new NotFound('This cloud has no admin project.');
  return p.owner;
}

/** Identity's routes forward with the one helper of every service. */
export { forwardIfRemote };

/**
 * A write to one object inside a domain (user, group, project): authenticate, load it (404), require
 * an admin of its domain (403), then carry the request to the owning site or run `write` here.
 */
export function domainAdminWrite<T extends { owner: string; domain_id: string }>(
  ic: IdentityContext,
  load: (req: FastifyRequest) => T,
  write: (row: T, req: FastifyRequest, reply: FastifyReply) => Promise<unknown>,
) {
  return async (req: FastifyRequest, reply: FastifyReply): Promise<unknown> => {
    const ctx = ic.site.authenticate(req);
    const row = load(req);
    requireDomainAdmin(ctx, row.domain_id);
    return forwardIfRemote(ic.site, row.owner, req, reply) ?? write(row, req, reply);
  };
}

/** An update may repeat an attribute that is fixed once stored, but not change it (a 400 with `message`). */
export function requireUnchanged(b: Obj, field: string, stored: unknown, message: string): void {
  if (b[field] !== undefined && b[field] !== stored) throw new BadRequest(message);
}

/** The owner of objects in this domain (its home site); 404 for an unknown domain. */
export function domainOwnerOrThrow(ic: IdentityContext, domainId: string): string {
  const owner = ic.domainOwner(domainId);
  if (!owner) throw notFound('domain', domainId);
  return owner;
}

/** The domain a new user, group or project goes in when the body names none: the token's, else 'default'. */
export const callerDomain = (ctx: AuthContext): string => ctx.domainId ?? ctx.projectDomainId ?? 'default';

/**
 * A create inside a domain: 404 for an unknown domain, 403 unless the caller administers it, then
 * carry the request to the domain's home site (returning that reply), or undefined to create here.
 */
export function forwardCreateIfRemote(
  ic: IdentityContext,
  ctx: AuthContext,
  domainId: string,
  req: FastifyRequest,
  reply: FastifyReply,
): Promise<FastifyReply> | undefined {
  const owner = domainOwnerOrThrow(ic, domainId);
  requireDomainAdmin(ctx, domainId);
  return forwardIfRemote(ic.site, owner, req, reply);
}
