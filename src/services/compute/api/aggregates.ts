/**
 * @module Host aggregates (os-aggregates, admin only): create, list, show, update, delete, and the
 * add_host, remove_host and set_metadata actions, over this site's compute hosts.
 * https://docs.openstack.org/api-ref/compute/#host-aggregates-os-aggregates
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { requireAdmin } from '../../../core/auth.ts';
import { BadRequest, Conflict, NotFound } from '../../../core/errors.ts';
import { isObj, novaTime, wrapped } from '../../common/input.ts';
import type { Obj } from '../../common/input.ts';
import type { ComputeService } from '../service.ts';
import { AggregateStore } from '../store/aggregates.ts';
import type { AggregateRow } from '../store/schema.ts';
import { atLeast } from './microversion.ts';

const P = '/compute/v2.1';
const time = (ms: number | null) => (ms === null ? null : novaTime(ms).replace('Z', '.000000'));

/** Nova's aggregate; the create answer has neither hosts nor metadata, uuid comes with 2.41. */
function view(a: AggregateRow, req: FastifyRequest, full = true): Obj {
  const v: Obj = {
    id: a.num,
    name: a.name,
    availability_zone: a.availability_zone,
    created_at: time(a.created_at),
    updated_at: time(a.updated_at),
    deleted: false,
    deleted_at: null,
  };
  if (full) {
    v.hosts = JSON.parse(a.hosts) as string[];
    v.metadata = JSON.parse(a.metadata) as Obj;
  }
  if (atLeast(req, '2.41')) v.uuid = a.id;
  return v;
}

/** A name or zone of 1 to 255 characters (Nova's schema), trimmed. */
function name255(b: Obj, field: string, required: boolean): string | null | undefined {
  const v = b[field];
  if (v === undefined || (v === null && !required))
    return required ? badName(field) : (v as undefined | null);
  if (typeof v !== 'string' || v.trim().length < 1 || v.length > 255) return badName(field);
  return v.trim();
}
const badName = (field: string): never => {
  throw new BadRequest(`Invalid input for field/attribute ${field}.`);
};

export function registerAggregateRoutes(app: FastifyInstance, svc: ComputeService): void {
  const { ctx } = svc;
  const store = new AggregateStore(ctx.store, ctx.name);
  type R = FastifyRequest<{ Params: { id: string } }>;
  const find = (req: R): AggregateRow => {
    requireAdmin(ctx.authenticate(req));
    const a = store.get(req.params.id);
    if (!a) throw new NotFound(`Aggregate ${req.params.id} could not be found.`);
    return a;
  };
  const uniqueName = (name: string, self?: AggregateRow) => {
    const other = store.byName(name);
    if (other && other.num !== self?.num) throw new Conflict(`Aggregate ${name} already exists.`);
  };

  app.get(`${P}/os-aggregates`, async (req) => {
    requireAdmin(ctx.authenticate(req));
    return { aggregates: store.list().map((a) => view(a, req)) };
  });
  app.post(`${P}/os-aggregates`, async (req) => {
    requireAdmin(ctx.authenticate(req));
    const b = wrapped(req.body, 'aggregate');
    const name = name255(b, 'name', true)!;
    const zone = name255(b, 'availability_zone', false) ?? null;
    uniqueName(name);
    const a = store.create({
      id: ctx.ids.uuid(),
      owner: ctx.name,
      name,
      availability_zone: zone,
      metadata: zone ? JSON.stringify({ availability_zone: zone }) : '{}',
      hosts: '[]',
      created_at: ctx.clock.now(),
      updated_at: null,
    });
    return { aggregate: view(a, req, false) };
  });
  app.get(`${P}/os-aggregates/:id`, async (req: R) => ({ aggregate: view(find(req), req) }));
  app.put(`${P}/os-aggregates/:id`, async (req: R) => {
    const a = find(req);
    const b = wrapped(req.body, 'aggregate');
    const name = name255(b, 'name', false);
    const zone = name255(b, 'availability_zone', false);
    if (name === undefined && zone === undefined)
      throw new BadRequest('Invalid input for field/attribute aggregate.');
    if (name) uniqueName(name, a);
    const next = { ...a, updated_at: ctx.clock.now() };
    if (name) next.name = name;
    if (zone !== undefined) next.availability_zone = zone;
    store.update(next);
    return { aggregate: view(next, req) };
  });
  app.delete(`${P}/os-aggregates/:id`, async (req: R, reply) => {
    const a = find(req);
    if ((JSON.parse(a.hosts) as string[]).length)
      throw new BadRequest('Cannot remove host aggregate with hosts.');
    store.remove(a.num);
    return reply.code(200).send();
  });
  app.post(`${P}/os-aggregates/:id/action`, async (req: R) => {
    const a = find(req);
    const body = req.body;
    if (!isObj(body) || Object.keys(body).length !== 1)
      throw new BadRequest('The action body must name one action.');
    const [action, arg] = Object.entries(body)[0]!;
    if (!isObj(arg)) throw new BadRequest(`Invalid input for field/attribute ${action}.`);
    const hosts = JSON.parse(a.hosts) as string[];
    const next = { ...a, updated_at: ctx.clock.now() };
    if (action === 'add_host' || action === 'remove_host') {
      const host = typeof arg.host === 'string' ? arg.host : badName('host');
      if (!svc.repo.hosts().some((h) => h.id === host))
        throw new NotFound(`Compute host ${host} could not be found.`);
      const member = hosts.includes(host);
      if (action === 'add_host' && member) throw new Conflict(`Aggregate ${a.num} already has host ${host}.`);
      if (action === 'remove_host' && !member)
        throw new NotFound(`Cannot remove host ${host} in aggregate ${a.num}: not found.`);
      next.hosts = JSON.stringify(action === 'add_host' ? [...hosts, host] : hosts.filter((h) => h !== host));
    } else if (action === 'set_metadata') {
      const md = arg.metadata;
      if (!isObj(md)) throw new BadRequest('Invalid input for field/attribute metadata.');
      const cur = JSON.parse(a.metadata) as Obj;
      for (const [k, v] of Object.entries(md)) {
        if (k.length < 1 || k.length > 255)
          throw new BadRequest('Invalid input for field/attribute metadata.');
        if (v === null) delete cur[k];
        else if (typeof v === 'string' && v.length <= 255) cur[k] = v;
        else throw new BadRequest(`Invalid input for field/attribute metadata. Value of ${k} is invalid.`);
      }
      next.metadata = JSON.stringify(cur);
      if ('availability_zone' in md) next.availability_zone = (md.availability_zone as string | null) ?? null;
    } else throw new BadRequest(`There is no such action: ${action}`);
    store.update(next);
    return { aggregate: view(next, req) };
  });
}
