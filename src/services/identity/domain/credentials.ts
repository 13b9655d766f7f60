/**
 * @module Writes of the smaller identity resources: credentials (EC2 ones among them), OAuth1
 * consumers, endpoint groups and domain configuration. The routes authenticate, check policy and
 * forward to the owner first; each write here is one row with its change-log entry.
 */
import type { CredentialRow, DomainConfigRow, EndpointGroupRow, OAuthConsumerRow } from '../store/schema.ts';
import { credentialKind, domainConfigKind, endpointGroupKind, oauthConsumerKind } from '../store/schema.ts';
import type { IdentityPorts } from './ports.ts';

export function putCredential(
  p: IdentityPorts,
  c: Omit<CredentialRow, 'owner' | 'id'> & { id?: string },
): CredentialRow {
  return p.changes.put(credentialKind, { ...c, id: c.id ?? p.newId() });
}

export function deleteCredential(p: IdentityPorts, id: string): void {
  p.changes.remove(credentialKind, id);
}

export function putOAuthConsumer(
  p: IdentityPorts,
  c: Omit<OAuthConsumerRow, 'owner' | 'id'> & { id?: string },
): OAuthConsumerRow {
  return p.changes.put(oauthConsumerKind, { ...c, id: c.id ?? p.newId() });
}

export function deleteOAuthConsumer(p: IdentityPorts, id: string): void {
  p.changes.remove(oauthConsumerKind, id);
}

export function putEndpointGroup(
  p: IdentityPorts,
  g: Omit<EndpointGroupRow, 'owner' | 'id'> & { id?: string },
): EndpointGroupRow {
  return p.changes.put(endpointGroupKind, { ...g, id: g.id ?? p.newId() });
}

export function deleteEndpointGroup(p: IdentityPorts, id: string): void {
  p.changes.remove(endpointGroupKind, id);
}

/** Stores a domain's whole configuration ({} removes the row). */
export function putDomainConfig(
  p: IdentityPorts,
  domainId: string,
  config: Record<string, Record<string, unknown>>,
): DomainConfigRow | undefined {
  if (Object.keys(config).length === 0) {
    if (p.repos.domainConfigs.get(domainId)) p.changes.remove(domainConfigKind, domainId);
    return undefined;
  }
  return p.changes.put(domainConfigKind, { id: domainId, config: JSON.stringify(config) });
}
