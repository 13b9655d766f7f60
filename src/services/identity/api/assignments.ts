/**
 * @module Role assignments: grants on projects, domains and the system to users and groups
 * (PUT/GET/HEAD/DELETE /v3/{projects|domains}/{t}/{users|groups}/{a}/roles/{r}, the OS-INHERIT
 * variants, /v3/system/{users|groups}/{a}/roles/{r}), and the listing GET /v3/role_assignments with
 * its filters (`scope.system=all` too), `effective` and `include_names`. An assignment belongs to the
 * owner of its target (the project's or domain's home site; for the system, the admin project's, the
 * site that grants the other kind of cloud admin). Removing a user's assignment revokes
 * that user's tokens on the target; a group's assignment stops granting at once because effective roles
 * are resolved at validation and the validation cache is dropped on every assignment change.
 * https://docs.openstack.org/api-ref/identity/v3/#roles and #os-inherit
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { AuthContext } from '../../../core/auth.ts';
import { SYSTEM_TARGET } from '../../../core/auth.ts';
import { BadRequest, Forbidden, NotFound } from '../../../core/errors.ts';
import type { Obj } from '../../common/input.ts';
import type { IdentityContext } from '../context.ts';
import type { Actor, Listed, Target } from '../domain/assignments.ts';
import {
  checkAssignable,
  grant,
  grantedRoles,
  hasAssignment,
  listAssignments,
  revokeGrant,
  typeOf,
} from '../domain/assignments.ts';
import { notFound } from '../domain/common.ts';
import type { DomainRow, GroupRow, ProjectRow } from '../store/schema.ts';
import { adminProjectOwner, collection, forwardIfRemote, param, q, queryBool, v3Url } from './common.ts';
import {
  isCloudAdmin,
  isDomainReader,
  isSystemReader,
  requireCloudAdmin,
  requireDomainAdmin,
} from './policy.ts';
import { roleView } from './roles.ts';

/** The route path of a target, and the name of its id parameter (none for the system). */
const TARGET_PATH = {
  projects: { path: 'projects/:project_id', param: 'project_id' },
  domains: { path: 'domains/:domain_id', param: 'domain_id' },
  system: { path: 'system', param: undefined },
} as const;
const targetIdOf = (req: FastifyRequest, target: Target): string => {
  const name = TARGET_PATH[target].param;
  return name ? param(req, name) : SYSTEM_TARGET;
};

