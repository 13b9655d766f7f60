/**
 * @module OpenStack API microversions, one parser for every service that has them (Nova, Cinder).
 * A version is a `{major, minor}` pair compared field by field: "3.60" is minor 60, above "3.6" (minor
 * 6) and below "3.100"; a float cannot say that. The request names a version in
 * `OpenStack-API-Version: <service> X.Y` (and, for Nova, the older `X-OpenStack-Nova-API-Version: X.Y`);
 * 'latest' is the maximum, no header the minimum, anything outside [min, max] a 406. The answer echoes
 * the version it was served at.
 * https://specs.openstack.org/openstack/api-wg/guidelines/microversion_specification.html
 */
import type { FastifyReply, FastifyRequest } from 'fastify';
import { CloudError } from '../../core/errors.ts';

export interface Microversion {
  readonly major: number;
  readonly minor: number;
}

/** "X.Y" as a version; undefined when it is not two dot-separated integers. */
export function parseMicroversion(text: string): Microversion | undefined {
  const m = /^(\d+)\.(\d+)$/.exec(text.trim());
  return m ? { major: Number(m[1]), minor: Number(m[2]) } : undefined;
}

/** A version written in the code ('2.47'); a malformed one is a programming error. */
export function microversion(text: string): Microversion {
  const v = parseMicroversion(text);
  if (!v) throw new Error(`bad microversion literal ${JSON.stringify(text)}`);
  return v;
}

/** Negative, zero or positive as `a` is below, equal to or above `b`. */
export function compareMicroversions(a: Microversion, b: Microversion): number {
  return a.major - b.major || a.minor - b.minor;
}

export function formatMicroversion(v: Microversion): string {
  return `${v.major}.${v.minor}`;
}

/** True when `v` is at least `min` (e.g. atLeast(mv, '3.48')). */
export function atLeast(v: Microversion, min: Microversion | string): boolean {
  return compareMicroversions(v, typeof min === 'string' ? microversion(min) : min) >= 0;
}

/** One service's microversion range and how it reads the request. */
export interface MicroversionRangeOptions {
  /** The service token in OpenStack-API-Version ('compute', 'volume'). */
  service: string;
  min: string;
  max: string;
  /** A service-specific header that also carries the bare version ('X-OpenStack-Nova-API-Version'). */
  legacyHeader?: string;
  /**
   * A version that is not "X.Y" or 'latest': 'reject' answers 400 (Nova); 'ignore' serves the minimum,
   * as Atoll's Block Storage API always has.
   */
  invalid: 'reject' | 'ignore';
}

export class MicroversionRange {
  readonly service: string;
  readonly min: Microversion;
  readonly max: Microversion;
  readonly minText: string;
  readonly maxText: string;
  /** The legacy header as written (for Vary) and as Node names it (lower case). */
  private readonly legacyHeader: string | undefined;
  private readonly legacyKey: string | undefined;
  private readonly invalid: 'reject' | 'ignore';

  constructor(opts: MicroversionRangeOptions) {
    this.service = opts.service.toLowerCase();
    this.min = microversion(opts.min);
    this.max = microversion(opts.max);
    this.minText = opts.min;
    this.maxText = opts.max;
    this.legacyHeader = opts.legacyHeader;
    this.legacyKey = opts.legacyHeader?.toLowerCase();
    this.invalid = opts.invalid;
  }

  /** The version text the request asks this service for, if any (the standard header first). */
  requested(headers: FastifyRequest['headers']): string | undefined {
    let raw: string | undefined;
    const std = first(headers['openstack-api-version']);
    if (std !== undefined) {
      for (const part of std.split(',')) {
        const [svc, ver] = part.trim().split(/\s+/);
        if (svc?.toLowerCase() === this.service && ver) raw = ver;
      }
    }
    if (raw === undefined && this.legacyKey) raw = first(headers[this.legacyKey]);
    return raw;
  }

  /** The version a request is served at: 400 on a malformed one (when rejected), 406 outside the range. */
  resolve(headers: FastifyRequest['headers']): Microversion {
    const raw = this.requested(headers);
    if (raw === undefined) return this.min;
    if (raw.toLowerCase() === 'latest') return this.max;
    const v = parseMicroversion(raw);
    if (!v) {
      if (this.invalid === 'ignore') return this.min;
      throw new CloudError(
        400,
        `API Version String ${raw} is of invalid format. Must be of format MajorNum.MinorNum.`,
      );
    }
    if (compareMicroversions(v, this.min) < 0 || compareMicroversions(v, this.max) > 0)
      throw new CloudError(
        406,
        `Version ${raw} is not supported by the API. Minimum is ${this.minText} and maximum is ${this.maxText}.`,
      );
    return v;
  }

  /** Resolves the request's version and names it in the answer's headers. */
  negotiate(req: FastifyRequest, reply: FastifyReply): Microversion {
    const v = this.resolve(req.headers);
    const s = formatMicroversion(v);
    reply.header('openstack-api-version', `${this.service} ${s}`);
    if (this.legacyKey) reply.header(this.legacyKey, s);
    reply.header(
      'vary',
      this.legacyHeader ? `OpenStack-API-Version, ${this.legacyHeader}` : 'OpenStack-API-Version',
    );
    return v;
  }
}

function first(h: string | string[] | undefined): string | undefined {
  return Array.isArray(h) ? h[0] : h;
}
