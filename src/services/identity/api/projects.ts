/**
 * @module Projects: /v3/projects and /v3/users/{id}/projects. A project belongs to its domain's home
 * site; projects nest (parent_id), a top-level project's parent is its domain. Projects acting as
 * domains (is_domain true) are not supported.
 * https://docs.openstack.org/api-ref/identity/v3/#projects
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { AuthContext } from '../../../core/auth.ts';
import { BadRequest, Conflict, Forbidden } from '../../../core/errors.ts';
import type { Obj } from '../../common/input.ts';
import { optBool, optStr, reqStr, wrapped } from '../../common/input.ts';
import type { IdentityContext } from '../context.ts';
import type { ProjectRow } from '../store/schema.ts';
import { revokeMatching } from './auth.ts';
import {
  bool01,
  callerDomain,
  checkRename,
  collection,
  domainAdminWrite,
  extraOf,
  filteredCollection,
  forwardCreateIfRemote,
  notFound,
  param,
  parseExtra,
  q,
  queryBool,
  removeOwned,
  requireUnchanged,
  selfLinks,
} from './common.ts';
import { isCloudAdmin, isDomainReader, listableDomain } from './policy.ts';

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

/** Keystone's tag rules: at most 80, each 1-255 characters without '/' or ','. */
export function parseTags(v: unknown): string[] | undefined {
  if (v === undefined || v === null) return undefined;
  if (
    !Array.isArray(v) ||
    v.length > 80 ||
    !v.every((t) => typeof t === 'string' && t.length > 0 && t.length <= 255 && !/[/,]/.test(t))
  )
    throw new BadRequest(
      '"tags" must be a list of at most 80 strings of 1-255 characters without "/" or ",".',
    );
  return [...new Set(v as string[])];
}

/** Read access to one project: cloud admin, a reader of its domain, or a token scoped to it. */
export function canReadProject(ctx: AuthContext, p: ProjectRow): boolean {
  return isCloudAdmin(ctx) || isDomainReader(ctx, p.domain_id) || ctx.projectId === p.id;
}

export function registerProjectRoutes(app: FastifyInstance, ic: IdentityContext): void {
  const { site, reader } = ic;
  const db = site.store.db;
  const children = db.prepare('SELECT id FROM projects WHERE parent_id = ? LIMIT 1');
  const allProjects = db.prepare('SELECT * FROM projects WHERE is_domain = 0 ORDER BY name');

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
      const t = new Set(JSON.parse(p.tags) as string[]);
      if (all && !all.every((x) => t.has(x))) return false;
      if (any && !any.some((x) => t.has(x))) return false;
      if (notAll && notAll.length > 0 && notAll.every((x) => t.has(x))) return false;
      if (notAny && notAny.some((x) => t.has(x))) return false;
      return true;
    });
  };

  app.get('/identity/v3/projects', async (req) => {
    const ctx = site.authenticate(req);
    const only = listableDomain(ctx);
    const qs = q(req);
    if (queryBool(qs.is_domain) === true) return collection(ic, req, 'projects', []);
    let rows = allProjects.all() as ProjectRow[];
    if (only !== undefined) rows = rows.filter((p) => p.domain_id === only);
    if (qs.parent_id !== undefined) rows = rows.filter((p) => (p.parent_id ?? p.domain_id) === qs.parent_id);
    rows = tagFilter(rows, qs);
    return filteredCollection(ic, req, 'projects', rows, ['name', 'domain_id', 'enabled', 'id'], projectView);
  });

  app.get('/identity/v3/projects/:project_id', async (req) => {
    const ctx = site.authenticate(req);
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
    const rows = (allProjects.all() as ProjectRow[]).filter(
      (p) => reader.roles(uid, { projectId: p.id }).length > 0,
    );
    return filteredCollection(ic, req, 'projects', rows, ['name', 'domain_id', 'enabled'], projectView);
  });

  app.post('/identity/v3/projects', async (req, reply) => {
    const ctx = site.authenticate(req);
    const b = wrapped(req.body, 'project');
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
    if (optBool(b, 'is_domain') === true)
      throw new BadRequest('Projects acting as domains are not supported.');
    const tags = parseTags(b.tags) ?? [];
    const dom = domainId;
    const row = site.store.tx(() => {
      if (reader.projectByName(dom, name))
        throw new Conflict(
          `Conflict occurred attempting to store project - it is not permitted to have two projects with the same name in the same domain : ${name}.`,
        );
      return site.changelog.put('project', {
        id: ic.newId(),
        name,
        domain_id: dom,
        parent_id: parent ? parent.id : dom,
        description,
        enabled: bool01(enabled, 1),
        is_domain: 0,
        tags: JSON.stringify(tags),
        extra: extraOf(b, KNOWN, undefined),
        created_at: site.clock.now(),
      }) as unknown as ProjectRow;
    });
    reply.code(201);
    return { project: projectView(ic, row) };
  });

  const loadParam = (req: FastifyRequest) => load(param(req, 'project_id'));

  app.patch(
    '/identity/v3/projects/:project_id',
    domainAdminWrite(ic, loadParam, async (p, req) => {
      const b = wrapped(req.body, 'project');
      requireUnchanged(b, 'domain_id', p.domain_id, 'The domain of a project cannot be changed.');
      if (b.parent_id !== undefined && b.parent_id !== (p.parent_id ?? p.domain_id))
        throw new Forbidden('The parent of a project cannot be changed.');
      requireUnchanged(b, 'is_domain', false, 'is_domain cannot be changed.');
      requireUnchanged(b, 'id', p.id, 'The project id cannot be changed.');
      const name = optStr(b, 'name', { max: 64, min: 1 });
      const description = optStr(b, 'description', { max: 65535 });
      const enabled = optBool(b, 'enabled');
      const tags = parseTags(b.tags);
      const row = site.store.tx(() => {
        checkRename(name, p, (n) => reader.projectByName(p.domain_id, n));
        const updated = site.changelog.put('project', {
          ...p,
          name: name ?? p.name,
          description: description ?? p.description,
          enabled: bool01(enabled, p.enabled),
          tags: tags ? JSON.stringify(tags) : p.tags,
          extra: extraOf(b, KNOWN, p.extra),
        }) as unknown as ProjectRow;
        if (p.enabled && !updated.enabled) revokeMatching(ic, { projectId: p.id });
        return updated;
      });
      return { project: projectView(ic, row) };
    }),
  );

  app.delete(
    '/identity/v3/projects/:project_id',
    domainAdminWrite(ic, loadParam, async (p, _req, reply) => {
      if (children.get(p.id))
        throw new Forbidden(`Cannot delete the project ${p.id} since it is not a leaf in the hierarchy.`);
      site.store.tx(() => {
        removeOwned(
          ic,
          'role_assignment',
          'SELECT id, owner FROM role_assignments WHERE target_id = ?',
          p.id,
        );
        removeOwned(
          ic,
          'application_credential',
          'SELECT id, owner FROM application_credentials WHERE project_id = ?',
          p.id,
        );
        site.changelog.remove('project', p.id);
        revokeMatching(ic, { projectId: p.id });
      });
      return reply.code(204).send();
    }),
  );
}
