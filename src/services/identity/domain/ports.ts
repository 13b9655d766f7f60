/**
 * @module What identity's domain actions see: its repositories and reader, the change log (the only
 * way a replicated row is written), a transaction, the site's ownership rule, time, ids and the
 * password checker. No HTTP: the routes in api/ authenticate, check policy and forward first.
 */
import type { Kind, KeyedRow, KindSpec, NewRow } from '../../../federation/changelog.ts';
import type { IdentityRepos } from '../store/repos.ts';
import type { SqlIdentityReader } from '../store/reader.ts';
import type { PasswordChecker } from './passwords.ts';

/** Writes rows this site owns, each with its change-log entry (federation/changelog.ts). */
export interface ChangeWriter {
  put<R extends KeyedRow>(kind: Kind<R>, row: NoInfer<NewRow<R>>): R;
  remove(kind: KindSpec, id: string): void;
}

export interface IdentityPorts {
  readonly repos: IdentityRepos;
  readonly reader: SqlIdentityReader;
  readonly changes: ChangeWriter;
  /** Password and secret checks with equal work for unknown users (no user enumeration by timing). */
  readonly passwords: PasswordChecker;
  /** Runs fn in one transaction (nested: a savepoint). */
  tx<T>(fn: () => T): T;
  /** True when a row with this owner is written here. */
  owns(owner: string): boolean;
  /** Milliseconds since the epoch, from the site's clock. */
  now(): number;
  newId(): string;
  /** The scrypt cost of new password and secret hashes. */
  hashCost(): number;
  /** How long a token issued now may live: revocations cover tokens up to then. */
  tokenTtlMs(): number;
}

/** What the service catalog is built from, beyond the identity ports. */
export interface CatalogPorts extends IdentityPorts {
  readonly siteName: string;
  publicUrl(): string;
  /** True once this site left the federation (it registers nothing more). */
  hasLeft(): boolean;
  isEvicted(site: string): boolean;
  /** Bumped on every change (local or replicated) that can change the service catalog. */
  catalogEpoch(): number;
}
