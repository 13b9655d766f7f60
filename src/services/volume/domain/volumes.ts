/**
 * @module Block storage rules: volumes (empty, from a snapshot, from an image), extend, delete, types,
 * snapshots, attachments and quotas. Every write runs in one transaction on the site that owns the
 * rows (callers forward first); the driver runs inside it, so a driver failure leaves no row behind.
 * A copy (snapshot, volume from a snapshot or a volume) runs off the event loop, so it cannot be in a
 * transaction: as in Cinder the row is written 'creating' (quota counted), the copy is awaited, and
 * the row becomes 'available', or 'error' if the copy failed (issue 11, class 8).
 * It sees ports only: its repository (store/volumes.ts, the only SQL), the driver, the clock and ids.
 */
import { createHash } from 'node:crypto';
import type { AuthContext } from '../../../core/auth.ts';
import { BadRequest, Conflict, NotFound, TooLarge } from '../../../core/errors.ts';
import type { Clock, Ids, Logger } from '../../../core/ports.ts';
import { novaTime, optBool, optInt, optStr, isObj } from '../../common/input.ts';
import type { Obj } from '../../common/input.ts';
import type { VolumeDriver } from './driver.ts';
import { UserMessages } from './messages.ts';
import { backendCapabilities, unmatchedSpec } from './scheduler.ts';
import type { AttachmentRow, VolRow, VolumeRepository } from '../store/volumes.ts';

export type { VolRow } from '../store/volumes.ts';

export const VOLUME_QUOTAS = {
  volumes: 10,
  snapshots: 10,
  gigabytes: 1000,
  backups: 10,
  backup_gigabytes: 1000,
  per_volume_gigabytes: -1,
  groups: 10,
} as const;
export type VolQuotaKey = keyof typeof VOLUME_QUOTAS;
/** Limits by name: the built-in keys and the per-type ones (volumes_<type>, ...). */
export type Quotas = Record<VolQuotaKey, number> & Record<string, number>;
/** The limits Cinder keeps per volume type, as <key>_<type name>. */
const PER_TYPE_QUOTAS = ['volumes', 'snapshots', 'gigabytes'] as const;

export const DEFAULT_TYPE_NAME = '__DEFAULT__';
export const DEFAULT_TYPE_ID = uuidFrom('volume-type', DEFAULT_TYPE_NAME);

/** What the volume domain runs on: its repository, its driver and the site's ports. */
export interface VolumeServiceOptions {
  repo: VolumeRepository;
  driver: VolumeDriver;
  clock: Clock;
  ids: Ids;
  log: Logger;
  /** This site's name: the availability zone of the volumes made here. */
  site: string;
  /** True when a row with this owner is written here. */
  owns(owner: string): boolean;
}

export class VolumeService {
  readonly repo: VolumeRepository;
  readonly driver: VolumeDriver;
  readonly site: string;
  private readonly clock: Clock;
  private readonly ids: Ids;
  readonly log: Logger;
  private readonly ownsRow: (owner: string) => boolean;
  /** Cinder's user messages: what went wrong after a 202. */
  readonly messages: UserMessages;
  /** Uploads to images still streaming (close waits for them). */
  private readonly inflight = new Set<Promise<void>>();
  constructor(opts: VolumeServiceOptions) {
    this.repo = opts.repo;
    this.driver = opts.driver;
    this.site = opts.site;
    this.clock = opts.clock;
    this.ids = opts.ids;
    this.log = opts.log;
    this.ownsRow = opts.owns;
    this.messages = new UserMessages(opts.repo, opts.clock, opts.ids);
  }

  /** Runs `work` in the background (an upload to an image); close() waits for what is still running. */
  background(work: Promise<void>): void {
    const p = work.finally(() => this.inflight.delete(p));
    this.inflight.add(p);
  }

  /** Waits for background work to settle (it handles its own failures). */
  async drain(): Promise<void> {
    while (this.inflight.size) await Promise.allSettled([...this.inflight]);
  }
  private now() {
    return this.clock.now();
  }

  /** True when a row with this owner is written here. */
  owns(owner: string): boolean {
    return this.ownsRow(owner);
  }

  body(r: { body: string }): Obj {
    return JSON.parse(r.body) as Obj;
  }

  volume(id: string): VolRow | undefined {
    return this.repo.volume(id);
  }
  snapshot(id: string): VolRow | undefined {
    return this.repo.snapshot(id);
  }

