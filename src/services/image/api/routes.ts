/**
 * @module Image API v2 (Glance) routes under /image: version discovery, images, image data, tags and
 * members. https://docs.openstack.org/api-ref/image/v2/
 * The routes parse, authenticate, forward and render; the image lifecycle and its rules are
 * domain/images.ts. Writes on an image another site owns are forwarded to that site; uploads are only
 * taken by the owner (its bytes live there); a download elsewhere streams them from the owner in
 * chunks over the fabric (remote-bytes.ts). Downloads take a single HTTP Range.
 */
import type { Readable } from 'node:stream';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { requireMember, requireReader } from '../../../core/auth.ts';
import { BadRequest, CloudError, Conflict, Forbidden, NotFound } from '../../../core/errors.ts';
import type { ServiceContext } from '../../common/module.ts';
import { isObj, query } from '../../common/input.ts';
import type { Obj } from '../../common/input.ts';
import { forwardIfRemote, staleMarks } from '../../common/owner.ts';
import { paginate, sortTerms } from '../../common/paging.ts';
import type { Images } from '../domain/images.ts';
import { UploadFailed, UploadTooLarge } from '../domain/images.ts';
import type { BlobStore } from '../store/blobs.ts';
import { ownerBytes } from '../remote-bytes.ts';
import type { StreamSettings } from '../remote-bytes.ts';
import type { ImageCache } from '../cache.ts';
import type { ImageRow, MemberRow } from '../store/schema.ts';
import { registerSchemaRoutes } from './schemas.ts';

/**
 * A single `Range: bytes=a-b` (or `a-`, or `-n`) as [start, end); undefined for no header or one this
 * does not parse (the whole image is sent, as RFC 9110 allows). 416 when it lies past the end.
 */
export function byteRange(
  header: string | undefined,
  size: number,
): { start: number; end: number } | undefined {
  const m = header ? /^bytes=(\d*)-(\d*)$/.exec(header.trim()) : null;
  if (!m || (m[1] === '' && m[2] === '')) return undefined;
  let start: number;
  let end: number;
  if (m[1] === '') {
    start = Math.max(0, size - Number(m[2]));
    end = size;
  } else {
    start = Number(m[1]);
    end = m[2] === '' ? size : Math.min(size, Number(m[2]) + 1);
  }
  if (start >= size || end <= start)
    throw new CloudError(416, `Requested range ${header} is not satisfiable for an image of ${size} bytes.`);
  return { start, end };
}

const glanceTime = (ms: number) => new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');

export function imageView(img: ImageRow): Obj {
  const props = JSON.parse(img.properties) as Obj;
  return {
    ...props,
    id: img.id,
    name: img.name,
    status: img.status,
    visibility: img.visibility,
    protected: !!img.protected,
    os_hidden: !!img.os_hidden,
    owner: img.project_id,
    disk_format: img.disk_format,
    container_format: img.container_format,
    size: img.size,
    virtual_size: img.virtual_size,
    checksum: img.checksum,
    os_hash_algo: img.os_hash_algo,
    os_hash_value: img.os_hash_value,
    min_disk: img.min_disk,
    min_ram: img.min_ram,
    tags: JSON.parse(img.tags) as string[],
    // The store holding the data (one per site, named after it: /v2/info/stores), once it is in.
    ...(img.blob && (img.status === 'active' || img.status === 'deactivated') ? { stores: img.owner } : {}),
    created_at: glanceTime(img.created_at),
    updated_at: glanceTime(img.updated_at),
    self: `/v2/images/${img.id}`,
    file: `/v2/images/${img.id}/file`,
    schema: '/v2/schemas/image',
  };
}

function memberView(m: MemberRow): Obj {
  return {
    image_id: m.image_id,
    member_id: m.member_id,
    status: m.status,
    created_at: glanceTime(m.created_at),
    updated_at: glanceTime(m.updated_at),
    schema: '/v2/schemas/member',
  };
}

