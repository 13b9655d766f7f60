/**
 * @module Names that must be unique across the cloud, without a central lock. Each kind with such a
 * name declares how its uniqueness holds (`KindSpec.unique`, beside the kind in its schema file), and
 * the change log applies the declaration; no kind has code of its own for it (docs/federation.md,
 * "Unique names"). Two ways:
 * - `home`: every create in one namespace runs at the namespace's home site (a user's keypairs and a
 *   project's quota rows at their domain's home site, projects and users at their domain's), whose
 *   local check and primary key decide. Elsewhere the create is forwarded; a 503 names the home when
 *   it is unreachable. Nothing to resolve later: two rows of one namespace never have two writers.
 * - `first`: a global namespace (domain, role and flavor names, region ids) has no home, so any site
 *   creates, checking against every row it knows, and a clash of two sites' creates made before
 *   either heard of the other is resolved the same way everywhere: the row with the lowest
 *   (created_at, id, owner) keeps the name (or the id), and the loser's owner, when it learns of the
 *   winner, renames its row visibly (`<name>--conflict-<id8>`) or, when the id itself clashed, drops
 *   its row in favour of the winner's. Replicas never reject either row.
 */

export type UniqueSpec =
  | {
      by: 'home';
      /** Columns unique together (the id always is). */
      key: readonly string[];
      /** The namespace's home site, selected by `sql` with the row's `args` columns as parameters. */
      home: { sql: string; args: readonly string[] };
    }
  | {
      by: 'first';
      /** Columns unique together besides the id (none: only the id is contested, e.g. region ids). */
      key: readonly string[];
      /** The column a losing row is renamed in (required when `key` is not empty). */
      rename?: string;
    };

type Row = Record<string, unknown> & { id: string };

/** Sort key of a contested row: the lowest wins at every site, whatever the order rows arrive in. */
function rank(r: Row): [number, string, string] {
  return [Number(r.created_at ?? 0) || 0, String(r.id), String(r.owner)];
}

/** True when row `a` wins against row `b`. */
export function outranks(a: Row, b: Row): boolean {
  const x = rank(a);
  const y = rank(b);
  for (let i = 0; i < x.length; i++) if (x[i] !== y[i]) return x[i]! < y[i]!;
  return false;
}

/** The visible new name of a row that lost its name to another site's row. */
export function conflictName(r: Row, column: string): string {
  return `${String(r[column])}--conflict-${String(r.id).slice(0, 8)}`;
}

/** SQL condition selecting the rows whose `key` columns equal the given row's (null equals null). */
export function sameKeySql(key: readonly string[]): string {
  return key.map((c) => `${c} IS ?`).join(' AND ');
}

/**
 * The namespaces with a home site, as the SQL that finds it: a domain's home is the site that made it;
 * a user's and a project's is their domain's (the owner of every row in a domain).
 */
export const homeOf = {
  /** Names inside a domain (projects, users, groups), from the row's domain_id. */
  domain: { sql: 'SELECT owner FROM domains WHERE id = ?', args: ['domain_id'] },
  /** Names a user holds (keypairs, application credentials), from the row's user_id. */
  user: { sql: 'SELECT owner FROM users WHERE id = ?', args: ['user_id'] },
  /** A project's own rows (quota sets: id = project id). */
  project: { sql: 'SELECT owner FROM projects WHERE id = ?', args: ['id'] },
} as const;

/** A project's own row (a quota set, id = project id): made at the project's home site. */
export const projectRow: UniqueSpec = { by: 'home', key: ['id'], home: homeOf.project };
