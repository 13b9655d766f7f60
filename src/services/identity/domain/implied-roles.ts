/**
 * @module Role inference rules (Keystone's implied roles): a grant of the prior role also grants the
 * implied one, transitively. As in Keystone no rule may imply `admin` (`[assignment]
 * prohibited_implied_role`), so no grant becomes a cloud admin by inference, and a global role may not
 * imply a domain-specific one. Rules are written at the admin project's owner (the routes forward).
 */
import { Role } from '../../../core/auth.ts';
import { Forbidden } from '../../../core/errors.ts';
import type { RoleRow } from '../store/schema.ts';
import { removeOwned } from './common.ts';
import type { IdentityPorts } from './ports.ts';
import { impliedRoleKind } from '../store/schema.ts';

export const ruleId = (prior: string, implied: string): string => `${prior}:${implied}`;

/** The rules a new inference must keep (403 otherwise). */
export function checkInference(prior: RoleRow, implied: RoleRow): void {
  if (implied.name === Role.Admin && implied.domain_id === null)
    throw new Forbidden(`${implied.name} may not be an implied role.`);
  if (prior.domain_id === null && implied.domain_id !== null)
    throw new Forbidden('A global role cannot imply a domain-specific role.');
  if (prior.id === implied.id) throw new Forbidden('A role cannot imply itself.');
}

export function hasRule(p: IdentityPorts, prior: string, implied: string): boolean {
  return !!p.repos.impliedRoles.get(ruleId(prior, implied));
}

/** Adds the rule (again: nothing changes). */
export function createRule(p: IdentityPorts, prior: RoleRow, implied: RoleRow): void {
  const id = ruleId(prior.id, implied.id);
  if (!p.repos.impliedRoles.get(id))
    p.changes.put(impliedRoleKind, { id, prior_role_id: prior.id, implied_role_id: implied.id });
}

export function deleteRule(p: IdentityPorts, prior: string, implied: string): void {
  p.changes.remove(impliedRoleKind, ruleId(prior, implied));
}

/** Removes, at the admin project's owner, the rules naming a deleted role (elsewhere they replicate). */
export function removeRulesOf(p: IdentityPorts, roleId: string): void {
  removeOwned(p, impliedRoleKind, p.repos.impliedRoles.naming(roleId));
}

/** The roles one prior role implies directly, by id (rules naming a role missing here are skipped). */
export function impliedBy(p: IdentityPorts, priorId: string): RoleRow[] {
  return p.repos.impliedRoles.of(priorId).flatMap((r) => {
    const i = p.reader.role(r.implied_role_id);
    return i ? [i] : [];
  });
}

/** The prior roles of every rule, each once, in rule order. */
export function priorRoles(p: IdentityPorts): RoleRow[] {
  const priors = [...new Set(p.repos.impliedRoles.all().map((r) => r.prior_role_id))];
  return priors.flatMap((id) => {
    const r = p.reader.role(id);
    return r ? [r] : [];
  });
}
