/**
 * @module List paging and sort parameters, one way for every API: `limit`/`marker` (and Cinder's
 * `offset`) over a list already in its final order, the marker of the next page when there is one,
 * and the terms of `sort=key:dir,...` or `sort_key`/`sort_dir`. Each service keeps its own fault
 * texts, defaults and rule for when a next link is due, as the OpenStack API it follows has them.
 * https://specs.openstack.org/openstack/api-wg/guidelines/pagination_filter_sort.html
 */
import type { CloudError } from '../../core/errors.ts';
import { BadRequest, NotFound } from '../../core/errors.ts';

export type SortDir = 'asc' | 'desc';

export interface PageOptions {
  /** The page size when `limit` is absent (default: maxLimit). */
  defaultLimit?: number;
  /** The largest page (default 1000, osapi_max_limit and Glance's api_limit_max). */
  maxLimit?: number;
  /** Reads `offset` as the first index (Cinder); a marker overrides it. */
  offset?: boolean;
  /** The fault for a marker that names no item (default: 404, Nova's and Cinder's). */
  unknownMarker?: (marker: string) => CloudError;
  /** The fault for a `limit` or `offset` that is not a non-negative integer. */
  badNumber?: (field: 'limit' | 'offset', value: string) => CloudError;
  /**
   * When a next page is due: 'when-more' when items remain after this page (Glance); 'after-full-page'
   * after every full page the caller asked a limit for, and otherwise when items remain (Cinder).
   */
  next?: 'when-more' | 'after-full-page';
}

export interface Page<T> {
  items: T[];
  /** The index of the first item of the page in the whole list. */
  start: number;
  /** The page size in force. */
  limit: number;
  /** The id of the page's last item when a next page is due: the next request's marker. */
  nextMarker: string | undefined;
}

const DEFAULT_MAX = 1000;

/** One page of `items` (sorted already); `idOf` names an item for the marker. */
export function paginate<T>(
  items: readonly T[],
  q: Readonly<Record<string, string>>,
  idOf: (item: T) => string,
  opts: PageOptions = {},
): Page<T> {
  const maxLimit = opts.maxLimit ?? DEFAULT_MAX;
  const number = (field: 'limit' | 'offset', v: string) => {
    if (!/^\d+$/.test(v))
      throw opts.badNumber?.(field, v) ?? new BadRequest(`${field} must be a non-negative integer.`);
    return Number(v);
  };
  let start = opts.offset && q.offset !== undefined ? number('offset', q.offset) : 0;
  if (q.marker !== undefined) {
    const marker = q.marker;
    const i = items.findIndex((x) => idOf(x) === marker);
    if (i < 0) throw opts.unknownMarker?.(marker) ?? new NotFound(`Marker ${marker} could not be found.`);
    start = i + 1;
  }
  const asked = q.limit !== undefined ? number('limit', q.limit) : undefined;
  const limit = Math.min(asked ?? opts.defaultLimit ?? maxLimit, maxLimit);
  const page = items.slice(start, start + limit);
  const more = start + limit < items.length;
  const due =
    page.length > 0 &&
    ((opts.next ?? 'when-more') === 'when-more'
      ? more
      : page.length === limit && (asked !== undefined || more));
  return { items: page, start, limit, nextMarker: due ? idOf(page[page.length - 1]!) : undefined };
}

/** Marker/limit paging over a list already sorted in its final order (Nova's faults): just the page. */
export function page<T extends { id: string }>(items: T[], q: Record<string, string>, maxLimit = 1000): T[] {
  return paginate(items, q, (x) => x.id, { maxLimit }).items;
}

/**
 * The sort terms a request names, in order: `sort=k1:d1,k2` or `sort_key=k1,k2&sort_dir=d1,d2` (a
 * missing direction is the first one given, else desc). Undefined when it names none, unless
 * `defaultKey` is given: then that key, in `sort_dir`'s direction. Keys and directions are as written
 * (trimmed); the service checks and maps them.
 */
export function sortTerms(
  q: Readonly<Record<string, string>>,
  defaultKey?: string,
): [key: string, dir: string][] | undefined {
  if (q.sort)
    return q.sort.split(',').map((part) => {
      const [k, d] = part.split(':');
      return [k!.trim(), (d ?? 'desc').trim()];
    });
  const keys = q.sort_key ?? defaultKey;
  if (keys === undefined) return undefined;
  const dirs = (q.sort_dir ?? 'desc').split(',');
  return keys.split(',').map((k, i) => [k, dirs[i] ?? dirs[0] ?? 'desc']);
}
