/**
 * @module Compute API microversions (nova/api/openstack/api_version_request.py): the request names a
 * version in `OpenStack-API-Version: compute X.Y` or `X-OpenStack-Nova-API-Version: X.Y` ('latest' is
 * the maximum); no header means 2.1; anything outside [MIN, MAX] is a 406. The answer echoes the version.
 */
import type { FastifyReply, FastifyRequest } from 'fastify';
import { CloudError } from '../../../core/errors.ts';

export const MIN_VERSION = '2.1';
export const MAX_VERSION = '2.79';

export interface Microversion {
  major: number;
  minor: number;
}

const parse = (v: string): Microversion | undefined => {
  const m = /^(\d+)\.(\d+)$/.exec(v.trim());
  return m ? { major: Number(m[1]), minor: Number(m[2]) } : undefined;
};
const MIN = parse(MIN_VERSION)!;
const MAX = parse(MAX_VERSION)!;
const cmp = (a: Microversion, b: Microversion) => a.major - b.major || a.minor - b.minor;

const versions = new WeakMap<FastifyRequest, Microversion>();

export function negotiate(req: FastifyRequest, reply: FastifyReply): void {
  let raw: string | undefined;
  const std = req.headers['openstack-api-version'];
  if (typeof std === 'string') {
    for (const part of std.split(',')) {
      const [svc, ver] = part.trim().split(/\s+/);
      if (svc?.toLowerCase() === 'compute' && ver) raw = ver;
    }
  }
  const legacy = req.headers['x-openstack-nova-api-version'];
  if (raw === undefined && typeof legacy === 'string') raw = legacy;
  let v = MIN;
  if (raw !== undefined) {
    if (raw.toLowerCase() === 'latest') v = MAX;
    else {
      const p = parse(raw);
      if (!p)
        throw new CloudError(
          400,
          `API Version String ${raw} is of invalid format. Must be of format MajorNum.MinorNum.`,
        );
      if (cmp(p, MIN) < 0 || cmp(p, MAX) > 0)
        throw new CloudError(
          406,
          `Version ${raw} is not supported by the API. Minimum is ${MIN_VERSION} and maximum is ${MAX_VERSION}.`,
        );
      v = p;
    }
  }
  versions.set(req, v);
  const s = `${v.major}.${v.minor}`;
  reply.header('openstack-api-version', `compute ${s}`);
  reply.header('x-openstack-nova-api-version', s);
  reply.header('vary', 'OpenStack-API-Version, X-OpenStack-Nova-API-Version');
}

/** True when the request's microversion is at least `v` (e.g. '2.47'). */
export function atLeast(req: FastifyRequest, v: string): boolean {
  const cur = versions.get(req) ?? MIN;
  return cmp(cur, parse(v)!) >= 0;
}
