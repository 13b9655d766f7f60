/**
 * @module Compute API microversions (nova/api/openstack/api_version_request.py): the request names a
 * version in `OpenStack-API-Version: compute X.Y` or `X-OpenStack-Nova-API-Version: X.Y` ('latest' is
 * the maximum); no header means 2.1; a malformed one is a 400, anything outside [MIN, MAX] a 406. The
 * answer echoes the version. The parsing and comparing is services/common/microversion.ts.
 */
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { Microversion } from '../../common/microversion.ts';
import { MicroversionRange, atLeast as versionAtLeast } from '../../common/microversion.ts';

export const MIN_VERSION = '2.1';
export const MAX_VERSION = '2.79';

const RANGE = new MicroversionRange({
  service: 'compute',
  min: MIN_VERSION,
  max: MAX_VERSION,
  legacyHeader: 'X-OpenStack-Nova-API-Version',
  invalid: 'reject',
});

const versions = new WeakMap<FastifyRequest, Microversion>();

export function negotiate(req: FastifyRequest, reply: FastifyReply): void {
  versions.set(req, RANGE.negotiate(req, reply));
}

/** True when the request's microversion is at least `v` (e.g. '2.47'). */
export function atLeast(req: FastifyRequest, v: string): boolean {
  return versionAtLeast(versions.get(req) ?? RANGE.min, v);
}
