/**
 * @module Generic volume groups (Cinder 3.13+) and group snapshots (3.14+): a group has one group type
 * and the volume types its volumes may have; volumes join at create (`group_id`) or by update
 * (add_volumes/remove_volumes); a group snapshot snapshots every volume of its group at once; a group
 * can be made from another group (its volumes cloned) or from a group snapshot (volumes from its
 * snapshots). A group and its snapshots belong to the site that made the group, and its volumes live
 * there. These commands run on that site (the routes forward first).
 * https://docs.openstack.org/api-ref/block-storage/v3/#generic-volume-groups-groups
 */
import type { AuthContext } from '../../../core/auth.ts';
import { BadRequest, NotFound, TooLarge } from '../../../core/errors.ts';
import type { Clock, Ids, Logger } from '../../../core/ports.ts';
import { novaTime, optStr } from '../../common/input.ts';
import type { Obj } from '../../common/input.ts';
import type { GroupRepository, GroupRow, GroupSnapshotRow } from '../store/groups.ts';
import type { GroupTypes } from './group-types.ts';
import type { VolRow, VolumeService } from './volumes.ts';
import { DEFAULT_TYPE_ID } from './volumes.ts';

/** Cinder's group statuses (fields.GroupStatus), which reset_status accepts. */
export const GROUP_STATUSES = [
  'available',
  'error',
  'creating',
  'deleting',
  'updating',
  'in-use',
  'error_deleting',
] as const;
/** Cinder's group snapshot statuses (fields.GroupSnapshotStatus). */
export const GROUP_SNAPSHOT_STATUSES = [
  'available',
  'error',
  'creating',
  'deleting',
  'updating',
  'error_deleting',
] as const;

export interface VolumeGroupsOptions {
  volumes: VolumeService;
  repo: GroupRepository;
  types: GroupTypes;
  clock: Clock;
  ids: Ids;
  log: Logger;
  site: string;
}

/** "a,b, c" (Cinder's add_volumes/remove_volumes) as ids. */
function idList(o: Obj, field: string): string[] {
  const v = optStr(o, field, { max: 65535 });
  return v === undefined
    ? []
    : v
        .split(',')
        .map((s) => s.trim())
        .filter(Boolean);
}

export class VolumeGroups {
  constructor(private readonly opts: VolumeGroupsOptions) {}

  private get repo() {
    return this.opts.repo;
  }
  private get volumes() {
    return this.opts.volumes;
  }
  private now() {
    return this.opts.clock.now();
  }

  body(r: { body: string }): Obj {
    return JSON.parse(r.body) as Obj;
  }

  visible(auth: AuthContext, id: string): GroupRow {
    const g = this.repo.group(id);
    if (!g || !this.volumes.canSee(auth, g)) throw new NotFound(`Group ${id} could not be found.`);
    return g;
  }

  visibleSnapshot(auth: AuthContext, id: string): GroupSnapshotRow {
    const s = this.repo.groupSnapshot(id);
    if (!s || !this.volumes.canSee(auth, s)) throw new NotFound(`GroupSnapshot ${id} could not be found.`);
    return s;
  }

  list(project?: string): GroupRow[] {
    return this.repo.groups(project);
  }
  snapshots(project?: string): GroupSnapshotRow[] {
    return this.repo.groupSnapshots(project);
  }
  volumesOf(groupId: string): VolRow[] {
    return this.repo.volumesOf(groupId);
  }

  private putGroup(b: Obj, created: number): void {
    b.updated_at = novaTime(this.now());
    this.repo.putGroup({
      id: String(b.id),
      project_id: String(b.project_id),
      name: String(b.name ?? ''),
      status: String(b.status),
      body: JSON.stringify(b),
      created_at: created,
    });
  }
  patch(g: GroupRow, patch: Obj): Obj {
    const b = { ...this.body(g), ...patch };
    this.repo.tx(() => this.putGroup(b, g.created_at));
    return b;
  }

  private putSnapshot(b: Obj, created: number): void {
    this.repo.putGroupSnapshot({
      id: String(b.id),
      project_id: String(b.project_id),
      group_id: String(b.group_id),
      name: String(b.name ?? ''),
      status: String(b.status),
      body: JSON.stringify(b),
      created_at: created,
    });
  }
  patchSnapshot(s: GroupSnapshotRow, patch: Obj): Obj {
    const b = { ...this.body(s), ...patch };
    this.repo.tx(() => this.putSnapshot(b, s.created_at));
    return b;
  }

  private checkQuota(project: string): void {
    const limit = this.volumes.quotas(project).groups;
    const used = this.repo.count(project);
    if (limit >= 0 && used + 1 > limit)
      throw new TooLarge(`Maximum number of groups allowed (${limit}) exceeded for quota 'groups'.`);
  }

