/**
 * @module QoS specs (Cinder's qos-specs): a consumer (front-end, back-end or both) and key/value
 * specs, associated with volume types (a type carries one qos_specs_id). A spec belongs to the site
 * that made it; associating writes the type, so it runs where the type lives (the routes forward).
 * Atoll's drivers do not throttle: the specs are kept and shown for the tools that manage them.
 * https://docs.openstack.org/api-ref/block-storage/v3/#quality-of-service-qos-specs-qos-specs
 */
import { BadRequest, Conflict, NotFound } from '../../../core/errors.ts';
import type { Ids } from '../../../core/ports.ts';
import type { Obj } from '../../common/input.ts';
import type { VolumeRepository } from '../store/volumes.ts';
import type { VolumeService } from './volumes.ts';
import { stringValues } from './volumes.ts';

export interface Qos {
  id: string;
  name: string;
  consumer: string;
  specs: Record<string, string>;
}
const CONSUMERS = ['front-end', 'back-end', 'both'];

export class QosSpecs {
  constructor(private readonly opts: { repo: VolumeRepository; volumes: VolumeService; ids: Ids }) {}

  /** Every spec, by name. */
  all(): Qos[] {
    return this.opts.repo.qosBodies().map((b) => JSON.parse(b) as Qos);
  }

  /** A spec with the site that owns it; 404 when there is none. */
  find(id: string): { q: Qos; owner: string } {
    const row = this.opts.repo.qos(id);
    if (!row) throw new NotFound(`QoS spec ${id} could not be found.`);
    return { q: JSON.parse(row.body) as Qos, owner: row.owner };
  }

  /** The volume types associated with a spec. */
  associated(id: string): Obj[] {
    return this.opts.volumes.types().filter((t) => t.qos_specs_id === id);
  }

  /** `o` is the request's qos_specs: name, consumer, and every other key a spec. */
  create(o: Obj): Qos {
    const { name, consumer, ...specs } = o;
    if (typeof name !== 'string' || !name.trim())
      throw new BadRequest('Invalid input received: name is required.');
    const c = consumer === undefined ? 'back-end' : String(consumer);
    if (!CONSUMERS.includes(c))
      throw new BadRequest(`Invalid input received: consumer ${c} is not one of ${CONSUMERS.join(', ')}.`);
    if (this.all().some((x) => x.name === name)) throw new Conflict(`QoS Specs ${name} already exists.`);
    const q: Qos = { id: this.opts.ids.uuid(), name, consumer: c, specs: stringValues(specs) };
    this.put(q);
    return q;
  }

  /** Sets specs (and the consumer, if named); the answer is what was set. */
  set(q: Qos, set: Obj): Record<string, string> {
    const { consumer, ...specs } = set;
    const next: Qos = { ...q, specs: { ...q.specs, ...stringValues(specs) } };
    if (consumer !== undefined) {
      if (!CONSUMERS.includes(String(consumer)))
        throw new BadRequest(`Invalid input received: consumer ${String(consumer)}.`);
      next.consumer = String(consumer);
    }
    this.put(next);
    return stringValues(set);
  }

  unset(q: Qos, keys: string[]): void {
    const missing = keys.find((k) => !Object.hasOwn(q.specs, k));
    if (missing) throw new NotFound(`QoS spec ${q.id} has no key ${missing}.`);
    this.put({ ...q, specs: Object.fromEntries(Object.entries(q.specs).filter(([k]) => !keys.includes(k))) });
  }

  /** Deletes a spec; while types use it, only with `force` (which disassociates them). */
  delete(q: Qos, force: boolean): void {
    const { repo, volumes } = this.opts;
    const types = this.associated(q.id);
    if (types.length && !force) throw new BadRequest(`QoS Specs ${q.id} is still associated with entities.`);
    repo.tx(() => {
      for (const t of types) volumes.patchType(String(t.id), { qos_specs_id: null });
      repo.removeQos(q.id);
    });
  }

  associate(q: Qos, t: Obj): void {
    if (t.qos_specs_id && t.qos_specs_id !== q.id)
      throw new BadRequest(`Volume type ${String(t.id)} is already associated with another qos specs.`);
    this.opts.volumes.patchType(String(t.id), { qos_specs_id: q.id });
  }

  disassociate(q: Qos, t: Obj): void {
    if (t.qos_specs_id === q.id) this.opts.volumes.patchType(String(t.id), { qos_specs_id: null });
  }

  /** Every type of the spec; they must all live on this site (`owns`). */
  disassociateAll(q: Qos, owns: (owner: string) => boolean): void {
    const { repo, volumes } = this.opts;
    const types = this.associated(q.id);
    const elsewhere = types.find((t) => !owns(String(volumes.typeOwner(String(t.id)))));
    if (elsewhere)
      throw new Conflict(`Volume type ${String(elsewhere.id)} lives at another site: disassociate it there.`);
    repo.tx(() => {
      for (const t of types) volumes.patchType(String(t.id), { qos_specs_id: null });
    });
  }

  private put(q: Qos): void {
    this.opts.repo.putQos({ id: q.id, name: q.name, body: JSON.stringify(q) });
  }
}
