/**
 * @module Calls from Nova's proxy APIs (`/images`, `os-security-groups`...) to the Image and Network
 * services of this site, in process (`inject`), with the caller's token: Nova calls Glance and Neutron
 * over HTTP the same way, so every rule of those services (visibility, ownership, forwarding to the
 * owning site) applies unchanged. A fault of the service becomes the same fault here.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { CloudError } from '../../../core/errors.ts';
import { isObj } from '../../common/input.ts';
import type { Obj } from '../../common/input.ts';

export type ServiceCall = (
  req: FastifyRequest,
  method: 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE',
  url: string,
  body?: unknown,
  contentType?: string,
) => Promise<Obj>;

export function serviceCaller(app: FastifyInstance): ServiceCall {
  return async (req, method, url, body, contentType = 'application/json') => {
    const headers: Record<string, string> = { 'x-auth-token': String(req.headers['x-auth-token'] ?? '') };
    if (body !== undefined) headers['content-type'] = contentType;
    const r = await app.inject({
      method,
      url,
      headers,
      ...(body !== undefined ? { payload: JSON.stringify(body) } : {}),
    });
    if (r.statusCode >= 400) throw new CloudError(r.statusCode, faultMessage(r.body, r.statusCode));
    return r.body ? (JSON.parse(r.body) as Obj) : {};
  };
}

/** The message of an OpenStack fault body, whatever its wrapper key (Nova, Neutron, Glance). */
function faultMessage(body: string, status: number): string {
  try {
    const j = JSON.parse(body) as unknown;
    if (isObj(j)) {
      for (const v of Object.values(j)) if (isObj(v) && typeof v.message === 'string') return v.message;
      if (typeof j.message === 'string') return j.message;
      if (typeof j.NeutronError === 'string') return j.NeutronError;
    }
  } catch {
    // not JSON: fall through
  }
  return `The service answered ${status}.`;
}