export function registerImageRoutes(
  app: FastifyInstance,
  site: ServiceContext,
  images: Images,
  blobs: BlobStore,
  streaming: StreamSettings,
  cache: ImageCache,
): void {
  /** The image a write names, found as the token sees it; undefined once forwarded to its owner. */
  const toWrite = async (req: FastifyRequest, reply: FastifyReply) => {
    const auth = site.authenticate(req);
    requireMember(auth);
    const img = images.find(auth, (req.params as { id: string }).id);
    // Writes go to the owner site: once the request is carried there, its reply is sent.
    return (await forwardIfRemote(site, img.owner, req, reply)) ? undefined : { auth, img };
  };

  const versions = () => [
    { id: 'v2.16', status: 'CURRENT', links: [{ rel: 'self', href: `${site.publicUrl()}/image/v2/` }] },
    ...['v2.15', 'v2.9', 'v2.7', 'v2.6', 'v2.5', 'v2.4', 'v2.3', 'v2.2', 'v2.1', 'v2.0'].map((id) => ({
      id,
      status: 'SUPPORTED',
      links: [{ rel: 'self', href: `${site.publicUrl()}/image/v2/` }],
    })),
  ];
  app.get('/image', async (_req, reply) => reply.code(300).send({ versions: versions() }));
  app.get('/image/versions', async () => ({ versions: versions() }));
  app.get('/image/v2', async (_req, reply) => reply.code(300).send({ versions: versions() }));

  registerSchemaRoutes(app);

  // ---- images -----------------------------------------------------------------------------------
  app.post('/image/v2/images', async (req, reply) => {
    const auth = site.authenticate(req);
    requireMember(auth);
    const body = (req.body ?? {}) as unknown;
    if (!isObj(body)) throw new BadRequest('The request body must be a JSON object.');
    const img = images.create(auth, body);
    reply.code(201).header('location', `${site.publicUrl()}/image/v2/images/${img.id}`);
    // As Glance: the import methods ride on the create reply (openstacksdk reads them before it
    // stages an `image create --import`).
    reply.header('openstack-image-import-methods', images.importMethods().join(','));
    return imageView(img);
  });

  app.get('/image/v2/images', async (req) => {
    const auth = site.authenticate(req);
    // The router ignores a trailing slash; `/images/` is a show of the empty id, as in Glance.
    if (req.url.split('?')[0]!.endsWith('/')) throw new NotFound('No image found with ID ');
    requireReader(auth);
    const q = query(req.query);
    const rawTags = (req.query as Obj).tag;
    const tags = Array.isArray(rawTags)
      ? (rawTags as string[])
      : typeof rawTags === 'string'
        ? [rawTags]
        : [];
    const rows = images.list(auth, { q, tags });

    const sorts = parseSort(q);
    const views = rows.map((img) => ({ ...imageView(img), ...staleMarks(site, img.owner) }));
    views.sort((a, b) => {
      for (const [key, dir] of sorts) {
        const c = cmp(a[key], b[key]);
        if (c !== 0) return dir === 'asc' ? c : -c;
      }
      return cmp(a.id, b.id);
    });
    const pg = paginate(views, q, (v) => String(v.id), {
      defaultLimit: 25,
      unknownMarker: (m) => new BadRequest(`marker ${m} could not be found.`),
      badNumber: () => new BadRequest('limit param must be an integer'),
    });
    const out: Obj = { images: pg.items, first: '/v2/images', schema: '/v2/schemas/images' };
    if (pg.nextMarker !== undefined) {
      const params = new URLSearchParams();
      for (const [k, v] of Object.entries(q)) if (k !== 'marker') params.set(k, v);
      for (const t of tags) params.append('tag', t);
      params.set('marker', pg.nextMarker);
      params.set('limit', String(pg.limit));
      out.next = `/v2/images?${params.toString()}`;
    }
    return out;
  });

  app.get<{ Params: { id: string } }>('/image/v2/images/:id', async (req) => {
    const auth = site.authenticate(req);
    const img = images.find(auth, req.params.id);
    return { ...imageView(img), ...staleMarks(site, img.owner) };
  });

  app.patch<{ Params: { id: string } }>('/image/v2/images/:id', async (req, reply) => {
    const w = await toWrite(req, reply);
    if (!w) return reply;
    return imageView(images.update(w.auth, w.img, req.body));
  });

  app.delete<{ Params: { id: string } }>('/image/v2/images/:id', async (req, reply) => {
    const w = await toWrite(req, reply);
    if (!w) return reply;
    await images.delete(w.auth, w.img);
    return reply.code(204).send();
  });

  // ---- image data ---------------------------------------------------------------------------------
  // Only this prefix takes raw octet streams: the parser hands over the request stream untouched.
  app.register(async (scoped) => {
    scoped.addContentTypeParser('application/octet-stream', (_req, payload, done) => done(null, payload));
    const receive = (into: 'upload' | 'stage') => async (req: FastifyRequest, reply: FastifyReply) => {
      const auth = site.authenticate(req);
      requireMember(auth);
      const img = images.find(auth, (req.params as { id: string }).id);
      if (!site.owns(img.owner))
        throw new Conflict(`Image ${img.id} is stored at site ${img.owner}: upload its data there.`);
      try {
        await images[into](auth, img, req.body, Number(req.headers['content-length']));
      } catch (e) {
        // The rest of an over-limit body is not read: the connection closes after the 413.
        if (e instanceof UploadTooLarge) void reply.header('connection', 'close');
        if (e instanceof UploadFailed)
          req.log.warn({ image: img.id, err: String(e.failure) }, 'image upload failed');
        throw e;
      }
      return reply.code(204).send();
    };
    scoped.put('/image/v2/images/:id/file', receive('upload'));
    // glance-direct's stage: the same bytes path, the image then 'uploading' until imported.
    scoped.put('/image/v2/images/:id/stage', receive('stage'));
  });

  app.get<{ Params: { id: string } }>('/image/v2/images/:id/file', async (req, reply) => {
    const auth = site.authenticate(req);
    const img = images.find(auth, req.params.id);
    if (img.status === 'deactivated' && !auth.isAdmin)
      throw new Forbidden('The requested image has been deactivated. Image data download is forbidden.');
    if ((img.status !== 'active' && img.status !== 'deactivated') || !img.blob) return reply.code(204).send();
    const size = img.size ?? 0;
    const range = byteRange(req.headers.range, size);
    const { start, end } = range ?? { start: 0, end: size };
    const body: Readable = site.owns(img.owner)
      ? blobs.open(img.blob, range)
      : await ownerBytes(site, img, range, streaming, cache);
    reply.type('application/octet-stream').header('content-length', String(end - start));
    reply.header('accept-ranges', 'bytes');
    if (range) reply.code(206).header('content-range', `bytes ${start}-${end - 1}/${size}`);
    else reply.code(200).header('content-md5', img.checksum ?? '');
    return reply.send(body);
  });

  // ---- interoperable import ---------------------------------------------------------------------------
  app.get('/image/v2/info/import', async (req) => {
    requireReader(site.authenticate(req));
    return {
      'import-methods': {
        description: 'Import methods available.',
        type: 'array',
        value: images.importMethods(),
      },
    };
  });
  app.get('/image/v2/info/stores', async (req) => {
    requireReader(site.authenticate(req));
    return {
      stores: [
        {
          id: images.storeId(),
          description: `The image store of site ${images.storeId()} (each site keeps the data of its own images).`,
          default: true,
        },
      ],
    };
  });
  app.post<{ Params: { id: string } }>('/image/v2/images/:id/import', async (req, reply) => {
    const w = await toWrite(req, reply);
    if (!w) return reply;
    images.import(w.auth, w.img, req.body);
    return reply.code(202).send();
  });

  // ---- deactivate, reactivate ------------------------------------------------------------------------
  const action = (to: 'active' | 'deactivated') => async (req: FastifyRequest, reply: FastifyReply) => {
    const w = await toWrite(req, reply);
    if (!w) return reply;
    images.setActive(w.auth, w.img, to);
    return reply.code(204).send();
  };
  app.post('/image/v2/images/:id/actions/deactivate', action('deactivated'));
  app.post('/image/v2/images/:id/actions/reactivate', action('active'));

  // ---- tags -----------------------------------------------------------------------------------------
  const tagRoute = (op: 'add' | 'del') => async (req: FastifyRequest, reply: FastifyReply) => {
    const w = await toWrite(req, reply);
    if (!w) return reply;
    images.tag(w.auth, w.img, (req.params as { tag: string }).tag, op);
    return reply.code(204).send();
  };
  app.put('/image/v2/images/:id/tags/:tag', tagRoute('add'));
  app.delete('/image/v2/images/:id/tags/:tag', tagRoute('del'));

  // ---- members --------------------------------------------------------------------------------------
  app.post<{ Params: { id: string } }>('/image/v2/images/:id/members', async (req, reply) => {
    const w = await toWrite(req, reply);
    if (!w) return reply;
    return memberView(images.addMember(w.auth, w.img, (req.body as Obj | undefined)?.member));
  });

  app.get<{ Params: { id: string } }>('/image/v2/images/:id/members', async (req) => {
    const auth = site.authenticate(req);
    const img = images.find(auth, req.params.id);
    return { members: images.members(auth, img).map(memberView), schema: '/v2/schemas/members' };
  });

  app.get<{ Params: { id: string; member: string } }>('/image/v2/images/:id/members/:member', async (req) => {
    const auth = site.authenticate(req);
    const img = images.find(auth, req.params.id);
    return memberView(images.visibleMember(auth, img, req.params.member));
  });

  /**
   * A membership write: 404 unless the member exists, then done at the image's owner site (undefined
   * once the request was carried there).
   */
  const memberToWrite = async (
    req: FastifyRequest<{ Params: { id: string; member: string } }>,
    reply: FastifyReply,
  ) => {
    const auth = site.authenticate(req);
    const img = images.find(auth, req.params.id);
    const m = images.existingMember(img, req.params.member);
    return (await forwardIfRemote(site, img.owner, req, reply)) ? undefined : { auth, img, m };
  };

  app.put<{ Params: { id: string; member: string } }>(
    '/image/v2/images/:id/members/:member',
    async (req, reply) => {
      const w = await memberToWrite(req, reply);
      if (!w) return reply;
      return memberView(images.setMemberStatus(w.auth, w.m, (req.body as Obj | undefined)?.status));
    },
  );

  app.delete<{ Params: { id: string; member: string } }>(
    '/image/v2/images/:id/members/:member',
    async (req, reply) => {
      const w = await memberToWrite(req, reply);
      if (!w) return reply;
      images.removeMember(w.auth, w.img, w.m);
      return reply.code(204).send();
    },
  );
}

function parseSort(q: Record<string, string>): [string, 'asc' | 'desc'][] {
  const out: [string, 'asc' | 'desc'][] = [];
  const check = (k: string, d: string) => {
    if (
      ![
        'name',
        'status',
        'created_at',
        'updated_at',
        'size',
        'id',
        'visibility',
        'owner',
        'min_disk',
        'min_ram',
        'disk_format',
        'container_format',
      ].includes(k)
    )
      throw new BadRequest(`Invalid sort key: ${k}`);
    if (d !== 'asc' && d !== 'desc') throw new BadRequest(`Invalid sort direction: ${d}`);
    out.push([k, d]);
  };
  for (const [k, d] of sortTerms(q, 'created_at')!) check(k, d);
  return out;
}

function cmp(a: unknown, b: unknown): number {
  if (a === b) return 0;
  if (a === null || a === undefined) return -1;
  if (b === null || b === undefined) return 1;
  return (a as string | number) < (b as string | number) ? -1 : 1;
}
