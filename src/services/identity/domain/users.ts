/**
 * @module User actions: create, update, self-service password change, delete. A user belongs to its
 * domain's home site (the routes forward there first). Passwords are stored as scrypt hashes; a new
 * password, or disabling or deleting the user, revokes its tokens.
 */
import { BadRequest, Conflict, Unauthorized } from '../../../core/errors.ts';
import type { UserRow } from '../store/schema.ts';
import { bool01, checkRename, notFound, removeOwned } from './common.ts';
import { hashSecret } from './passwords.ts';
import type { IdentityPorts } from './ports.ts';
import { revokeUserTokens } from './revocations.ts';
import {
  accessRuleKind,
  appCredKind,
  assignmentKind,
  credentialKind,
  groupMemberKind,
  trustKind,
  userKind,
} from '../store/schema.ts';

export interface CreateUser {
  name: string;
  domainId: string;
  password: string | undefined;
  enabled: boolean | undefined;
  description: string;
  email: string | null;
  defaultProjectId: string | null;
  /** The `extra` column (unknown attributes of the body, as JSON). */
  extra: string;
}

export async function createUser(p: IdentityPorts, c: CreateUser): Promise<UserRow> {
  const hash = c.password === undefined ? null : await hashSecret(c.password, p.hashCost());
  return p.tx(() => {
    if (p.reader.userByName(c.domainId, c.name))
      throw new Conflict(
        `Conflict occurred attempting to store user - Duplicate entry found with name ${c.name} at domain ID ${c.domainId}.`,
      );
    return p.changes.put(userKind, {
      id: p.newId(),
      name: c.name,
      domain_id: c.domainId,
      default_project_id: c.defaultProjectId,
      description: c.description,
      email: c.email,
      enabled: bool01(c.enabled, 1),
      password_hash: hash,
      password_expires_at: null,
      extra: c.extra,
      created_at: p.now(),
    });
  });
}

/** Absent fields are left as they are; `null` clears email and default project. */
export interface UpdateUser {
  name: string | undefined;
  password: string | undefined;
  enabled: boolean | undefined;
  description: string | undefined;
  email: string | null | undefined;
  defaultProjectId: string | null | undefined;
  /** The new `extra` column from the current one. */
  extra: (current: string) => string;
}

export async function updateUser(p: IdentityPorts, userId: string, c: UpdateUser): Promise<UserRow> {
  const hash = c.password === undefined ? undefined : await hashSecret(c.password, p.hashCost());
  return p.tx(() => {
    const cur = p.reader.user(userId);
    if (!cur) throw notFound('user', userId);
    checkRename(c.name, cur, (n) => p.reader.userByName(cur.domain_id, n));
    const updated = p.changes.put(userKind, {
      ...cur,
      name: c.name ?? cur.name,
      enabled: bool01(c.enabled, cur.enabled),
      description: c.description ?? cur.description,
      email: c.email === undefined ? cur.email : c.email,
      default_project_id: c.defaultProjectId === undefined ? cur.default_project_id : c.defaultProjectId,
      password_hash: hash ?? cur.password_hash,
      extra: c.extra(cur.extra),
    });
    if (hash !== undefined || (cur.enabled && !updated.enabled)) revokeUserTokens(p, cur.id);
    return updated;
  });
}

/**
 * The self-service change: the original password is the credential (no token needed, so a user whose
 * password expired can still change it). Revokes the user's tokens.
 */
export async function changePassword(
  p: IdentityPorts,
  u: UserRow,
  original: string,
  next: string,
): Promise<void> {
  if (!(await p.passwords.verify(original, u.password_hash)))
    throw new Unauthorized('The request you have made requires authentication.');
  if (!u.enabled) throw new Unauthorized('The account is disabled for user: ' + u.id);
  if (original === next) throw new BadRequest('The new password must differ from the original one.');
  const hash = await hashSecret(next, p.hashCost());
  p.tx(() => {
    const cur = p.reader.user(u.id);
    if (!cur) throw notFound('user', u.id);
    p.changes.put(userKind, { ...cur, password_hash: hash });
    revokeUserTokens(p, cur.id);
  });
}

/** Deletes a user with its assignments, memberships, credentials and trusts (those owned here). */
export function deleteUser(p: IdentityPorts, userId: string): void {
  p.tx(() => {
    removeOwned(p, assignmentKind, p.repos.assignments.ofActor(userId));
    removeOwned(p, groupMemberKind, p.repos.groups.membershipsOfUser(userId));
    removeOwned(p, appCredKind, p.repos.appCreds.refsOfUser(userId));
    removeOwned(p, accessRuleKind, p.repos.accessRules.refsOfUser(userId));
    removeOwned(p, credentialKind, p.repos.credentials.refsOfUser(userId));
    removeOwned(p, trustKind, p.repos.trusts.refsOfUser(userId));
    p.changes.remove(userKind, userId);
    revokeUserTokens(p, userId);
  });
}
