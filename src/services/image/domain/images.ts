/**
 * @module The image lifecycle as Glance has it: create (queued), upload (saving, then active), import
 * (stage to uploading, then import; web-download; copy-image: import.ts),
 * deactivate and reactivate, update by JSON patch, tags, members, delete; and the rules around them
 * (who may see and change an image, read-only and reserved attributes, publicize_image, the size
 * cap and per-project quotas). It sees ports only: the repository, the blob store, the clock and ids.
 * The routes (api/routes.ts) authenticate, forward writes to the owner site and render.
 * https://docs.openstack.org/api-ref/image/v2/
 */
import { Readable } from 'node:stream';
import type { AuthContext } from '../../../core/auth.ts';
import { requireMember } from '../../../core/auth.ts';
import { BadRequest, CloudError, Conflict, Forbidden, NotFound, TooLarge } from '../../../core/errors.ts';
import type { Clock, Ids, Logger } from '../../../core/ports.ts';
import { isObj } from '../../common/input.ts';
import type { Obj } from '../../common/input.ts';
import { GLANCE_CORE_ATTRIBUTES as CORE } from '../api/attributes.ts';
import type { ImageLimits } from '../limits.ts';
import type { WebDownload } from '../import.ts';
import { allowedUri } from '../import.ts';
import type { StoredBlob } from '../store/blobs.ts';
import { BlobTooLarge } from '../store/blobs.ts';
import type { ImageRepository } from '../store/images.ts';
import type { ImageRow, MemberRow } from '../store/schema.ts';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
export const VISIBILITIES = ['public', 'private', 'shared', 'community'] as const;
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

/** Where image bytes live (store/blobs.ts on disk). */
export interface ImageBlobs {
  write(source: Readable, maxBytes?: number): Promise<StoredBlob>;
  remove(sha256: string): Promise<void>;
}

export interface ImagesOptions {
  repo: ImageRepository;
  blobs: ImageBlobs;
  clock: Clock;
  ids: Ids;
  /** This site: the owner of the images created here. */
  site: string;
  limits: ImageLimits;
  /** web-download's fetch and its allowed URLs; without it the method is not offered. */
  webDownload?: WebDownload;
  /** Where a failed background import is reported. */
  log?: Pick<Logger, 'warn'>;
}

/** The import methods (`/v2/info/import`): web-download only with allowed URLs (import.ts). */
export type ImportMethod = 'glance-direct' | 'web-download' | 'copy-image';

/** An upload over the size cap or the project's quota: the rest of the body is not read (the route closes). */
export class UploadTooLarge extends TooLarge {}

/** An upload whose stream failed; `cause` is what failed (the route logs it). */
export class UploadFailed extends BadRequest {
  readonly failure: unknown;
  constructor(failure: unknown) {
    super(`Image upload did not complete: ${String((failure as Error).message ?? failure)}`);
    this.failure = failure;
  }
}

/** Filters of an image list (GET /v2/images), as the query names them. */
export interface ImageFilters {
  q: Record<string, string>;
  tags: string[];
}

export class Images {
  private readonly repo: ImageRepository;
  private readonly blobs: ImageBlobs;
  private readonly clock: Clock;
  private readonly ids: Ids;
  private readonly site: string;
  private readonly limits: ImageLimits;
  private readonly webDownload: WebDownload | undefined;
  private readonly log: Pick<Logger, 'warn'> | undefined;
  /** Background web-downloads under way (tests and close wait for them). */
  readonly importing = new Set<Promise<void>>();

  constructor(opts: ImagesOptions) {
    this.repo = opts.repo;
    this.blobs = opts.blobs;
    this.clock = opts.clock;
    this.ids = opts.ids;
    this.site = opts.site;
    this.limits = opts.limits;
    this.webDownload = opts.webDownload?.allowed.length ? opts.webDownload : undefined;
    this.log = opts.log;
  }

  /** Stale 'saving' rows at start belong to uploads that died with the process: back to queued. */
  recoverInterruptedUploads(): void {
    this.repo.tx(() => {
      for (const img of this.repo.saving(this.site)) this.repo.save({ ...img, status: 'queued' });
    });
  }

  get(id: string): ImageRow | undefined {
    return UUID.test(id) ? this.repo.get(id) : undefined;
  }

