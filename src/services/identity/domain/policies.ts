/**
 * @module Policy documents (Keystone's /v3/policies): opaque blobs with a MIME type, stored and served,
 * never enforced. A policy belongs to the site that made it (the routes forward changes there).
 */
import type { PolicyRow } from '../store/schema.ts';
import type { IdentityPorts } from './ports.ts';
import { policyKind } from '../store/schema.ts';

export function createPolicy(p: IdentityPorts, c: { type: string; blob: string; extra: string }): PolicyRow {
  return p.changes.put(policyKind, { id: p.newId(), ...c });
}

export function updatePolicy(
  p: IdentityPorts,
  cur: PolicyRow,
  c: { type: string | undefined; blob: string | undefined; extra: string },
): PolicyRow {
  return p.changes.put(policyKind, {
    ...cur,
    type: c.type ?? cur.type,
    blob: c.blob ?? cur.blob,
    extra: c.extra,
  });
}

export function deletePolicy(p: IdentityPorts, id: string): void {
  p.changes.remove(policyKind, id);
}
