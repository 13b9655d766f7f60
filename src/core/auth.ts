/**
 * @module What a validated token says about its bearer, and the policy checks every API uses.
 * Mirrors Keystone's default policies: roles imply each other (admin > member > reader); "admin" on
 * any scope is a cloud administrator; member writes and reader reads its own project only.
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
  /** Role names on the token's scope, implied roles included. */
  roles: string[];
  roleRefs: { id: string; name: string }[];
  isAdmin: boolean;
  methods: string[];
  issuedAt: number;
  expiresAt: number;
  auditIds: string[];
  /** The site that issued and signed the token. */
  issuer: string;
  applicationCredentialId?: string;
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
