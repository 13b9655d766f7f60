/**
 * @module Who may originate a kind's rows. Owning a row (being its only writer) is not enough: a site
 * that makes a new row with a fresh id owns it, so without a rule per kind a compromised site could
 * make a user in another site's domain, an admin role assignment on another site's project, a registry
 * row for a site that never joined, or an eviction of an honest site (issue 11, class 2). Each
 * replicated kind therefore declares, beside its table in its schema file (`KindSpec.origin`), which
 * site may write its rows; the change log checks the rule on every put, its own and every replica's,
 * and a receiver rejects (and logs) any change whose origin the rule does not name.
 *
 * The rules are data:
 * - `any`: any site, for rows it owns (what it runs: servers, volumes, images; cloud-unique names).
 * - `self`: the row is the origin's own record (`column` holds the origin's name: a site's registry row).
 * - `site`: the one site that `sql` selects, given the row's `args` columns (the owner of the row's
 *   domain, project, network, volume...). The parent is the origin's own row, so it is in the origin's
 *   log before the child and every receiver knows it in time. When `sql` selects nothing the change is
 *   refused, unless `unknown: 'any'` says such rows are free (endpoints of regions that are no site's).
 *   `check` adds what a query cannot say (an eviction's id and target).
 */
import type { Row } from './changelog.ts';
import { homeOf } from './unique.ts';

export type OriginRule =
  | { by: 'any' }
  | { by: 'self'; column: string }
  | {
      by: 'site';
      /** What the selected site is, for messages: "the home of its domain". */
      of: string;
      sql: string;
      args: readonly string[];
      unknown?: 'refuse' | 'any';
      /** Further conditions on the row, given the origin and the site `sql` selected. */
      check?: (row: Row, origin: string, site: string) => string | undefined;
    };

/** Rows any site may originate (what it owns outright). */
export const anySite: OriginRule = { by: 'any' };

/** Rows only the owner of another row may originate: `sql` selects that owner from the row's `args`. */
export function ownerOf(of: string, table: string, column: string): OriginRule {
  return { by: 'site', of, sql: `SELECT owner FROM ${table} WHERE id = ?`, args: [column] };
}

/** Rows of a namespace with a home site (unique.ts): only the home writes them. */
export const domainHome: OriginRule = { by: 'site', of: 'the home of its domain', ...homeOf.domain };
export const userHome: OriginRule = { by: 'site', of: 'the home of its user', ...homeOf.user };
export const projectHome: OriginRule = { by: 'site', of: 'the home of its project', ...homeOf.project };

/**
 * The federation's membership authority: the founder (the site that admitted itself at bootstrap),
 * or the site a joining site was told about by its inviter (`site_authority`). Only it admits and
 * evicts, so no other site can squat an admission's key or evict anyone, and nobody can evict it.
 */
export const AUTHORITY_SQL =
  'SELECT COALESCE((SELECT site FROM site_authority WHERE id = 1), ' +
  '(SELECT owner FROM site_admissions WHERE id = owner LIMIT 1))';

/** Rows of the cloud's own settings (volume quota classes): only the membership authority writes them. */
export const membershipAuthority: OriginRule = {
  by: 'site',
  of: 'the membership authority',
  sql: AUTHORITY_SQL,
  args: [],
};

/** Why `origin` may not write `row` of a kind with rule `rule`, or undefined when it may. */
export function originRefusal(
  rule: OriginRule,
  kind: string,
  row: Row,
  origin: string,
  select: (sql: string, args: unknown[]) => unknown,
): string | undefined {
  if (rule.by === 'any') return undefined;
  if (rule.by === 'self')
    return row[rule.column] === origin
      ? undefined
      : `${kind} ${row.id} is the record of ${String(row[rule.column])}; only that site may write it, not ${origin}`;
  const site = select(
    rule.sql,
    rule.args.map((a) => row[a]),
  );
  if (typeof site !== 'string') {
    if (rule.unknown === 'any') return undefined;
    return `${kind} ${row.id} names no known ${rule.of}, so ${origin} may not write it`;
  }
  if (site !== origin)
    return `${kind} ${row.id} may be written only by ${site} (${rule.of}), not by ${origin}`;
  return rule.check?.(row, origin, site);
}
