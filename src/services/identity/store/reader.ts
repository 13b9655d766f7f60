/**
 * @module Identity reads used on the hot path (token validation) and by the APIs: prepared statements
 * over this site's tables, which hold its own rows and replicas of everyone else's.
 */
import type { Db } from '../../../store/db.ts';
import type { SiteRegistry } from '../../../federation/registry.ts';
import type { AccessRule } from '../../../core/auth.ts';
import { Role, SYSTEM_TARGET } from '../../../core/auth.ts';
import type { IdentityReader, RoleTarget, TokenClaims } from '../domain/tokens.ts';
import type {
  AccessRuleRow,
  AppCredRow,
  DomainRow,
  ProjectRow,
  RoleRow,
  TrustRow,
  UserRow,
} from './schema.ts';

export class SqlIdentityReader implements IdentityReader {
  private db: Db;
  private registry: SiteRegistry;
  private q;

  private now: () => number;

  constructor(db: Db, registry: SiteRegistry, now: () => number) {
    this.db = db;
    this.registry = registry;
    this.now = now;
    this.q = {
      user: db.prepare('SELECT * FROM users WHERE id = ?'),
      userByName: db.prepare('SELECT * FROM users WHERE domain_id = ? AND name = ?'),
      domain: db.prepare('SELECT * FROM domains WHERE id = ?'),
      // Two sites' rows may share a name until the loser is renamed: the winner answers (unique.ts).
      domainByName: db.prepare('SELECT * FROM domains WHERE name = ? ORDER BY created_at, id, owner LIMIT 1'),
      project: db.prepare('SELECT * FROM projects WHERE id = ?'),
      projectByName: db.prepare('SELECT * FROM projects WHERE domain_id = ? AND name = ?'),
      role: db.prepare('SELECT * FROM roles WHERE id = ?'),
      roleByName: db.prepare(
        'SELECT * FROM roles WHERE name = ? AND domain_id IS NULL ORDER BY created_at, id, owner LIMIT 1',
      ),
      roles: db.prepare(`
        SELECT DISTINCT r.id, r.name FROM role_assignments a JOIN roles r ON r.id = a.role_id
        WHERE a.inherited = 0 AND a.target_id = ?
          AND (a.actor_id = ? OR a.actor_id IN (SELECT group_id FROM group_members WHERE user_id = ?))
        ORDER BY r.name`),
      // By type too: a project or domain id never equals SYSTEM_TARGET, but the type says it for sure.
      systemRoles: db.prepare(`
        SELECT DISTINCT r.id, r.name FROM role_assignments a JOIN roles r ON r.id = a.role_id
        WHERE a.type IN ('UserSystem', 'GroupSystem') AND a.target_id = '${SYSTEM_TARGET}'
          AND (a.actor_id = ? OR a.actor_id IN (SELECT group_id FROM group_members WHERE user_id = ?))
        ORDER BY r.name`),
      inheritedRoles: db.prepare(`
        SELECT DISTINCT r.id, r.name FROM role_assignments a JOIN roles r ON r.id = a.role_id
        WHERE a.inherited = 1 AND a.target_id = ?
          AND (a.actor_id = ? OR a.actor_id IN (SELECT group_id FROM group_members WHERE user_id = ?))`),
      impliedBy: db.prepare(`
        SELECT r.id, r.name FROM implied_roles i JOIN roles r ON r.id = i.implied_role_id
        WHERE i.prior_role_id = ?`),
      appCred: db.prepare('SELECT * FROM application_credentials WHERE id = ?'),
      accessRule: db.prepare('SELECT * FROM access_rules WHERE id = ?'),
      trust: db.prepare('SELECT * FROM trusts WHERE id = ?'),
      revoked: db.prepare(`
        SELECT 1 FROM revocations
        WHERE issued_before >= @iat
          AND (audit_id IS NULL OR audit_id = @a0 OR audit_id = @a1)
          AND (user_id IS NULL OR user_id = @user)
          AND (project_id IS NULL OR project_id = @project)
          AND (domain_id IS NULL OR domain_id = @domain)
          AND (audit_id IS NOT NULL OR user_id IS NOT NULL OR project_id IS NOT NULL OR domain_id IS NOT NULL)
        LIMIT 1`),
    };
  }

  /**
   * Lookups on the token path are memoized until the next change of anything that could alter them:
   * the token service calls clear() whenever a change of an authorization kind is committed here or
   * applied from another site (the same moment its validation cache is dropped).
   */
  private memoized = new Map<string, unknown>();
  private memo<T>(key: string, load: () => T): T {
    if (this.memoized.has(key)) return this.memoized.get(key) as T;
    const v = load();
    if (this.memoized.size >= 50_000) this.memoized.clear();
    this.memoized.set(key, v);
    return v;
  }
  clear(): void {
    this.memoized.clear();
  }

