/**
 * @module Metadata routes, the same for volumes and snapshots (Cinder's volume_metadata and
 * snapshot_metadata controllers): `GET|POST|PUT /{things}/{id}/metadata` (show, merge, replace) and
 * `GET|PUT|DELETE /{things}/{id}/metadata/{key}` (one item). Writes go to the row's owner site.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { AuthContext } from '../../../core/auth.ts';
import { BadRequest, NotFound } from '../../../core/errors.ts';
import type { ServiceContext } from '../../common/module.ts';
import { isObj } from '../../common/input.ts';
import type { Obj } from '../../common/input.ts';
import { forwardIfRemote } from '../../common/owner.ts';
import type { VolRow } from '../domain/volumes.ts';
import { stringValues } from '../domain/volumes.ts';

export interface MetadataOwner {
  /** e.g. /volume/v3/:project/volumes */
  base: string;
  /** What the 404 calls the thing: "Volume", "Snapshot". */
  what: string;
  enter(req: FastifyRequest, reply: FastifyReply, write?: boolean): { auth: AuthContext };
  find(auth: AuthContext, id: string): VolRow;
  metadataOf(r: VolRow): Obj;
  setMetadata(r: VolRow, md: Record<string, string>): void;
}

/** Cinder's limit on a metadata key or value (255 characters), and no empty key. */
function checked(md: Obj): Record<string, string> {
  for (const [k, v] of Object.entries(md)) {
    if (!k || k.length > 255)
      throw new BadRequest('Invalid input received: metadata keys are 1 to 255 characters.');
    if (String(v).length > 255)
      throw new BadRequest('Invalid input received: metadata values are at most 255 characters.');
  }
  return stringValues(md);
}

function bodyMap(body: unknown, key: 'metadata' | 'meta'): Obj {
  if (!isObj(body) || !isObj(body[key]))
    throw new BadRequest(`Malformed request body: "${key}" is required.`);
  return body[key];
}

export function registerMetadataRoutes(app: FastifyInstance, ctx: ServiceContext, o: MetadataOwner): void {
  type P = { id: string; key?: string };
  /** The row the caller may read (a write: may change). */
  const row = (req: FastifyRequest, reply: FastifyReply, write: boolean) => {
    const { auth } = o.enter(req, reply, write);
    return { r: o.find(auth, (req.params as P).id) };
  };
  const write = async (req: FastifyRequest, reply: FastifyReply, next: (r: VolRow, md: Obj) => Obj) => {
    const { r } = row(req, reply, true);
    const fwd = forwardIfRemote(ctx, r.owner, req, reply);
    if (fwd) return fwd;
    const md = next(r, o.metadataOf(r));
    o.setMetadata(r, checked(md));
    return undefined;
  };

  app.get(`${o.base}/:id/metadata`, async (req, reply) => ({
    metadata: o.metadataOf(row(req, reply, false).r),
  }));
  app.post(`${o.base}/:id/metadata`, async (req, reply) => {
    let out: Obj = {};
    const fwd = await write(req, reply, (_r, cur) => (out = { ...cur, ...bodyMap(req.body, 'metadata') }));
    return fwd ?? { metadata: stringValues(out) };
  });
  app.put(`${o.base}/:id/metadata`, async (req, reply) => {
    let out: Obj = {};
    const fwd = await write(req, reply, () => (out = bodyMap(req.body, 'metadata')));
    return fwd ?? { metadata: stringValues(out) };
  });
  app.get(`${o.base}/:id/metadata/:key`, async (req, reply) => {
    const { key } = req.params as P;
    const md = o.metadataOf(row(req, reply, false).r);
    if (!Object.hasOwn(md, key!)) throw new NotFound(`Metadata item ${key} was not found.`);
    return { meta: { [key!]: md[key!] } };
  });
  app.put(`${o.base}/:id/metadata/:key`, async (req, reply) => {
    const { key } = req.params as P;
    const meta = bodyMap(req.body, 'meta');
    if (Object.keys(meta).length !== 1 || !Object.hasOwn(meta, key!))
      throw new BadRequest('Request body and URI mismatch: "meta" must hold exactly the key of the URL.');
    const fwd = await write(req, reply, (_r, cur) => ({ ...cur, ...meta }));
    return fwd ?? { meta: stringValues(meta) };
  });
  app.delete(`${o.base}/:id/metadata/:key`, async (req, reply) => {
    const { key } = req.params as P;
    const fwd = await write(req, reply, (r, cur) => {
      if (!Object.hasOwn(cur, key!)) throw new NotFound(`${o.what} ${r.id} has no metadata with key ${key}.`);
      const next = { ...cur };
      delete next[key!];
      return next;
    });
    return fwd ?? reply.code(200).send();
  });
}
