/**
 * @module The routes every Neutron collection shares (list, show, create, bulk create, update, delete)
 * for one resource, and what they read of a request: the caller, the target project. Reads are
 * answered from this site's replicas; a write to a row another site owns is forwarded to that owner.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { AuthContext } from '../../../core/auth.ts';
import { requireAdmin, requireMember, requireReader } from '../../../core/auth.ts';
import { BadRequest } from '../../../core/errors.ts';
import type { ServiceContext } from '../../common/module.ts';
import { isObj, optStr, wrapped } from '../../common/input.ts';
import type { Obj } from '../../common/input.ts';
import { forwardIfRemote } from '../../common/owner.ts';
import { canSee, visible, writable } from '../domain/access.ts';
import type { StoredRow } from '../domain/deps.ts';
import type { NetworkService } from '../service.ts';
import type { ResourceKind } from '../store/schema.ts';
import { listBody, multiQuery, trimFields } from './listing.ts';
import { staleMarks } from '../../common/owner.ts';

export const V2 = '/network/v2.0';

/** What a resource's route file gives the shared routes. */
export interface Resource {
  kind: ResourceKind;
  path: string;
  singular: string;
  collection: string;
  label: string;
  /** The body the caller sees (some attributes are an admin's only). */
  render(r: StoredRow, auth?: AuthContext): Obj;
  /** The new resource's body, or the reply when the create was forwarded to another site. */
  create(
    auth: AuthContext,
    project: string,
    o: Obj,
    req: FastifyRequest,
    reply: FastifyReply,
  ): Promise<Obj | FastifyReply> | Obj;
  update(auth: AuthContext, r: StoredRow, o: Obj): Obj | Promise<Obj>;
  remove(auth: AuthContext, r: StoredRow): void;
  /** Runs before a list (security groups: make the caller's default group first). */
  beforeList?(auth: AuthContext): void;
}

/** The project a create is for: the caller's, or (admin only) the one the body names. */
export function projectFor(auth: AuthContext, o: Obj): string {
  const p = requireMember(auth);
  const asked = optStr(o, 'project_id') ?? optStr(o, 'tenant_id');
  if (asked && asked !== p) {
    requireAdmin(auth);
    return asked;
  }
  return p;
}

export function registerResource(
  app: FastifyInstance,
  ctx: ServiceContext,
  svc: NetworkService,
  res: Resource,
): void {
  const d = svc.deps;
  const base = `${V2}/${res.path}`;
  // A replica whose owner is unreachable is shown as last replicated, marked stale (owner.ts).
  const view = (r: StoredRow, auth: AuthContext): Obj => ({
    ...res.render(r, auth),
    ...staleMarks(ctx, r.owner),
  });
  app.get(base, async (req) => {
    const auth = ctx.authenticate(req);
    requireReader(auth);
    res.beforeList?.(auth);
    const q = multiQuery(req.query);
    let rows: StoredRow[];
    // a cheap pre-filter for the common lookups (by id, name, network, device)
    const one = (k: string) => (q.get(k)?.length === 1 ? q.get(k)![0] : undefined);
    const id = one('id');
    const deviceId = one('device_id');
    const networkId = one('network_id');
    if (id) rows = svc.repo.withId(res.kind, id);
    else if (res.kind === 'port' && deviceId !== undefined) rows = svc.repo.portsOfDevice(deviceId);
    else if (res.kind === 'port' && networkId) rows = svc.repo.portsOf(networkId);
    else if (res.kind === 'subnet' && networkId) rows = svc.repo.subnetsOf(networkId);
    else rows = svc.repo.all(res.kind);
    const items = rows.filter((r) => canSee(d, auth, res.kind, r)).map((r) => view(r, auth));
    return listBody(res.collection, items, q, `${ctx.publicUrl()}${base}`);
  });
  app.get(`${base}/:id`, async (req) => {
    const auth = ctx.authenticate(req);
    requireReader(auth);
    const { id } = req.params as { id: string };
    const r = visible(d, auth, res.kind, id, res.label);
    const fields = multiQuery(req.query).get('fields');
    return { [res.singular]: trimFields([view(r, auth)], fields)[0] };
  });
  app.post(base, async (req, reply) => {
    const auth = ctx.authenticate(req);
    const body = req.body;
    if (isObj(body) && Array.isArray(body[res.collection])) {
      // bulk create: each item on its own (not atomic across items, unlike Neutron's native bulk)
      const out: Obj[] = [];
      for (const item of body[res.collection] as unknown[]) {
        if (!isObj(item)) throw new BadRequest(`Invalid ${res.collection} item.`);
        const made = await res.create(auth, projectFor(auth, item), item, req, reply);
        if ((made as unknown) === reply || !isObj(made))
          throw new BadRequest(`Bulk create of ${res.collection} must not span sites.`);
        out.push(made as Obj);
      }
      reply.code(201);
      return { [res.collection]: out };
    }
    const o = wrapped(body, res.singular);
    const made = await res.create(auth, projectFor(auth, o), o, req, reply);
    if ((made as unknown) === reply) return reply;
    reply.code(201);
    return { [res.singular]: made };
  });
  app.put(`${base}/:id`, async (req, reply) => {
    const auth = ctx.authenticate(req);
    const { id } = req.params as { id: string };
    const r = writable(d, auth, res.kind, id, res.label);
    const fwd = forwardIfRemote(ctx, r.owner, req, reply);
    if (fwd) return fwd;
    return { [res.singular]: await res.update(auth, r, wrapped(req.body, res.singular)) };
  });
  app.delete(`${base}/:id`, async (req, reply) => {
    const auth = ctx.authenticate(req);
    const { id } = req.params as { id: string };
    const r = writable(d, auth, res.kind, id, res.label);
    const fwd = forwardIfRemote(ctx, r.owner, req, reply);
    if (fwd) return fwd;
    res.remove(auth, r);
    return reply.code(204).send();
  });
}