  canSee(auth: AuthContext, img: ImageRow): boolean {
    if (auth.isAdmin || img.visibility === 'public' || img.visibility === 'community') return true;
    if (img.project_id === auth.projectId) return true;
    return img.visibility === 'shared' && !!auth.projectId && !!this.repo.member(img.id, auth.projectId);
  }

  /** The image if visible; 404 otherwise (Glance hides what you may not see). */
  find(auth: AuthContext, id: string): ImageRow {
    const img = this.get(id);
    if (!img || !this.canSee(auth, img)) throw new NotFound(`No image found with ID ${id}`);
    return img;
  }

  /** The images a list shows this token, filtered (unsorted: the order is the view's). */
  list(auth: AuthContext, { q, tags }: ImageFilters): ImageRow[] {
    let rows = this.repo.all();
    const accepted = this.repo.sharedWith(auth.projectId ?? '', q.member_status ?? 'accepted');
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
    return rows;
  }

  /** POST /v2/images: a queued image with the body's attributes (an admin may name its owner). */
  create(auth: AuthContext, body: Obj): ImageRow {
    const project = requireMember(auth);
    const img = this.newImage(auth.isAdmin && typeof body.owner === 'string' ? body.owner : project, body);
    this.checkPublicize(auth, undefined, img);
    this.checkImageCount(img.project_id);
    this.repo.save(img);
    return img;
  }

  /** An active image from bytes (a server snapshot). */
  async createFromBytes(auth: AuthContext, attrs: Obj, data: Buffer): Promise<ImageRow> {
    const img = this.newImage(requireMember(auth), attrs);
    this.checkPublicize(auth, undefined, img);
    this.checkImageCount(img.project_id);
    const limit = this.uploadLimit(img.project_id);
    if (data.length > limit) throw this.tooLarge(img.project_id, limit);
    const stored = await this.blobs.write(Readable.from([data]));
    const row: ImageRow = { ...img, status: 'active', ...withData(stored) };
    this.repo.save(row);
    return row;
  }

  /** PATCH /v2/images/{id} with a JSON patch (either dialect). */
  update(auth: AuthContext, img: ImageRow, ops: unknown): ImageRow {
    this.mustOwn(auth, img, 'You are not permitted to modify this image.');
    if (!Array.isArray(ops)) throw new BadRequest('The request body must be a JSON-patch list.');
    const next = applyPatch(img, ops as unknown[], auth);
    this.checkPublicize(auth, img.visibility, next);
    next.updated_at = this.clock.now();
    this.repo.save(next);
    return next;
  }

  async delete(auth: AuthContext, img: ImageRow): Promise<void> {
    this.mustOwn(auth, img, 'You are not permitted to delete this image.');
    if (img.protected) throw new Forbidden(`Image ${img.id} is protected and cannot be deleted.`);
    this.repo.remove(img.id);
    if (img.blob) await this.dropBlobIfUnused(img.blob);
  }

  /**
   * PUT /v2/images/{id}/file: queued -> saving -> active. The bytes are bounded while they stream
   * (never buffered): a declared length over the limit is refused before anything is read. A failed
   * upload goes back to queued; an image deleted meanwhile leaves no bytes behind. `source` is the
   * request's stream (anything else is a 415).
   */
  async upload(auth: AuthContext, img: ImageRow, source: unknown, declaredLength: number): Promise<void> {
    await this.receive(auth, img, source, declaredLength, 'active');
  }

  /**
   * PUT /v2/images/{id}/stage (glance-direct's first step): the bytes go to the store as an upload's
   * do, and the image is 'uploading' until an import makes it active.
   */
  async stage(auth: AuthContext, img: ImageRow, source: unknown, declaredLength: number): Promise<void> {
    await this.receive(auth, img, source, declaredLength, 'uploading');
  }

