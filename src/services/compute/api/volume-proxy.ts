/**
 * @module Nova's volume proxies (deprecated, gone from 2.36): `os-volumes` and `os-snapshots`, Block
 * Storage volumes and snapshots in Nova's camelCase shape, through the Block Storage service's own API
 * with the caller's token (proxy.ts), so its rules (quotas, states, forwarding) apply unchanged.
 * https://docs.openstack.org/api-ref/compute/#volume-extension-os-volumes-os-snapshots-deprecated
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { BadRequest, CloudError, Forbidden, NotFound } from '../../../core/errors.ts';
import { isObj, query, wrapped } from '../../common/input.ts';
import type { Obj } from '../../common/input.ts';
import type { ComputeService } from '../service.ts';
import { atLeast } from './microversion.ts';
import { serviceCaller } from './proxy.ts';

const P = '/compute/v2.1';

/** Nova's volume: attachments by server, or `[{}]` when there is none (as Nova answers). */
export function novaVolumeView(v: Obj): Obj {
  const atts = ((v.attachments as Obj[] | undefined) ?? []).map((a) => ({
    id: v.id,
    volumeId: v.id,
    serverId: a.server_id,
    device: a.device,
  }));
  return {
    id: v.id,
    status: v.status,
    size: v.size,
    availabilityZone: v.availability_zone,
    createdAt: v.created_at,
    displayName: (v.name as string | null) ?? null,
    displayDescription: (v.description as string | null) ?? null,
    volumeType: (v.volume_type as string | null) ?? null,
    snapshotId: (v.snapshot_id as string | null) ?? null,
    metadata: isObj(v.metadata) ? v.metadata : {},
    attachments: atts.length ? atts : [{}],
  };
}

function snapshotView(s: Obj): Obj {
  return {
    id: s.id,
    volumeId: s.volume_id,
    status: s.status,
    size: s.size,
    createdAt: s.created_at,
    displayName: (s.name as string | null) ?? null,
    displayDescription: (s.description as string | null) ?? null,
  };
}

/** Nova's `size`: an integer, or a string of digits, of at least 1. */
function sizeOf(v: unknown): number {
  const n = typeof v === 'string' && /^[0-9]+$/.test(v) ? Number(v) : v;
  if (typeof n !== 'number' || !Number.isInteger(n) || n < 1)
    throw new BadRequest(`Invalid input for field/attribute size. Value: ${String(v)}.`);
  return n;
}

const optText = (b: Obj, field: string): string | undefined => {
  const v = b[field];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'string' || v.length > 255)
    throw new BadRequest(`Invalid input for field/attribute ${field}.`);
  return v;
};

/** Nova's `limit` / `offset` on these lists (common.limited). */
function limited<T>(items: T[], q: Record<string, string>): T[] {
  const num = (k: string) => {
    const v = q[k];
    if (v === undefined) return undefined;
    if (!/^[0-9]+$/.test(v)) throw new BadRequest(`${k} param must be an integer`);
    return Number(v);
  };
  const offset = num('offset') ?? 0;
  const limit = num('limit');
  return items.slice(offset, limit === undefined ? undefined : offset + limit);
}

