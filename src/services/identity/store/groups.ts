/**
 * @module Group and group membership rows (membership id = group_id + ':' + user_id).
 */
import type { Db } from '../../../store/db.ts';
import { TableRows, refsNamingAny } from './sql.ts';
import type { GroupRow, OwnedRef, UserRow } from './schema.ts';

export class GroupRepo extends TableRows<GroupRow> {
  private db: Db;
  private q;
  constructor(db: Db) {
    super(db, 'groups', 'name');
    this.db = db;
    this.q = {
      byName: db.prepare('SELECT id FROM groups WHERE domain_id = ? AND name = ?'),
      inDomain: db.prepare('SELECT id, owner FROM groups WHERE domain_id = ?'),
      ofUser: db.prepare(
        'SELECT g.* FROM groups g JOIN group_members m ON m.group_id = g.id WHERE m.user_id = ? ORDER BY g.name',
      ),
      members: db.prepare(
        'SELECT u.* FROM users u JOIN group_members m ON m.user_id = u.id WHERE m.group_id = ? ORDER BY u.name',
      ),
      memberIds: db.prepare('SELECT user_id FROM group_members WHERE group_id = ?'),
      membership: db.prepare('SELECT id FROM group_members WHERE id = ?'),
      membershipsOfUser: db.prepare('SELECT id, owner FROM group_members WHERE user_id = ?'),
      membershipsOfGroup: db.prepare('SELECT id, owner FROM group_members WHERE group_id = ?'),
    };
  }

  idByName(domainId: string, name: string): { id: string } | undefined {
    return this.q.byName.get(domainId, name) as { id: string } | undefined;
  }
  inDomain(domainId: string): OwnedRef[] {
    return this.q.inDomain.all(domainId) as OwnedRef[];
  }
  /** The groups a user is a member of, by name. */
  ofUser(userId: string): GroupRow[] {
    return this.q.ofUser.all(userId) as GroupRow[];
  }
  /** A group's members, by name. */
  members(groupId: string): UserRow[] {
    return this.q.members.all(groupId) as UserRow[];
  }
  memberIds(groupId: string): string[] {
    return (this.q.memberIds.all(groupId) as { user_id: string }[]).map((m) => m.user_id);
  }
  hasMembership(id: string): boolean {
    return !!this.q.membership.get(id);
  }
  membershipsOfUser(userId: string): OwnedRef[] {
    return this.q.membershipsOfUser.all(userId) as OwnedRef[];
  }
  membershipsOfGroup(groupId: string): OwnedRef[] {
    return this.q.membershipsOfGroup.all(groupId) as OwnedRef[];
  }
  /** Memberships of any of these groups or users (ids of either kind: they never collide). */
  membershipsOfAny(ids: readonly string[]): OwnedRef[] {
    return refsNamingAny(this.db, 'group_members', ['group_id', 'user_id'], ids);
  }
}
