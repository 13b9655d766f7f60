/**
 * @module Rules every identity action shares: a site removes only the rows it owns (their owners
 * remove the others), a rename may not take a name another object of the same scope holds, and
 * Keystone's "Could not find" faults.
 */
import { Conflict, NotFound } from '../../../core/errors.ts';
import type { KindSpec } from '../../../federation/changelog.ts';
import type { OwnedRef } from '../store/schema.ts';
import type { IdentityPorts } from './ports.ts';

export const notFound = (kind: string, id: string) => new NotFound(`Could not find ${kind}: ${id}.`);

/** Removes through the change log the rows of `refs` this site owns. */
export function removeOwned(p: IdentityPorts, kind: KindSpec, refs: readonly OwnedRef[]): void {
  for (const r of refs) if (p.owns(r.owner)) p.changes.remove(kind, r.id);
}

/** Renaming to a name another object of the same scope holds is a 409 (Keystone's message). */
export function checkRename(
  name: string | undefined,
  cur: { id: string; name: string },
  holder: (name: string) => { id: string } | undefined,
): void {
  if (name === undefined || name === cur.name) return;
  const other = holder(name);
  if (other && other.id !== cur.id) throw new Conflict(`Duplicate entry found with name ${name}.`);
}

/** A stored 0/1 flag from an optional boolean. */
export function bool01(v: boolean | undefined, dflt: number): number {
  return v === undefined ? dflt : v ? 1 : 0;
}