  canSee(auth: AuthContext, r: { project_id: string }): boolean {
    return auth.isAdmin || r.project_id === auth.projectId;
  }

  visibleVolume(auth: AuthContext, id: string): VolRow {
    const r = this.volume(id);
    if (!r || !this.canSee(auth, r)) throw new NotFound(`Volume ${id} could not be found.`);
    return r;
  }
  visibleSnapshot(auth: AuthContext, id: string): VolRow {
    const r = this.snapshot(id);
    if (!r || !this.canSee(auth, r)) throw new NotFound(`Snapshot ${id} could not be found.`);
    return r;
  }

  // ---- types -------------------------------------------------------------------------------------

  defaultType(): Obj {
    return {
      id: DEFAULT_TYPE_ID,
      name: DEFAULT_TYPE_NAME,
      description: 'Default Volume Type',
      is_public: true,
      extra_specs: {},
      qos_specs_id: null,
      'os-volume-type-access:is_public': true,
    };
  }

  types(): Obj[] {
    return [this.defaultType(), ...this.repo.types().map((r) => this.body(r))];
  }

  type(idOrName: string): Obj | undefined {
    return this.types().find((t) => t.id === idOrName || t.name === idOrName);
  }

  typeOwner(id: string): string | undefined {
    return this.repo.typeOwner(id);
  }

  createType(o: Obj): Obj {
    const name = optStr(o, 'name');
    if (!name) throw new BadRequest('Volume type name can not be empty.');
    if (this.type(name)) throw new Conflict(`Volume Type ${name} already exists.`);
    const isPublic = optBool(o, 'os-volume-type-access:is_public') ?? optBool(o, 'is_public') ?? true;
    const specs = isObj(o.extra_specs) ? (o.extra_specs as Obj) : {};
    const t: Obj = {
      id: this.ids.uuid(),
      name,
      description: optStr(o, 'description') ?? null,
      is_public: isPublic,
      'os-volume-type-access:is_public': isPublic,
      extra_specs: Object.fromEntries(Object.entries(specs).map(([k, v]) => [k, String(v)])),
      qos_specs_id: null,
    };
    this.repo.tx(() =>
      this.repo.putType({ id: String(t.id), name, body: JSON.stringify(t), created_at: this.now() }),
    );
    return t;
  }

  updateType(id: string, o: Obj): Obj {
    const t = this.storedType(id);
    const name = optStr(o, 'name');
    if (name !== undefined && name !== t.name && this.type(name))
      throw new Conflict(`Volume Type ${name} already exists.`);
    const patch: Obj = name !== undefined ? { name } : {};
    const d = optStr(o, 'description');
    if (d !== undefined) patch.description = d;
    const p = optBool(o, 'is_public');
    if (p !== undefined) patch.is_public = patch['os-volume-type-access:is_public'] = p;
    if (isObj(o.extra_specs)) patch.extra_specs = { ...(t.extra_specs as Obj), ...o.extra_specs };
    return this.patchType(id, patch);
  }

  /** A type this site can change: not the built-in default one. */
  private storedType(id: string): Obj {
    const t = this.type(id);
    if (!t || t.id === DEFAULT_TYPE_ID) throw new NotFound(`Volume type ${id} could not be found.`);
    return t;
  }

  /** Rewrites fields of a stored type (its extra specs, its access list) in one transaction. */
  patchType(id: string, patch: Obj): Obj {
    const next: Obj = { ...this.storedType(id), ...patch };
    this.repo.tx(() =>
      this.repo.putType({
        id: String(next.id),
        name: String(next.name),
        body: JSON.stringify(next),
        created_at: this.now(),
      }),
    );
    return next;
  }

  /** Projects a private type is shared with (Cinder's volume type access). */
  typeAccess(t: Obj): string[] {
    return Array.isArray(t.projects) ? (t.projects as string[]) : [];
  }

  /** Whether a project may use a type: public, shared with it, or the caller is an admin. */
  mayUseType(auth: AuthContext, t: Obj): boolean {
    return auth.isAdmin || t.is_public !== false || this.typeAccess(t).includes(String(auth.projectId));
  }

  deleteType(id: string): void {
    if (id === DEFAULT_TYPE_ID) throw new BadRequest('Default volume type can not be deleted.');
    if (!this.type(id)) throw new NotFound(`Volume type ${id} could not be found.`);
    if (this.repo.typeInUse(id))
      throw new BadRequest(
        `Target volume type is still in use. Volume Type ${id} deletion is not allowed with volumes present with the type.`,
      );
    this.repo.tx(() => this.repo.removeType(id));
  }

