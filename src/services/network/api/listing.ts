/**
 * @module Neutron's list conventions, shared by every collection: filters on any attribute (repeat a
 * key for OR), `fields=` to trim the body, `sort_key`/`sort_dir`, and `limit`/`marker`/`page_reverse`
 * paging with `<collection>_links` (https://docs.openstack.org/api-ref/network/v2/#filtering-and-column-selection).
 */
import { BadRequest } from '../../../core/errors.ts';
import { isObj } from '../../common/input.ts';
import type { Obj } from '../../common/input.ts';
import { paginate } from '../../common/paging.ts';

const RESERVED = new Set([
  'fields',
  'sort_key',
  'sort_dir',
  'limit',
  'marker',
  'page_reverse',
  'tags',
  'tags-any',
  'not-tags',
  'not-tags-any',
]);

/** Every value of every query key (Fastify gives a string or a string[]). */
export function multiQuery(q: unknown): Map<string, string[]> {
  const out = new Map<string, string[]>();
  if (!isObj(q)) return out;
  for (const [k, v] of Object.entries(q)) {
    const vals = Array.isArray(v)
      ? v.filter((x): x is string => typeof x === 'string')
      : typeof v === 'string'
        ? [v]
        : [];
    if (vals.length) out.set(k, vals);
  }
  return out;
}

function matchOne(value: unknown, want: string): boolean {
  if (value === null || value === undefined) return want === '' || want === 'None' || want === 'null';
  if (typeof value === 'boolean') return ['true', '1', 'yes'].includes(want.toLowerCase()) === value;
  if (Array.isArray(value)) {
    // fixed_ips=ip_address=10.0.0.3, fixed_ips=subnet_id=..., fixed_ips=ip_address_substr=10.0 (Neutron's
    // ip-substring-filtering), else membership
    const m = /^([a-z_]+)=(.*)$/.exec(want);
    return value.some((v) => {
      if (!isObj(v)) return String(v) === want;
      if (!m) return false;
      if (m[1] === 'ip_address_substr') return String(v.ip_address).includes(m[2]!);
      return String(v[m[1]!]) === m[2];
    });
  }
  if (typeof value === 'object') return JSON.stringify(value) === want;
  return String(value) === want;
}

function tagsMatch(item: Obj, q: Map<string, string[]>): boolean {
  const tags = Array.isArray(item.tags) ? (item.tags as string[]) : [];
  const list = (k: string) => (q.get(k) ?? []).flatMap((v) => v.split(',')).filter(Boolean);
  const all = list('tags');
  const any = list('tags-any');
  const notAll = list('not-tags');
  const notAny = list('not-tags-any');
  if (all.length && !all.every((t) => tags.includes(t))) return false;
  if (any.length && !any.some((t) => tags.includes(t))) return false;
  if (notAll.length && notAll.every((t) => tags.includes(t))) return false;
  if (notAny.length && notAny.some((t) => tags.includes(t))) return false;
  return true;
}

export function filterItems(items: Obj[], q: Map<string, string[]>): Obj[] {
  const filters = [...q].filter(([k]) => !RESERVED.has(k));
  return items.filter(
    (it) =>
      tagsMatch(it, q) && filters.every(([k, vals]) => !(k in it) || vals.some((v) => matchOne(it[k], v))),
  );
}

function compare(a: unknown, b: unknown): number {
  if (a === b) return 0;
  if (a === null || a === undefined) return -1;
  if (b === null || b === undefined) return 1;
  if (typeof a === 'number' && typeof b === 'number') return a - b;
  return String(a) < String(b) ? -1 : 1;
}

/** Filters, sorts, pages and trims a collection; returns the response body. */
export function listBody(collection: string, all: Obj[], q: Map<string, string[]>, selfUrl: string): Obj {
  const items = filterItems(all, q);
  const keys = q.get('sort_key') ?? [];
  const dirs = q.get('sort_dir') ?? [];
  for (const d of dirs)
    if (d !== 'asc' && d !== 'desc')
      throw new BadRequest(`Invalid input: sort_dir ${d} must be asc or desc.`);
  const order = [
    ...keys.map((k, i) => ({ k, desc: dirs[i] === 'desc' })),
    { k: 'created_at', desc: false },
    { k: 'id', desc: false },
  ];
  items.sort((a, b) => {
    for (const { k, desc } of order) {
      const c = compare(a[k], b[k]);
      if (c !== 0) return desc ? -c : c;
    }
    return 0;
  });
  const reverse = (q.get('page_reverse')?.[0] ?? '').toLowerCase() === 'true';
  const limitText = q.get('limit')?.[0];
  const marker = q.get('marker')?.[0];
  // Neutron pages without a ceiling, and a limit of 0 or less is none; a reverse page walks back. A
  // limit that is not an integer reaches paginate, which refuses it after the marker (as before).
  const limited = limitText !== undefined && !(/^-?\d+$/.test(limitText) && Number(limitText) <= 0);
  const {
    items: page,
    start,
    nextMarker,
  } = paginate(
    reverse ? [...items].reverse() : items,
    { ...(marker !== undefined ? { marker } : {}), ...(limited ? { limit: limitText } : {}) },
    (x) => String(x.id),
    {
      maxLimit: Infinity,
      badNumber: (_f, v) => new BadRequest(`Invalid input: limit ${v} is not an integer.`),
    },
  );
  /** Items remain beyond this page, in the direction it was read. */
  const more = nextMarker !== undefined;
  if (reverse) page.reverse();
  const body: Obj = { [collection]: trimFields(page, q.get('fields')) };
  if (limited) {
    const links: { rel: string; href: string }[] = [];
    const link = (m: string, rev: boolean) => {
      const params = new URLSearchParams();
      for (const [k, vals] of q)
        if (k !== 'marker' && k !== 'page_reverse') for (const v of vals) params.append(k, v);
      params.set('marker', m);
      if (rev) params.set('page_reverse', 'True');
      return `${selfUrl}?${params.toString()}`;
    };
    const first = page[0];
    const last = page[page.length - 1];
    if (last && (reverse ? start > 0 || marker !== undefined : more))
      links.push({ rel: 'next', href: link(String(last.id), false) });
    if (first && (reverse ? more : marker !== undefined))
      links.push({ rel: 'previous', href: link(String(first.id), true) });
    body[`${collection}_links`] = links;
  }
  return body;
}

export function trimFields(items: Obj[], fields: string[] | undefined): Obj[] {
  if (!fields || fields.length === 0) return items;
  const want = fields.flatMap((f) => f.split(','));
  return items.map((it) => Object.fromEntries(want.filter((f) => f in it).map((f) => [f, it[f]])));
}
