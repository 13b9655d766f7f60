/**
 * @module `atoll site --bootstrap`, like `keystone-manage bootstrap`: the Default domain (homed on this
 * site), the roles admin/member/reader, the admin project and user with the admin role on it and on
 * the system, and a service project. Idempotent: run it again and it changes only the admin password (not even that with
 * keepPassword, when the admin user exists: a restart reusing a saved password). Only the federation's first
 * site bootstraps; the others receive all of this by replication.
 */
import { ADMIN_PROJECT, SYSTEM_TARGET } from '../../core/auth.ts';
import { hexId } from '../../core/ports.ts';
import type { ServiceContext } from '../common/module.ts';
import { hashSecret } from './domain/passwords.ts';
import { identityRepos } from './store/repos.ts';
import { assignmentKind, domainKind, projectKind, roleKind, userKind } from './store/schema.ts';

export interface BootstrapOptions {
  adminUser: string;
  adminPassword: string;
  adminProject: string;
  /** Leave an existing admin user's password as it is (the password given is only for a new user). */
  keepPassword?: boolean;
}

export interface BootstrapResult {
  domainId: string;
  projectId: string;
  userId: string;
  roles: Record<string, string>;
}

export async function bootstrapIdentity(
  site: ServiceContext,
  opts: BootstrapOptions,
): Promise<BootstrapResult> {
  // Policy recognises the cloud admin by this project (core/auth.ts): any other name makes none.
  if (opts.adminProject !== ADMIN_PROJECT.name)
    throw new Error(`the admin project must be named ${ADMIN_PROJECT.name} (policy recognises it by name)`);
  const hash = await hashSecret(opts.adminPassword, site.config.passwordHashCost);
  const repos = identityRepos(site.store.db);
  const now = site.clock.now();
  const put = site.changelog.put.bind(site.changelog);
  return site.store.tx(() => {
    if (!repos.domains.has('default'))
      put(domainKind, {
        id: 'default',
        name: 'Default',
        description: 'The default domain',
        enabled: 1,
        extra: '{}',
        created_at: now,
      });
    const roles: Record<string, string> = {};
    for (const name of ['admin', 'member', 'reader']) {
      const r = repos.roles.globalIdByName(name);
      roles[name] = r ?? hexId(site.ids);
      if (!r) put(roleKind, { id: roles[name], name, domain_id: null, description: '', created_at: now });
    }
    const project = (name: string) => {
      const p = repos.projects.idByName('default', name);
      if (p) return p;
      const id = hexId(site.ids);
      put(projectKind, {
        id,
        name,
        domain_id: 'default',
        parent_id: 'default',
        description: `Bootstrap project ${name}`,
        enabled: 1,
        is_domain: 0,
        tags: '[]',
        extra: '{}',
        created_at: now,
      });
      return id;
    };
    const projectId = project(opts.adminProject);
    project('service');
    const u = repos.users.byName('default', opts.adminUser);
    const userId = u?.id ?? hexId(site.ids);
    if (!(u && opts.keepPassword))
      put(userKind, {
        ...(u ?? {
          name: opts.adminUser,
          domain_id: 'default',
          default_project_id: projectId,
          description: '',
          email: null,
          enabled: 1,
          password_expires_at: null,
          extra: '{}',
          created_at: now,
        }),
        id: userId,
        password_hash: hash,
      });
    // Admin on the admin project and on the system, as keystone-manage bootstrap grants them.
    const grants = [
      { type: 'UserProject', target_id: projectId },
      { type: 'UserSystem', target_id: SYSTEM_TARGET },
    ] as const;
    for (const g of grants) {
      const aid = `${g.type}:${userId}:${g.target_id}:${roles.admin}`;
      if (!repos.assignments.exists(aid))
        put(assignmentKind, { id: aid, ...g, actor_id: userId, role_id: roles.admin!, inherited: 0 });
    }
    return { domainId: 'default', projectId, userId, roles };
  });
}