  // ---- quotas ------------------------------------------------------------------------------------

  /**
   * A quota class's limits (Cinder's quota classes: `default` is what every project starts from):
   * the built-in defaults, one volumes_/snapshots_/gigabytes_<type> limit per volume type (-1,
   * unlimited, unless set), and what an admin stored for the class.
   */
  classQuotas(name: string): Quotas {
    const perType: Record<string, number> = {};
    for (const t of this.types()) for (const k of PER_TYPE_QUOTAS) perType[`${k}_${String(t.name)}`] = -1;
    const body = this.repo.quotaClassBody(name);
    return { ...VOLUME_QUOTAS, ...perType, ...(body ? (JSON.parse(body) as Record<string, number>) : {}) };
  }

  /** A project's limits: the default class, then what was set for the project. */
  quotas(projectId: string): Quotas {
    const body = this.repo.quotaBody(projectId);
    return { ...this.classQuotas('default'), ...(body ? (JSON.parse(body) as Record<string, number>) : {}) };
  }

  /** What a project uses, in total and per volume type (volumes_<type>, snapshots_<type>, gigabytes_<type>). */
  usage(projectId: string): Quotas {
    const v = this.repo.totals('volumes', projectId);
    const s = this.repo.totals('snapshots', projectId);
    const b = this.repo.totals('backups', projectId);
    const out: Quotas = {
      volumes: v.c,
      snapshots: s.c,
      gigabytes: v.g + s.g,
      backups: b.c,
      backup_gigabytes: b.g,
      per_volume_gigabytes: 0,
      groups: 0,
    };
    for (const t of this.types()) for (const k of PER_TYPE_QUOTAS) out[`${k}_${String(t.name)}`] = 0;
    const name = (typeId: string) => String(this.type(typeId)?.name ?? typeId);
    for (const r of this.repo.totalsPerType('volumes', projectId)) {
      out[`volumes_${name(r.type_id)}`] = r.c;
      out[`gigabytes_${name(r.type_id)}`] = (out[`gigabytes_${name(r.type_id)}`] ?? 0) + r.g;
    }
    for (const r of this.repo.totalsPerType('snapshots', projectId)) {
      out[`snapshots_${name(r.type_id)}`] = r.c;
      out[`gigabytes_${name(r.type_id)}`] = (out[`gigabytes_${name(r.type_id)}`] ?? 0) + r.g;
    }
    return out;
  }

  /**
   * The limits of a quota set or class update body: known keys (the built-in ones and the per-type
   * ones of existing types) with integers >= -1; `id` and `tenant_id` are ignored. 400 otherwise.
   */
  quotaChanges(o: Obj): Record<string, number> {
    const known = this.classQuotas('default');
    const changes: Record<string, number> = {};
    const bad = Object.keys(o).filter((k) => k !== 'id' && k !== 'tenant_id' && !(k in known));
    if (bad.length) throw new BadRequest(`Bad key(s) in quota set: ${bad.join(', ')}`);
    for (const [k, v] of Object.entries(o)) {
      if (k === 'id' || k === 'tenant_id') continue;
      const n = typeof v === 'string' && /^-?\d+$/.test(v) ? Number(v) : v;
      if (typeof n !== 'number' || !Number.isInteger(n) || n < -1)
        throw new BadRequest(`Quota limit ${String(v)} for ${k} must be an integer >= -1.`);
      changes[k] = n;
    }
    return changes;
  }

