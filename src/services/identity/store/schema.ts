/**
 * @module Identity tables. Every table is replicated (owner column): a domain belongs to its home site,
 * and users, groups, projects and role assignments inside it belong to the same site; roles, regions,
 * services and endpoints belong to the site that made them (each site makes its own region, services and
 * endpoints). Revocation events belong to the site that revoked, and replicate everywhere.
 */
import { ADMIN_PROJECT, SYSTEM_TARGET } from '../../../core/auth.ts';
import type { KindSpec } from '../../../federation/changelog.ts';
import { defineKind, kindName } from '../../../federation/changelog.ts';
import { anySite, domainHome, ownerOf, userHome } from '../../../federation/origin.ts';
import { evictionKind, siteKind } from '../../../federation/registry.ts';
import type { UniqueSpec } from '../../../federation/unique.ts';
import { homeOf } from '../../../federation/unique.ts';

export const identityMigrations = [
  {
    id: 'identity/001-core',
    sql: `
      CREATE TABLE domains (
        id TEXT PRIMARY KEY, owner TEXT NOT NULL, name TEXT NOT NULL, description TEXT NOT NULL DEFAULT '',
        enabled INTEGER NOT NULL DEFAULT 1, extra TEXT NOT NULL DEFAULT '{}', created_at INTEGER NOT NULL
      );
      CREATE UNIQUE INDEX domains_name ON domains (name);
      CREATE TABLE projects (
        id TEXT PRIMARY KEY, owner TEXT NOT NULL, name TEXT NOT NULL, domain_id TEXT NOT NULL,
        parent_id TEXT, description TEXT NOT NULL DEFAULT '', enabled INTEGER NOT NULL DEFAULT 1,
        is_domain INTEGER NOT NULL DEFAULT 0, tags TEXT NOT NULL DEFAULT '[]', extra TEXT NOT NULL DEFAULT '{}',
        created_at INTEGER NOT NULL
      );
      CREATE UNIQUE INDEX projects_name ON projects (domain_id, name);
      CREATE TABLE users (
        id TEXT PRIMARY KEY, owner TEXT NOT NULL, name TEXT NOT NULL, domain_id TEXT NOT NULL,
        default_project_id TEXT, description TEXT NOT NULL DEFAULT '', email TEXT,
        enabled INTEGER NOT NULL DEFAULT 1, password_hash TEXT, password_expires_at INTEGER,
        extra TEXT NOT NULL DEFAULT '{}', created_at INTEGER NOT NULL
      );
      CREATE UNIQUE INDEX users_name ON users (domain_id, name);
      CREATE TABLE groups (
        id TEXT PRIMARY KEY, owner TEXT NOT NULL, name TEXT NOT NULL, domain_id TEXT NOT NULL,
        description TEXT NOT NULL DEFAULT '', created_at INTEGER NOT NULL
      );
      CREATE UNIQUE INDEX groups_name ON groups (domain_id, name);
      -- id = group_id + ':' + user_id
      CREATE TABLE group_members (
        id TEXT PRIMARY KEY, owner TEXT NOT NULL, group_id TEXT NOT NULL, user_id TEXT NOT NULL
      );
      CREATE INDEX group_members_user ON group_members (user_id);
      CREATE TABLE roles (
        id TEXT PRIMARY KEY, owner TEXT NOT NULL, name TEXT NOT NULL, domain_id TEXT,
        description TEXT NOT NULL DEFAULT '', created_at INTEGER NOT NULL
      );
      CREATE UNIQUE INDEX roles_name ON roles (ifnull(domain_id, ''), name);
      -- id = type + ':' + actor_id + ':' + target_id + ':' + role_id; type is UserProject, GroupProject,
      -- UserDomain or GroupDomain (Keystone's assignment types).
      CREATE TABLE role_assignments (
        id TEXT PRIMARY KEY, owner TEXT NOT NULL, type TEXT NOT NULL, actor_id TEXT NOT NULL,
        target_id TEXT NOT NULL, role_id TEXT NOT NULL, inherited INTEGER NOT NULL DEFAULT 0
      );
      CREATE INDEX role_assignments_actor ON role_assignments (actor_id);
      CREATE INDEX role_assignments_target ON role_assignments (target_id);
      CREATE TABLE regions (
        id TEXT PRIMARY KEY, owner TEXT NOT NULL, description TEXT NOT NULL DEFAULT '', parent_region_id TEXT
      );
      CREATE TABLE services (
        id TEXT PRIMARY KEY, owner TEXT NOT NULL, type TEXT NOT NULL, name TEXT NOT NULL DEFAULT '',
        description TEXT NOT NULL DEFAULT '', enabled INTEGER NOT NULL DEFAULT 1
      );
      CREATE TABLE endpoints (
        id TEXT PRIMARY KEY, owner TEXT NOT NULL, service_id TEXT NOT NULL, region_id TEXT,
        interface TEXT NOT NULL, url TEXT NOT NULL, enabled INTEGER NOT NULL DEFAULT 1
      );
      CREATE TABLE application_credentials (
        id TEXT PRIMARY KEY, owner TEXT NOT NULL, name TEXT NOT NULL, user_id TEXT NOT NULL,
        project_id TEXT NOT NULL, description TEXT NOT NULL DEFAULT '', secret_hash TEXT NOT NULL,
        roles TEXT NOT NULL, unrestricted INTEGER NOT NULL DEFAULT 0, expires_at INTEGER,
        access_rules TEXT NOT NULL DEFAULT '[]', created_at INTEGER NOT NULL
      );
      CREATE UNIQUE INDEX application_credentials_name ON application_credentials (user_id, name);
      -- Keystone-style revocation events: a token matches when every set field matches it and it was
      -- issued at or before issued_before.
      CREATE TABLE revocations (
        id TEXT PRIMARY KEY, owner TEXT NOT NULL, audit_id TEXT, user_id TEXT, project_id TEXT,
        domain_id TEXT, issued_before INTEGER NOT NULL, revoked_at INTEGER NOT NULL, expires_at INTEGER NOT NULL
      );
      CREATE INDEX revocations_audit ON revocations (audit_id);
      CREATE INDEX revocations_user ON revocations (user_id);
    `,
  },
  {
    // Domain and role names are resolved across sites (unique.ts, 'first'): two sites' rows may share a
    // name until the loser's owner renames it, so a UNIQUE index would make replicas reject one of them.
    id: 'identity/002-names-unique-across-sites',
    sql: `
      DROP INDEX domains_name;
      CREATE INDEX domains_name ON domains (name);
      DROP INDEX roles_name;
      CREATE INDEX roles_name ON roles (ifnull(domain_id, ''), name);
    `,
  },
  {
    // Role inference rules (Keystone's implied roles): a grant of the prior role grants the implied too.
    id: 'identity/003-implied-roles',
    sql: `
      CREATE TABLE implied_roles (
        id TEXT PRIMARY KEY, owner TEXT NOT NULL, prior_role_id TEXT NOT NULL, implied_role_id TEXT NOT NULL
      );
      CREATE INDEX implied_roles_prior ON implied_roles (prior_role_id);
    `,
  },
  {
    // Keystone's policies API: opaque documents (blob) with a MIME type, stored and served, never enforced.
    id: 'identity/004-policies',
    sql: `
      CREATE TABLE policies (
        id TEXT PRIMARY KEY, owner TEXT NOT NULL, type TEXT NOT NULL, blob TEXT NOT NULL,
        extra TEXT NOT NULL DEFAULT '{}'
      );
    `,
  },
  {
    // Credentials (/v3/credentials, EC2 ones among them), OAuth1 consumers, endpoint groups, domain
    // configuration and trusts (OS-TRUST).
    id: 'identity/005-credentials-trusts',
    sql: `
      CREATE TABLE credentials (
        id TEXT PRIMARY KEY, owner TEXT NOT NULL, user_id TEXT NOT NULL, project_id TEXT,
        type TEXT NOT NULL, blob TEXT NOT NULL, extra TEXT NOT NULL DEFAULT '{}'
      );
      CREATE INDEX credentials_user ON credentials (user_id);
      CREATE TABLE oauth_consumers (
        id TEXT PRIMARY KEY, owner TEXT NOT NULL, description TEXT, secret TEXT NOT NULL,
        extra TEXT NOT NULL DEFAULT '{}'
      );
      CREATE TABLE endpoint_groups (
        id TEXT PRIMARY KEY, owner TEXT NOT NULL, name TEXT NOT NULL, description TEXT NOT NULL DEFAULT '',
        filters TEXT NOT NULL DEFAULT '{}'
      );
      -- id = the domain's id
      CREATE TABLE domain_configs (
        id TEXT PRIMARY KEY, owner TEXT NOT NULL, config TEXT NOT NULL
      );
      CREATE TABLE trusts (
        id TEXT PRIMARY KEY, owner TEXT NOT NULL, trustor_user_id TEXT NOT NULL,
        trustee_user_id TEXT NOT NULL, project_id TEXT, impersonation INTEGER NOT NULL,
        roles TEXT NOT NULL, expires_at INTEGER, remaining_uses INTEGER,
        allow_redelegation INTEGER NOT NULL DEFAULT 0, redelegation_count INTEGER,
        redelegated_trust_id TEXT, extra TEXT NOT NULL DEFAULT '{}', created_at INTEGER NOT NULL
      );
      CREATE INDEX trusts_trustor ON trusts (trustor_user_id);
      CREATE INDEX trusts_trustee ON trusts (trustee_user_id);
    `,
  },
  {
    // Application credential access rules: a user's (service, method, path) rules, shared by the
    // user's credentials that name them; a credential's access_rules column holds their ids.
    id: 'identity/006-access-rules',
    sql: `
      CREATE TABLE access_rules (
        id TEXT PRIMARY KEY, owner TEXT NOT NULL, user_id TEXT NOT NULL, service TEXT NOT NULL,
        method TEXT NOT NULL, path TEXT NOT NULL, created_at INTEGER NOT NULL
      );
      CREATE INDEX access_rules_user ON access_rules (user_id);
    `,
  },
] as const;

