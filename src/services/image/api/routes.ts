/**
 * @module Image API v2 (Glance) routes under /image: version discovery, images, image data, tags and
 * members. https://docs.openstack.org/api-ref/image/v2/
 * Writes on an image another site owns are forwarded to that site; uploads are only taken by the owner
 * (its bytes live there), downloads elsewhere are forwarded up to FORWARD_DOWNLOAD_LIMIT bytes.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { Readable } from 'node:stream';
import type { AuthContext } from '../../../core/auth.ts';
import { requireMember, requireReader } from '../../../core/auth.ts';
import { BadRequest, CloudError, Conflict, Forbidden, NotFound, TooLarge } from '../../../core/errors.ts';
import type { SiteContext } from '../../../site/site.ts';
import { isObj, query } from '../../common/input.ts';
import { paginate, sortTerms } from '../../common/paging.ts';
import type { Obj } from '../../common/input.ts';
import type { BlobStore } from '../store/blobs.ts';
import { BlobTooLarge } from '../store/blobs.ts';
import { imageLimits } from '../limits.ts';
import type { ImageRow, MemberRow } from '../store/schema.ts';
import { registerSchemaRoutes } from './schemas.ts';
import { GLANCE_CORE_ATTRIBUTES as CORE } from './attributes.ts';

/** Forwarded replies travel whole through the fabric, so downloads from another site are bounded. */
export const FORWARD_DOWNLOAD_LIMIT = 64 * 1024 * 1024;

const glanceTime = (ms: number) => new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const VISIBILITIES = ['public', 'private', 'shared', 'community'] as const;
const DISK_FORMATS = ['ami', 'ari', 'aki', 'vhd', 'vhdx', 'vmdk', 'raw', 'qcow2', 'vdi', 'iso', 'ploop'];
const CONTAINER_FORMATS = ['ami', 'ari', 'aki', 'bare', 'ovf', 'ova', 'docker', 'compressed'];
/** Properties under this prefix are Glance's own (os_glance_reserved in Tempest). */
const RESERVED_PREFIX = 'os_glance';

const READ_ONLY = new Set([
  'id',
  'status',
  'size',
  'virtual_size',
  'checksum',
  'os_hash_algo',
  'os_hash_value',
  'created_at',
  'updated_at',
  'self',
  'file',
  'schema',
  'direct_url',
]);

export interface ImageApi {
  get(id: string): ImageRow | undefined;
  canSee(auth: AuthContext, img: ImageRow): boolean;
  /** Creates an active image from bytes (a server snapshot). */
  createFromBytes(auth: AuthContext, attrs: Obj, data: Buffer): Promise<ImageRow>;
}

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

