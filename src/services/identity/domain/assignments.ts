/**
 * @module Role assignments: grants on projects, domains and the system to users and groups (OS-INHERIT
 * variants too), and the listing of GET /v3/role_assignments with its `effective` expansion (inherited
 * grants to the projects below, group grants to the members, roles to the roles they imply). An
 * assignment belongs to the owner of its target (the routes forward there first). Removing a user's
 * assignment revokes that user's tokens on the target; a group's assignment stops granting at once
 * because effective roles are resolved at validation and the validation cache is dropped on every
 * assignment change.
 */
import { Forbidden, NotFound } from '../../../core/errors.ts';
import type { AssignmentType, ProjectRow, RoleRow } from '../store/schema.ts';
import type { IdentityPorts } from './ports.ts';
import { revokeMatching, revokeUserTokens } from './revocations.ts';
import { assignmentKind } from '../store/schema.ts';

export type Actor = 'users' | 'groups';
export type Target = 'projects' | 'domains' | 'system';

/** One grant, without its inherited flag. */
export interface Assignment {
  type: AssignmentType;
  actor_id: string;
  target_id: string;
  role_id: string;
}

/** One line of a role assignment listing. */
export interface Listed {
  userId?: string;
  groupId?: string;
  projectId?: string;
  domainId?: string;
  system?: boolean;
  roleId: string;
  inherited: boolean;
  /** Set when effective listing expanded a group assignment to this member. */
  viaGroup?: string;
  /** Set when the role is implied by the assignment's role (effective listings). */
  priorRole?: string;
  /** Set when an inherited assignment was expanded to this project: the original target. */
  inheritedFrom?: { projectId?: string; domainId?: string };
}

const TARGET_TYPE = { projects: 'Project', domains: 'Domain', system: 'System' } as const;
export const typeOf = (actor: Actor, target: Target): AssignmentType =>
  `${actor === 'users' ? 'User' : 'Group'}${TARGET_TYPE[target]}`;

export const assignmentId = (a: Assignment, inherited: boolean): string =>
  `${a.type}:${a.actor_id}:${a.target_id}:${a.role_id}${inherited ? ':inherited' : ''}`;

/** A domain-specific role is granted only inside its domain (targetDomain undefined: the system). */
export function checkAssignable(role: RoleRow, targetDomain: string | undefined): void {
  if (role.domain_id !== null && role.domain_id !== targetDomain)
    throw new Forbidden('A domain-specific role can only be assigned inside its domain.');
}

export function hasAssignment(p: IdentityPorts, a: Assignment, inherited: boolean): boolean {
  return p.repos.assignments.exists(assignmentId(a, inherited));
}

/** Grants (again: nothing changes). */
export function grant(p: IdentityPorts, a: Assignment, inherited: boolean): void {
  const id = assignmentId(a, inherited);
  if (!p.repos.assignments.exists(id))
    p.changes.put(assignmentKind, { id, ...a, inherited: inherited ? 1 : 0 });
}

/** Takes a grant away (404 when there is none), revoking a user's tokens that it could have granted. */
export function revokeGrant(p: IdentityPorts, a: Assignment, inherited: boolean): void {
  const id = assignmentId(a, inherited);
  if (!p.repos.assignments.exists(id)) throw new NotFound('Could not find role assignment.');
  p.tx(() => {
    p.changes.remove(assignmentKind, id);
    if (a.type.startsWith('User')) {
      // The revocation events have no system column: a system grant's loss revokes all the user's.
      if (inherited || a.type === 'UserSystem') revokeUserTokens(p, a.actor_id);
      else if (a.type === 'UserProject') revokeMatching(p, { userId: a.actor_id, projectId: a.target_id });
      else revokeMatching(p, { userId: a.actor_id, domainId: a.target_id });
    }
  });
}

/** The roles one actor holds on one target by this kind of grant, by name. */
export function grantedRoles(
  p: IdentityPorts,
  a: Omit<Assignment, 'role_id'>,
  inherited: boolean,
): RoleRow[] {
  return p.repos.assignments.roles(a.type, a.actor_id, a.target_id, inherited);
}

/** GET /v3/role_assignments as the routes read its query (and its policy). */
export interface AssignmentQuery {
  effective: boolean;
  userId?: string | undefined;
  groupId?: string | undefined;
  roleId?: string | undefined;
  scopeProjectId?: string | undefined;
  scopeDomainId?: string | undefined;
  scopeSystem: boolean;
  includeSubtree: boolean;
  /** Only inherited assignments (`scope.OS-INHERIT:inherited_to`). */
  inheritedOnly: boolean;
  /** Policy: only assignments on this domain and its projects. */
  onlyDomain?: string | undefined;
  /** Policy: only this user's assignments. */
  onlyUser?: string | undefined;
}