  private async receive(
    auth: AuthContext,
    img: ImageRow,
    source: unknown,
    declaredLength: number,
    final: 'active' | 'uploading',
  ): Promise<void> {
    this.mustOwn(auth, img, 'You are not permitted to upload data to this image.');
    if (img.status !== 'queued')
      throw new Conflict(`Image status transition from ${img.status} to saving is not allowed`);
    if (!isStream(source)) throw new CloudError(415, 'Image data must be sent as application/octet-stream.');
    const limit = this.uploadLimit(img.project_id);
    if (Number.isFinite(declaredLength) && declaredLength > limit) throw this.tooLarge(img.project_id, limit);
    this.repo.save({ ...img, status: 'saving', updated_at: this.clock.now() });
    let stored;
    try {
      stored = await this.blobs.write(source, limit);
    } catch (e) {
      const cur = this.get(img.id);
      if (cur && cur.status === 'saving')
        this.repo.save({ ...cur, status: 'queued', updated_at: this.clock.now() });
      if (e instanceof BlobTooLarge) throw this.tooLarge(img.project_id, e.limit);
      throw new UploadFailed(e);
    }
    const cur = this.get(img.id);
    if (!cur) {
      // Deleted while uploading: the bytes belong to nobody.
      await this.dropBlobIfUnused(stored.sha256);
      throw new NotFound(`Image ${img.id} was deleted during upload.`);
    }
    this.repo.save({ ...cur, ...withData(stored), status: final, updated_at: this.clock.now() });
  }

  /** The import methods this site offers. */
  importMethods(): ImportMethod[] {
    return ['glance-direct', ...(this.webDownload ? (['web-download'] as const) : []), 'copy-image'];
  }

  /** The one store of this site (`/v2/info/stores`): its id is the site's name. */
  storeId(): string {
    return this.site;
  }

  /**
   * POST /v2/images/{id}/import. glance-direct makes a staged image active; web-download fetches the
   * URI (when allowed) in the background, the image 'importing' until its bytes are stored (a failure
   * puts it back to queued with this store in os_glance_failed_import); copy-image has nothing to copy
   * on one store and answers as a finished copy. Glance's os_glance_importing_to_stores and
   * os_glance_failed_import are set as Glance sets them.
   */
  import(auth: AuthContext, img: ImageRow, body: unknown): void {
    if (!isObj(body)) throw new BadRequest('The request body must be a JSON object.');
    const method = isObj(body.method) ? body.method : undefined;
    const name = method?.name;
    if (typeof name !== 'string') throw new BadRequest('"method" must be an object with a "name".');
    if (!(this.importMethods() as string[]).includes(name))
      throw new BadRequest(`Import method ${name} is not valid.`);
    if (body.all_stores !== undefined && typeof body.all_stores !== 'boolean')
      throw new BadRequest('"all_stores" must be a boolean.');
    if (body.all_stores_must_succeed !== undefined && typeof body.all_stores_must_succeed !== 'boolean')
      throw new BadRequest('"all_stores_must_succeed" must be a boolean.');
    if (body.stores !== undefined) {
      if (!Array.isArray(body.stores) || !body.stores.every((x) => typeof x === 'string'))
        throw new BadRequest('"stores" must be a list of store ids.');
      if (body.all_stores === true && body.stores.length > 0)
        throw new BadRequest('"stores" and "all_stores" cannot be given together.');
      const unknown = (body.stores as string[]).find((x) => x !== this.storeId());
      if (unknown !== undefined) throw new BadRequest(`Unknown store ${unknown}.`);
    }
    if (name === 'copy-image') {
      if (!auth.isAdmin) throw new Forbidden('Only an administrator may copy an image (copy_image).');
      if (img.status !== 'active')
        throw new Conflict(`Image ${img.id} must be active to be copied; it is ${img.status}.`);
      // One store, which holds the image already: nothing to copy.
      this.repo.save(this.importProps(img, '', ''));
      return;
    }
    this.mustOwn(auth, img, 'You are not permitted to import data to this image.');
    if (name === 'glance-direct') {
      if (img.status !== 'uploading' || !img.blob)
        throw new Conflict(`Image ${img.id} needs to be staged before 'glance-direct' method can be used.`);
      this.repo.save({ ...this.importProps(img, '', ''), status: 'active' });
      return;
    }
    const uri = method?.uri;
    if (typeof uri !== 'string' || uri.length === 0 || uri.length > 2048)
      throw new BadRequest('web-download needs "method": {"uri": ...}.');
    const url = allowedUri(this.webDownload!.allowed, uri);
    if (!url) throw new BadRequest(`URI for web-download does not pass filtering: ${uri}`);
    if (img.status !== 'queued')
      throw new Conflict(`Image status transition from ${img.status} to importing is not allowed`);
    const limit = this.uploadLimit(img.project_id);
    this.repo.save({ ...this.importProps(img, this.storeId(), ''), status: 'importing' });
    const run = this.download(img.id, url, limit).finally(() => this.importing.delete(run));
    this.importing.add(run);
  }

