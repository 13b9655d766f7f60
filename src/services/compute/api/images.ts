/**
 * @module Nova's image proxy (`/images`, deprecated and gone from 2.36): lists, shows, deletes and
 * edits the metadata of Image service images for clients of the v2 API, through the Image service's
 * own API with the caller's token (proxy.ts).
 * https://docs.openstack.org/api-ref/compute/#images-deprecated
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { CloudError, NotFound } from '../../../core/errors.ts';
import { novaTime, query, wrapped } from '../../common/input.ts';
import type { Obj } from '../../common/input.ts';
import type { ComputeService } from '../service.ts';
import { atLeast } from './microversion.ts';
import { serviceCaller } from './proxy.ts';
import { link } from './views.ts';
import { GLANCE_CORE_ATTRIBUTES } from '../../image/api/attributes.ts';

const P = '/compute/v2.1';
/** Glance's own attributes (and `stores`, which Nova also leaves out of image metadata). */
const GLANCE_CORE = new Set([...GLANCE_CORE_ATTRIBUTES, 'stores']);
const STATUS: Record<string, string> = {
  active: 'ACTIVE',
  queued: 'SAVING',
  saving: 'SAVING',
  importing: 'SAVING',
  uploading: 'SAVING',
  deleted: 'DELETED',
  pending_delete: 'DELETED',
  killed: 'ERROR',
};

