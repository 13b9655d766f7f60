/**
 * @module Request-body helpers shared by every API: pick a wrapped object, read typed fields, and turn
 * any mismatch into a 400 fault naming the field. Also time formats.
 */
import { BadRequest } from '../../core/errors.ts';

export type Obj = Record<string, unknown>;

/** body[key] as an object, e.g. body.user for POST /users; 400 when missing or not an object. */
export function wrapped(body: unknown, key: string): Obj {
  if (!isObj(body)) throw new BadRequest(`The request body must be a JSON object with "${key}".`);
  const v = body[key];
  if (!isObj(v)) throw new BadRequest(`"${key}" is required and must be an object.`);
  return v;
}

export function isObj(v: unknown): v is Obj {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

interface StrOpts {
  max?: number;
  min?: number;
  pattern?: RegExp;
}

export function optStr(o: Obj, field: string, opts: StrOpts = {}): string | undefined {
  const v = o[field];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'string') throw new BadRequest(`"${field}" must be a string.`);
  if (v.length > (opts.max ?? 255))
    throw new BadRequest(`"${field}" is longer than ${opts.max ?? 255} characters.`);
  if (opts.min !== undefined && v.length < opts.min)
    throw new BadRequest(`"${field}" must be at least ${opts.min} characters.`);
  if (opts.pattern && !opts.pattern.test(v)) throw new BadRequest(`"${field}" has an invalid format.`);
  return v;
}

export function reqStr(o: Obj, field: string, opts: StrOpts = {}): string {
  const v = optStr(o, field, { min: 1, ...opts });
  if (v === undefined) throw new BadRequest(`"${field}" is required.`);
  return v;
}

export function optBool(o: Obj, field: string): boolean | undefined {
  const v = o[field];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'boolean') throw new BadRequest(`"${field}" must be a boolean.`);
  return v;
}

export function optInt(o: Obj, field: string, min = 0, max = Number.MAX_SAFE_INTEGER): number | undefined {
  let v = o[field];
  if (v === undefined || v === null) return undefined;
  if (typeof v === 'string' && /^-?\d+$/.test(v)) v = Number(v);
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max)
    throw new BadRequest(`"${field}" must be an integer from ${min} to ${max}.`);
  return v;
}

export function reqInt(o: Obj, field: string, min = 0, max = Number.MAX_SAFE_INTEGER): number {
  const v = optInt(o, field, min, max);
  if (v === undefined) throw new BadRequest(`"${field}" is required.`);
  return v;
}

export function optStrList(o: Obj, field: string, maxItems = 1000): string[] | undefined {
  const v = o[field];
  if (v === undefined || v === null) return undefined;
  if (!Array.isArray(v) || v.length > maxItems || !v.every((x) => typeof x === 'string' && x.length <= 255))
    throw new BadRequest(`"${field}" must be a list of strings.`);
  return v as string[];
}

/** Only the listed keys may appear (Keystone and Nova reject unknown fields in several bodies). */
export function onlyKeys(o: Obj, allowed: readonly string[], what: string): void {
  for (const k of Object.keys(o))
    if (!allowed.includes(k)) throw new BadRequest(`Additional property ${k} is not allowed in ${what}.`);
}

/** Keystone's time format: 2026-11-24T12:00:00.000000Z */
export function keystoneTime(ms: number): string {
  return new Date(ms).toISOString().replace(/\.(\d{3})Z$/, '.$1000Z');
}

/** Nova's and Cinder's time format: 2026-11-24T12:00:00Z */
export function novaTime(ms: number): string {
  return new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');
}

export function query(q: unknown): Record<string, string> {
  const out: Record<string, string> = {};
  if (!isObj(q)) return out;
  for (const [k, v] of Object.entries(q)) {
    if (typeof v === 'string') out[k] = v;
    else if (Array.isArray(v) && typeof v[0] === 'string') out[k] = v[v.length - 1] as string;
  }
  return out;
}

/** Paging moved to paging.ts; re-exported for the routes that import it from here. */
export { page } from './paging.ts';