/**
 * The owner of the admin project (the founder, normally): the one site that writes what decides who
 * is a cloud admin everywhere, beyond grants on projects and domains (grants on the system, role
 * inference rules).
 */
const ADMIN_PROJECT_OWNER = `(SELECT owner FROM projects WHERE domain_id = '${ADMIN_PROJECT.domainId}'
  AND name = '${ADMIN_PROJECT.name}' AND is_domain = 0)`;

/** Names inside a domain: created at the domain's home site, whose UNIQUE index decides. */
const inDomain: UniqueSpec = {
  by: 'home',
  key: ['domain_id', 'name'],
  home: homeOf.domain,
};

export const domainKind = defineKind<DomainRow>({
  kind: 'domain',
  table: 'domains',
  replicate: 'all',
  unique: { by: 'first', key: ['name'], rename: 'name' },
  origin: anySite,
});
export const projectKind = defineKind<ProjectRow>({
  kind: 'project',
  table: 'projects',
  replicate: 'all',
  unique: inDomain,
  origin: domainHome,
});
export const userKind = defineKind<UserRow>({
  kind: 'user',
  table: 'users',
  replicate: 'all',
  unique: inDomain,
  origin: domainHome,
});
export const groupKind = defineKind<GroupRow>({
  kind: 'group',
  table: 'groups',
  replicate: 'all',
  unique: inDomain,
  origin: domainHome,
});
export const groupMemberKind = defineKind<GroupMemberRow>({
  kind: 'group_member',
  table: 'group_members',
  replicate: 'all',
  origin: ownerOf('the owner of its group', 'groups', 'group_id'),
});
// Global roles have no home; domain roles are resolved the same way, for one rule per kind.
export const roleKind = defineKind<RoleRow>({
  kind: 'role',
  table: 'roles',
  replicate: 'all',
  unique: { by: 'first', key: ['domain_id', 'name'], rename: 'name' },
  origin: anySite,
});
// Types UserSystem and GroupSystem (target_id SYSTEM_TARGET) are grants on the system.
// Granted where the target (a project or a domain) lives, so only its owner can grant on it. The
// system (SYSTEM_TARGET) is granted by the admin project's owner: the site that already decides who
// is a cloud admin, so system scope gives no other site a way to make one.
export const assignmentKind = defineKind<AssignmentRow>({
  kind: 'role_assignment',
  table: 'role_assignments',
  replicate: 'all',
  origin: {
    by: 'site',
    of: 'the owner of its target',
    sql: `SELECT CASE WHEN ? IN ('UserSystem', 'GroupSystem')
          THEN (SELECT ${ADMIN_PROJECT_OWNER} WHERE ? = '${SYSTEM_TARGET}')
          ELSE COALESCE((SELECT owner FROM projects WHERE id = ?), (SELECT owner FROM domains WHERE id = ?)) END`,
    args: ['type', 'target_id', 'target_id', 'target_id'],
  },
});
// A rule changes what every grant of its prior role grants, so it is written where system grants are.
export const impliedRoleKind = defineKind<ImpliedRoleRow>({
  kind: 'implied_role',
  table: 'implied_roles',
  replicate: 'all',
  origin: { by: 'site', of: "the admin project's owner", sql: `SELECT ${ADMIN_PROJECT_OWNER}`, args: [] },
});
// Opaque documents nobody enforces: any site stores its own.
export const policyKind = defineKind<PolicyRow>({
  kind: 'policy',
  table: 'policies',
  replicate: 'all',
  origin: anySite,
});
// A credential (EC2 or any other type) belongs to its user's home, like application credentials.
export const credentialKind = defineKind<CredentialRow>({
  kind: 'credential',
  table: 'credentials',
  replicate: 'all',
  origin: userHome,
});
// OAuth1 consumers and endpoint groups are catalog-like data a cloud admin keeps: any site makes its own.
export const oauthConsumerKind = defineKind<OAuthConsumerRow>({
  kind: 'oauth_consumer',
  table: 'oauth_consumers',
  replicate: 'all',
  origin: anySite,
});
export const endpointGroupKind = defineKind<EndpointGroupRow>({
  kind: 'endpoint_group',
  table: 'endpoint_groups',
  replicate: 'all',
  origin: anySite,
});
// A domain's configuration (id = the domain's id) is written where the domain lives.
export const domainConfigKind = defineKind<DomainConfigRow>({
  kind: 'domain_config',
  table: 'domain_configs',
  replicate: 'all',
  origin: ownerOf('the owner of its domain', 'domains', 'id'),
});
// A trust delegates the trustor's roles: it is written at the trustor's home, where the roles are.
export const trustKind = defineKind<TrustRow>({
  kind: 'trust',
  table: 'trusts',
  replicate: 'all',
  origin: {
    by: 'site',
    of: 'the home of its trustor',
    sql: 'SELECT owner FROM users WHERE id = ?',
    args: ['trustor_user_id'],
  },
});
// Region ids are chosen by the caller: a clash keeps one row, the same everywhere.
export const regionKind = defineKind<RegionRow>({
  kind: 'region',
  table: 'regions',
  replicate: 'all',
  unique: { by: 'first', key: [] },
  origin: anySite,
});
export const serviceKind = defineKind<ServiceRow>({
  kind: 'service',
  table: 'services',
  replicate: 'all',
  origin: anySite,
});
// A site's region lists only the endpoints that site registers; other regions' are anyone's.
export const endpointKind = defineKind<EndpointRow>({
  kind: 'endpoint',
  table: 'endpoints',
  replicate: 'all',
  origin: {
    by: 'site',
    of: 'the site of its region',
    sql: 'SELECT id FROM sites WHERE id = ?',
    args: ['region_id'],
    unknown: 'any',
  },
});
export const appCredKind = defineKind<AppCredRow>({
  kind: 'application_credential',
  table: 'application_credentials',
  replicate: 'all',
  unique: { by: 'home', key: ['user_id', 'name'], home: homeOf.user },
  origin: userHome,
});
// A user's access rules live where the user's application credentials do.
export const accessRuleKind = defineKind<AccessRuleRow>({
  kind: 'access_rule',
  table: 'access_rules',
  replicate: 'all',
  origin: userHome,
});
// Any site revokes (a user signs out wherever they are); a revocation only takes access away.
export const revocationKind = defineKind<RevocationRow>({
  kind: 'revocation',
  table: 'revocations',
  replicate: 'all',
  origin: anySite,
});

