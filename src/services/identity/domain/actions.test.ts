/**
 * @module Unit tests of identity's domain actions, run against the real repositories, reader and change
 * log over an in-memory database (no HTTP): the cascades of a delete, the token revocations a lost
 * grant writes, the effective role assignment listing, and how an application credential picks roles.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { silentLogger } from '../../../core/ports.ts';
import { ChangeLog, changelogMigrations } from '../../../federation/changelog.ts';
import {
  SiteRegistry,
  admissionKind,
  evictionKind,
  registryMigrations,
  siteKind,
} from '../../../federation/registry.ts';
import { Store } from '../../../store/db.ts';
import { SqlIdentityReader } from '../store/reader.ts';
import { identityRepos } from '../store/repos.ts';
import { identityKinds, identityMigrations } from '../store/schema.ts';
import { grant, listAssignments, revokeGrant } from './assignments.ts';
import { createAppCred } from './app-creds.ts';
import { createDomain, deleteDomain, updateDomain } from './domains.ts';
import { addMember, createGroup } from './groups.ts';
import { createRule } from './implied-roles.ts';
import { PasswordChecker } from './passwords.ts';
import type { IdentityPorts } from './ports.ts';
import { createProject } from './projects.ts';
import { createRole } from './roles.ts';
import { createUser } from './users.ts';

const NOW = 1_000_000;

function ports(): IdentityPorts {
  const store = new Store(':memory:');
  store.migrate([...changelogMigrations, ...registryMigrations, ...identityMigrations]);
  const log = new ChangeLog(store, 'a', silentLogger, () => NOW);
  for (const k of [siteKind, admissionKind, evictionKind, ...identityKinds]) log.register(k);
  const registry = new SiteRegistry(store, log, () => NOW);
  const reader = new SqlIdentityReader(store.db, registry, () => NOW);
  // As at a site: the reader's memoized lookups are dropped with every committed change (index.ts).
  log.onAppend(() => reader.clear());
  let n = 0;
  return {
    repos: identityRepos(store.db),
    reader,
    changes: log,
    passwords: new PasswordChecker(() => 4),
    tx: (fn) => store.tx(fn),
    owns: (owner) => owner === 'a',
    now: () => NOW,
    newId: () => `id${++n}`,
    hashCost: () => 4,
    tokenTtlMs: () => 3600_000,
  };
}

/** Whether a token of this user, issued at `iat` with this scope, is revoked. */
const revoked = (p: IdentityPorts, userId: string, scope: { project?: string; domain?: string }, iat = NOW) =>
  p.reader.isRevoked(
    {
      sub: userId,
      iss: 'a',
      iat,
      exp: iat + 1000,
      m: ['password'],
      ai: ['audit'],
      ...(scope.domain ? { d: scope.domain } : {}),
    },
    scope.project,
  );

/** A domain with a project, a user and a group (the user a member), each granted a role. */
async function populated() {
  const p = ports();
  const d = createDomain(p, { explicitId: 'd1', name: 'D1', description: '', enabled: true, extra: '{}' });
  const project = createProject(p, {
    name: 'p1',
    domainId: d.id,
    parent: undefined,
    description: '',
    enabled: undefined,
    tags: [],
    extra: '{}',
  });
  const user = await createUser(p, {
    name: 'u1',
    domainId: d.id,
    password: undefined,
    enabled: undefined,
    description: '',
    email: null,
    defaultProjectId: null,
    extra: '{}',
  });
  const group = createGroup(p, { name: 'g1', domainId: d.id, description: '' });
  addMember(p, group.id, user.id);
  const member = createRole(p, { name: 'member', description: '', domainId: null });
  const reader = createRole(p, { name: 'reader', description: '', domainId: null });
  return { p, d, project, user, group, member, reader };
}