  /** Stores limits for a quota class (the caller runs at the membership authority). */
  setClassQuotas(name: string, changes: Record<string, number>): void {
    this.repo.tx(() => {
      const cur = this.repo.quotaClassBody(name);
      this.repo.putQuotaClass(name, JSON.stringify({ ...(cur ? (JSON.parse(cur) as Obj) : {}), ...changes }));
    });
  }
  setQuotas(projectId: string, changes: Record<string, number>): void {
    this.repo.tx(() => {
      const cur = this.repo.quotaBody(projectId);
      this.repo.putQuota(projectId, JSON.stringify({ ...(cur ? (JSON.parse(cur) as Obj) : {}), ...changes }));
    });
  }
  resetQuotas(projectId: string): void {
    this.repo.tx(() => this.repo.removeQuota(projectId));
  }
  private checkQuota(
    projectId: string,
    add: { volumes?: number; snapshots?: number; gigabytes?: number },
    perVolume?: number,
    typeId?: string,
  ): void {
    const q = this.quotas(projectId);
    const u = this.usage(projectId);
    if (perVolume !== undefined && q.per_volume_gigabytes >= 0 && perVolume > q.per_volume_gigabytes)
      throw new TooLarge(
        `Requested volume size ${perVolume}G is larger than maximum allowed limit ${q.per_volume_gigabytes}G.`,
      );
    const typeName = typeId === undefined ? undefined : this.type(typeId)?.name;
    for (const [what, n] of Object.entries(add)) {
      // The project's limit, then its limit for the volume type (Cinder's per-type quotas).
      for (const k of typeName === undefined ? [what] : [what, `${what}_${String(typeName)}`]) {
        const limit = q[k] ?? -1;
        const used = u[k] ?? 0;
        if (limit >= 0 && used + n > limit)
          throw new TooLarge(
            what === 'gigabytes'
              ? `VolumeSizeExceedsAvailableQuota: Requested volume or snapshot exceeds allowed ${k} quota. Requested ${n}G, quota is ${limit}G and ${used}G has been consumed.`
              : `Maximum number of ${what} allowed (${limit}) exceeded for quota '${k}'.`,
          );
      }
    }
  }

  // ---- volumes -----------------------------------------------------------------------------------

  private putVolume(b: Obj, created?: number): void {
    const now = this.now();
    b.updated_at = novaTime(now);
    this.repo.putVolume({
      id: String(b.id),
      project_id: String(b.project_id),
      name: String(b.name ?? ''),
      status: String(b.status),
      size: Number(b.size),
      volume_type_id: String(b.volume_type_id),
      body: JSON.stringify(b),
      created_at: created ?? Date.parse(String(b.created_at)),
      updated_at: now,
    });
  }

  /** `into.groupId`: the generic group the volume joins (checked by the caller, domain/groups.ts). */
  async createVolume(
    auth: AuthContext,
    projectId: string,
    o: Obj,
    into: { groupId?: string | undefined } = {},
  ): Promise<Obj> {
    const snapshotId = optStr(o, 'snapshot_id');
    const sourceVolId = optStr(o, 'source_volid');
    const imageRef = optStr(o, 'imageRef') ?? optStr(o, 'image_id');
    const snap = snapshotId ? this.visibleSnapshot(auth, snapshotId) : undefined;
    const srcVol = sourceVolId ? this.visibleVolume(auth, sourceVolId) : undefined;
    let size = optInt(o, 'size', 1, 1_000_000);
    if (size === undefined) size = snap?.size ?? srcVol?.size;
    if (size === undefined)
      throw new BadRequest(
        'Invalid input received: "size" is required when no snapshot or source volume is given.',
      );
    if (snap && size < snap.size)
      throw new BadRequest(
        `Invalid input received: Volume size '${size}GB' cannot be smaller than the snapshot size ${snap.size}GB. They must be >= original snapshot size.`,
      );
    if (srcVol && size < srcVol.size)
      throw new BadRequest(
        `Invalid input received: Volume size '${size}GB' cannot be smaller than original volume size ${srcVol.size}GB.`,
      );
    if (snap && snap.status !== 'available')
      throw new BadRequest(
        `Invalid snapshot: Originating snapshot status must be one of 'available' values.`,
      );
    let imageMeta: Obj | undefined;
    if (imageRef) imageMeta = this.imageFor(auth, imageRef, size);
    // A clone, or a volume from a snapshot, is bootable with its image metadata when its source is.
    const origin = srcVol ?? (snap ? this.volume(String(snap.volume_id)) : undefined);
    const originBody = origin ? this.body(origin) : undefined;
    if (!imageMeta && originBody?.bootable === 'true')
      imageMeta = isObj(originBody.volume_image_metadata) ? originBody.volume_image_metadata : {};
    const typeName = optStr(o, 'volume_type');
    const type = typeName
      ? this.type(typeName)
      : snap
        ? this.type(
            String(
              this.body(this.volume(String(snap.volume_id)) ?? { body: '{}' }).volume_type_id ??
                DEFAULT_TYPE_ID,
            ),
          )
        : this.defaultType();
    if (!type || !this.mayUseType(auth, type))
      throw new NotFound(`Volume type with name ${typeName} could not be found.`);
    if (isObj(type.encryption))
      throw new BadRequest(
        `Invalid volume type: ${String(type.name)} has an encryption type, and Atoll does not encrypt volumes (no key manager).`,
      );
    // cinder-scheduler: a type this site's backend cannot satisfy leaves the volume in 'error' (NoValidBackend).
    const unplaced =
      unmatchedSpec(
        isObj(type.extra_specs) ? stringValues(type.extra_specs) : {},
        backendCapabilities(this.driver.name, ''),
      ) !== undefined;
    const id = this.ids.uuid();
    const now = this.now();
    const metadata = isObj(o.metadata)
      ? Object.fromEntries(Object.entries(o.metadata).map(([k, v]) => [k, String(v)]))
      : {};
    const b: Obj = {
      id,
      name: optStr(o, 'name') ?? null,
      description: optStr(o, 'description') ?? null,
      size,
      status: unplaced ? 'error' : snap || srcVol ? 'creating' : 'available',
      availability_zone: this.site,
      created_at: novaTime(now),
      updated_at: novaTime(now),
      volume_type: type.name,
      volume_type_id: type.id,
      snapshot_id: snapshotId ?? null,
      source_volid: sourceVolId ?? null,
      bootable: imageMeta ? 'true' : 'false',
      encrypted: false,
      multiattach: optBool(o, 'multiattach') ?? false,
      metadata,
      user_id: auth.userId,
      project_id: projectId,
      replication_status: null,
      consistencygroup_id: null,
      group_id: into.groupId ?? null,
      migration_status: null,
      provider_id: null,
      ...(imageMeta ? { volume_image_metadata: imageMeta } : {}),
    };
    this.repo.tx(() => {
      this.checkQuota(projectId, { volumes: 1, gigabytes: size }, size, String(type.id));
      this.putVolume(b, now);
      if (unplaced) this.messages.record(projectId, id, 'scheduleAllocateVolume', 'noBackendAvailable');
      else if (!snap && !srcVol) this.driver.create(id, size);
    });
    if (unplaced) return b;
    if (snap || srcVol)
      await this.finishCopy(
        b,
        () => this.driver.createFrom(id, snap ? { snapshotId: snap.id } : { volumeId: srcVol!.id }, size),
        { row: () => this.volume(id), put: (x) => this.putVolume(x), discard: () => this.driver.delete(id) },
      );
    return b;
  }