/** The listing's lines, and the projects read for it (for the names of the view). */
export function listAssignments(
  p: IdentityPorts,
  qy: AssignmentQuery,
): { list: Listed[]; projectById: Map<string, ProjectRow> } {
  const { reader, repos } = p;
  const { effective } = qy;
  const rows = repos.assignments.allWithRole();
  const projects = repos.projects.allUnordered();
  const projectById = new Map(projects.map((x) => [x.id, x]));
  const descendants = (id: string): string[] => {
    const out: string[] = [];
    const walk = (pid: string) => {
      for (const x of projects)
        if (x.parent_id === pid && !out.includes(x.id)) {
          out.push(x.id);
          walk(x.id);
        }
    };
    walk(id);
    return out;
  };

  let list: Listed[] = [];
  for (const a of rows) {
    const isUser = a.type.startsWith('User');
    const onProject = a.type.endsWith('Project');
    const base: Listed = {
      ...(isUser ? { userId: a.actor_id } : { groupId: a.actor_id }),
      ...(onProject
        ? { projectId: a.target_id }
        : a.type.endsWith('System')
          ? { system: true }
          : { domainId: a.target_id }),
      roleId: a.role_id,
      inherited: !!a.inherited,
    };
    if (!effective) {
      list.push(base);
      continue;
    }
    // Effective: inherited assignments apply to the projects below the target, not to the target.
    let expanded: Listed[] = [base];
    if (a.inherited) {
      const below = onProject
        ? descendants(a.target_id)
        : projects.filter((x) => x.domain_id === a.target_id).map((x) => x.id);
      expanded = below.map((pid) => ({
        ...(isUser ? { userId: a.actor_id } : { groupId: a.actor_id }),
        projectId: pid,
        roleId: a.role_id,
        inherited: false,
        inheritedFrom: onProject ? { projectId: a.target_id } : { domainId: a.target_id },
      }));
    }
    if (!isUser) {
      const members = repos.groups.memberIds(a.actor_id);
      expanded = expanded.flatMap((e) =>
        members.map((u) => {
          const { groupId: _g, ...rest } = e;
          return { ...rest, userId: u, viaGroup: a.actor_id };
        }),
      );
    }
    list.push(...expanded);
  }

  if (effective) list = withImpliedRoles(p, list);
  const inDomain = (l: Listed, d: string) =>
    l.domainId === d || (l.projectId !== undefined && projectById.get(l.projectId)?.domain_id === d);
  const { onlyDomain, onlyUser } = qy;
  if (onlyDomain !== undefined) list = list.filter((l) => inDomain(l, onlyDomain));
  if (onlyUser !== undefined) list = list.filter((l) => l.userId === onlyUser);
  if (qy.userId !== undefined) list = list.filter((l) => l.userId === qy.userId);
  if (qy.groupId !== undefined) list = list.filter((l) => l.groupId === qy.groupId);
  if (qy.roleId !== undefined) list = list.filter((l) => l.roleId === qy.roleId);
  if (qy.scopeDomainId !== undefined) list = list.filter((l) => l.domainId === qy.scopeDomainId);
  if (qy.scopeSystem) list = list.filter((l) => l.system);
  if (qy.scopeProjectId !== undefined) {
    const want = new Set([qy.scopeProjectId, ...(qy.includeSubtree ? descendants(qy.scopeProjectId) : [])]);
    list = list.filter((l) => l.projectId !== undefined && want.has(l.projectId));
  }
  if (qy.inheritedOnly) list = list.filter((l) => l.inherited);
  // Drop assignments whose user or group no longer exists here (deleted at another site).
  list = list.filter((l) => (l.userId ? !!reader.user(l.userId) : !!l.groupId));
  return { list, projectById };
}

/**
 * Effective listings as tokens see them (Keystone): each assignment also grants the roles its role
 * implies (with the prior role in the links), and domain-specific roles themselves never appear.
 */
function withImpliedRoles(p: IdentityPorts, list: Listed[]): Listed[] {
  const out: Listed[] = [];
  for (const l of list) {
    const role = p.reader.role(l.roleId);
    if (!role) continue;
    const all = p.reader.withImplied([{ id: role.id, name: role.name }]);
    for (const r of all) {
      if (p.reader.role(r.id)?.domain_id) continue;
      out.push(r.id === l.roleId ? l : { ...l, roleId: r.id, priorRole: l.roleId });
    }
  }
  return out;
}