describe('identity domain actions', () => {
  it('deleting a domain removes everything in it, and only once it is disabled', async () => {
    const { p, d, project, user, group, member } = await populated();
    grant(p, { type: 'UserProject', actor_id: user.id, target_id: project.id, role_id: member.id }, false);
    grant(p, { type: 'GroupDomain', actor_id: group.id, target_id: d.id, role_id: member.id }, true);
    assert.throws(() => deleteDomain(p, d), /disable it first/);
    const disabled = updateDomain(p, d, {
      name: undefined,
      description: undefined,
      enabled: false,
      extra: (x) => x,
    });
    assert.equal(p.repos.groups.membershipsOfGroup(group.id).length, 1);
    deleteDomain(p, disabled);
    const { repos } = p;
    assert.deepEqual(
      [repos.domains.all(), repos.projects.all(), repos.users.all(), repos.groups.all()],
      [[], [], [], []],
    );
    assert.deepEqual(repos.groups.membershipsOfGroup(group.id), []);
    assert.deepEqual(repos.assignments.allWithRole(), []);
    assert.ok(revoked(p, user.id, { domain: d.id }));
  });

  it("a user's lost grant revokes that user's tokens on the target; a missing one is a 404", async () => {
    const { p, project, user, member } = await populated();
    const a = { type: 'UserProject', actor_id: user.id, target_id: project.id, role_id: member.id } as const;
    assert.throws(() => revokeGrant(p, a, false), /Could not find role assignment/);
    grant(p, a, false);
    grant(p, a, false); // again: nothing changes
    assert.equal(p.repos.assignments.allWithRole().length, 1);
    assert.ok(!revoked(p, user.id, { project: project.id }));
    revokeGrant(p, a, false);
    assert.deepEqual(p.repos.assignments.allWithRole(), []);
    // The user's tokens on that project, issued until now; not those on another project, nor later ones.
    assert.ok(revoked(p, user.id, { project: project.id }));
    assert.ok(!revoked(p, user.id, { project: 'elsewhere' }));
    assert.ok(!revoked(p, user.id, { project: project.id }, NOW + 1));
  });

  it('the effective listing expands inherited grants, groups and implied roles', async () => {
    const { p, d, project, user, group, member, reader } = await populated();
    // The rules are written at the admin project's owner: this site needs one in 'default'.
    createDomain(p, { explicitId: 'default', name: 'Default', description: '', enabled: true, extra: '{}' });
    createProject(p, {
      name: 'admin',
      domainId: 'default',
      parent: undefined,
      description: '',
      enabled: undefined,
      tags: [],
      extra: '{}',
    });
    createRule(p, member, reader);
    grant(p, { type: 'GroupDomain', actor_id: group.id, target_id: d.id, role_id: member.id }, true);
    const { list } = listAssignments(p, {
      effective: true,
      scopeSystem: false,
      includeSubtree: false,
      inheritedOnly: false,
      scopeProjectId: project.id,
    });
    assert.deepEqual(
      list.map((l) => [l.userId, l.projectId, l.roleId, l.viaGroup, l.priorRole, l.inheritedFrom]),
      [
        [user.id, project.id, member.id, group.id, undefined, { domainId: d.id }],
        [user.id, project.id, reader.id, group.id, member.id, { domainId: d.id }],
      ],
    );
    const direct = listAssignments(p, {
      effective: false,
      scopeSystem: false,
      includeSubtree: false,
      inheritedOnly: true,
    });
    assert.deepEqual(
      direct.list.map((l) => [l.groupId, l.domainId, l.roleId, l.inherited]),
      [[group.id, d.id, member.id, true]],
    );
  });

  it('an application credential takes the roles its caller holds, and only those', async () => {
    const { p, project, user, member, reader } = await populated();
    const base = {
      userId: user.id,
      projectId: project.id,
      held: { roles: ['member', 'reader'], roleRefs: [{ id: member.id, name: 'member' }] },
      description: '',
      secret: 's3cret',
      unrestricted: false,
      expiresAt: null,
      accessRules: undefined,
      roles: undefined,
    };
    const all = await createAppCred(p, { ...base, name: 'all' });
    assert.deepEqual(JSON.parse(all.roles), [
      { id: member.id, name: 'member' },
      { id: reader.id, name: 'reader' },
    ]);
    const one = await createAppCred(p, {
      ...base,
      name: 'one',
      roles: [{ name: 'reader' }, { id: reader.id }],
    });
    assert.deepEqual(JSON.parse(one.roles), [{ id: reader.id, name: 'reader' }]);
    await assert.rejects(
      createAppCred(p, { ...base, name: 'x', roles: [{ name: 'admin' }] }),
      /Could not find role assignment/,
    );
    await assert.rejects(createAppCred(p, { ...base, name: 'x', expiresAt: NOW }), /must be in the future/);
    await assert.rejects(createAppCred(p, { ...base, name: 'all' }), /Duplicate entry found with name all/);
    assert.ok(await p.passwords.verify('s3cret', all.secret_hash));
  });
});
