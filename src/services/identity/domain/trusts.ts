/**
 * @module Trusts (OS-TRUST): a trustor delegates some of its roles on one project to a trustee, who
 * then asks for trust-scoped tokens (tokens.ts resolves their roles: the delegated ones the original
 * trustor still holds). A trust is never wider than its trustor: the roles must be held on the project
 * when it is made, and a redelegated trust is never wider, longer-lived or more impersonating than
 * the trust it comes from. A trust belongs to its trustor's home site.
 */
import { BadRequest, Forbidden } from '../../../core/errors.ts';
import type { TrustRow } from '../store/schema.ts';
import { trustKind } from '../store/schema.ts';
import { removeOwned } from './common.ts';
import type { IdentityPorts } from './ports.ts';

/** Keystone's default `[trust] max_redelegation_count`. */
export const MAX_REDELEGATION_COUNT = 3;

export interface TrustRequest {
  trustorUserId: string;
  trusteeUserId: string;
  projectId: string;
  impersonation: boolean;
  roles: { id: string; name: string }[];
  expiresAt: number | null;
  remainingUses: number | null;
  allowRedelegation: boolean;
  redelegationCount: number | undefined;
  /** Set when the caller's token is itself trust-scoped: the trust being redelegated. */
  parent: TrustRow | undefined;
  /** The roles (with implied ones) the original trustor holds on the project now. */
  held: { id: string; name: string }[];
}

export function createTrust(p: IdentityPorts, r: TrustRequest): TrustRow {
  if (r.roles.length === 0) throw new BadRequest('A trust delegates at least one role.');
  const held = new Set(r.held.map((x) => x.id));
  for (const role of r.roles)
    if (!held.has(role.id))
      throw new Forbidden(`The trustor does not hold the role ${role.name} on the project.`);
  let redelegationCount: number | null = null;
  if (r.parent) {
    const parent = r.parent;
    if (!parent.allow_redelegation) throw new Forbidden('The trust does not allow redelegation.');
    const left = (parent.redelegation_count ?? MAX_REDELEGATION_COUNT) - 1;
    if (left < 0) throw new Forbidden('The trust cannot be redelegated any further.');
    if (r.redelegationCount !== undefined && r.redelegationCount > left)
      throw new Forbidden('A redelegated trust cannot be redelegated more often than its parent.');
    if (parent.project_id !== r.projectId) throw new Forbidden('A redelegated trust keeps its project.');
    const allowed = new Set((JSON.parse(parent.roles) as { id: string }[]).map((x) => x.id));
    for (const role of r.roles)
      if (!allowed.has(role.id))
        throw new Forbidden(`The role ${role.name} is not in the redelegated trust.`);
    if (r.impersonation && !parent.impersonation)
      throw new Forbidden('A redelegated trust cannot impersonate when its parent does not.');
    if (parent.expires_at !== null && (r.expiresAt === null || r.expiresAt > parent.expires_at))
      throw new Forbidden('A redelegated trust cannot outlive its parent.');
    if (r.remainingUses !== null) throw new BadRequest('A redelegated trust cannot have remaining_uses.');
    redelegationCount = r.allowRedelegation ? (r.redelegationCount ?? left) : 0;
  } else if (r.allowRedelegation) {
    const count = r.redelegationCount ?? MAX_REDELEGATION_COUNT;
    if (count > MAX_REDELEGATION_COUNT)
      throw new Forbidden(`redelegation_count may be at most ${MAX_REDELEGATION_COUNT}.`);
    redelegationCount = count;
  }
  return p.changes.put(trustKind, {
    id: p.newId(),
    trustor_user_id: r.trustorUserId,
    trustee_user_id: r.trusteeUserId,
    project_id: r.projectId,
    impersonation: r.impersonation ? 1 : 0,
    roles: JSON.stringify(r.roles.map((x) => ({ id: x.id, name: x.name }))),
    expires_at: r.expiresAt,
    remaining_uses: r.remainingUses,
    allow_redelegation: r.allowRedelegation ? 1 : 0,
    redelegation_count: redelegationCount,
    redelegated_trust_id: r.parent?.id ?? null,
    extra: '{}',
    created_at: p.now(),
  });
}

/** Deletes a trust and the trusts redelegated from it (those owned here; the others fail validation). */
export function deleteTrust(p: IdentityPorts, id: string): void {
  p.tx(() => {
    removeOwned(p, trustKind, p.repos.trusts.redelegatedFrom(id));
    p.changes.remove(trustKind, id);
  });
}