export function registerAssignmentRoutes(app: FastifyInstance, ic: IdentityContext): void {
  const { site, reader, repos } = ic;

  /** domainId undefined: the system, granted and read by cloud admins (and system readers) only. */
  const loadTarget = (target: Target, id: string): { domainId?: string; owner: string } => {
    if (target === 'system') return { owner: adminProjectOwner(ic) };
    if (target === 'projects') {
      const p = reader.project(id);
      if (!p || p.is_domain) throw notFound('project', id);
      return { domainId: p.domain_id, owner: p.owner };
    }
    const d = reader.domain(id);
    if (!d) throw notFound('domain', id);
    return { domainId: d.id, owner: d.owner };
  };
  const loadActor = (actor: Actor, id: string) => {
    const row = actor === 'users' ? reader.user(id) : repos.groups.get(id);
    if (!row) throw notFound(actor === 'users' ? 'user' : 'group', id);
    return row;
  };

  const resolveGrant = (req: FastifyRequest, actor: Actor, target: Target) => {
    const ctx = site.authenticate(req);
    const targetId = targetIdOf(req, target);
    const t = loadTarget(target, targetId);
    const actorId = param(req, actor === 'users' ? 'user_id' : 'group_id');
    const actorRow = loadActor(actor, actorId);
    const roleId = param(req, 'role_id');
    const role = reader.role(roleId);
    if (!role) throw notFound('role', roleId);
    const a = { type: typeOf(actor, target), actor_id: actorId, target_id: targetId, role_id: roleId };
    return { ctx, t, a, role, actorDomain: actorRow.domain_id };
  };
  /**
   * Granting or revoking (Keystone's create_grant/revoke_grant): a cloud admin anywhere; a domain
   * admin only when both the target and the user or group are in its domain (so never on the admin
   * project or another domain's targets, and never to another domain's users).
   */
  const requireGrantor = (ctx: AuthContext, targetDomain: string | undefined, actorDomain: string) => {
    if (targetDomain === undefined) return requireCloudAdmin(ctx);
    requireDomainAdmin(ctx, targetDomain);
    if (!isCloudAdmin(ctx) && actorDomain !== targetDomain)
      throw new Forbidden('A domain administrator grants roles only to users and groups of its domain.');
  };

  /** Reading a target's assignments: a reader of its domain, or of the system. */
  const canReadTarget = (ctx: AuthContext, targetDomain: string | undefined) =>
    targetDomain === undefined ? isSystemReader(ctx) : isDomainReader(ctx, targetDomain);

  const grantRoutes = (prefix: string, actor: Actor, target: Target, inherited: boolean) => {
    const aParam = actor === 'users' ? ':user_id' : ':group_id';
    const base = `/identity/v3/${prefix}${TARGET_PATH[target].path}/${actor}/${aParam}/roles`;
    const suffix = inherited ? '/inherited_to_projects' : '';

    app.put(`${base}/:role_id${suffix}`, async (req, reply) => {
      const { ctx, t, a, role, actorDomain } = resolveGrant(req, actor, target);
      requireGrantor(ctx, t.domainId, actorDomain);
      checkAssignable(role, t.domainId);
      const fwd = forwardIfRemote(ic.site, t.owner, req, reply);
      if (fwd) return fwd;
      grant(ic, a, inherited);
      return reply.code(204).send();
    });

    app.get(`${base}/:role_id${suffix}`, async (req, reply) => {
      const { ctx, t, a } = resolveGrant(req, actor, target);
      if (!canReadTarget(ctx, t.domainId)) throw new Forbidden();
      if (!hasAssignment(ic, a, inherited)) throw new NotFound('Could not find role assignment.');
      return reply.code(204).send();
    });

    app.delete(`${base}/:role_id${suffix}`, async (req, reply) => {
      const { ctx, t, a, actorDomain } = resolveGrant(req, actor, target);
      requireGrantor(ctx, t.domainId, actorDomain);
      const fwd = forwardIfRemote(ic.site, t.owner, req, reply);
      if (fwd) return fwd;
      revokeGrant(ic, a, inherited);
      return reply.code(204).send();
    });

    app.get(`${base}${suffix}`, async (req) => {
      const ctx = site.authenticate(req);
      const targetId = targetIdOf(req, target);
      const t = loadTarget(target, targetId);
      const actorId = param(req, actor === 'users' ? 'user_id' : 'group_id');
      loadActor(actor, actorId);
      if (!canReadTarget(ctx, t.domainId) && !(actor === 'users' && actorId === ctx.userId))
        throw new Forbidden();
      const rows = grantedRoles(
        ic,
        { type: typeOf(actor, target), actor_id: actorId, target_id: targetId },
        inherited,
      );
      return collection(
        ic,
        req,
        'roles',
        rows.map((r) => roleView(ic, r)),
      );
    });
  };

  for (const actor of ['users', 'groups'] as const) {
    for (const target of ['projects', 'domains'] as const) {
      grantRoutes('', actor, target, false);
      grantRoutes('OS-INHERIT/', actor, target, true);
    }
    grantRoutes('', actor, 'system', false);
  }

  app.get('/identity/v3/role_assignments', async (req) => {
    const ctx = site.authenticate(req);
    const qs = q(req);
    return collection(ic, req, 'role_assignments', listing(ic, ctx, qs));
  });
}

