/**
 * @module What every identity resource file shares: links in Keystone's shape, list filters as the
 * `openstack` CLI sends them, `extra` attributes, and the ownership gate that forwards a write to the
 * home site of the object's domain (or to the site that made a role, region or service).
 * https://docs.openstack.org/api-ref/identity/v3/
 */
import type { FastifyReply, FastifyRequest } from 'fastify';
import { BadRequest, NotFound } from '../../../core/errors.ts';
import type { Obj } from '../../common/input.ts';
import { isObj, query } from '../../common/input.ts';
import type { IdentityContext } from '../context.ts';

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
export function filterBy<T extends Obj>(
  items: T[],
  qs: Record<string, string>,
  fields: readonly string[],
): T[] {
  let out = items;
  for (const f of fields) {
    const want = qs[f];
    if (want === undefined) continue;
    if (f === 'enabled') {
      const b = queryBool(want);
      out = out.filter((x) => Boolean(x.enabled) === b);
    } else out = out.filter((x) => String(x[f] ?? '') === want);
  }
  return out;
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

export const notFound = (kind: string, id: string) => new NotFound(`Could not find ${kind}: ${id}.`);

/** A path parameter: the only way a route reads :id, so a missing one is a 400, not a crash. */
export function param(req: FastifyRequest, name: string): string {
  const v = (req.params as Record<string, unknown> | undefined)?.[name];
  if (typeof v !== 'string' || v === '') throw new BadRequest(`Missing ${name} in the path.`);
  return v;
}

/**
 * The federation rule for writes: when another site owns the object, carry the request to it (its
 * answer, or a 503 naming it) and return that reply; return undefined to go on locally.
 */
export function forwardIfRemote(
  ic: IdentityContext,
  owner: string,
  req: FastifyRequest,
  reply: FastifyReply,
): Promise<FastifyReply> | undefined {
  if (ic.site.owns(owner)) return undefined;
  return ic.site.forwardTo(owner, req, reply);
}

/** The owner of objects in this domain (its home site); 404 for an unknown domain. */
export function domainOwnerOrThrow(ic: IdentityContext, domainId: string): string {
  const owner = ic.domainOwner(domainId);
  if (!owner) throw notFound('domain', domainId);
  return owner;
}

/** A stored 0/1 flag from an optional boolean body field. */
export function bool01(v: boolean | undefined, dflt: number): number {
  return v === undefined ? dflt : v ? 1 : 0;
}