export function registerImageRoutes(app: FastifyInstance, site: SiteContext, blobs: BlobStore): ImageApi {
  const db = site.store.db;
  const get = (id: string) =>
    UUID.test(id)
      ? (db.prepare('SELECT * FROM images WHERE id = ?').get(id) as ImageRow | undefined)
      : undefined;
  const member = (imageId: string, memberId: string) =>
    db.prepare('SELECT * FROM image_members WHERE id = ?').get(`${imageId}:${memberId}`) as
      MemberRow | undefined;
  const memberNotFound = (img: ImageRow, memberId: string) =>
    new NotFound(`Member ${memberId} not found for image ${img.id}.`);

  const canSee = (auth: AuthContext, img: ImageRow): boolean => {
    if (auth.isAdmin || img.visibility === 'public' || img.visibility === 'community') return true;
    if (img.project_id === auth.projectId) return true;
    return img.visibility === 'shared' && !!auth.projectId && !!member(img.id, auth.projectId);
  };
  const isOwnerProject = (auth: AuthContext, img: ImageRow) =>
    auth.isAdmin || img.project_id === auth.projectId;

  /** The image if visible; 404 otherwise (Glance hides what you may not see). */
  const find = (auth: AuthContext, id: string): ImageRow => {
    const img = get(id);
    if (!img || !canSee(auth, img)) throw new NotFound(`No image found with ID ${id}`);
    return img;
  };
  /** Writes go to the owner site: true when this request was forwarded (the reply is sent). */
  const forwarded = async (img: ImageRow, req: FastifyRequest, reply: FastifyReply) => {
    if (site.owns(img.owner)) return false;
    await site.forwardTo(img.owner, req, reply);
    return true;
  };
  const save = (img: ImageRow) => site.store.tx(() => site.changelog.put('image', { ...img } as never));

  const limits = imageLimits(site.config.services.image);
  /** Glance's publicize_image: only a cloud admin makes an image public ('community' is the owner's). */
  const checkPublicize = (auth: AuthContext, before: string | undefined, img: ImageRow) => {
    if (img.visibility === 'public' && before !== 'public' && !auth.isAdmin)
      throw new Forbidden('Only an administrator may make an image public (publicize_image).');
  };
  /** image_count_total, checked before an image is created for `project`. */
  const checkImageCount = (project: string) => {
    if (!Number.isFinite(limits.imageCountTotal)) return;
    const { n } = db.prepare('SELECT count(*) AS n FROM images WHERE project_id = ?').get(project) as {
      n: number;
    };
    if (n >= limits.imageCountTotal)
      throw new TooLarge(
        `Project ${project} is over its image_count_total limit of ${limits.imageCountTotal} images.`,
      );
  };
  /** The most bytes an upload for `project` may write: the size cap, and what is left of image_size_total. */
  const uploadLimit = (project: string): number => {
    if (!Number.isFinite(limits.imageSizeTotal)) return limits.imageSizeCap;
    const { used } = db
      .prepare('SELECT coalesce(sum(size), 0) AS used FROM images WHERE project_id = ?')
      .get(project) as { used: number };
    const left = limits.imageSizeTotal - used;
    if (left <= 0)
      throw new TooLarge(
        `Project ${project} is over its image_size_total limit of ${limits.imageSizeTotal} bytes.`,
      );
    return Math.min(limits.imageSizeCap, left);
  };
  const tooLarge = (project: string, limit: number) =>
    new TooLarge(
      limit === limits.imageSizeCap
        ? `Image data exceeds the size cap of ${limit} bytes.`
        : `Image data would put project ${project} over its image_size_total limit (${limit} bytes left).`,
    );

  // Stale 'saving' rows at start belong to uploads that died with the process.
  site.store.tx(() => {
    const stale = db
      .prepare("SELECT * FROM images WHERE status = 'saving' AND owner = ?")
      .all(site.name) as ImageRow[];
    for (const img of stale) site.changelog.put('image', { ...img, status: 'queued' } as never);
  });

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
    const project = requireMember(auth);
    const body = (req.body ?? {}) as unknown;
    if (!isObj(body)) throw new BadRequest('The request body must be a JSON object.');
    const img = newImage(
      site,
      auth.isAdmin && typeof body.owner === 'string' ? body.owner : project,
      body,
      get,
    );
    checkPublicize(auth, undefined, img);
    checkImageCount(img.project_id);
    save(img);
    reply.code(201).header('location', `${site.publicUrl()}/image/v2/images/${img.id}`);
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
    let rows = db.prepare('SELECT * FROM images').all() as ImageRow[];
    const accepted = new Set(
      (
        db
          .prepare('SELECT image_id FROM image_members WHERE member_id = ? AND status = ?')
          .all(auth.projectId ?? '', q.member_status ?? 'accepted') as { image_id: string }[]
      ).map((r) => r.image_id),
    );
    const mine = (i: ImageRow) => i.project_id === auth.projectId;
    if (q.visibility) {
      if (!(VISIBILITIES as readonly string[]).includes(q.visibility) && q.visibility !== 'all')
        throw new BadRequest(`Invalid visibility value: ${q.visibility}`);
      if (q.visibility !== 'all') rows = rows.filter((i) => i.visibility === q.visibility);
      rows = rows.filter(
        (i) =>
          auth.isAdmin ||
          i.visibility === 'public' ||
          i.visibility === 'community' ||
          mine(i) ||
          (i.visibility === 'shared' && accepted.has(i.id)),
      );
    } else {
      // Glance's default list: public, your own, and shared ones you accepted; community only if yours.
      rows = rows.filter(
        (i) =>
          (auth.isAdmin && i.visibility !== 'community') ||
          i.visibility === 'public' ||
          mine(i) ||
          (i.visibility === 'shared' && accepted.has(i.id)),
      );
    }
    if (q.name !== undefined) rows = rows.filter((i) => i.name === q.name);
    if (q.status !== undefined) rows = rows.filter((i) => i.status === q.status);
    for (const k of ['disk_format', 'container_format'] as const)
      if (q[k] !== undefined) rows = rows.filter((i) => i[k] === q[k]);
    rows = rows.filter(sizeFilter(q));
    if (q.owner !== undefined) rows = rows.filter((i) => i.project_id === q.owner);
    if (q.os_hidden !== undefined) rows = rows.filter((i) => !!i.os_hidden === (q.os_hidden === 'true'));
    else rows = rows.filter((i) => !i.os_hidden);
    for (const t of tags) rows = rows.filter((i) => (JSON.parse(i.tags) as string[]).includes(t));
    if (q.id !== undefined) {
      const want = new Set(q.id.replace(/^in:/, '').split(','));
      rows = rows.filter((i) => want.has(i.id));
    }

    const sorts = parseSort(q);
    const views = rows.map(imageView);
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
    return imageView(find(auth, req.params.id));
  });

  app.patch<{ Params: { id: string } }>('/image/v2/images/:id', async (req, reply) => {
    const auth = site.authenticate(req);
    requireMember(auth);
    const img = find(auth, req.params.id);
    if (await forwarded(img, req, reply)) return reply;
    if (!isOwnerProject(auth, img)) throw new Forbidden('You are not permitted to modify this image.');
    const ops = req.body;
    if (!Array.isArray(ops)) throw new BadRequest('The request body must be a JSON-patch list.');
    const next = applyPatch(img, ops as unknown[], auth);
    checkPublicize(auth, img.visibility, next);
    next.updated_at = site.clock.now();
    save(next);
    return imageView(next);
  });

  app.delete<{ Params: { id: string } }>('/image/v2/images/:id', async (req, reply) => {
    const auth = site.authenticate(req);
    requireMember(auth);
    const img = find(auth, req.params.id);
    if (await forwarded(img, req, reply)) return reply;
    if (!isOwnerProject(auth, img)) throw new Forbidden('You are not permitted to delete this image.');
    if (img.protected) throw new Forbidden(`Image ${img.id} is protected and cannot be deleted.`);
    site.store.tx(() => {
      for (const m of db.prepare('SELECT id FROM image_members WHERE image_id = ?').all(img.id) as {
        id: string;
      }[])
        site.changelog.remove('image_member', m.id);
      site.changelog.remove('image', img.id);
    });
    if (img.blob) await dropBlobIfUnused(img.blob);
    return reply.code(204).send();
  });

  const dropBlobIfUnused = async (sha: string) => {
    const used = db.prepare('SELECT 1 FROM images WHERE blob = ? AND owner = ?').get(sha, site.name);
    if (!used) await blobs.remove(sha);
  };

  // ---- image data ---------------------------------------------------------------------------------
  // Only this prefix takes raw octet streams: the parser hands over the request stream untouched.
  app.register(async (scoped) => {
    scoped.addContentTypeParser('application/octet-stream', (_req, payload, done) => done(null, payload));
    scoped.put<{ Params: { id: string } }>('/image/v2/images/:id/file', async (req, reply) => {
      const auth = site.authenticate(req);
      requireMember(auth);
      const img = find(auth, req.params.id);
      if (!site.owns(img.owner))
        throw new Conflict(`Image ${img.id} is stored at site ${img.owner}: upload its data there.`);
      if (!isOwnerProject(auth, img))
        throw new Forbidden('You are not permitted to upload data to this image.');
      if (img.status !== 'queued')
        throw new Conflict(`Image status transition from ${img.status} to saving is not allowed`);
      const source = req.body as Readable | undefined;
      if (!source || typeof (source as Readable).pipe !== 'function')
        throw new CloudError(415, 'Image data must be sent as application/octet-stream.');
      // Bounded while it streams (never buffered): a declared length over the limit is refused at once.
      const limit = uploadLimit(img.project_id);
      const declared = Number(req.headers['content-length']);
      // The rest of an over-limit body is not read: the connection closes after the 413.
      if (Number.isFinite(declared) && declared > limit) {
        void reply.header('connection', 'close');
        throw tooLarge(img.project_id, limit);
      }
      save({ ...img, status: 'saving', updated_at: site.clock.now() });
      let stored;
      try {
        stored = await blobs.write(source, limit);
      } catch (e) {
        const cur = get(img.id);
        if (cur && cur.status === 'saving') save({ ...cur, status: 'queued', updated_at: site.clock.now() });
        if (e instanceof BlobTooLarge) {
          void reply.header('connection', 'close');
          throw tooLarge(img.project_id, e.limit);
        }
        req.log.warn({ image: img.id, err: String(e) }, 'image upload failed');
        throw new BadRequest(`Image upload did not complete: ${String((e as Error).message ?? e)}`);
      }
      const cur = get(img.id);
      if (!cur) {
        // Deleted while uploading: the bytes belong to nobody.
        await dropBlobIfUnused(stored.sha256);
        throw new NotFound(`Image ${img.id} was deleted during upload.`);
      }
      save({
        ...cur,
        status: 'active',
        size: stored.size,
        virtual_size: stored.size,
        checksum: stored.md5,
        os_hash_algo: 'sha512',
        os_hash_value: stored.sha512,
        blob: stored.sha256,
        updated_at: site.clock.now(),
      });
      return reply.code(204).send();
    });
  });

  app.get<{ Params: { id: string } }>('/image/v2/images/:id/file', async (req, reply) => {
    const auth = site.authenticate(req);
    const img = find(auth, req.params.id);
    if (img.status === 'deactivated' && !auth.isAdmin)
      throw new Forbidden('The requested image has been deactivated. Image data download is forbidden.');
    if ((img.status !== 'active' && img.status !== 'deactivated') || !img.blob) return reply.code(204).send();
    if (!site.owns(img.owner)) {
      if ((img.size ?? 0) > FORWARD_DOWNLOAD_LIMIT)
        throw new TooLarge(
          `Image ${img.id} (${img.size} bytes) is stored at site ${img.owner}; downloads through another site are limited to ${FORWARD_DOWNLOAD_LIMIT} bytes. Download it from ${img.owner}.`,
        );
      return site.forwardTo(img.owner, req, reply);
    }
    reply
      .code(200)
      .type('application/octet-stream')
      .header('content-length', String(img.size ?? 0))
      .header('content-md5', img.checksum ?? '');
    return reply.send(blobs.open(img.blob));
  });

  // ---- deactivate, reactivate ------------------------------------------------------------------------
  /** Glance's image actions: an active image's data can be withdrawn (deactivated) and restored. */
  const action = (to: 'active' | 'deactivated') => async (req: FastifyRequest, reply: FastifyReply) => {
    const auth = site.authenticate(req);
    requireMember(auth);
    const img = find(auth, (req.params as { id: string }).id);
    if (await forwarded(img, req, reply)) return reply;
    if (!isOwnerProject(auth, img))
      throw new Forbidden(
        `You are not permitted to ${to === 'active' ? 'reactivate' : 'deactivate'} this image.`,
      );
    if (img.status !== 'active' && img.status !== 'deactivated')
      throw new Forbidden(
        `Not allowed to ${to === 'active' ? 'reactivate' : 'deactivate'} an image in status '${img.status}'.`,
      );
    if (img.status !== to) save({ ...img, status: to, updated_at: site.clock.now() });
    return reply.code(204).send();
  };
  app.post('/image/v2/images/:id/actions/deactivate', action('deactivated'));
  app.post('/image/v2/images/:id/actions/reactivate', action('active'));

  // ---- tags -----------------------------------------------------------------------------------------
  const tagRoute = (op: 'add' | 'del') => async (req: FastifyRequest, reply: FastifyReply) => {
    const { id, tag } = req.params as { id: string; tag: string };
    const auth = site.authenticate(req);
    requireMember(auth);
    const img = find(auth, id);
    if (await forwarded(img, req, reply)) return reply;
    if (!isOwnerProject(auth, img)) throw new Forbidden('You are not permitted to modify this image.');
    const tags = JSON.parse(img.tags) as string[];
    if (op === 'add') {
      if (tag.length > 255) throw new BadRequest('Tag is too long.');
      if (!tags.includes(tag)) tags.push(tag);
    } else {
      if (!tags.includes(tag)) throw new NotFound(`Tag ${tag} not found on image ${id}.`);
      tags.splice(tags.indexOf(tag), 1);
    }
    save({ ...img, tags: JSON.stringify(tags), updated_at: site.clock.now() });
    return reply.code(204).send();
  };
  app.put('/image/v2/images/:id/tags/:tag', tagRoute('add'));
  app.delete('/image/v2/images/:id/tags/:tag', tagRoute('del'));

  // ---- members --------------------------------------------------------------------------------------
  app.post<{ Params: { id: string } }>('/image/v2/images/:id/members', async (req, reply) => {
    const auth = site.authenticate(req);
    requireMember(auth);
    const img = find(auth, req.params.id);
    if (await forwarded(img, req, reply)) return reply;
    if (!isOwnerProject(auth, img)) throw new Forbidden('Only the image owner can add members.');
    if (img.visibility !== 'shared')
      throw new Forbidden(`Only shared images have members (image visibility is ${img.visibility}).`);
    const body = req.body as Obj | undefined;
    const memberId = body?.member;
    if (typeof memberId !== 'string' || memberId === '') throw new BadRequest('"member" is required.');
    if (member(img.id, memberId))
      throw new Conflict(`Member ${memberId} already exists for image ${img.id}.`);
    const now = site.clock.now();
    const row: MemberRow = {
      id: `${img.id}:${memberId}`,
      owner: site.name,
      image_id: img.id,
      member_id: memberId,
      status: 'pending',
      created_at: now,
      updated_at: now,
    };
    site.store.tx(() => site.changelog.put('image_member', { ...row }));
    return memberView(row);
  });

  app.get<{ Params: { id: string } }>('/image/v2/images/:id/members', async (req) => {
    const auth = site.authenticate(req);
    const img = find(auth, req.params.id);
    let rows = db
      .prepare('SELECT * FROM image_members WHERE image_id = ? ORDER BY created_at')
      .all(img.id) as MemberRow[];
    if (!isOwnerProject(auth, img)) rows = rows.filter((m) => m.member_id === auth.projectId);
    return { members: rows.map(memberView), schema: '/v2/schemas/members' };
  });

  app.get<{ Params: { id: string; member: string } }>('/image/v2/images/:id/members/:member', async (req) => {
    const auth = site.authenticate(req);
    const img = find(auth, req.params.id);
    const m = member(img.id, req.params.member);
    if (!m || (!isOwnerProject(auth, img) && m.member_id !== auth.projectId))
      throw memberNotFound(img, req.params.member);
    return memberView(m);
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
    const img = find(auth, req.params.id);
    const m = member(img.id, req.params.member);
    if (!m) throw memberNotFound(img, req.params.member);
    return (await forwarded(img, req, reply)) ? undefined : { auth, img, m };
  };

  app.put<{ Params: { id: string; member: string } }>(
    '/image/v2/images/:id/members/:member',
    async (req, reply) => {
      const w = await memberToWrite(req, reply);
      if (!w) return reply;
      const { auth, m } = w;
      if (m.member_id !== auth.projectId && !auth.isAdmin)
        throw new Forbidden('Only the member can change its membership status.');
      const status = (req.body as Obj | undefined)?.status;
      if (status !== 'pending' && status !== 'accepted' && status !== 'rejected')
        throw new BadRequest('"status" must be pending, accepted or rejected.');
      const row: MemberRow = { ...m, status, updated_at: site.clock.now() };
      site.store.tx(() => site.changelog.put('image_member', { ...row }));
      return memberView(row);
    },
  );

  app.delete<{ Params: { id: string; member: string } }>(
    '/image/v2/images/:id/members/:member',
    async (req, reply) => {
      const w = await memberToWrite(req, reply);
      if (!w) return reply;
      const { auth, img, m } = w;
      if (!isOwnerProject(auth, img)) throw new Forbidden('Only the image owner can remove members.');
      site.store.tx(() => site.changelog.remove('image_member', m.id));
      return reply.code(204).send();
    },
  );

  return {
    get,
    canSee,
    async createFromBytes(auth, attrs, data) {
      const img = newImage(site, requireMember(auth), attrs, get);
      checkPublicize(auth, undefined, img);
      checkImageCount(img.project_id);
      const limit = uploadLimit(img.project_id);
      if (data.length > limit) throw tooLarge(img.project_id, limit);
      const stored = await blobs.write(Readable.from([data]));
      const row: ImageRow = {
        ...img,
        status: 'active',
        size: stored.size,
        virtual_size: stored.size,
        checksum: stored.md5,
        os_hash_algo: 'sha512',
        os_hash_value: stored.sha512,
        blob: stored.sha256,
      };
      save(row);
      return row;
    },
  };
}