/** GET /v3/role_assignments: the query filters as keystoneclient sends them. */
function listing(ic: IdentityContext, ctx: AuthContext, qs: Record<string, string>): Obj[] {
  const { reader, repos } = ic;
  const effective = queryBool(qs.effective) === true;
  const includeNames = queryBool(qs.include_names) === true;
  const inheritedTo = qs['scope.OS-INHERIT:inherited_to'];
  const includeSubtree = queryBool(qs.include_subtree) === true;
  if (effective && qs['group.id'] !== undefined)
    throw new BadRequest('Specify either effective or group.id, not both.');
  const scopes = ['scope.project.id', 'scope.domain.id', 'scope.system'].filter((k) => qs[k] !== undefined);
  if (scopes.length > 1) throw new BadRequest(`Specify only one of ${scopes.join(', ')}.`);
  if (qs['scope.system'] !== undefined && qs['scope.system'] !== 'all')
    throw new BadRequest('scope.system must be all.');
  if (includeSubtree && qs['scope.project.id'] === undefined)
    throw new BadRequest('include_subtree needs scope.project.id.');

  // Policy: cloud admin sees all; a domain reader sees assignments on its domain and its projects;
  // anyone else only their own (and must ask for them with user.id).
  let onlyDomain: string | undefined;
  let onlyUser: string | undefined;
  if (!isCloudAdmin(ctx)) {
    if (ctx.domainId && isDomainReader(ctx, ctx.domainId)) onlyDomain = ctx.domainId;
    else if (qs['user.id'] === ctx.userId) onlyUser = ctx.userId;
    else throw new Forbidden();
  }

  const { list, projectById } = listAssignments(ic, {
    effective,
    userId: qs['user.id'],
    groupId: qs['group.id'],
    roleId: qs['role.id'],
    scopeProjectId: qs['scope.project.id'],
    scopeDomainId: qs['scope.domain.id'],
    scopeSystem: qs['scope.system'] !== undefined,
    includeSubtree,
    inheritedOnly: inheritedTo !== undefined,
    onlyDomain,
    onlyUser,
  });

  // Effective listings with the same user, scope and role from two paths keep both (Keystone does).
  const domains = new Map<string, DomainRow | undefined>();
  const domainName = (id: string) => {
    if (!domains.has(id)) domains.set(id, reader.domain(id));
    return domains.get(id)?.name;
  };
  const groupRow = (id: string) => repos.groups.get(id);
  return list.map((l) => view(ic, l, includeNames, domainName, groupRow, projectById));
}

function view(
  ic: IdentityContext,
  l: Listed,
  names: boolean,
  domainName: (id: string) => string | undefined,
  groupRow: (id: string) => GroupRow | undefined,
  projectById: Map<string, ProjectRow>,
): Obj {
  const { reader } = ic;
  const out: Obj = {};
  const role = reader.role(l.roleId);
  out.role =
    names && role
      ? {
          id: l.roleId,
          name: role.name,
          ...(role.domain_id ? { domain: { id: role.domain_id, name: domainName(role.domain_id) } } : {}),
        }
      : { id: l.roleId };
  if (l.userId) {
    const u = names ? reader.user(l.userId) : undefined;
    out.user = u
      ? { id: u.id, name: u.name, domain: { id: u.domain_id, name: domainName(u.domain_id) } }
      : { id: l.userId };
  } else if (l.groupId) {
    const g = names ? groupRow(l.groupId) : undefined;
    out.group = g
      ? { id: g.id, name: g.name, domain: { id: g.domain_id, name: domainName(g.domain_id) } }
      : { id: l.groupId };
  }
  const scope: Obj = {};
  if (l.projectId) {
    const p = names ? projectById.get(l.projectId) : undefined;
    scope.project = p
      ? { id: p.id, name: p.name, domain: { id: p.domain_id, name: domainName(p.domain_id) } }
      : { id: l.projectId };
  } else if (l.domainId) {
    scope.domain = names ? { id: l.domainId, name: domainName(l.domainId) } : { id: l.domainId };
  } else if (l.system) {
    scope.system = { all: true };
  }
  if (l.inherited) scope['OS-INHERIT:inherited_to'] = 'projects';
  out.scope = scope;

  const actorPath = l.viaGroup
    ? `groups/${l.viaGroup}`
    : l.userId
      ? `users/${l.userId}`
      : `groups/${l.groupId}`;
  const from = l.inheritedFrom;
  let assignment: string;
  if (from || l.inherited) {
    const t: { projectId?: string; domainId?: string | undefined } =
      from ?? (l.projectId ? { projectId: l.projectId } : { domainId: l.domainId });
    const targetPath = t.projectId ? `projects/${t.projectId}` : `domains/${t.domainId}`;
    assignment = v3Url(
      ic,
      `OS-INHERIT/${targetPath}/${actorPath}/roles/${l.priorRole ?? l.roleId}/inherited_to_projects`,
    );
  } else {
    const targetPath = l.projectId
      ? `projects/${l.projectId}`
      : l.system
        ? 'system'
        : `domains/${l.domainId}`;
    assignment = v3Url(ic, `${targetPath}/${actorPath}/roles/${l.priorRole ?? l.roleId}`);
  }
  out.links = {
    assignment,
    ...(l.viaGroup ? { membership: v3Url(ic, `groups/${l.viaGroup}/users/${l.userId}`) } : {}),
    ...(l.priorRole ? { prior_role: v3Url(ic, `roles/${l.priorRole}`) } : {}),
  };
  return out;
}
