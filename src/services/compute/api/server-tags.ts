/**
 * @module Server tags (2.26): `GET/PUT/DELETE /servers/{id}/tags[/{tag}]`, tags at create (2.52) and
 * the `tags`, `tags-any`, `not-tags`, `not-tags-any` list filters. As Nova: a tag is 1 to 60
 * characters without `/` or `,`, a server has at most 50, and a write needs the server at rest in one
 * of the states Nova lists (409 otherwise). Writes are forwarded to the server's owner.
 * https://docs.openstack.org/api-ref/compute/#server-tags-servers-tags
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { canRead, canWrite } from '../../../core/auth.ts';
import type { AuthContext } from '../../../core/auth.ts';
import { BadRequest, Conflict, Forbidden, NotFound } from '../../../core/errors.ts';
import { isObj } from '../../common/input.ts';
import { forwardIfRemote } from '../../common/owner.ts';
import type { ComputeService } from '../service.ts';
import type { ServerRow } from '../store/schema.ts';
import { atLeast } from './microversion.ts';

const P = '/compute/v2.1';
export const MAX_TAGS = 50;
/** The vm_states Nova lets tags change in. */
const TAG_STATES = ['active', 'paused', 'rescued', 'shelved', 'shelved_offloaded', 'stopped', 'suspended'];

export function checkTag(t: unknown): string {
  if (typeof t !== 'string' || t.length < 1 || t.length > 60 || /[,/]/.test(t))
    throw new BadRequest(`Invalid input for field/attribute tags. Value: ${String(t)}.`);
  return t;
}

/** A list of tags as a body carries it: unique, at most MAX_TAGS. */
export function checkTags(v: unknown): string[] {
  if (!Array.isArray(v)) throw new BadRequest('Invalid input for field/attribute tags.');
  const tags = [...new Set(v.map(checkTag))];
  if (tags.length > MAX_TAGS)
    throw new BadRequest(`The number of tags exceeded the per-server limit ${MAX_TAGS}`);
  return tags;
}

export const tagsOf = (s: ServerRow): string[] => JSON.parse(s.tags ?? '[]') as string[];

/** Nova's list filters: tags (all of), tags-any, not-tags (not all of), not-tags-any; comma lists. */
export function tagFilter(q: Record<string, string>): ((s: ServerRow) => boolean) | undefined {
  const list = (k: string) => (q[k] === undefined ? undefined : q[k].split(',').filter(Boolean));
  const all = list('tags');
  const any = list('tags-any');
  const notAll = list('not-tags');
  const notAny = list('not-tags-any');
  if (!all && !any && !notAll && !notAny) return undefined;
  return (s) => {
    const t = new Set(tagsOf(s));
    if (all && !all.every((x) => t.has(x))) return false;
    if (any && !any.some((x) => t.has(x))) return false;
    if (notAll?.length && notAll.every((x) => t.has(x))) return false;
    if (notAny && notAny.some((x) => t.has(x))) return false;
    return true;
  };
}

export function registerServerTagRoutes(app: FastifyInstance, svc: ComputeService): void {
  const { ctx, repo } = svc;
  type R = FastifyRequest<{ Params: { id: string; tag?: string } }>;
  const server = (req: FastifyRequest, auth: AuthContext, id: string, write: boolean): ServerRow => {
    if (!atLeast(req, '2.26')) throw new NotFound('The resource could not be found.');
    const s = repo.server(id);
    if (!s || !canRead(auth, s.project_id)) throw new NotFound(`Instance ${id} could not be found.`);
    if (!write) return s;
    if (!canWrite(auth, s.project_id)) throw new Forbidden();
    if (!TAG_STATES.includes(s.vm_state))
      throw new Conflict(`Cannot 'update tags' instance ${s.id} while it is in vm_state ${s.vm_state}`);
    return s;
  };
  const save = (s: ServerRow, tags: string[]) => svc.update(s.id, { tags: JSON.stringify(tags) });

  app.get(`${P}/servers/:id/tags`, async (req: R) => {
    const s = server(req, ctx.authenticate(req), req.params.id, false);
    return { tags: tagsOf(s) };
  });
  app.put(`${P}/servers/:id/tags`, async (req: R, reply) => {
    const s = server(req, ctx.authenticate(req), req.params.id, true);
    const fwd = forwardIfRemote(ctx, s.owner, req, reply);
    if (fwd) return fwd;
    if (!isObj(req.body) || !('tags' in req.body))
      throw new BadRequest("Invalid input for field/attribute tags. 'tags' is a required property");
    const tags = checkTags(req.body.tags);
    save(s, tags);
    return { tags };
  });
  app.delete(`${P}/servers/:id/tags`, async (req: R, reply) => {
    const s = server(req, ctx.authenticate(req), req.params.id, true);
    const fwd = forwardIfRemote(ctx, s.owner, req, reply);
    if (fwd) return fwd;
    save(s, []);
    return reply.code(204).send();
  });
  app.get(`${P}/servers/:id/tags/:tag`, async (req: R, reply) => {
    const s = server(req, ctx.authenticate(req), req.params.id, false);
    const tag = String(req.params.tag);
    if (!tagsOf(s).includes(tag)) throw new NotFound(`Tag ${tag} could not be found for instance ${s.id}.`);
    return reply.code(204).send();
  });
  app.put(`${P}/servers/:id/tags/:tag`, async (req: R, reply) => {
    const s = server(req, ctx.authenticate(req), req.params.id, true);
    const fwd = forwardIfRemote(ctx, s.owner, req, reply);
    if (fwd) return fwd;
    const tag = checkTag(req.params.tag);
    const tags = tagsOf(s);
    if (tags.includes(tag)) return reply.code(204).send();
    if (tags.length >= MAX_TAGS)
      throw new BadRequest(`The number of tags exceeded the per-server limit ${MAX_TAGS}`);
    save(s, [...tags, tag]);
    reply.header('location', `${ctx.publicUrl()}${P}/servers/${s.id}/tags/${encodeURIComponent(tag)}`);
    return reply.code(201).send();
  });
  app.delete(`${P}/servers/:id/tags/:tag`, async (req: R, reply) => {
    const s = server(req, ctx.authenticate(req), req.params.id, true);
    const fwd = forwardIfRemote(ctx, s.owner, req, reply);
    if (fwd) return fwd;
    const tag = String(req.params.tag);
    const tags = tagsOf(s);
    if (!tags.includes(tag)) throw new NotFound(`Tag ${tag} could not be found for instance ${s.id}.`);
    save(
      s,
      tags.filter((t) => t !== tag),
    );
    return reply.code(204).send();
  });
}