  /**
   * Awaits the copy behind a row written 'creating', then marks it 'available' or 'error' (a failed copy
   * leaves no partial file: the driver removes it). If the row went away meanwhile, its file goes too.
   */
  private async finishCopy(
    b: Obj,
    copy: () => Promise<void>,
    row: { row: () => VolRow | undefined; put: (b: Obj) => void; discard: () => void },
  ): Promise<void> {
    let status = 'available';
    try {
      await copy();
    } catch (e) {
      status = 'error';
      this.log.warn({ id: b.id, err: String(e) }, 'volume copy failed');
    }
    this.repo.tx(() => {
      const cur = row.row();
      if (!cur) return row.discard();
      if (cur.status !== 'creating') return;
      Object.assign(b, this.body(cur), { status });
      row.put(b);
    });
  }

  /**
   * At start: a copy this site was making when it stopped (a crash, a kill) will never finish, so its
   * row goes from 'creating' to 'error' and can be deleted, as Cinder's volume manager does at init.
   */
  failInterruptedCopies(): void {
    const stuck = (what: 'volumes' | 'snapshots') =>
      this.repo.creating(what).filter((r) => this.owns(r.owner));
    const uploading = this.repo.withStatus('volumes', 'uploading').filter((r) => this.owns(r.owner));
    this.repo.tx(() => {
      for (const r of stuck('volumes')) this.putVolume({ ...this.body(r), status: 'error' });
      for (const r of stuck('snapshots')) this.putSnapshot({ ...this.body(r), status: 'error' });
      // An upload to an image cut short: the volume is intact, so it is usable again (Cinder's init_host).
      for (const r of uploading) this.putVolume({ ...this.body(r), status: this.restingStatus(r.id) });
    });
  }

  /** The status a volume returns to after an upload: in-use when attached, else available. */
  restingStatus(volumeId: string): 'in-use' | 'available' {
    return this.attachmentsOfVolume(volumeId).length ? 'in-use' : 'available';
  }

