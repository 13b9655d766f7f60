/**
 * @module Application credential creation: the user's own, for the project of their token and a subset
 * of their roles on it (implied ones included). The secret is returned once and stored hashed. A
 * credential belongs to its user's domain's home site (the route forwards there first).
 */
import { BadRequest, Conflict, Forbidden, NotFound } from '../../../core/errors.ts';
import type { Obj } from '../../common/input.ts';
import { isObj } from '../../common/input.ts';
import type { AccessRuleRow, AppCredRow } from '../store/schema.ts';
import { hashSecret } from './passwords.ts';
import type { IdentityPorts } from './ports.ts';
import { accessRuleKind, appCredKind } from '../store/schema.ts';

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

/** An access rule as sent: an existing rule of the user by id, or a new (service, method, path). */
type RuleIn = { id: string } | { service: string; method: string; path: string };

const RULE_METHODS = new Set(['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE']);
const RULE_KEYS = new Set(['id', 'service', 'method', 'path']);

/** Checks the body's `access_rules` (Keystone's schema: path from "/", up to 225; a known method). */
function parseAccessRules(v: unknown): RuleIn[] {
  if (v === undefined || v === null) return [];
  if (!Array.isArray(v)) throw new BadRequest('"access_rules" must be a list.');
  if (v.length > 100) throw new BadRequest('"access_rules" may hold at most 100 rules.');
  return v.map((r, i) => {
    if (!isObj(r)) throw new BadRequest(`"access_rules[${i}]" must be an object.`);
    const extra = Object.keys(r).find((k) => !RULE_KEYS.has(k));
    if (extra) throw new BadRequest(`"access_rules[${i}]" has an unknown property "${extra}".`);
    if (r.id !== undefined) {
      if (typeof r.id !== 'string' || r.id.length === 0 || r.id.length > 64)
        throw new BadRequest(`"access_rules[${i}].id" must be a string.`);
      return { id: r.id };
    }
    const { service, method, path } = r;
    if (typeof service !== 'string' || !/^[a-z0-9][a-z0-9_-]{0,63}$/.test(service))
      throw new BadRequest(`"access_rules[${i}].service" must be a service type.`);
    if (typeof method !== 'string' || !RULE_METHODS.has(method))
      throw new BadRequest(`"access_rules[${i}].method" must be one of ${[...RULE_METHODS].join(', ')}.`);
    if (typeof path !== 'string' || !path.startsWith('/') || path.length > 225)
      throw new BadRequest(`"access_rules[${i}].path" must start with "/" and be at most 225 characters.`);
    return { service, method, path };
  });
}

/**
 * The user's rules for what was sent, in a transaction: a rule named by id must be the user's; a new
 * one reuses the user's identical rule or is created (Keystone keeps one rule per user and content).
 */
function storeAccessRules(p: IdentityPorts, userId: string, rules: RuleIn[]): AccessRuleRow[] {
  const out = new Map<string, AccessRuleRow>();
  for (const r of rules) {
    let row: AccessRuleRow | undefined;
    if ('id' in r) {
      row = p.repos.accessRules.get(r.id);
      if (!row || row.user_id !== userId) throw new NotFound(`Could not find access rule: ${r.id}.`);
    } else {
      row =
        p.repos.accessRules.same(userId, r) ??
        p.changes.put(accessRuleKind, { id: p.newId(), user_id: userId, ...r, created_at: p.now() });
    }
    out.set(row.id, row);
  }
  return [...out.values()];
}

export async function createAppCred(p: IdentityPorts, c: CreateAppCred): Promise<AppCredRow> {
  if (c.expiresAt !== null && c.expiresAt <= p.now())
    throw new BadRequest('"expires_at" must be in the future.');
  const rules = parseAccessRules(c.accessRules);
  const roles = chooseRoles(p, c);
  if (roles.length === 0) throw new BadRequest('An application credential needs at least one role.');
  const hash = await hashSecret(c.secret, p.hashCost());
  return p.tx(() => {
    if (p.repos.appCreds.byName(c.userId, c.name))
      throw new Conflict(
        `Conflict occurred attempting to store application_credential - Duplicate entry found with name ${c.name}.`,
      );
    const ruleRows = storeAccessRules(p, c.userId, rules);
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
      access_rules: JSON.stringify(ruleRows.map((r) => r.id)),
      created_at: p.now(),
    });
  });
}

/** Deletes one credential (the route checks it is the caller's, or the caller is a cloud admin). */
export function deleteAppCred(p: IdentityPorts, id: string): void {
  p.changes.remove(appCredKind, id);
}

/** The ids of the access rules a credential names. */
export function accessRuleIds(a: Pick<AppCredRow, 'access_rules'>): string[] {
  const ids: unknown = JSON.parse(a.access_rules);
  return Array.isArray(ids) ? ids.filter((x): x is string => typeof x === 'string') : [];
}

/** Deletes one of a user's access rules: refused (403) while a credential of the user names it. */
export function deleteAccessRule(p: IdentityPorts, rule: AccessRuleRow): void {
  p.tx(() => {
    if (p.repos.appCreds.ofUser(rule.user_id).some((a) => accessRuleIds(a).includes(rule.id)))
      throw new Forbidden('An application credential still uses this access rule.');
    p.changes.remove(accessRuleKind, rule.id);
  });
}