  publicKey(kid: string) {
    return this.registry.publicKey(kid);
  }
  signingKey() {
    return this.registry.activeKey();
  }
  user(id: string) {
    return this.memo(`u:${id}`, () => this.q.user.get(id) as UserRow | undefined);
  }
  userByName(domainId: string, name: string) {
    return this.q.userByName.get(domainId, name) as UserRow | undefined;
  }
  domain(id: string) {
    return this.memo(`d:${id}`, () => this.q.domain.get(id) as DomainRow | undefined);
  }
  domainByName(name: string) {
    return this.memo(`dn:${name}`, () => this.q.domainByName.get(name) as DomainRow | undefined);
  }
  project(id: string) {
    return this.memo(`p:${id}`, () => this.q.project.get(id) as ProjectRow | undefined);
  }
  projectByName(domainId: string, name: string) {
    return this.memo(
      `pn:${domainId}\0${name}`,
      () => this.q.projectByName.get(domainId, name) as ProjectRow | undefined,
    );
  }
  role(id: string) {
    return this.q.role.get(id) as RoleRow | undefined;
  }
  roleByName(name: string) {
    return this.memo(`rn:${name}`, () => this.q.roleByName.get(name) as RoleRow | undefined);
  }
  roles(userId: string, target: RoleTarget) {
    const key = `r:${userId}:${target.projectId ?? ''}:${target.domainId ?? ''}:${target.system ? 's' : ''}`;
    return this.memo(key, () => this.queryRoles(userId, target));
  }

  private queryRoles(userId: string, target: RoleTarget) {
    if (target.system) return this.q.systemRoles.all(userId, userId) as { id: string; name: string }[];
    const targetId = target.projectId ?? target.domainId;
    if (!targetId) return [];
    const out = new Map<string, { id: string; name: string }>();
    for (const r of this.q.roles.all(targetId, userId, userId) as { id: string; name: string }[])
      out.set(r.id, r);
    if (target.projectId) {
      // Roles inherited from the project's domain and its parents (OS-INHERIT).
      let p = this.project(target.projectId);
      const seen = new Set<string>();
      const ancestors: string[] = p ? [p.domain_id] : [];
      while (p?.parent_id && !seen.has(p.parent_id) && p.parent_id !== p.domain_id) {
        seen.add(p.parent_id);
        ancestors.push(p.parent_id);
        p = this.project(p.parent_id);
      }
      for (const a of ancestors)
        for (const r of this.q.inheritedRoles.all(a, userId, userId) as { id: string; name: string }[])
          out.set(r.id, r);
    }
    return [...out.values()];
  }
  withImplied(refs: { id: string; name: string }[]) {
    const key = `i:${refs.map((r) => r.id).join(',')}`;
    return this.memo(key, () => {
      const out = new Map(refs.map((r) => [r.id, r]));
      const todo = [...refs];
      // Rules may chain (a implies b implies c); a cycle ends at the roles already seen. Keystone's
      // bootstrap also makes admin imply member imply reader (impliedRoles in core/auth.ts): those
      // count here too, so a trust or an effective listing sees what a token sees.
      for (let r = todo.pop(); r; r = todo.pop())
        for (const i of [
          ...(this.q.impliedBy.all(r.id) as { id: string; name: string }[]),
          ...this.bootstrapImplied(r),
        ])
          if (!out.has(i.id)) {
            out.set(i.id, i);
            todo.push(i);
          }
      return [...out.values()];
    });
  }
  /** The global role that bootstrap's admin -> member -> reader makes `r` imply, if any. */
  private bootstrapImplied(r: { id: string; name: string }): { id: string; name: string }[] {
    const next = r.name === Role.Admin ? Role.Member : r.name === Role.Member ? Role.Reader : undefined;
    if (!next || this.roleByName(r.name)?.id !== r.id) return [];
    const n = this.roleByName(next);
    return n ? [{ id: n.id, name: n.name }] : [];
  }
  appCred(id: string) {
    return this.q.appCred.get(id) as AppCredRow | undefined;
  }
  appCredRoles(id: string) {
    const ac = this.appCred(id);
    if (!ac || (ac.expires_at !== null && ac.expires_at <= this.now())) return undefined;
    return JSON.parse(ac.roles) as { id: string; name: string }[];
  }
  /** The access rules of a credential (none: it may make any request its roles allow). */
  appCredAccessRules(id: string): AccessRule[] {
    const ac = this.appCred(id);
    if (!ac) return [];
    const ids: unknown = JSON.parse(ac.access_rules);
    if (!Array.isArray(ids)) return [];
    return ids.flatMap((rid) => {
      const r =
        typeof rid === 'string' ? (this.q.accessRule.get(rid) as AccessRuleRow | undefined) : undefined;
      return r ? [{ service: r.service, method: r.method, path: r.path }] : [];
    });
  }
  trust(id: string) {
    return this.q.trust.get(id) as TrustRow | undefined;
  }
  isRevoked(claims: TokenClaims, projectId: string | undefined): boolean {
    return !!this.q.revoked.get({
      iat: claims.iat,
      a0: claims.ai[0] ?? null,
      a1: claims.ai[1] ?? null,
      user: claims.sub,
      project: projectId ?? null,
      domain: claims.d ?? null,
    });
  }
}