  /** The image service may not exist: look at its table only if it is there. */
  private imageFor(auth: AuthContext, imageRef: string, size: number): Obj {
    const img = this.repo.image(imageRef);
    if (img === false)
      throw new BadRequest(
        `Invalid image identifier or unable to access requested image ${imageRef}: the image service is not available on this site.`,
      );
    if (!img)
      throw new BadRequest(`Invalid image identifier or unable to access requested image ${imageRef}.`);
    const owner = img.owner_project_id ?? img.project_id ?? img.owner;
    const visibility = String(img.visibility ?? 'public');
    if (!auth.isAdmin && visibility !== 'public' && visibility !== 'community' && owner !== auth.projectId)
      throw new BadRequest(`Invalid image identifier or unable to access requested image ${imageRef}.`);
    // Cinder reads only active images (a queued or deactivated one has no data to give): 400.
    if (img.status !== 'active') throw new BadRequest(`Image ${imageRef} is not active.`);
    const bytes = typeof img.size === 'number' ? img.size : 0;
    if (bytes > size * 1024 ** 3)
      throw new BadRequest(`Image ${imageRef} size exceeds the volume size ${size}GB.`);
    const minDisk = typeof img.min_disk === 'number' ? img.min_disk : 0;
    if (minDisk > size)
      throw new BadRequest(
        `Volume size ${size}GB cannot be smaller than the image minDisk size ${minDisk}GB.`,
      );
    return {
      image_id: imageRef,
      image_name: String(img.name ?? ''),
      ...(img.disk_format ? { disk_format: String(img.disk_format) } : {}),
      ...(img.container_format ? { container_format: String(img.container_format) } : {}),
      size: String(bytes),
      min_disk: String(minDisk),
    };
  }

  updateVolume(r: VolRow, o: Obj): Obj {
    const b = this.body(r);
    for (const k of ['name', 'description'] as const) {
      if (k in o) b[k] = optStr(o, k) ?? null;
    }
    if (isObj(o.metadata))
      b.metadata = Object.fromEntries(Object.entries(o.metadata).map(([k, v]) => [k, String(v)]));
    this.repo.tx(() => this.putVolume(b));
    return b;
  }

  extend(r: VolRow, newSize: number): void {
    const b = this.body(r);
    if (b.status !== 'available')
      throw new BadRequest(
        `Invalid volume: Volume ${r.id} status must be available to extend, but current status is: ${String(b.status)}.`,
      );
    if (newSize <= r.size)
      throw new BadRequest(
        `Invalid input received: New size for extend must be greater than current size. (current: ${r.size}, extended: ${newSize}).`,
      );
    this.repo.tx(() => {
      this.checkQuota(r.project_id, { gigabytes: newSize - r.size }, newSize, String(b.volume_type_id));
      b.size = newSize;
      this.putVolume(b);
      this.driver.extend(r.id, newSize);
    });
  }

  /** Rewrites fields of a volume's body (status, metadata, ...) in one transaction. */
  patchVolume(r: VolRow, patch: Obj): Obj {
    const b = { ...this.body(r), ...patch };
    this.repo.tx(() => this.putVolume(b));
    return b;
  }

  setStatus(r: VolRow, status: string): void {
    this.patchVolume(r, { status });
  }

  /** A status move an action makes (os-reserve: available -> attaching, ...); 400 from any other status. */
  moveStatus(r: VolRow, action: string, from: string, to: string): void {
    if (r.status !== from)
      throw new BadRequest(
        `Invalid volume: Volume ${r.id} status must be ${from} to ${action}, but current status is: ${r.status}.`,
      );
    this.setStatus(r, to);
  }

  retype(r: VolRow, typeName: string): void {
    const t = this.type(typeName);
    if (!t) throw new NotFound(`Volume type ${typeName} could not be found.`);
    if (r.status !== 'available' && r.status !== 'in-use')
      throw new BadRequest(`Invalid volume: Volume ${r.id} status must be available or in-use to retype.`);
    this.repo.tx(() => {
      const b = { ...this.body(r), volume_type: t.name, volume_type_id: t.id };
      this.putVolume(b);
    });
  }

  /**
   * A transfer's accept: the volume (and its snapshots, unless the transfer left them) now belongs to
   * `project`, within its quotas; `also` runs in the same transaction (removing the transfer).
   */
  transferTo(r: VolRow, project: string, userId: string, withSnapshots: boolean, also: () => void): void {
    const snaps = this.repo.snapshotsOf(r.id);
    const moved = withSnapshots ? snaps : [];
    this.repo.tx(() => {
      this.checkQuota(project, {
        volumes: 1,
        gigabytes: r.size + moved.reduce((n, s) => n + s.size, 0),
        ...(moved.length ? { snapshots: moved.length } : {}),
      });
      this.putVolume({ ...this.body(r), project_id: project, user_id: userId, status: 'available' });
      for (const s of moved) this.putSnapshot({ ...this.body(s), project_id: project });
      also();
    });
  }

