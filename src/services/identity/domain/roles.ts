/**
 * @module Role actions: create, update, delete. A role belongs to the site that made it. Deleting a
 * role removes the assignments of it and the inference rules naming it that this site owns; any others
 * stop granting it at once, because effective roles are read through the roles table.
 */
import { Conflict } from '../../../core/errors.ts';
import type { RoleRow } from '../store/schema.ts';
import { checkRename, removeOwned } from './common.ts';
import { removeRulesOf } from './implied-roles.ts';
import type { IdentityPorts } from './ports.ts';
import { assignmentKind, roleKind } from '../store/schema.ts';

export function createRole(
  p: IdentityPorts,
  c: { name: string; description: string; domainId: string | null },
): RoleRow {
  return p.tx(() => {
    if (p.repos.roles.idByName(c.domainId, c.name))
      throw new Conflict(
        `Conflict occurred attempting to store role - Duplicate entry found with name ${c.name}.`,
      );
    return p.changes.put(roleKind, {
      id: p.newId(),
      name: c.name,
      domain_id: c.domainId,
      description: c.description,
      created_at: p.now(),
    });
  });
}

export function updateRole(
  p: IdentityPorts,
  r: RoleRow,
  c: { name: string | undefined; description: string | undefined },
): RoleRow {
  return p.tx(() => {
    checkRename(c.name, r, (n) => p.repos.roles.idByName(r.domain_id, n));
    return p.changes.put(roleKind, {
      ...r,
      name: c.name ?? r.name,
      description: c.description ?? r.description,
    });
  });
}

export function deleteRole(p: IdentityPorts, roleId: string): void {
  p.tx(() => {
    removeOwned(p, assignmentKind, p.repos.assignments.ofRole(roleId));
    removeRulesOf(p, roleId);
    p.changes.remove(roleKind, roleId);
  });
}
