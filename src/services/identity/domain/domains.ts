/**
 * @module Domain actions: create, update, delete. A domain is homed on the site that created it (its
 * owner); every user, group, project and role assignment inside it belongs to that site too, so the
 * delete of a domain removes all of them there. Disabling or deleting a domain revokes its tokens.
 */
import { BadRequest, Conflict, Forbidden } from '../../../core/errors.ts';
import { SYSTEM_TARGET } from '../../../core/auth.ts';
import type { DomainRow } from '../store/schema.ts';
import { bool01, checkRename, removeOwned } from './common.ts';
import type { IdentityPorts } from './ports.ts';
import { revokeMatching } from './revocations.ts';
import {
  accessRuleKind,
  appCredKind,
  assignmentKind,
  domainConfigKind,
  domainKind,
  credentialKind,
  trustKind,
  groupKind,
  groupMemberKind,
  projectKind,
  userKind,
} from '../store/schema.ts';

export interface CreateDomain {
  /** The caller's explicit_domain_id, if any (else a new id). */
  explicitId: string | undefined;
  name: string;
  description: string;
  enabled: boolean | undefined;
  extra: string;
}

export function createDomain(p: IdentityPorts, c: CreateDomain): DomainRow {
  if (c.explicitId === SYSTEM_TARGET) throw new BadRequest(`The domain id ${SYSTEM_TARGET} is reserved.`);
  const id = c.explicitId ?? p.newId();
  return p.tx(() => {
    if (p.repos.domains.idByName(c.name))
      throw new Conflict(
        `Conflict occurred attempting to store domain - Duplicate entry found with name ${c.name}.`,
      );
    if (p.reader.domain(id))
      throw new Conflict(`Conflict occurred attempting to store domain - Duplicate ID, ${id}.`);
    return p.changes.put(domainKind, {
      id,
      name: c.name,
      description: c.description,
      enabled: bool01(c.enabled, 1),
      extra: c.extra,
      created_at: p.now(),
    });
  });
}

export interface UpdateDomain {
  name: string | undefined;
  description: string | undefined;
  enabled: boolean | undefined;
  extra: (current: string) => string;
}

export function updateDomain(p: IdentityPorts, d: DomainRow, c: UpdateDomain): DomainRow {
  return p.tx(() => {
    checkRename(c.name, d, (n) => p.repos.domains.idByName(n));
    const updated = p.changes.put(domainKind, {
      ...d,
      name: c.name ?? d.name,
      description: c.description ?? d.description,
      enabled: bool01(c.enabled, d.enabled),
      extra: c.extra(d.extra),
    });
    if (d.enabled && !updated.enabled) revokeMatching(p, { domainId: d.id });
    return updated;
  });
}

/** Deletes a disabled domain and everything in it that this site owns (all of it: its home site). */
export function deleteDomain(p: IdentityPorts, d: DomainRow): void {
  if (d.enabled) throw new Forbidden('Cannot delete a domain that is enabled, please disable it first.');
  p.tx(() => deleteDomainContents(p, d.id));
}

function deleteDomainContents(p: IdentityPorts, domainId: string): void {
  const { repos } = p;
  const mine = <T extends { owner: string }>(rows: T[]) => rows.filter((r) => p.owns(r.owner));
  const projects = mine(repos.projects.inDomain(domainId));
  const users = mine(repos.users.inDomain(domainId));
  const groups = mine(repos.groups.inDomain(domainId));
  const targets = [domainId, ...projects.map((x) => x.id)];
  const actors = [...users.map((u) => u.id), ...groups.map((g) => g.id)];
  removeOwned(p, assignmentKind, repos.assignments.touching([...targets, ...actors]));
  removeOwned(p, groupMemberKind, repos.groups.membershipsOfAny(actors));
  removeOwned(p, appCredKind, repos.appCreds.refsOfUsers(users.map((u) => u.id)));
  removeOwned(p, accessRuleKind, repos.accessRules.refsOfUsers(users.map((u) => u.id)));
  for (const u of users) {
    removeOwned(p, credentialKind, repos.credentials.refsOfUser(u.id));
    removeOwned(p, trustKind, repos.trusts.refsOfUser(u.id));
  }
  for (const x of projects) p.changes.remove(projectKind, x.id);
  for (const u of users) p.changes.remove(userKind, u.id);
  for (const g of groups) p.changes.remove(groupKind, g.id);
  if (repos.domainConfigs.get(domainId)) p.changes.remove(domainConfigKind, domainId);
  p.changes.remove(domainKind, domainId);
  revokeMatching(p, { domainId });
}