  /** A new group's document (not written): its type and volume types checked. */
  private draft(auth: AuthContext, project: string, o: Obj, from: Obj = {}): Obj {
    const now = this.now();
    return {
      id: this.opts.ids.uuid(),
      name: optStr(o, 'name') ?? '',
      description: optStr(o, 'description') ?? null,
      status: 'available',
      availability_zone: this.opts.site,
      created_at: novaTime(now),
      group_type: null,
      volume_types: [],
      group_snapshot_id: null,
      source_group_id: null,
      replication_status: 'disabled',
      project_id: project,
      user_id: auth.userId,
      ...from,
    };
  }

  /** POST /groups: `group_type` and `volume_types` are required, and must be usable by the caller. */
  create(auth: AuthContext, project: string, o: Obj): Obj {
    const typeId = optStr(o, 'group_type');
    if (!typeId)
      throw new BadRequest('Invalid input received: group_type must be provided to create a group.');
    const raw = o.volume_types;
    if (!Array.isArray(raw) || raw.length === 0 || raw.some((t) => typeof t !== 'string'))
      throw new BadRequest('Invalid input received: volume_types must be provided to create a group.');
    const gt = this.opts.types.find(auth, typeId);
    const vts = (raw as string[]).map((name) => {
      const t = this.volumes.type(name);
      if (!t || !this.volumes.mayUseType(auth, t))
        throw new NotFound(`Volume type ${name} could not be found.`);
      return String(t.id);
    });
    const b = this.draft(auth, project, o, { group_type: gt.id, volume_types: [...new Set(vts)] });
    this.repo.tx(() => {
      this.checkQuota(project);
      this.putGroup(b, this.now());
    });
    return b;
  }

  /**
   * A volume create naming a group: the group must be visible, available and here, and the volume's
   * type (`typeRef`, or the default) one of the group's volume types. Returns the group's id.
   */
  checkJoin(auth: AuthContext, groupId: string, typeRef: string | undefined): GroupRow {
    const g = this.visible(auth, groupId);
    const b = this.body(g);
    if (g.status !== 'available')
      throw new BadRequest(
        `Invalid group: group ${groupId} status must be available, but it is ${g.status}.`,
      );
    const t = typeRef ? this.volumes.type(typeRef) : this.volumes.type(DEFAULT_TYPE_ID);
    if (t && !(b.volume_types as string[]).includes(String(t.id)))
      throw new BadRequest(
        `Invalid input received: volume type ${String(t.id)} is not one of the volume types of group ${groupId}.`,
      );
    return g;
  }

  /** PUT /groups/{id}: name, description, add_volumes and remove_volumes ("id,id"). */
  update(auth: AuthContext, g: GroupRow, o: Obj): void {
    const add = idList(o, 'add_volumes');
    const remove = idList(o, 'remove_volumes');
    const has = (k: string) => k in o && o[k] !== null;
    if (!has('name') && !has('description') && !add.length && !remove.length)
      throw new BadRequest(
        'Name, description, add_volumes, and remove_volumes can not be all empty in the request body.',
      );
    if (g.status !== 'available')
      throw new BadRequest(
        `Invalid group: group ${g.id} status must be available to update, but it is ${g.status}.`,
      );
    const b = this.body(g);
    const types = b.volume_types as string[];
    const adding = add.map((id) => {
      const v = this.volumes.visibleVolume(auth, id);
      const vb = this.volumes.body(v);
      if (vb.group_id === g.id)
        throw new BadRequest(`Invalid volume: volume ${id} is already in group ${g.id}.`);
      if (vb.group_id)
        throw new BadRequest(`Invalid volume: volume ${id} is already in group ${String(vb.group_id)}.`);
      if (!['available', 'in-use'].includes(v.status))
        throw new BadRequest(
          `Invalid volume: volume ${id} status must be available or in-use, but it is ${v.status}.`,
        );
      if (!types.includes(String(vb.volume_type_id)))
        throw new BadRequest(
          `Invalid volume: volume ${id}'s type is not one of the volume types of group ${g.id}.`,
        );
      if (!this.volumes.owns(v.owner))
        throw new BadRequest(
          `Invalid volume: volume ${id} is in availability zone ${v.owner}, not ${this.opts.site}.`,
        );
      return v;
    });
    const removing = remove.map((id) => {
      const v = this.volumes.visibleVolume(auth, id);
      if (this.volumes.body(v).group_id !== g.id)
        throw new BadRequest(`Invalid volume: volume ${id} is not in group ${g.id}.`);
      return v;
    });
    this.repo.tx(() => {
      for (const v of adding) this.volumes.patchVolume(v, { group_id: g.id });
      for (const v of removing) this.volumes.patchVolume(v, { group_id: null });
      const next: Obj = { ...b };
      if (has('name')) next.name = optStr(o, 'name') ?? '';
      if ('description' in o) next.description = optStr(o, 'description') ?? null;
      this.putGroup(next, g.created_at);
    });
  }

