/**
 * @module Rows of the smaller identity resources: credentials (EC2 ones among them), OAuth1 consumers,
 * endpoint groups, domain configuration and trusts.
 */
import type { Db } from '../../../store/db.ts';
import { TableRows } from './sql.ts';
import type {
  CredentialRow,
  DomainConfigRow,
  EndpointGroupRow,
  OAuthConsumerRow,
  OwnedRef,
  TrustRow,
} from './schema.ts';

export class CredentialRepo extends TableRows<CredentialRow> {
  private q;
  constructor(db: Db) {
    super(db, 'credentials', 'id');
    this.q = {
      ofUser: db.prepare('SELECT * FROM credentials WHERE user_id = ? ORDER BY id'),
      refsOfUser: db.prepare('SELECT id, owner FROM credentials WHERE user_id = ?'),
      refsOfProject: db.prepare('SELECT id, owner FROM credentials WHERE project_id = ?'),
    };
  }
  ofUser(userId: string): CredentialRow[] {
    return this.q.ofUser.all(userId) as CredentialRow[];
  }
  refsOfUser(userId: string): OwnedRef[] {
    return this.q.refsOfUser.all(userId) as OwnedRef[];
  }
  refsOfProject(projectId: string): OwnedRef[] {
    return this.q.refsOfProject.all(projectId) as OwnedRef[];
  }
}

export class OAuthConsumerRepo extends TableRows<OAuthConsumerRow> {
  constructor(db: Db) {
    super(db, 'oauth_consumers', 'id');
  }
}

export class EndpointGroupRepo extends TableRows<EndpointGroupRow> {
  constructor(db: Db) {
    super(db, 'endpoint_groups', 'name, id');
  }
}

export class DomainConfigRepo extends TableRows<DomainConfigRow> {
  constructor(db: Db) {
    super(db, 'domain_configs', 'id');
  }
}

export class TrustRepo extends TableRows<TrustRow> {
  private q;
  constructor(db: Db) {
    super(db, 'trusts', 'created_at, id');
    this.q = {
      refsOfUser: db.prepare('SELECT id, owner FROM trusts WHERE trustor_user_id = ? OR trustee_user_id = ?'),
      refsOfProject: db.prepare('SELECT id, owner FROM trusts WHERE project_id = ?'),
      redelegatedFrom: db.prepare('SELECT id, owner FROM trusts WHERE redelegated_trust_id = ?'),
    };
  }
  /** Trusts the user gave or holds. */
  refsOfUser(userId: string): OwnedRef[] {
    return this.q.refsOfUser.all(userId, userId) as OwnedRef[];
  }
  refsOfProject(projectId: string): OwnedRef[] {
    return this.q.refsOfProject.all(projectId) as OwnedRef[];
  }
  /** Trusts redelegated from this one. */
  redelegatedFrom(trustId: string): OwnedRef[] {
    return this.q.redelegatedFrom.all(trustId) as OwnedRef[];
  }
}
