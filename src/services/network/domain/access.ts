/**
 * @module Who may see and change a network resource. A caller is a user (their token's AuthContext) or
 * the network service itself acting for a reason (a router's gateway port, a floating IP's port, the
 * ports of a deleted server): the latter passes every check, as Neutron's own elevated context does.
 */
import type { AuthContext } from '../../../core/auth.ts';
import { Forbidden, NotFound } from '../../../core/errors.ts';
import type { ResourceKind } from '../store/schema.ts';
import type { NetworkDeps, StoredRow } from './deps.ts';

/** The network service acting on its own behalf, never a user's token. */
export interface SystemCaller {
  readonly kind: 'system';
  /** Why: said in code so that every elevated call is named. */
  readonly reason: string;
}

export type Caller = AuthContext | SystemCaller;

export function asSystem(reason: string): SystemCaller {
  return { kind: 'system', reason };
}

function isSystem(c: Caller): c is SystemCaller {
  return (c as Partial<SystemCaller>).kind === 'system';
}

/** Admin rights: an admin token, or the service itself. */
export function isAdmin(c: Caller): boolean {
  return isSystem(c) || c.isAdmin;
}

function projectOf(c: Caller): string | undefined {
  return isSystem(c) ? undefined : c.projectId;
}

export function canSee(d: NetworkDeps, c: Caller, kind: ResourceKind, r: StoredRow): boolean {
  if (isAdmin(c)) return true;
  // Metering is an admin's only (Neutron's policy), even the labels of one's own project.
  if (kind === 'metering_label' || kind === 'metering_label_rule') return false;
  if (r.project_id === projectOf(c)) return true;
  if (kind === 'network') return r.shared === 1 || r.external === 1;
  if (kind === 'subnet_pool') return r.shared === 1;
  if (kind === 'subnet') {
    // A shared network's subnets; an external network's are hidden unless it is also shared (Neutron).
    const n = d.repo.row('network', String(r.network_id));
    return !!n && n.shared === 1;
  }
  return false;
}

/** The row if the caller may see it, else 404 (Neutron hides what you may not read). */
export function visible(
  d: NetworkDeps,
  c: Caller,
  kind: ResourceKind,
  id: string,
  label: string = kind,
): StoredRow {
  const r = d.repo.row(kind, id);
  if (!r || !canSee(d, c, kind, r))
    throw new NotFound(`${title(label)} ${id} could not be found.`, `${pascal(label)}NotFound`);
  return r;
}

/** The row for a write: 404 when invisible, 403 when only readable. */
export function writable(
  d: NetworkDeps,
  c: Caller,
  kind: ResourceKind,
  id: string,
  label: string = kind,
): StoredRow {
  const r = visible(d, c, kind, id, label);
  if (!isAdmin(c) && r.project_id !== projectOf(c))
    throw new Forbidden(`Not allowed to change ${label} ${id}.`);
  return r;
}

function title(kind: string): string {
  return kind.replaceAll('_', ' ').replace(/^./, (c) => c.toUpperCase());
}
function pascal(kind: string): string {
  return kind
    .split(/[_ ]/)
    .map((w) => (w === 'ip' ? 'IP' : w.charAt(0).toUpperCase() + w.slice(1)))
    .join('');
}