  private async download(id: string, url: string, limit: number): Promise<void> {
    let stored: StoredBlob | undefined;
    let failure: unknown;
    try {
      stored = await this.blobs.write(await this.webDownload!.open(url), limit);
    } catch (e) {
      failure = e;
    }
    const cur = this.get(id);
    if (!cur || cur.status !== 'importing') {
      if (stored) await this.dropBlobIfUnused(stored.sha256);
      return;
    }
    if (!stored) {
      this.log?.warn({ image: id, url, err: String(failure) }, 'image web-download failed');
      this.repo.save({ ...this.importProps(cur, '', this.storeId()), status: 'queued' });
      return;
    }
    this.repo.save({ ...this.importProps(cur, '', ''), ...withData(stored), status: 'active' });
  }

  /** The image with Glance's import bookkeeping properties set. */
  private importProps(img: ImageRow, importing: string, failed: string): ImageRow {
    const props = JSON.parse(img.properties) as Obj;
    props.os_glance_importing_to_stores = importing;
    props.os_glance_failed_import = failed;
    return { ...img, properties: JSON.stringify(props), updated_at: this.clock.now() };
  }

  /** Glance's image actions: an active image's data can be withdrawn (deactivated) and restored. */
  setActive(auth: AuthContext, img: ImageRow, to: 'active' | 'deactivated'): void {
    const verb = to === 'active' ? 'reactivate' : 'deactivate';
    this.mustOwn(auth, img, `You are not permitted to ${verb} this image.`);
    if (img.status !== 'active' && img.status !== 'deactivated')
      throw new Forbidden(`Not allowed to ${verb} an image in status '${img.status}'.`);
    if (img.status !== to) this.repo.save({ ...img, status: to, updated_at: this.clock.now() });
  }

  tag(auth: AuthContext, img: ImageRow, tag: string, op: 'add' | 'del'): void {
    this.mustOwn(auth, img, 'You are not permitted to modify this image.');
    const tags = JSON.parse(img.tags) as string[];
    if (op === 'add') {
      if (tag.length > 255) throw new BadRequest('Tag is too long.');
      if (!tags.includes(tag)) tags.push(tag);
    } else {
      if (!tags.includes(tag)) throw new NotFound(`Tag ${tag} not found on image ${img.id}.`);
      tags.splice(tags.indexOf(tag), 1);
    }
    this.repo.save({ ...img, tags: JSON.stringify(tags), updated_at: this.clock.now() });
  }

  // ---- members ------------------------------------------------------------------------------------

  addMember(auth: AuthContext, img: ImageRow, memberId: unknown): MemberRow {
    this.mustOwn(auth, img, 'Only the image owner can add members.');
    if (img.visibility !== 'shared')
      throw new Forbidden(`Only shared images have members (image visibility is ${img.visibility}).`);
    if (typeof memberId !== 'string' || memberId === '') throw new BadRequest('"member" is required.');
    if (this.repo.member(img.id, memberId))
      throw new Conflict(`Member ${memberId} already exists for image ${img.id}.`);
    const now = this.clock.now();
    const row: MemberRow = {
      id: `${img.id}:${memberId}`,
      owner: this.site,
      image_id: img.id,
      member_id: memberId,
      status: 'pending',
      created_at: now,
      updated_at: now,
    };
    this.repo.saveMember(row);
    return row;
  }

  /** The members this token sees: all of them for the owner, else its own membership. */
  members(auth: AuthContext, img: ImageRow): MemberRow[] {
    const rows = this.repo.members(img.id);
    return this.isOwnerProject(auth, img) ? rows : rows.filter((m) => m.member_id === auth.projectId);
  }

  /** One membership as this token sees it; 404 when it does not exist or is another project's. */
  visibleMember(auth: AuthContext, img: ImageRow, memberId: string): MemberRow {
    const m = this.repo.member(img.id, memberId);
    if (!m || (!this.isOwnerProject(auth, img) && m.member_id !== auth.projectId))
      throw memberNotFound(img, memberId);
    return m;
  }