export const identityKinds: readonly KindSpec[] = [
  domainKind,
  projectKind,
  userKind,
  groupKind,
  groupMemberKind,
  roleKind,
  assignmentKind,
  impliedRoleKind,
  policyKind,
  regionKind,
  serviceKind,
  endpointKind,
  appCredKind,
  accessRuleKind,
  revocationKind,
  credentialKind,
  oauthConsumerKind,
  endpointGroupKind,
  domainConfigKind,
  trustKind,
];

/** Kinds whose change can change what a token grants: the validation cache is dropped on any of them. */
export const AUTHZ_KINDS: readonly string[] = [
  domainKind,
  projectKind,
  userKind,
  groupMemberKind,
  roleKind,
  assignmentKind,
  impliedRoleKind,
  appCredKind,
  revocationKind,
  trustKind,
  siteKind,
  evictionKind,
].map(kindName);

export interface DomainRow {
  id: string;
  owner: string;
  name: string;
  description: string;
  enabled: number;
  extra: string;
  created_at: number;
}
export interface ProjectRow {
  id: string;
  owner: string;
  name: string;
  domain_id: string;
  parent_id: string | null;
  description: string;
  enabled: number;
  is_domain: number;
  tags: string;
  extra: string;
  created_at: number;
}
export interface UserRow {
  id: string;
  owner: string;
  name: string;
  domain_id: string;
  default_project_id: string | null;
  description: string;
  email: string | null;
  enabled: number;
  password_hash: string | null;
  password_expires_at: number | null;
  extra: string;
  created_at: number;
}
export interface ImpliedRoleRow {
  id: string;
  owner: string;
  prior_role_id: string;
  implied_role_id: string;
}
export interface RoleRow {
  id: string;
  owner: string;
  name: string;
  domain_id: string | null;
  description: string;
  created_at: number;
}
export interface AppCredRow {
  id: string;
  owner: string;
  name: string;
  user_id: string;
  project_id: string;
  description: string;
  secret_hash: string;
  roles: string;
  unrestricted: number;
  expires_at: number | null;
  /** JSON list of access rule ids (AccessRuleRow). */
  access_rules: string;
  created_at: number;
}
export interface AccessRuleRow {
  id: string;
  owner: string;
  user_id: string;
  service: string;
  method: string;
  path: string;
  created_at: number;
}
export interface GroupRow {
  id: string;
  owner: string;
  name: string;
  domain_id: string;
  description: string;
  created_at: number;
}
/** id = group_id + ':' + user_id */
export interface GroupMemberRow {
  id: string;
  owner: string;
  group_id: string;
  user_id: string;
}
export type AssignmentType =
  'UserProject' | 'GroupProject' | 'UserDomain' | 'GroupDomain' | 'UserSystem' | 'GroupSystem';