function newImage(
  site: SiteContext,
  project: string,
  body: Obj,
  get: (id: string) => ImageRow | undefined,
): ImageRow {
  const id = body.id === undefined ? site.ids.uuid() : body.id;
  if (typeof id !== 'string' || !UUID.test(id)) throw new BadRequest('"id" must be a UUID.');
  if (get(id)) throw new Conflict(`Image with identifier ${id} already exists!`);
  const now = site.clock.now();
  const img: ImageRow = {
    id,
    owner: site.name,
    project_id: project,
    name: null,
    status: 'queued',
    visibility: 'shared',
    protected: 0,
    os_hidden: 0,
    disk_format: null,
    container_format: null,
    size: null,
    virtual_size: null,
    checksum: null,
    os_hash_algo: null,
    os_hash_value: null,
    min_disk: 0,
    min_ram: 0,
    tags: '[]',
    properties: '{}',
    blob: null,
    created_at: now,
    updated_at: now,
  };
  const props: Obj = {};
  for (const [k, v] of Object.entries(body)) {
    if (k === 'id' || k === 'owner') continue;
    if (READ_ONLY.has(k)) throw new Forbidden(`Attribute '${k}' is read-only.`);
    setAttr(img, props, k, v);
  }
  img.properties = JSON.stringify(props);
  return img;
}