  /** The membership a write names; 404 unless it exists (any token: the write's checks come after). */
  existingMember(img: ImageRow, memberId: string): MemberRow {
    const m = this.repo.member(img.id, memberId);
    if (!m) throw memberNotFound(img, memberId);
    return m;
  }

  setMemberStatus(auth: AuthContext, m: MemberRow, status: unknown): MemberRow {
    if (m.member_id !== auth.projectId && !auth.isAdmin)
      throw new Forbidden('Only the member can change its membership status.');
    if (status !== 'pending' && status !== 'accepted' && status !== 'rejected')
      throw new BadRequest('"status" must be pending, accepted or rejected.');
    const row: MemberRow = { ...m, status, updated_at: this.clock.now() };
    this.repo.saveMember(row);
    return row;
  }

  removeMember(auth: AuthContext, img: ImageRow, m: MemberRow): void {
    this.mustOwn(auth, img, 'Only the image owner can remove members.');
    this.repo.removeMember(m.id);
  }

  // ---- rules --------------------------------------------------------------------------------------

  private isOwnerProject(auth: AuthContext, img: ImageRow): boolean {
    return auth.isAdmin || img.project_id === auth.projectId;
  }

  private mustOwn(auth: AuthContext, img: ImageRow, message: string): void {
    if (!this.isOwnerProject(auth, img)) throw new Forbidden(message);
  }

  /** Glance's publicize_image: only a cloud admin makes an image public ('community' is the owner's). */
  private checkPublicize(auth: AuthContext, before: string | undefined, img: ImageRow): void {
    if (img.visibility === 'public' && before !== 'public' && !auth.isAdmin)
      throw new Forbidden('Only an administrator may make an image public (publicize_image).');
  }

  /** image_count_total, checked before an image is created for `project`. */
  private checkImageCount(project: string): void {
    if (!Number.isFinite(this.limits.imageCountTotal)) return;
    if (this.repo.countOf(project) >= this.limits.imageCountTotal)
      throw new TooLarge(
        `Project ${project} is over its image_count_total limit of ${this.limits.imageCountTotal} images.`,
      );
  }

  /** The most bytes an upload for `project` may write: the size cap, and what is left of image_size_total. */
  private uploadLimit(project: string): number {
    if (!Number.isFinite(this.limits.imageSizeTotal)) return this.limits.imageSizeCap;
    const left = this.limits.imageSizeTotal - this.repo.bytesOf(project);
    if (left <= 0)
      throw new TooLarge(
        `Project ${project} is over its image_size_total limit of ${this.limits.imageSizeTotal} bytes.`,
      );
    return Math.min(this.limits.imageSizeCap, left);
  }

  private tooLarge(project: string, limit: number): UploadTooLarge {
    return new UploadTooLarge(
      limit === this.limits.imageSizeCap
        ? `Image data exceeds the size cap of ${limit} bytes.`
        : `Image data would put project ${project} over its image_size_total limit (${limit} bytes left).`,
    );
  }

  private async dropBlobIfUnused(sha: string): Promise<void> {
    if (!this.repo.blobInUse(sha, this.site)) await this.blobs.remove(sha);
  }

  private newImage(project: string, body: Obj): ImageRow {
    const id = body.id === undefined ? this.ids.uuid() : body.id;
    if (typeof id !== 'string' || !UUID.test(id)) throw new BadRequest('"id" must be a UUID.');
    if (this.get(id)) throw new Conflict(`Image with identifier ${id} already exists!`);
    const now = this.clock.now();
    const img: ImageRow = {
      id,
      owner: this.site,
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
}

function isStream(v: unknown): v is Readable {
  return !!v && typeof (v as Readable).pipe === 'function';
}

const memberNotFound = (img: ImageRow, memberId: string) =>
  new NotFound(`Member ${memberId} not found for image ${img.id}.`);

/** The data columns of an image whose bytes are `stored`. */
function withData(stored: StoredBlob): Partial<ImageRow> {
  return {
    size: stored.size,
    virtual_size: stored.size,
    checksum: stored.md5,
    os_hash_algo: 'sha512',
    os_hash_value: stored.sha512,
    blob: stored.sha256,
  };
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