export interface AssignmentRow {
  id: string;
  owner: string;
  type: AssignmentType;
  actor_id: string;
  target_id: string;
  role_id: string;
  inherited: number;
}
export interface RegionRow {
  id: string;
  owner: string;
  description: string;
  parent_region_id: string | null;
}
export interface ServiceRow {
  id: string;
  owner: string;
  type: string;
  name: string;
  description: string;
  enabled: number;
}
export interface EndpointRow {
  id: string;
  owner: string;
  service_id: string;
  region_id: string | null;
  interface: string;
  url: string;
  enabled: number;
}
export interface PolicyRow {
  id: string;
  owner: string;
  type: string;
  blob: string;
  extra: string;
}
export interface CredentialRow {
  id: string;
  owner: string;
  user_id: string;
  project_id: string | null;
  type: string;
  blob: string;
  extra: string;
}
export interface OAuthConsumerRow {
  id: string;
  owner: string;
  description: string | null;
  secret: string;
  extra: string;
}
export interface EndpointGroupRow {
  id: string;
  owner: string;
  name: string;
  description: string;
  /** JSON object: endpoint attribute -> value (service_id, region_id, interface). */
  filters: string;
}
/** id = the domain's id; config = JSON { group: { option: value } }. */
export interface DomainConfigRow {
  id: string;
  owner: string;
  config: string;
}
export interface TrustRow {
  id: string;
  owner: string;
  trustor_user_id: string;
  trustee_user_id: string;
  project_id: string | null;
  impersonation: number;
  /** JSON [{id, name}]: the delegated roles. */
  roles: string;
  expires_at: number | null;
  remaining_uses: number | null;
  allow_redelegation: number;
  redelegation_count: number | null;
  redelegated_trust_id: string | null;
  extra: string;
  created_at: number;
}
/** A token revocation event: tokens matching every set field, issued at or before issued_before. */
export interface RevocationRow {
  id: string;
  owner: string;
  audit_id: string | null;
  user_id: string | null;
  project_id: string | null;
  domain_id: string | null;
  issued_before: number;
  revoked_at: number;
  expires_at: number;
}
/** A row as a removal needs it: which row, and which site may delete it. */
export interface OwnedRef {
  id: string;
  owner: string;
}
