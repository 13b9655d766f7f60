/**
 * @module Identity policy: Keystone's default rules (keystone/common/policies/*.py).
 *   cloud admin    the admin role on a system-scoped token (Keystone's `role:admin and
 *                  system_scope:all`) or on a token scoped to the admin project (Keystone's
 *                  `admin_required and is_admin_project`): everything.
 *   system reader  reader (or member) on a system-scoped token: reads role assignments on the system.
 *   domain admin   the admin role on a token scoped to domain D: users, groups, projects and role
 *                  assignments inside D, granting only to D's users and groups on D or its projects
 *                  (Keystone's grant.py: the actor's domain and the target's domain both match the
 *                  token's). The admin project's domain is administered by cloud admins only: it
 *                  holds the admin project and the cloud admins' users, so an admin there could grant
 *                  itself admin on the admin project or reset a cloud admin's password.
 *   domain reader  reader (or member) on a token scoped to domain D: reads inside D.
 *   anyone         their own user, their own projects, their own password, their own application
 *                  credentials, their own role assignments.
 * Everything else is 403.
 */
import type { AuthContext } from '../../../core/auth.ts';
import { ADMIN_PROJECT, Role } from '../../../core/auth.ts';
import { Forbidden } from '../../../core/errors.ts';

/** ctx.isAdmin is set only for the admin role on the system or the admin project (core/auth.ts). */
export function isCloudAdmin(ctx: AuthContext): boolean {
  return ctx.isAdmin && ctx.domainId === undefined && (ctx.projectId !== undefined || ctx.system === true);
}

export function isSystemReader(ctx: AuthContext): boolean {
  return isCloudAdmin(ctx) || (ctx.system === true && ctx.roles.includes(Role.Reader));
}

export function isDomainAdmin(ctx: AuthContext, domainId: string): boolean {
  if (isCloudAdmin(ctx)) return true;
  if (domainId === ADMIN_PROJECT.domainId) return false;
  return ctx.domainId === domainId && ctx.roles.includes(Role.Admin);
}

export function isDomainReader(ctx: AuthContext, domainId: string): boolean {
  return isCloudAdmin(ctx) || (ctx.domainId === domainId && ctx.roles.includes(Role.Reader));
}

export function requireCloudAdmin(ctx: AuthContext): void {
  if (!isCloudAdmin(ctx)) throw new Forbidden();
}

export function requireDomainAdmin(ctx: AuthContext, domainId: string): void {
  if (!isDomainAdmin(ctx, domainId)) throw new Forbidden();
}

export function requireDomainReader(ctx: AuthContext, domainId: string): void {
  if (!isDomainReader(ctx, domainId)) throw new Forbidden();
}

/**
 * For list calls: undefined means "every domain" (cloud admin); otherwise the only domain this caller
 * may list in (the one its token is scoped to, with reader or above). 403 for anyone else.
 */
export function listableDomain(ctx: AuthContext): string | undefined {
  if (isCloudAdmin(ctx)) return undefined;
  if (ctx.domainId && ctx.roles.includes(Role.Reader)) return ctx.domainId;
  throw new Forbidden();
}

/** An application-credential token may not create or delete credentials unless unrestricted. */
export function requireNotRestrictedAppCred(ctx: AuthContext, unrestricted: boolean): void {
  if (ctx.applicationCredentialId && !unrestricted)
    throw new Forbidden('A restricted application credential cannot manage application credentials.');
}