function setAttr(img: ImageRow, props: Obj, key: string, v: unknown): void {
  switch (key) {
    case 'name':
      if (v !== null && (typeof v !== 'string' || v.length > 255)) throw new BadRequest('Invalid name.');
      img.name = v as string | null;
      return;
    case 'visibility':
      if (!(VISIBILITIES as readonly unknown[]).includes(v))
        throw new BadRequest(`Invalid visibility value: ${String(v)}`);
      img.visibility = v as ImageRow['visibility'];
      return;
    case 'protected':
    case 'os_hidden':
      if (typeof v !== 'boolean') throw new BadRequest(`"${key}" must be a boolean.`);
      img[key] = v ? 1 : 0;
      return;
    case 'disk_format':
      if (v !== null && !DISK_FORMATS.includes(v as string))
        throw new BadRequest(`Invalid disk format '${String(v)}'.`);
      img.disk_format = v as string | null;
      return;
    case 'container_format':
      if (v !== null && !CONTAINER_FORMATS.includes(v as string))
        throw new BadRequest(`Invalid container format '${String(v)}'.`);
      img.container_format = v as string | null;
      return;
    case 'min_disk':
    case 'min_ram':
      if (typeof v !== 'number' || !Number.isInteger(v) || v < 0)
        throw new BadRequest(`"${key}" must be a non-negative integer.`);
      img[key] = v;
      return;
    case 'tags':
      if (!Array.isArray(v) || !v.every((t) => typeof t === 'string'))
        throw new BadRequest('"tags" must be a list of strings.');
      img.tags = JSON.stringify([...new Set(v as string[])]);
      return;
    case 'locations':
      throw new BadRequest('Image locations are not supported.');
    default:
      if (CORE.has(key)) throw new Forbidden(`Attribute '${key}' is read-only.`);
      // Glance keeps the os_glance namespace for itself (import state, stores): 403, as Glance answers.
      if (key.startsWith(RESERVED_PREFIX)) throw new Forbidden(`Attribute '${key}' is reserved.`);
      if (typeof v !== 'string' && v !== null) throw new BadRequest(`Property '${key}' must be a string.`);
      if (v === null) delete props[key];
      else props[key] = v;
  }
}

