/**
 * @module Application credential creation: the user's own, for the project of their token and a subset
 * of their roles on it (implied ones included). The secret is returned once and stored hashed. A
 * credential belongs to its user's domain's home site (the route forwards there first).
 */
import { BadRequest, Conflict, NotFound } from '../../../core/errors.ts';
import type { Obj } from '../../common/input.ts';
import { isObj } from '../../common/input.ts';
import type { AppCredRow } from '../store/schema.ts';
import { hashSecret } from './passwords.ts';
import type { IdentityPorts } from './ports.ts';
import { appCredKind } from '../store/schema.ts';

type RoleRef = { id: string; name: string };

export interface CreateAppCred {
  userId: string;
  /** The project of the caller's token. */
  projectId: string;
  /** The roles of the caller's token, by name, and those it holds by id (tokens.ts). */
  held: { roles: readonly string[]; roleRefs: readonly RoleRef[] };
  name: string;
  description: string;
  secret: string;
  unrestricted: boolean;
  expiresAt: number | null;
  /** The body's `access_rules` and `roles`, as sent. */
  accessRules: unknown;
  roles: unknown;
}

/** The roles a credential asks for, from those the caller holds (all of them when it names none). */
function chooseRoles(p: IdentityPorts, c: CreateAppCred): RoleRef[] {
  const have = new Map<string, RoleRef>();
  for (const n of c.held.roles) {
    const r = c.held.roleRefs.find((x) => x.name === n) ?? p.reader.roleByName(n);
    if (r) have.set(r.id, { id: r.id, name: r.name });
  }
  if (c.roles === undefined || c.roles === null) return [...have.values()];
  if (!Array.isArray(c.roles) || !c.roles.every(isObj))
    throw new BadRequest('"roles" must be a list of objects with an id or a name.');
  const roles = (c.roles as Obj[]).map((r) => {
    const hit =
      typeof r.id === 'string'
        ? have.get(r.id)
        : typeof r.name === 'string'
          ? [...have.values()].find((x) => x.name === r.name)
          : undefined;
    if (!hit)
      throw new NotFound(
        `Could not find role assignment with role: ${String(r.id ?? r.name)}, user or group: ${c.userId}, project, domain, or system: ${c.projectId}.`,
      );
    return hit;
  });
  return [...new Map(roles.map((r) => [r.id, r])).values()];
}

export async function createAppCred(p: IdentityPorts, c: CreateAppCred): Promise<AppCredRow> {
  if (c.expiresAt !== null && c.expiresAt <= p.now())
    throw new BadRequest('"expires_at" must be in the future.');
  if (c.accessRules !== undefined && c.accessRules !== null) {
    if (!Array.isArray(c.accessRules)) throw new BadRequest('"access_rules" must be a list.');
    if (c.accessRules.length > 0) throw new BadRequest('Access rules are not supported by this cloud.');
  }
  const roles = chooseRoles(p, c);
  if (roles.length === 0) throw new BadRequest('An application credential needs at least one role.');
  const hash = await hashSecret(c.secret, p.hashCost());
  return p.tx(() => {
    if (p.repos.appCreds.byName(c.userId, c.name))
      throw new Conflict(
        `Conflict occurred attempting to store application_credential - Duplicate entry found with name ${c.name}.`,
      );
    return p.changes.put(appCredKind, {
      id: p.newId(),
      name: c.name,
      user_id: c.userId,
      project_id: c.projectId,
      description: c.description,
      secret_hash: hash,
      roles: JSON.stringify(roles),
      unrestricted: c.unrestricted ? 1 : 0,
      expires_at: c.expiresAt,
      access_rules: '[]',
      created_at: p.now(),
    });
  });
}

/** Deletes one credential (the route checks it is the caller's, or the caller is a cloud admin). */
export function deleteAppCred(p: IdentityPorts, id: string): void {
  p.changes.remove(appCredKind, id);
}