export function registerVolumeProxyRoutes(app: FastifyInstance, svc: ComputeService): void {
  const call = serviceCaller(app);
  /** The Block Storage path of the caller's project; the proxies are gone from 2.36. */
  const base = (req: FastifyRequest) => {
    if (atLeast(req, '2.36')) throw new NotFound('The resource could not be found.');
    const a = svc.ctx.authenticate(req);
    if (!a.projectId) throw new Forbidden('This action requires a project-scoped token.');
    return `/volume/v3/${a.projectId}`;
  };
  const notFound = (what: string, id: string) => (e: unknown) => {
    if (e instanceof CloudError && e.status === 404) throw new NotFound(`${what} ${id} could not be found.`);
    throw e;
  };

  type R = FastifyRequest<{ Params: { id: string } }>;
  for (const detail of [false, true]) {
    app.get(`${P}/os-volumes${detail ? '/detail' : ''}`, async (req) => {
      // "os-volumes/" is a show with an empty id (the router folds the slash away): Nova answers 404.
      if (req.url.split('?')[0]!.endsWith('/')) throw new NotFound('Volume  could not be found.');
      const list = (await call(req, 'GET', `${base(req)}/volumes/detail`)).volumes as Obj[];
      return { volumes: limited(list, query(req.query)).map(novaVolumeView) };
    });
    app.get(`${P}/os-snapshots${detail ? '/detail' : ''}`, async (req) => {
      if (req.url.split('?')[0]!.endsWith('/')) throw new NotFound('Snapshot  could not be found.');
      const list = (await call(req, 'GET', `${base(req)}/snapshots/detail`)).snapshots as Obj[];
      return { snapshots: limited(list, query(req.query)).map(snapshotView) };
    });
  }
  app.get(`${P}/os-volumes/:id`, async (req: R) => {
    const id = req.params.id;
    const v = await call(req, 'GET', `${base(req)}/volumes/${encodeURIComponent(id)}`).catch(
      notFound('Volume', id),
    );
    return { volume: novaVolumeView(v.volume as Obj) };
  });
  app.post(`${P}/os-volumes`, async (req) => {
    const path = base(req);
    const b = wrapped(req.body, 'volume');
    const body: Obj = { size: sizeOf(b.size) };
    const name = optText(b, 'display_name');
    const description = optText(b, 'display_description');
    const az = optText(b, 'availability_zone');
    const type = optText(b, 'volume_type');
    const snapshot = optText(b, 'snapshot_id');
    if (name !== undefined) body.name = name;
    if (description !== undefined) body.description = description;
    if (az !== undefined) body.availability_zone = az;
    if (type !== undefined) body.volume_type = type;
    if (snapshot !== undefined) body.snapshot_id = snapshot;
    if (b.metadata !== undefined) {
      if (!isObj(b.metadata)) throw new BadRequest('Invalid input for field/attribute metadata.');
      body.metadata = b.metadata;
    }
    const v = await call(req, 'POST', `${path}/volumes`, { volume: body });
    return { volume: novaVolumeView(v.volume as Obj) };
  });
  app.delete(`${P}/os-volumes/:id`, async (req: R, reply) => {
    const id = req.params.id;
    await call(req, 'DELETE', `${base(req)}/volumes/${encodeURIComponent(id)}`).catch(notFound('Volume', id));
    return reply.code(202).send();
  });

  app.get(`${P}/os-snapshots/:id`, async (req: R) => {
    const id = req.params.id;
    const s = await call(req, 'GET', `${base(req)}/snapshots/${encodeURIComponent(id)}`).catch(
      notFound('Snapshot', id),
    );
    return { snapshot: snapshotView(s.snapshot as Obj) };
  });
  app.post(`${P}/os-snapshots`, async (req) => {
    const path = base(req);
    const b = wrapped(req.body, 'snapshot');
    if (typeof b.volume_id !== 'string' || !b.volume_id)
      throw new BadRequest("Invalid input for field/attribute snapshot. 'volume_id' is a required property");
    const force = b.force === true || (typeof b.force === 'string' && /^(true|1|yes|on|t|y)$/i.test(b.force));
    const body: Obj = { volume_id: b.volume_id, force };
    const name = optText(b, 'display_name');
    const description = optText(b, 'display_description');
    if (name !== undefined) body.name = name;
    if (description !== undefined) body.description = description;
    const s = await call(req, 'POST', `${path}/snapshots`, { snapshot: body });
    return { snapshot: snapshotView(s.snapshot as Obj) };
  });
  app.delete(`${P}/os-snapshots/:id`, async (req: R, reply) => {
    const id = req.params.id;
    await call(req, 'DELETE', `${base(req)}/snapshots/${encodeURIComponent(id)}`).catch(
      notFound('Snapshot', id),
    );
    return reply.code(202).send();
  });
}
