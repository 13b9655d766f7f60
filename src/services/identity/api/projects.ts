/**
 * @module Projects: /v3/projects and /v3/users/{id}/projects. A project belongs to its domain's home
 * site; projects nest (parent_id), a top-level project's parent is its domain. A project acting as a
 * domain (is_domain true) is a domain seen through this API: creating one creates a domain, and
 * show, update, delete and `?is_domain=true` act on domains.
 * https://docs.openstack.org/api-ref/identity/v3/#projects
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { AuthContext } from '../../../core/auth.ts';
import { BadRequest, Forbidden } from '../../../core/errors.ts';
import type { Obj } from '../../common/input.ts';
import { optBool, optStr, reqStr, wrapped } from '../../common/input.ts';
import type { IdentityContext } from '../context.ts';
import { notFound } from '../domain/common.ts';
import { createProject, deleteProject, parseTags, tagsOf, updateProject } from '../domain/projects.ts';
import { createDomain, deleteDomain, updateDomain } from '../domain/domains.ts';
import type { DomainRow, ProjectRow } from '../store/schema.ts';
import {
  callerDomain,
  collection,
  domainAdminWrite,
  extraOf,
  filteredCollection,
  forwardCreateIfRemote,
  forwardIfRemote,
  param,
  parseExtra,
  q,
  queryBool,
  requireUnchanged,
  selfLinks,
} from './common.ts';
import { isCloudAdmin, isDomainReader, listableDomain, requireCloudAdmin } from './policy.ts';

const KNOWN = [
  'id',
  'name',
  'domain_id',
  'parent_id',
  'description',
  'enabled',
  'is_domain',
  'tags',
  'options',
];

export function projectView(ic: IdentityContext, p: ProjectRow): Obj {
  return {
    ...parseExtra(p.extra),
    id: p.id,
    name: p.name,
    domain_id: p.domain_id,
    description: p.description,
    enabled: !!p.enabled,
    parent_id: p.parent_id ?? p.domain_id,
    is_domain: false,
    tags: JSON.parse(p.tags) as string[],
    options: {},
    links: selfLinks(ic, `projects/${p.id}`),
  };
}

/** Read access to one project: cloud admin, a reader of its domain, or a token scoped to it. */
export function canReadProject(ctx: AuthContext, p: ProjectRow): boolean {
  return isCloudAdmin(ctx) || isDomainReader(ctx, p.domain_id) || ctx.projectId === p.id;
}

