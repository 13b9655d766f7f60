/**
 * @module Every identity repository over one database: the only SQL of the identity service (with the
 * reader's token-path queries in reader.ts and the tables in schema.ts).
 */
import type { Db } from '../../../store/db.ts';
import { AccessRuleRepo, AppCredRepo } from './app-creds.ts';
import { AssignmentRepo } from './assignments.ts';
import { CatalogRepo } from './catalog.ts';
import { DomainRepo } from './domains.ts';
import { GroupRepo } from './groups.ts';
import { ImpliedRoleRepo } from './implied-roles.ts';
import { PolicyRepo } from './policies.ts';
import {
  CredentialRepo,
  DomainConfigRepo,
  EndpointGroupRepo,
  OAuthConsumerRepo,
  TrustRepo,
} from './credentials.ts';
import { ProjectRepo } from './projects.ts';
import { RoleRepo } from './roles.ts';
import { UserRepo } from './users.ts';

export interface IdentityRepos {
  domains: DomainRepo;
  projects: ProjectRepo;
  users: UserRepo;
  groups: GroupRepo;
  roles: RoleRepo;
  impliedRoles: ImpliedRoleRepo;
  assignments: AssignmentRepo;
  appCreds: AppCredRepo;
  accessRules: AccessRuleRepo;
  catalog: CatalogRepo;
  policies: PolicyRepo;
  credentials: CredentialRepo;
  oauthConsumers: OAuthConsumerRepo;
  endpointGroups: EndpointGroupRepo;
  domainConfigs: DomainConfigRepo;
  trusts: TrustRepo;
}

/** Prepares every statement: call after the identity migrations ran. */
export function identityRepos(db: Db): IdentityRepos {
  return {
    domains: new DomainRepo(db),
    projects: new ProjectRepo(db),
    users: new UserRepo(db),
    groups: new GroupRepo(db),
    roles: new RoleRepo(db),
    impliedRoles: new ImpliedRoleRepo(db),
    assignments: new AssignmentRepo(db),
    appCreds: new AppCredRepo(db),
    accessRules: new AccessRuleRepo(db),
    catalog: new CatalogRepo(db),
    policies: new PolicyRepo(db),
    credentials: new CredentialRepo(db),
    oauthConsumers: new OAuthConsumerRepo(db),
    endpointGroups: new EndpointGroupRepo(db),
    domainConfigs: new DomainConfigRepo(db),
    trusts: new TrustRepo(db),
  };
}
