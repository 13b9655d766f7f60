/**
 * @module What a validated token says about its bearer, and the policy checks every API uses.
 * Mirrors Keystone's default policies: roles imply each other (admin > member > reader); the cloud
 * administrator is the admin role on the system (a token scoped to `{"system": {"all": true}}`,
 * Keystone's `role:admin and system_scope:all`) or on the admin project (Keystone's
 * `admin_project_name` / `admin_project_domain_name`, which make `is_admin_project` true only there).
 * Admin on any other project or on a domain is not a cloud admin: member writes and reader reads its
 * own project only, and a domain admin manages its own domain (identity's policy.ts).
 */
import { Forbidden } from './errors.ts';

export interface AuthContext {
  token: string;
  userId: string;
  userName: string;
  userDomainId: string;
  userDomainName: string;
  projectId?: string;
  projectName?: string;
  projectDomainId?: string;
  projectDomainName?: string;
  /** Set for a domain-scoped token. */
  domainId?: string;
  domainName?: string;
  /** Set for a system-scoped token (`scope: {system: {all: true}}`). */
  system?: boolean;
  /** Role names on the token's scope, implied roles included. */
  roles: string[];
  roleRefs: { id: string; name: string }[];
  /**
   * Cloud admin: the admin role on a system-scoped token, or on a token scoped to the admin project
   * (ADMIN_PROJECT). Every service's admin-only check reads this and nothing else, so a domain admin
   * or the admin of an ordinary project never passes one.
   */
  isAdmin: boolean;
  methods: string[];
  issuedAt: number;
  expiresAt: number;
  auditIds: string[];
  /** The site that issued and signed the token. */
  issuer: string;
  applicationCredentialId?: string;
  /**
   * The access rules of the application credential the token came from, when it has any: the token
   * may make only the requests one of them matches (accessRulesAllow).
   */
  accessRules?: AccessRule[];
  /** Set for a trust-scoped token (OS-TRUST): the trust, its trustee and trustor, and impersonation. */
  trustId?: string;
  trusteeUserId?: string;
  trustorUserId?: string;
  trustImpersonation?: boolean;
}

/** An application credential access rule: a service type, an HTTP method and a path under the service. */
export interface AccessRule {
  service: string;
  method: string;
  path: string;
}

/** The service types a site's first path segment serves (its catalog's, services/<name>/index.ts). */
const SERVICE_TYPES: Record<string, readonly string[]> = {
  identity: ['identity'],
  compute: ['compute'],
  image: ['image'],
  network: ['network'],
  volume: ['block-storage', 'volumev3', 'volume'],
};

/** An access rule's path as a pattern: `*` is one path segment, `**` any number of them. */
function rulePattern(path: string): RegExp {
  const body = path
    .split(/(\*\*|\*)/)
    .map((part) =>
      part === '**' ? '.*' : part === '*' ? '[^/]+' : part.replace(/[.+?^${}()|[\]\\]/g, '\\$&'),
    )
    .join('');
  return new RegExp(`^${body}/?$`);
}

/**
 * Whether a request (method, URL as the site received it) is one the access rules allow: its first
 * path segment names the service (`/compute/v2.1/servers` is compute's `/v2.1/servers`, as
 * keystonemiddleware sees it behind the service's endpoint), and one rule must match the service
 * type, the method and the rest of the path. No rules: anything goes.
 */
export function accessRulesAllow(
  rules: readonly AccessRule[] | undefined,
  method: string,
  url: string,
): boolean {
  if (!rules || rules.length === 0) return true;
  const path = url.split('?')[0] ?? '';
  const m = /^\/([^/]+)(\/.*)?$/.exec(path);
  if (!m) return false;
  const types = SERVICE_TYPES[m[1] ?? ''] ?? [];
  const rest = m[2] ?? '/';
  const verb = method.toUpperCase();
  return rules.some((r) => types.includes(r.service) && r.method === verb && rulePattern(r.path).test(rest));
}

export interface TokenValidator {
  /** Throws Unauthorized (401) for a token that is malformed, forged, expired or revoked. */
  validate(token: string): AuthContext;
  /** Drops cached validations (keys or authorization data changed). */
  invalidate(): void;
}

export const Role = { Admin: 'admin', Member: 'member', Reader: 'reader' } as const;

/** Implied roles, as Keystone's bootstrap creates them. */
export function impliedRoles(names: Iterable<string>): string[] {
  const out = new Set(names);
  if (out.has(Role.Admin)) out.add(Role.Member);
  if (out.has(Role.Member)) out.add(Role.Reader);
  return [...out];
}

/**
 * The admin project, as `atoll site --bootstrap` (and keystone-manage bootstrap) makes it. Its domain
 * holds the cloud admins, so only cloud admins administer that domain (see identity's policy.ts).
 */
export const ADMIN_PROJECT = { domainId: 'default', name: 'admin' } as const;

/**
 * The target id of role assignments on the system (Keystone's `system: all`). Project and domain ids
 * are generated hex (or `default`), so it names no project or domain.
 */
export const SYSTEM_TARGET = 'system';

export function isAdminProject(p: { domain_id: string; name: string }): boolean {
  return p.domain_id === ADMIN_PROJECT.domainId && p.name === ADMIN_PROJECT.name;
}

const has = (ctx: AuthContext, role: string) => ctx.roles.includes(role);

export function isAdmin(ctx: AuthContext): boolean {
  return ctx.isAdmin;
}

/** The project a project-scoped token is for; others get 403 on project APIs. */
export function scopedProject(ctx: AuthContext): string {
  if (!ctx.projectId) throw new Forbidden('This action requires a project-scoped token.');
  return ctx.projectId;
}

/** Read access to a project's resources: reader or above on it, or cloud admin. */
export function canRead(ctx: AuthContext, projectId: string | null | undefined): boolean {
  return ctx.isAdmin || (!!projectId && ctx.projectId === projectId && has(ctx, Role.Reader));
}

/** Write access to a project's resources: member or above on it, or cloud admin. */
export function canWrite(ctx: AuthContext, projectId: string | null | undefined): boolean {
  return ctx.isAdmin || (!!projectId && ctx.projectId === projectId && has(ctx, Role.Member));
}

export function requireAdmin(ctx: AuthContext): void {
  if (!ctx.isAdmin) throw new Forbidden();
}

/** Member (or admin) on the token's project: the right to create resources in it. */
export function requireMember(ctx: AuthContext): string {
  const p = scopedProject(ctx);
  if (!ctx.isAdmin && !has(ctx, Role.Member)) throw new Forbidden();
  return p;
}

export function requireReader(ctx: AuthContext): string {
  const p = scopedProject(ctx);
  if (!ctx.isAdmin && !has(ctx, Role.Reader)) throw new Forbidden();
  return p;
}
