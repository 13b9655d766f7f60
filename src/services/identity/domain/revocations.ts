/**
 * @module Token revocation events (Keystone's revoke model): a token matches an event when every set
 * field matches it and it was issued at or before `issued_before`. Events replicate to every site,
 * whose validation cache is dropped on each (store/schema.ts AUTHZ_KINDS), so they apply at once.
 */
import type { IdentityPorts } from './ports.ts';
import { revocationKind } from '../store/schema.ts';

/** Writes a revocation event for one token chain. */
export function revokeAudit(p: IdentityPorts, auditId: string, expiresAt: number): void {
  const now = p.now();
  p.changes.put(revocationKind, {
    id: p.newId(),
    audit_id: auditId,
    user_id: null,
    project_id: null,
    domain_id: null,
    issued_before: now,
    revoked_at: now,
    expires_at: expiresAt,
  });
}

/** Revokes every token of a user (and, optionally, only those scoped to a project). */
export function revokeUserTokens(
  p: IdentityPorts,
  userId: string | null,
  projectId: string | null = null,
): void {
  const now = p.now();
  p.changes.put(revocationKind, {
    id: p.newId(),
    audit_id: null,
    user_id: userId,
    project_id: projectId,
    domain_id: null,
    issued_before: now,
    revoked_at: now,
    expires_at: now + p.tokenTtlMs(),
  });
}

/**
 * Revokes every token matching all the given fields: a user's, a project's or a domain's tokens (or a
 * user's on one project or domain). Used when a project or domain is disabled or deleted, and when a
 * role assignment is removed.
 */
export function revokeMatching(
  p: IdentityPorts,
  match: { userId?: string; projectId?: string; domainId?: string },
): void {
  const now = p.now();
  p.changes.put(revocationKind, {
    id: p.newId(),
    audit_id: null,
    user_id: match.userId ?? null,
    project_id: match.projectId ?? null,
    domain_id: match.domainId ?? null,
    issued_before: now,
    revoked_at: now,
    expires_at: now + p.tokenTtlMs(),
  });
}