export function registerProjectRoutes(app: FastifyInstance, ic: IdentityContext): void {
  const { site, reader, repos } = ic;

  const load = (id: string): ProjectRow => {
    const p = reader.project(id);
    if (!p || p.is_domain) throw notFound('project', id);
    return p;
  };

  const tagFilter = (rows: ProjectRow[], qs: Record<string, string>): ProjectRow[] => {
    const split = (s: string | undefined) => (s === undefined ? undefined : s.split(',').filter(Boolean));
    const all = split(qs.tags);
    const any = split(qs['tags-any']);
    const notAll = split(qs['not-tags']);
    const notAny = split(qs['not-tags-any']);
    return rows.filter((p) => {
      const t = new Set(tagsOf(p));
      if (all && !all.every((x) => t.has(x))) return false;
      if (any && !any.some((x) => t.has(x))) return false;
      if (notAll && notAll.length > 0 && notAll.every((x) => t.has(x))) return false;
      if (notAny && notAny.some((x) => t.has(x))) return false;
      return true;
    });
  };

  /** A domain seen as a project acting as a domain (Keystone's is_domain projects). */
  const domainAsProject = (d: DomainRow): Obj => ({
    ...parseExtra(d.extra),
    id: d.id,
    name: d.name,
    domain_id: null,
    parent_id: null,
    description: d.description,
    enabled: !!d.enabled,
    is_domain: true,
    tags: [],
    options: {},
    links: selfLinks(ic, `projects/${d.id}`),
  });
  /** The domain behind a project id, for the project calls on projects acting as domains. */
  const asDomain = (id: string): DomainRow | undefined =>
    reader.project(id) ? undefined : reader.domain(id);

  app.get('/identity/v3/projects', async (req) => {
    const ctx = site.authenticate(req);
    const only = listableDomain(ctx);
    const qs = q(req);
    if (queryBool(qs.is_domain) === true) {
      let ds = repos.domains.all();
      if (only !== undefined) ds = ds.filter((d) => d.id === only);
      if (qs.name !== undefined) ds = ds.filter((d) => d.name === qs.name);
      const en = queryBool(qs.enabled);
      if (en !== undefined) ds = ds.filter((d) => !!d.enabled === en);
      return collection(ic, req, 'projects', ds.map(domainAsProject));
    }
    let rows = repos.projects.all();
    if (only !== undefined) rows = rows.filter((p) => p.domain_id === only);
    if (qs.parent_id !== undefined) rows = rows.filter((p) => (p.parent_id ?? p.domain_id) === qs.parent_id);
    rows = tagFilter(rows, qs);
    return filteredCollection(ic, req, 'projects', rows, ['name', 'domain_id', 'enabled', 'id'], projectView);
  });

  app.get('/identity/v3/projects/:project_id', async (req) => {
    const ctx = site.authenticate(req);
    const asD = asDomain(param(req, 'project_id'));
    if (asD) {
      if (!isDomainReader(ctx, asD.id)) throw new Forbidden();
      return { project: domainAsProject(asD) };
    }
    const p = load(param(req, 'project_id'));
    if (!canReadProject(ctx, p)) throw new Forbidden();
    return { project: projectView(ic, p) };
  });

  app.get('/identity/v3/users/:user_id/projects', async (req) => {
    const ctx = site.authenticate(req);
    const uid = param(req, 'user_id');
    const user = reader.user(uid);
    if (!user) throw notFound('user', uid);
    if (ctx.userId !== uid && !isDomainReader(ctx, user.domain_id)) throw new Forbidden();
    const rows = repos.projects.all().filter((p) => reader.roles(uid, { projectId: p.id }).length > 0);
    return filteredCollection(ic, req, 'projects', rows, ['name', 'domain_id', 'enabled'], projectView);
  });

  app.post('/identity/v3/projects', async (req, reply) => {
    const ctx = site.authenticate(req);
    const b = wrapped(req.body, 'project');
    if (optBool(b, 'is_domain') === true) {
      // A project acting as a domain is a domain (made by a cloud admin, anywhere, as domains are).
      requireCloudAdmin(ctx);
      if ((b.domain_id ?? null) !== null || (b.parent_id ?? null) !== null)
        throw new BadRequest('A project acting as a domain has no domain and no parent.');
      const d = createDomain(ic, {
        explicitId: undefined,
        name: reqStr(b, 'name', { max: 64 }),
        description: optStr(b, 'description', { max: 65535 }) ?? '',
        enabled: optBool(b, 'enabled'),
        extra: extraOf(b, KNOWN, undefined),
      });
      reply.code(201);
      return { project: domainAsProject(d) };
    }
    const parentId = optStr(b, 'parent_id', { max: 64 });
    const parent = parentId !== undefined && parentId !== null ? reader.project(parentId) : undefined;
    let domainId = optStr(b, 'domain_id', { max: 64 });
    if (parentId !== undefined) {
      const parentDomain = reader.domain(parentId);
      if (!parent && !parentDomain) throw notFound('project', parentId);
      if (parent?.is_domain) throw new BadRequest('The parent cannot be a project acting as a domain.');
      const viaParent = parent ? parent.domain_id : parentId;
      if (domainId !== undefined && domainId !== viaParent)
        throw new BadRequest('The project must be in the same domain as its parent.');
      domainId = viaParent;
    }
    domainId ??= callerDomain(ctx);
    const fwd = forwardCreateIfRemote(ic, ctx, domainId, req, reply);
    if (fwd) return fwd;
    const name = reqStr(b, 'name', { max: 64 });
    const description = optStr(b, 'description', { max: 65535 }) ?? '';
    const enabled = optBool(b, 'enabled');
    const tags = parseTags(b.tags) ?? [];
    const row = createProject(ic, {
      name,
      domainId,
      parent,
      description,
      enabled,
      tags,
      extra: extraOf(b, KNOWN, undefined),
    });
    reply.code(201);
    return { project: projectView(ic, row) };
  });

  const loadParam = (req: FastifyRequest) => load(param(req, 'project_id'));

  /** PATCH and DELETE on a project acting as a domain act on the domain (cloud admin, at its home). */
  const onDomain =
    (fn: (d: DomainRow, req: FastifyRequest, reply: FastifyReply) => unknown) =>
    async (req: FastifyRequest, reply: FastifyReply): Promise<unknown> => {
      const d = asDomain(param(req, 'project_id'));
      if (!d) return undefined;
      requireCloudAdmin(site.authenticate(req));
      return forwardIfRemote(site, d.owner, req, reply) ?? fn(d, req, reply);
    };
  const patchDomain = onDomain((d, req) => {
    const b = wrapped(req.body, 'project');
    requireUnchanged(b, 'is_domain', true, 'is_domain cannot be changed.');
    const row = updateDomain(ic, d, {
      name: optStr(b, 'name', { max: 64, min: 1 }),
      description: optStr(b, 'description', { max: 65535 }),
      enabled: optBool(b, 'enabled'),
      extra: (current) => extraOf(b, KNOWN, current),
    });
    return { project: domainAsProject(row) };
  });
  const deleteAsDomain = onDomain((d, _req, reply) => {
    deleteDomain(ic, d);
    return reply.code(204).send();
  });
  const projectPatch = domainAdminWrite(ic, loadParam, async (p, req) => {
    const b = wrapped(req.body, 'project');
    requireUnchanged(b, 'domain_id', p.domain_id, 'The domain of a project cannot be changed.');
    if (b.parent_id !== undefined && b.parent_id !== (p.parent_id ?? p.domain_id))
      throw new Forbidden('The parent of a project cannot be changed.');
    requireUnchanged(b, 'is_domain', false, 'is_domain cannot be changed.');
    requireUnchanged(b, 'id', p.id, 'The project id cannot be changed.');
    const row = updateProject(ic, p, {
      name: optStr(b, 'name', { max: 64, min: 1 }),
      description: optStr(b, 'description', { max: 65535 }),
      enabled: optBool(b, 'enabled'),
      tags: parseTags(b.tags),
      extra: (current) => extraOf(b, KNOWN, current),
    });
    return { project: projectView(ic, row) };
  });
  const projectDelete = domainAdminWrite(ic, loadParam, async (p, _req, reply) => {
    deleteProject(ic, p);
    return reply.code(204).send();
  });

  app.patch('/identity/v3/projects/:project_id', async (req, reply) =>
    asDomain(param(req, 'project_id')) ? patchDomain(req, reply) : projectPatch(req, reply),
  );
  app.delete('/identity/v3/projects/:project_id', async (req, reply) =>
    asDomain(param(req, 'project_id')) ? deleteAsDomain(req, reply) : projectDelete(req, reply),
  );
}
