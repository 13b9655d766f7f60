/**
 * @module Project actions: create, update, set tags, delete. A project belongs to its domain's home
 * site (the routes forward there first); a top-level project's parent is its domain. Disabling or
 * deleting a project revokes the tokens scoped to it.
 */
import { BadRequest, Conflict, Forbidden } from '../../../core/errors.ts';
import type { ProjectRow } from '../store/schema.ts';
import { bool01, checkRename, removeOwned } from './common.ts';
import type { IdentityPorts } from './ports.ts';
import { revokeMatching } from './revocations.ts';
import { appCredKind, assignmentKind, credentialKind, projectKind, trustKind } from '../store/schema.ts';

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

export const tagsOf = (p: ProjectRow): string[] => JSON.parse(p.tags) as string[];

export interface CreateProject {
  name: string;
  domainId: string;
  /** The parent project; none for a top-level project (its parent is its domain). */
  parent: ProjectRow | undefined;
  description: string;
  enabled: boolean | undefined;
  tags: string[];
  extra: string;
}

export function createProject(p: IdentityPorts, c: CreateProject): ProjectRow {
  return p.tx(() => {
    if (p.reader.projectByName(c.domainId, c.name))
      throw new Conflict(
        `Conflict occurred attempting to store project - it is not permitted to have two projects with the same name in the same domain : ${c.name}.`,
      );
    return p.changes.put(projectKind, {
      id: p.newId(),
      name: c.name,
      domain_id: c.domainId,
      parent_id: c.parent ? c.parent.id : c.domainId,
      description: c.description,
      enabled: bool01(c.enabled, 1),
      is_domain: 0,
      tags: JSON.stringify(c.tags),
      extra: c.extra,
      created_at: p.now(),
    });
  });
}

export interface UpdateProject {
  name: string | undefined;
  description: string | undefined;
  enabled: boolean | undefined;
  tags: string[] | undefined;
  extra: (current: string) => string;
}

export function updateProject(p: IdentityPorts, cur: ProjectRow, c: UpdateProject): ProjectRow {
  return p.tx(() => {
    checkRename(c.name, cur, (n) => p.reader.projectByName(cur.domain_id, n));
    const updated = p.changes.put(projectKind, {
      ...cur,
      name: c.name ?? cur.name,
      description: c.description ?? cur.description,
      enabled: bool01(c.enabled, cur.enabled),
      tags: c.tags ? JSON.stringify(c.tags) : cur.tags,
      extra: c.extra(cur.extra),
    });
    if (cur.enabled && !updated.enabled) revokeMatching(p, { projectId: cur.id });
    return updated;
  });
}

/** Replaces a project's tags (held to the tag rules); returns them as stored. */
export function setProjectTags(p: IdentityPorts, cur: ProjectRow, tags: string[]): string[] {
  const checked = parseTags(tags)!;
  p.changes.put(projectKind, { ...cur, tags: JSON.stringify(checked) });
  return checked;
}

/** Deletes a leaf project with its assignments, application credentials, credentials and trusts (those owned here). */
export function deleteProject(p: IdentityPorts, project: ProjectRow): void {
  if (p.repos.projects.hasChildren(project.id))
    throw new Forbidden(`Cannot delete the project ${project.id} since it is not a leaf in the hierarchy.`);
  p.tx(() => {
    removeOwned(p, assignmentKind, p.repos.assignments.onTarget(project.id));
    removeOwned(p, appCredKind, p.repos.appCreds.refsOfProject(project.id));
    removeOwned(p, credentialKind, p.repos.credentials.refsOfProject(project.id));
    removeOwned(p, trustKind, p.repos.trusts.refsOfProject(project.id));
    p.changes.remove(projectKind, project.id);
    revokeMatching(p, { projectId: project.id });
  });
}
