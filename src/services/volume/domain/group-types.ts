/**
 * @module Group types (Cinder 3.11+): the built-in default one, the same at every site, and stored
 * ones, each belonging to the site that made it. Names are unique; group specs are string pairs.
 * https://docs.openstack.org/api-ref/block-storage/v3/#group-types-groups
 */
import type { AuthContext } from '../../../core/auth.ts';
import { BadRequest, Conflict, NotFound } from '../../../core/errors.ts';
import type { Ids } from '../../../core/ports.ts';
import { isObj, optBool, optStr } from '../../common/input.ts';
import type { Obj } from '../../common/input.ts';
import type { VolumeRepository } from '../store/volumes.ts';
import { stringValues, uuidFrom } from './volumes.ts';

export interface GroupType {
  id: string;
  name: string;
  description: string | null;
  is_public: boolean;
  group_specs: Record<string, string>;
}

const DEFAULT_NAME = 'default_group_type';
export const DEFAULT_GROUP_TYPE: GroupType = {
  id: uuidFrom('group-type', DEFAULT_NAME),
  name: DEFAULT_NAME,
  description: 'Default group type',
  is_public: true,
  group_specs: {},
};

/** A request's group specs: an object of strings (values are turned into strings, as Cinder does). */
export function groupSpecsOf(v: unknown): Record<string, string> {
  if (!isObj(v)) throw new BadRequest('Malformed request body: "group_specs" must be an object.');
  return stringValues(v);
}

export class GroupTypes {
  constructor(private readonly opts: { repo: VolumeRepository; ids: Ids }) {}

  /** The default type, then the stored ones by name. */
  all(): GroupType[] {
    return [DEFAULT_GROUP_TYPE, ...this.opts.repo.groupTypeBodies().map((b) => JSON.parse(b) as GroupType)];
  }

  /** By id or name; private ones are the admins'. 404 otherwise. */
  find(auth: AuthContext, id: string): GroupType {
    const t = this.all().find((x) => x.id === id || x.name === id);
    if (!t || (!auth.isAdmin && !t.is_public)) throw new NotFound(`Group type ${id} could not be found.`);
    return t;
  }

  /** The site a type's writes go to; the default type cannot be changed. */
  ownerOf(t: GroupType): string {
    const owner = this.opts.repo.groupTypeOwner(t.id);
    if (!owner) throw new BadRequest('The default group type cannot be changed.');
    return owner;
  }

  create(o: Obj): GroupType {
    const name = optStr(o, 'name');
    if (!name?.trim()) throw new BadRequest('Group type name can not be empty.');
    if (this.all().some((t) => t.name === name)) throw new Conflict(`Group Type ${name} already exists.`);
    const t: GroupType = {
      id: this.opts.ids.uuid(),
      name,
      description: optStr(o, 'description') ?? null,
      is_public: optBool(o, 'is_public') ?? true,
      group_specs: o.group_specs === undefined ? {} : groupSpecsOf(o.group_specs),
    };
    this.put(t);
    return t;
  }

  update(t: GroupType, o: Obj): GroupType {
    const name = optStr(o, 'name');
    if (name !== undefined && name !== t.name && this.all().some((x) => x.name === name))
      throw new Conflict(`Group Type ${name} already exists.`);
    const next: GroupType = {
      ...t,
      ...(name !== undefined ? { name } : {}),
      ...('description' in o ? { description: optStr(o, 'description') ?? null } : {}),
      ...(optBool(o, 'is_public') !== undefined ? { is_public: optBool(o, 'is_public')! } : {}),
    };
    this.put(next);
    return next;
  }

  remove(t: GroupType): void {
    if (this.opts.repo.groupTypeInUse(t.id))
      throw new BadRequest(
        `Target group type is still in use. Group Type ${t.id} deletion is not allowed with groups present with the type.`,
      );
    this.opts.repo.removeGroupType(t.id);
  }

  /** Adds or replaces group specs. */
  setSpecs(t: GroupType, specs: Record<string, string>): void {
    this.put({ ...t, group_specs: { ...t.group_specs, ...specs } });
  }

  removeSpec(t: GroupType, key: string): void {
    if (!Object.hasOwn(t.group_specs, key))
      throw new NotFound(`Group type ${t.id} has no group spec with key ${key}.`);
    const next = { ...t.group_specs };
    delete next[key];
    this.put({ ...t, group_specs: next });
  }

  private put(t: GroupType): void {
    this.opts.repo.putGroupType({ id: t.id, name: t.name, body: JSON.stringify(t) });
  }
}