  /** os-force_delete: whatever the status, detaching first; snapshots still refuse it (as in Cinder). */
  forceDelete(r: VolRow): void {
    if (this.repo.hasSnapshots(r.id))
      throw new BadRequest(`Invalid volume: Volume ${r.id} still has dependent snapshots.`);
    this.repo.tx(() => {
      for (const a of this.attachmentsOfVolume(r.id)) this.repo.removeAttachment(a.id);
      this.repo.removeVolume(r.id);
      this.driver.delete(r.id);
    });
  }

  setBootable(r: VolRow, bootable: boolean): void {
    const b = this.body(r);
    b.bootable = bootable ? 'true' : 'false';
    this.repo.tx(() => this.putVolume(b));
  }

  /** `inGroup`: its group's delete is removing it (a volume in a group is otherwise not deleted alone). */
  deleteVolume(r: VolRow, cascade: boolean, opts: { inGroup?: boolean } = {}): void {
    const snaps = this.repo.snapshotsOf(r.id);
    const group = this.body(r).group_id;
    if (group && !opts.inGroup)
      throw new BadRequest(
        `Invalid volume: Volume ${r.id} belongs to group ${String(group)}; remove it from the group or delete the group with its volumes.`,
      );
    if (this.attachmentsOfVolume(r.id).length || r.status === 'in-use')
      throw new BadRequest(
        `Invalid volume: Volume status must be available or error or error_restoring or error_extending or error_managing and must not be migrating, attached, belong to a group, have snapshots or be disassociated from snapshots after volume transfer.`,
      );
    if (snaps.length && !cascade)
      throw new BadRequest(`Invalid volume: Volume ${r.id} still has ${snaps.length} dependent snapshots.`);
    if (r.status === 'uploading')
      throw new BadRequest(
        `Invalid volume: Volume ${r.id} is being uploaded to an image; delete it once it is available.`,
      );
    if (r.status === 'creating' || snaps.some((s) => s.status === 'creating'))
      throw new BadRequest(
        `Invalid volume: Volume ${r.id} or one of its snapshots is being created; delete it once it is available or error.`,
      );
    this.repo.tx(() => {
      for (const s of snaps) {
        this.repo.removeSnapshot(s.id);
        this.driver.deleteSnapshot(s.id);
      }
      this.repo.removeVolume(r.id);
      this.driver.delete(r.id);
    });
  }

  // ---- snapshots ---------------------------------------------------------------------------------

  /** `extra`: fields the snapshot is written with (a group snapshot's id). */
  async createSnapshot(auth: AuthContext, vol: VolRow, o: Obj, extra: Obj = {}): Promise<Obj> {
    const force =
      optBool(o, 'force') ?? (typeof o.force === 'string' ? o.force.toLowerCase() === 'true' : false);
    if (vol.status !== 'available' && !(force && vol.status === 'in-use'))
      throw new BadRequest(
        `Invalid volume: Volume ${vol.id} status must be available, but current status is: ${vol.status}.`,
      );
    const id = this.ids.uuid();
    const now = this.now();
    const b: Obj = {
      id,
      name: optStr(o, 'name') ?? null,
      description: optStr(o, 'description') ?? null,
      volume_id: vol.id,
      size: vol.size,
      status: 'creating',
      created_at: novaTime(now),
      updated_at: novaTime(now),
      metadata: isObj(o.metadata) ? o.metadata : {},
      project_id: vol.project_id,
      user_id: auth.userId,
      progress: '100%',
      group_snapshot_id: null,
      consumes_quota: true,
      ...extra,
    };
    this.repo.tx(() => {
      this.checkQuota(
        vol.project_id,
        { snapshots: 1, gigabytes: vol.size },
        undefined,
        String(this.body(vol).volume_type_id),
      );
      this.putSnapshot(b, now);
    });
    await this.finishCopy(b, () => this.driver.snapshot(id, vol.id), {
      row: () => this.snapshot(id),
      put: (x) => this.putSnapshot(x),
      discard: () => this.driver.deleteSnapshot(id),
    });
    return b;
  }

