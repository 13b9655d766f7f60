/**
 * @module Group actions: create, update, delete, and membership. A group and its memberships belong to
 * the group's domain's home site (the routes forward there first). Roles given to a group apply to its
 * members at token validation, so removing a member takes their group roles away at once.
 */
import { Conflict } from '../../../core/errors.ts';
import type { GroupRow } from '../store/schema.ts';
import { checkRename, notFound, removeOwned } from './common.ts';
import type { IdentityPorts } from './ports.ts';
import { assignmentKind, groupKind, groupMemberKind } from '../store/schema.ts';

export const membershipId = (groupId: string, userId: string): string => `${groupId}:${userId}`;

export function createGroup(
  p: IdentityPorts,
  c: { name: string; domainId: string; description: string },
): GroupRow {
  return p.tx(() => {
    if (p.repos.groups.idByName(c.domainId, c.name))
      throw new Conflict(
        `Conflict occurred attempting to store group - Duplicate entry found with name ${c.name}.`,
      );
    return p.changes.put(groupKind, {
      id: p.newId(),
      name: c.name,
      domain_id: c.domainId,
      description: c.description,
      created_at: p.now(),
    });
  });
}

export function updateGroup(
  p: IdentityPorts,
  g: GroupRow,
  c: { name: string | undefined; description: string | undefined },
): GroupRow {
  return p.tx(() => {
    checkRename(c.name, g, (n) => p.repos.groups.idByName(g.domain_id, n));
    return p.changes.put(groupKind, {
      ...g,
      name: c.name ?? g.name,
      description: c.description ?? g.description,
    });
  });
}

/** Deletes a group with its assignments and memberships (those owned here). */
export function deleteGroup(p: IdentityPorts, groupId: string): void {
  p.tx(() => {
    removeOwned(p, assignmentKind, p.repos.assignments.ofActor(groupId));
    removeOwned(p, groupMemberKind, p.repos.groups.membershipsOfGroup(groupId));
    p.changes.remove(groupKind, groupId);
  });
}

/** Adds a user to a group (again: nothing changes). */
export function addMember(p: IdentityPorts, groupId: string, userId: string): void {
  const id = membershipId(groupId, userId);
  if (!p.repos.groups.hasMembership(id))
    p.changes.put(groupMemberKind, { id, group_id: groupId, user_id: userId });
}

/** Removes a user from a group; 404 when not a member. */
export function removeMember(p: IdentityPorts, groupId: string, userId: string): void {
  const id = membershipId(groupId, userId);
  if (!p.repos.groups.hasMembership(id)) throw notFound('membership', `user ${userId} in group ${groupId}`);
  p.changes.remove(groupMemberKind, id);
}
