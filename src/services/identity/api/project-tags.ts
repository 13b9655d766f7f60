/**
 * @module Project tags one by one (Keystone's project tags API): GET/PUT/DELETE
 * /v3/projects/{id}/tags and GET/HEAD/PUT/DELETE /v3/projects/{id}/tags/{tag}. The tags live in the
 * project row, so a change is a project update at the project's owner (forwarded there), with the
 * same rules as PATCH's `tags`: at most 80, each 1-255 characters without '/' or ','.
 * https://docs.openstack.org/api-ref/identity/v3/#project-tags
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { BadRequest, Forbidden, NotFound } from '../../../core/errors.ts';
import { isObj } from '../../common/input.ts';
import type { IdentityContext } from '../context.ts';
import { notFound } from '../domain/common.ts';
import { parseTags, setProjectTags, tagsOf } from '../domain/projects.ts';
import type { ProjectRow } from '../store/schema.ts';
import { domainAdminWrite, param } from './common.ts';
import { canReadProject } from './projects.ts';

export function registerProjectTagRoutes(app: FastifyInstance, ic: IdentityContext): void {
  const { site, reader } = ic;
  const base = '/identity/v3/projects/:project_id/tags';
  const load = (req: FastifyRequest): ProjectRow => {
    const id = param(req, 'project_id');
    const p = reader.project(id);
    if (!p || p.is_domain) throw notFound('project', id);
    return p;
  };
  /** The tag in the path, held to the tag rules (a 400 otherwise). */
  const tagParam = (req: FastifyRequest): string => parseTags([param(req, 'tag')])![0]!;
  const save = (p: ProjectRow, tags: string[]): string[] => setProjectTags(ic, p, tags);
  const readable = (req: FastifyRequest): ProjectRow => {
    const ctx = site.authenticate(req);
    const p = load(req);
    if (!canReadProject(ctx, p)) throw new Forbidden();
    return p;
  };

  app.get(base, async (req) => ({ tags: tagsOf(readable(req)) }));
  app.get(`${base}/:tag`, async (req, reply) => {
    const p = readable(req);
    if (!tagsOf(p).includes(tagParam(req))) throw new NotFound(`Could not find tag.`);
    return reply.code(204).send();
  });
  app.put(
    base,
    domainAdminWrite(ic, load, async (p, req) => {
      const tags = isObj(req.body) ? parseTags(req.body.tags) : undefined;
      if (!tags) throw new BadRequest('"tags" (a list) is required.');
      return { tags: save(p, tags) };
    }),
  );
  app.put(
    `${base}/:tag`,
    domainAdminWrite(ic, load, async (p, req, reply) => {
      const tag = tagParam(req);
      const cur = tagsOf(p);
      if (!cur.includes(tag)) save(p, [...cur, tag]);
      // 201 with no body, as the API reference says.
      return reply.code(201).send();
    }),
  );
  app.delete(
    base,
    domainAdminWrite(ic, load, async (p, _req, reply) => {
      save(p, []);
      return reply.code(204).send();
    }),
  );
  app.delete(
    `${base}/:tag`,
    domainAdminWrite(ic, load, async (p, req, reply) => {
      const tag = tagParam(req);
      const cur = tagsOf(p);
      if (!cur.includes(tag)) throw new NotFound('Could not find tag.');
      save(
        p,
        cur.filter((t) => t !== tag),
      );
      return reply.code(204).send();
    }),
  );
}