  private putSnapshot(b: Obj, created?: number): void {
    const now = this.now();
    b.updated_at = novaTime(now);
    this.repo.putSnapshot({
      id: String(b.id),
      project_id: String(b.project_id),
      volume_id: String(b.volume_id),
      name: String(b.name ?? ''),
      status: String(b.status),
      size: Number(b.size),
      body: JSON.stringify(b),
      created_at: created ?? Date.parse(String(b.created_at)),
      updated_at: now,
    });
  }

  updateSnapshot(r: VolRow, o: Obj): Obj {
    const b = this.body(r);
    for (const k of ['name', 'description'] as const) if (k in o) b[k] = optStr(o, k) ?? null;
    if (isObj(o.metadata)) b.metadata = o.metadata;
    this.repo.tx(() => this.putSnapshot(b));
    return b;
  }

  patchSnapshot(r: VolRow, patch: Obj): Obj {
    const b = { ...this.body(r), ...patch };
    this.repo.tx(() => this.putSnapshot(b));
    return b;
  }

  /** `force` (os-force_delete): whatever the status; a copy still running finds its row gone and drops its file. */
  deleteSnapshot(r: VolRow, opts: { force?: boolean } = {}): void {
    if (r.status === 'creating' && !opts.force)
      throw new BadRequest(
        `Invalid snapshot: Snapshot ${r.id} status must be available or error, but current status is: creating.`,
      );
    this.repo.tx(() => {
      this.repo.removeSnapshot(r.id);
      this.driver.deleteSnapshot(r.id);
    });
  }

  // ---- attachments -------------------------------------------------------------------------------

  attachmentsOfVolume(volumeId: string): AttachmentRow[] {
    return this.repo.attachmentsOfVolume(volumeId);
  }

  attachmentsOfServer(serverId: string): AttachmentRow[] {
    return this.repo.attachmentsOfServer(serverId);
  }

  /** An attachment as the volume body lists it (Cinder's attachments summary). */
  attachmentView(a: AttachmentRow): Obj {
    return {
      id: a.volume_id,
      attachment_id: a.id,
      volume_id: a.volume_id,
      server_id: a.server_id,
      host_name: a.host || null,
      device: a.device,
      attached_at: novaTime(Number(a.attached_at)),
    };
  }

  /** The volume service of a site, as Cinder's service_uuid and os-vol-host-attr:host name it. */
  serviceUuid(site: string): string {
    return uuidFrom('volume-service', site);
  }
  hostOf(site: string): string {
    return `${site}@${this.driver.name}#${this.driver.name}`;
  }

  attach(volumeId: string, serverId: string, device: string, host: string): Obj {
    const id = this.ids.uuid();
    this.repo.tx(() => {
      const r = this.volume(volumeId)!;
      const b = this.body(r);
      b.status = 'in-use';
      b.attach_status = 'attached';
      this.repo.putAttachment({
        id,
        volume_id: volumeId,
        server_id: serverId,
        device,
        host,
        attached_at: this.now(),
      });
      this.putVolume(b);
    });
    return { id, volumeId, serverId, device };
  }

  detach(attachmentId: string): void {
    this.repo.tx(() => {
      const a = this.repo.attachment(attachmentId);
      if (!a) return;
      this.repo.removeAttachment(attachmentId);
      const r = this.volume(a.volume_id);
      if (r && this.attachmentsOfVolume(r.id).length === 0) {
        const b = this.body(r);
        b.status = 'available';
        b.attach_status = 'detached';
        this.putVolume(b);
      }
    });
  }
}

/** Cinder reads booleans in action bodies from JSON booleans or their spellings; anything else is a 400. */
export function boolArg(v: unknown, what: string): boolean {
  if (typeof v === 'boolean') return v;
  const t = String(v).toLowerCase();
  if (['true', '1', 'yes', 'on', 't', 'y'].includes(t)) return true;
  if (['false', '0', 'no', 'off', 'f', 'n'].includes(t)) return false;
  throw new BadRequest(`Invalid input received: ${what} must be a boolean.`);
}

/** Every value of `o` as a string (metadata and specs are string pairs in Cinder). */
export function stringValues(o: Obj): Record<string, string> {
  return Object.fromEntries(Object.entries(o).map(([k, v]) => [k, String(v)]));
}

export function uuidFrom(...parts: string[]): string {
  const h = createHash('sha256').update(parts.join('\0')).digest('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-4${h.slice(13, 16)}-a${h.slice(17, 20)}-${h.slice(20, 32)}`;
}
