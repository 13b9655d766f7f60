/**
 * @module Policy documents (Keystone's /v3/policies): opaque blobs with a MIME type, stored and served,
 * never enforced. A policy belongs to the site that made it (the routes forward changes there).
 */
import type { PolicyRow } from '../store/schema.ts';
import type { IdentityPorts } from './ports.ts';

export function createPolicy(p: IdentityPorts, c: { type: string; blob: string; extra: string }): PolicyRow {
  return p.changes.put('policy', { id: p.newId(), ...c }) as unknown as PolicyRow;
}

export function updatePolicy(
  p: IdentityPorts,
  cur: PolicyRow,
  c: { type: string | undefined; blob: string | undefined; extra: string },
): PolicyRow {
  return p.changes.put('policy', {
    ...cur,
    type: c.type ?? cur.type,
    blob: c.blob ?? cur.blob,
    extra: c.extra,
  }) as unknown as PolicyRow;
}

export function deletePolicy(p: IdentityPorts, id: string): void {
  p.changes.remove('policy', id);
}