export function registerImageProxyRoutes(app: FastifyInstance, svc: ComputeService): void {
  const base = () => svc.ctx.publicUrl();
  const call = serviceCaller(app);
  const glance = async (
    req: FastifyRequest,
    method: 'GET' | 'PATCH' | 'DELETE',
    url: string,
    body?: unknown,
  ) => {
    if (atLeast(req, '2.36')) throw new NotFound('The resource could not be found.');
    svc.ctx.authenticate(req);
    return call(req, method, url, body, 'application/openstack-images-v2.1-json-patch');
  };
  const image = (req: FastifyRequest, id: string) =>
    glance(req, 'GET', `/image/v2/images/${encodeURIComponent(id)}`);
  const view = (img: Obj): Obj => {
    const status = STATUS[String(img.status)] ?? 'UNKNOWN';
    const metadata = propertiesOf(img);
    const v: Obj = {
      id: img.id,
      name: img.name ?? null,
      status,
      progress: status === 'ACTIVE' ? 100 : status === 'SAVING' ? 25 : 0,
      minDisk: img.min_disk ?? 0,
      minRam: img.min_ram ?? 0,
      metadata,
      created: novaTime(Date.parse(String(img.created_at))),
      updated: novaTime(Date.parse(String(img.updated_at))),
      links: imageLinks(base(), String(img.id)),
      'OS-EXT-IMG-SIZE:size': img.size ?? null,
    };
    if (typeof metadata.instance_uuid === 'string')
      v.server = { id: metadata.instance_uuid, links: link(base(), 'servers', metadata.instance_uuid) };
    return v;
  };
  /** Nova's property filters, applied here: `server` (its id or URL) and `type` (`snapshot`...). */
  const propertyFilter = (qs: Record<string, string>) => {
    const server = qs.server?.replace(/^.*\/servers\//, '');
    return (img: Obj) =>
      (server === undefined || img.instance_uuid === server) &&
      (qs.type === undefined || img.image_type === qs.type);
  };
  const list = async (req: FastifyRequest, detail: boolean) => {
    const qs = query(req.query);
    const byProperty = qs.server !== undefined || qs.type !== undefined;
    const q = new URLSearchParams();
    for (const [k, v] of Object.entries(qs))
      // With a property filter the limit applies after it, so the Image service is asked for all.
      if (['marker', 'name', 'status'].includes(k) || (k === 'limit' && !byProperty))
        q.set(k, k === 'status' ? v.toLowerCase() : v);
    const body = await glance(req, 'GET', `/image/v2/images?${q.toString()}`);
    let rows = (body.images as Obj[]).filter(propertyFilter(qs));
    if (byProperty && qs.limit !== undefined && /^\d+$/.test(qs.limit))
      rows = rows.slice(0, Number(qs.limit));
    const images = rows.map((img) =>
      detail ? view(img) : { id: img.id, name: img.name ?? null, links: imageLinks(base(), String(img.id)) },
    );
    return { images };
  };
  app.get(`${P}/images`, async (req) => list(req, false));
  app.get(`${P}/images/detail`, async (req) => list(req, true));
  app.get<{ Params: { id: string } }>(`${P}/images/:id`, async (req) => ({
    image: view(await image(req, req.params.id)),
  }));
  app.delete<{ Params: { id: string } }>(`${P}/images/:id`, async (req, reply) => {
    await glance(req, 'DELETE', `/image/v2/images/${encodeURIComponent(req.params.id)}`);
    return reply.code(204).send();
  });

  // ---- metadata: the image's properties, edited with JSON patches --------------------------------
  const patch = async (req: FastifyRequest, id: string, ops: Obj[]) =>
    propertiesOf(await glance(req, 'PATCH', `/image/v2/images/${encodeURIComponent(id)}`, ops));
  /** Patch operations that make the image's properties `next` (replace: also remove the others). */
  const opsFor = (cur: Obj, next: Obj, replace: boolean): Obj[] => [
    ...(replace ? Object.keys(cur).filter((k) => !(k in next)) : []).map((k) => ({
      op: 'remove',
      path: `/${k}`,
    })),
    ...Object.entries(next).map(([k, value]) => ({ op: k in cur ? 'replace' : 'add', path: `/${k}`, value })),
  ];
  const metadataBody = (req: FastifyRequest, key: 'metadata' | 'meta'): Obj => {
    const md = wrapped(req.body, key);
    for (const v of Object.values(md))
      if (typeof v !== 'string') throw new CloudError(400, `Invalid input for field/attribute ${key}.`);
    return md;
  };
  type R = FastifyRequest<{ Params: { id: string; key: string } }>;
  app.get(`${P}/images/:id/metadata`, async (req: R) => ({
    metadata: propertiesOf(await image(req, req.params.id)),
  }));
  app.post(`${P}/images/:id/metadata`, async (req: R) => {
    const md = metadataBody(req, 'metadata');
    const cur = propertiesOf(await image(req, req.params.id));
    return { metadata: await patch(req, req.params.id, opsFor(cur, md, false)) };
  });
  app.put(`${P}/images/:id/metadata`, async (req: R) => {
    const md = metadataBody(req, 'metadata');
    const cur = propertiesOf(await image(req, req.params.id));
    await patch(req, req.params.id, opsFor(cur, md, true));
    return { metadata: md };
  });
  app.get(`${P}/images/:id/metadata/:key`, async (req: R) => {
    const md = propertiesOf(await image(req, req.params.id));
    if (!(req.params.key in md)) throw new NotFound('Image metadata item was not found');
    return { meta: { [req.params.key]: md[req.params.key] } };
  });
  app.put(`${P}/images/:id/metadata/:key`, async (req: R) => {
    const meta = metadataBody(req, 'meta');
    if (Object.keys(meta).length !== 1 || !(req.params.key in meta))
      throw new CloudError(400, 'Request body and URI mismatch');
    const cur = propertiesOf(await image(req, req.params.id));
    await patch(req, req.params.id, opsFor(cur, meta, false));
    return { meta };
  });
  app.delete(`${P}/images/:id/metadata/:key`, async (req: R, reply) => {
    const cur = propertiesOf(await image(req, req.params.id));
    if (!(req.params.key in cur)) throw new NotFound('Image metadata item was not found');
    await patch(req, req.params.id, [{ op: 'remove', path: `/${req.params.key}` }]);
    return reply.code(204).send();
  });
}

/** An image's free-form properties (Nova's image metadata). */
function propertiesOf(img: Obj): Obj {
  return Object.fromEntries(Object.entries(img).filter(([k]) => !GLANCE_CORE.has(k)));
}

/** Nova's image links: self and bookmark, and the alternate link to the Image service. */
function imageLinks(base: string, id: string): Obj[] {
  return [
    ...link(base, 'images', id),
    { rel: 'alternate', type: 'application/vnd.openstack.image', href: `${base}/image/images/${id}` },
  ];
}