  /** The group's "delete" action: its volumes go too with delete-volumes, else it must be empty. */
  remove(g: GroupRow, deleteVolumes: boolean): void {
    const vols = this.volumesOf(g.id);
    if (vols.length && !deleteVolumes)
      throw new BadRequest(
        `Invalid group: group ${g.id} still contains volumes. The delete-volumes flag is required to delete it.`,
      );
    if (this.repo.groupSnapshotsOf(g.id).length)
      throw new BadRequest(`Invalid group: group ${g.id} has group snapshots; delete them first.`);
    if (['creating', 'deleting', 'updating'].includes(g.status))
      throw new BadRequest(`Invalid group: group ${g.id} status must not be ${g.status} to delete it.`);
    for (const v of vols) {
      if (this.volumes.attachmentsOfVolume(v.id).length || v.status === 'in-use')
        throw new BadRequest(`Invalid volume: volume ${v.id} in group ${g.id} is attached.`);
      if (this.volumes.repo.hasSnapshots(v.id))
        throw new BadRequest(
          `Invalid volume: volume ${v.id} in group ${g.id} still has dependent snapshots.`,
        );
    }
    this.repo.tx(() => {
      for (const v of vols) this.volumes.deleteVolume(v, false, { inGroup: true });
      this.repo.removeGroup(g.id);
    });
  }

  /** POST /group_snapshots: a snapshot of every volume of the group, all written with the group snapshot's id. */
  async snapshot(auth: AuthContext, g: GroupRow, o: Obj): Promise<Obj> {
    if (g.status !== 'available')
      throw new BadRequest(`Invalid group: group ${g.id} status must be available, but it is ${g.status}.`);
    const vols = this.volumesOf(g.id);
    const now = this.now();
    const b: Obj = {
      id: this.opts.ids.uuid(),
      group_id: g.id,
      group_type_id: this.body(g).group_type,
      status: 'creating',
      created_at: novaTime(now),
      name: optStr(o, 'name') ?? '',
      description: optStr(o, 'description') ?? null,
      project_id: g.project_id,
    };
    this.repo.tx(() => this.putSnapshot(b, now));
    const made = await Promise.allSettled(
      vols.map((v) => this.volumes.createSnapshot(auth, v, { force: true }, { group_snapshot_id: b.id })),
    );
    const failed = made.some((m) => m.status === 'rejected' || m.value.status !== 'available');
    for (const m of made)
      if (m.status === 'rejected') this.opts.log.warn({ err: String(m.reason) }, 'group snapshot');
    const cur = this.repo.groupSnapshot(String(b.id));
    if (cur?.status === 'creating')
      return this.patchSnapshot(cur, { status: failed ? 'error' : 'available' });
    return b;
  }

  /** Deletes a group snapshot and the volume snapshots it made. */
  removeSnapshot(s: GroupSnapshotRow): void {
    if (!['available', 'error'].includes(s.status))
      throw new BadRequest(
        `Invalid group snapshot: group snapshot ${s.id} status must be available or error, but it is ${s.status}.`,
      );
    const snaps = this.repo.snapshotsOf(s.id);
    this.repo.tx(() => {
      for (const x of snaps) this.volumes.deleteSnapshot(x);
      this.repo.removeGroupSnapshot(s.id);
    });
  }

  /**
   * groups/action create-from-src: a new group of the source's types whose volumes are clones of the
   * source group's, or made from the group snapshot's snapshots. The 202 answers once the copies are done.
   */
  async createFrom(
    auth: AuthContext,
    project: string,
    o: Obj,
    src: { group?: GroupRow; groupSnapshot?: GroupSnapshotRow },
  ): Promise<Obj> {
    const source = src.group ?? this.repo.group(String(src.groupSnapshot!.group_id));
    if (!source) throw new NotFound(`Group ${String(src.groupSnapshot?.group_id)} could not be found.`);
    const from = src.group ?? src.groupSnapshot!;
    if (from.status !== 'available')
      throw new BadRequest(`Invalid source: ${from.id} status must be available, but it is ${from.status}.`);
    const sb = this.body(source);
    const b = this.draft(auth, project, o, {
      status: 'creating',
      group_type: sb.group_type,
      volume_types: sb.volume_types,
      group_snapshot_id: src.groupSnapshot?.id ?? null,
      source_group_id: src.group?.id ?? null,
    });
    const created = this.now();
    this.repo.tx(() => {
      this.checkQuota(project);
      this.putGroup(b, created);
    });
    const inputs: Obj[] = src.groupSnapshot
      ? this.repo.snapshotsOf(src.groupSnapshot.id).map((s) => ({ snapshot_id: s.id }))
      : this.volumesOf(source.id).map((v) => ({
          source_volid: v.id,
          volume_type: String(this.volumes.body(v).volume_type_id),
        }));
    let failed = false;
    for (const input of inputs) {
      try {
        const v = await this.volumes.createVolume(auth, project, input, { groupId: String(b.id) });
        if (v.status !== 'available') failed = true;
      } catch (e) {
        failed = true;
        this.opts.log.warn({ group: b.id, err: String(e) }, 'group create-from-src: a volume failed');
      }
    }
    const cur = this.repo.group(String(b.id));
    if (cur?.status === 'creating') return this.patch(cur, { status: failed ? 'error' : 'available' });
    return b;
  }
}