function applyPatch(img: ImageRow, ops: unknown[], auth: AuthContext): ImageRow {
  const next: ImageRow = { ...img };
  const props = JSON.parse(img.properties) as Obj;
  for (const raw of ops) {
    const op = patchOp(raw);
    const key = op.path.replace(/^\//, '').replace(/~1/g, '/').replace(/~0/g, '~');
    if (READ_ONLY.has(key)) throw new Forbidden(`Attribute '${key}' is read-only.`);
    if (key === 'owner') {
      if (!auth.isAdmin) throw new Forbidden("Attribute 'owner' may only be changed by an admin.");
      if (typeof op.value !== 'string') throw new BadRequest('"owner" must be a string.');
      next.project_id = op.value;
      continue;
    }
    switch (op.op) {
      case 'add':
      case 'replace':
        if (op.op === 'replace' && !CORE.has(key) && !(key in props))
          throw new Conflict(`Property ${key} does not exist.`);
        setAttr(next, props, key, op.value);
        break;
      case 'remove':
        if (CORE.has(key)) throw new Forbidden(`Attribute '${key}' cannot be removed.`);
        if (!(key in props)) throw new Conflict(`Property ${key} does not exist.`);
        delete props[key];
        break;
      default:
        throw new BadRequest(`Unsupported patch operation ${op.op}.`);
    }
  }
  next.properties = JSON.stringify(props);
  return next;
}

const PATCH_OPS = ['add', 'replace', 'remove'] as const;

/**
 * One operation of either patch dialect: RFC 6902 (`{"op": "replace", "path": "/name", ...}`, media type
 * openstack-images-v2.1-json-patch) or the draft-10 form of v2.0 (`{"replace": "/name", ...}`).
 */
function patchOp(raw: unknown): { op: string; path: string; value?: unknown } {
  if (!isObj(raw)) throw new BadRequest('Each patch operation must be an object.');
  if (typeof raw.op === 'string' && typeof raw.path === 'string')
    return { op: raw.op, path: raw.path, value: raw.value };
  const named = PATCH_OPS.filter((o) => typeof raw[o] === 'string');
  if (named.length !== 1) throw new BadRequest('Each patch operation needs "op" and "path".');
  return { op: named[0]!, path: raw[named[0]!] as string, value: raw.value };
}

/** size, size_min and size_max (bytes): images without data have no size and never match. */
function sizeFilter(q: Record<string, string>): (i: ImageRow) => boolean {
  const bound = (k: string) => {
    if (q[k] === undefined) return undefined;
    if (!/^\d+$/.test(q[k])) throw new BadRequest(`${k} must be a non-negative integer.`);
    return Number(q[k]);
  };
  const [exact, min, max] = [bound('size'), bound('size_min'), bound('size_max')];
  if (exact === undefined && min === undefined && max === undefined) return () => true;
  return (i) =>
    i.size !== null &&
    (exact === undefined || i.size === exact) &&
    (min === undefined || i.size >= min) &&
    (max === undefined || i.size <= max);
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
