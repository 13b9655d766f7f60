/**
 * @module Domains: /v3/domains. A domain is homed on the site that created it (its owner); every user,
 * group, project and role assignment inside it belongs to that site too, so writes go there.
 * https://docs.openstack.org/api-ref/identity/v3/#domains
 */
import type { FastifyInstance } from 'fastify';
import { SYSTEM_TARGET } from '../../../core/auth.ts';
import { BadRequest, Conflict, Forbidden } from '../../../core/errors.ts';
import type { Obj } from '../../common/input.ts';
import { optBool, optStr, reqStr, wrapped } from '../../common/input.ts';
import type { IdentityContext } from '../context.ts';
import type { DomainRow } from '../store/schema.ts';
import { revokeMatching } from './auth.ts';
import {
  bool01,
  checkRename,
  extraOf,
  filteredCollection,
  notFound,
  param,
  parseExtra,
  removeOwned,
  requireUnchanged,
  selfLinks,
} from './common.ts';
import { forwardIfRemote } from '../../common/owner.ts';
import { isCloudAdmin, listableDomain, requireCloudAdmin } from './policy.ts';

const KNOWN = ['id', 'name', 'description', 'enabled', 'tags', 'options', 'explicit_domain_id'];

export function domainView(ic: IdentityContext, d: DomainRow): Obj {
  return {
    ...parseExtra(d.extra),
    id: d.id,
    name: d.name,
    description: d.description,
    enabled: !!d.enabled,
    tags: [],
    options: {},
    links: selfLinks(ic, `domains/${d.id}`),
  };
}

export function registerDomainRoutes(app: FastifyInstance, ic: IdentityContext): void {
  const { site, reader } = ic;
  const db = site.store.db;
  const byName = db.prepare('SELECT id FROM domains WHERE name = ?');

  const load = (id: string): DomainRow => {
    const d = reader.domain(id);
    if (!d) throw notFound('domain', id);
    return d;
  };

  app.get('/identity/v3/domains', async (req) => {
    const ctx = site.authenticate(req);
    const only = listableDomain(ctx);
    let rows = db.prepare('SELECT * FROM domains ORDER BY name').all() as DomainRow[];
    if (only !== undefined) rows = rows.filter((d) => d.id === only);
    return filteredCollection(ic, req, 'domains', rows, ['name', 'enabled', 'id'], domainView);
  });

  app.get('/identity/v3/domains/:domain_id', async (req) => {
    const ctx = site.authenticate(req);
    const d = load(param(req, 'domain_id'));
    // identity:get_domain: admin, or a token scoped to the domain or to a project in it.
    if (!isCloudAdmin(ctx) && ctx.domainId !== d.id && ctx.projectDomainId !== d.id) throw new Forbidden();
    return { domain: domainView(ic, d) };
  });

  app.post('/identity/v3/domains', async (req, reply) => {
    requireCloudAdmin(site.authenticate(req));
    const b = wrapped(req.body, 'domain');
    const name = reqStr(b, 'name', { max: 64 });
    const description = optStr(b, 'description', { max: 65535 }) ?? '';
    const enabled = optBool(b, 'enabled');
    const explicit = optStr(b, 'explicit_domain_id', { max: 64, pattern: /^[a-zA-Z0-9_-]+$/ });
    const tags = b.tags;
    if (tags !== undefined && (!Array.isArray(tags) || tags.length > 0))
      throw new BadRequest('Domain tags are not supported.');
    if (explicit === SYSTEM_TARGET) throw new BadRequest(`The domain id ${SYSTEM_TARGET} is reserved.`);
    const id = explicit ?? ic.newId();
    const row = site.store.tx(() => {
      if (byName.get(name))
        throw new Conflict(
          `Conflict occurred attempting to store domain - Duplicate entry found with name ${name}.`,
        );
      if (reader.domain(id))
        throw new Conflict(`Conflict occurred attempting to store domain - Duplicate ID, ${id}.`);
      return site.changelog.put('domain', {
        id,
        name,
        description,
        enabled: bool01(enabled, 1),
        extra: extraOf(b, KNOWN, undefined),
        created_at: site.clock.now(),
      }) as unknown as DomainRow;
    });
    reply.code(201);
    return { domain: domainView(ic, row) };
  });

  app.patch('/identity/v3/domains/:domain_id', async (req, reply) => {
    requireCloudAdmin(site.authenticate(req));
    const d = load(param(req, 'domain_id'));
    const fwd = forwardIfRemote(ic.site, d.owner, req, reply);
    if (fwd) return fwd;
    const b = wrapped(req.body, 'domain');
    requireUnchanged(b, 'id', d.id, 'The domain id cannot be changed.');
    const name = optStr(b, 'name', { max: 64, min: 1 });
    const description = optStr(b, 'description', { max: 65535 });
    const enabled = optBool(b, 'enabled');
    const row = site.store.tx(() => {
      checkRename(name, d, (n) => byName.get(n) as { id: string } | undefined);
      const updated = site.changelog.put('domain', {
        ...d,
        name: name ?? d.name,
        description: description ?? d.description,
        enabled: bool01(enabled, d.enabled),
        extra: extraOf(b, KNOWN, d.extra),
      }) as unknown as DomainRow;
      if (d.enabled && !updated.enabled) revokeMatching(ic, { domainId: d.id });
      return updated;
    });
    return { domain: domainView(ic, row) };
  });

  app.delete('/identity/v3/domains/:domain_id', async (req, reply) => {
    requireCloudAdmin(site.authenticate(req));
    const d = load(param(req, 'domain_id'));
    const fwd = forwardIfRemote(ic.site, d.owner, req, reply);
    if (fwd) return fwd;
    if (d.enabled) throw new Forbidden('Cannot delete a domain that is enabled, please disable it first.');
    site.store.tx(() => deleteDomainContents(ic, d.id));
    return reply.code(204).send();
  });
}

/** Deletes a domain and everything in it that this site owns (all of it, since it is the home site). */
function deleteDomainContents(ic: IdentityContext, domainId: string): void {
  const { site } = ic;
  const db = site.store.db;
  const ids = (sql: string, ...args: unknown[]) =>
    (db.prepare(sql).all(...args) as { id: string; owner: string }[]).filter((r) => site.owns(r.owner));
  const projects = ids('SELECT id, owner FROM projects WHERE domain_id = ?', domainId);
  const users = ids('SELECT id, owner FROM users WHERE domain_id = ?', domainId);
  const groups = ids('SELECT id, owner FROM groups WHERE domain_id = ?', domainId);
  const targets = [domainId, ...projects.map((p) => p.id)];
  const actors = [...users.map((u) => u.id), ...groups.map((g) => g.id)];
  const inList = (n: number) => Array.from({ length: n }, () => '?').join(',');
  if (targets.length + actors.length > 0) {
    const all = [...targets, ...actors];
    removeOwned(
      ic,
      'role_assignment',
      `SELECT id, owner FROM role_assignments WHERE target_id IN (${inList(all.length)}) OR actor_id IN (${inList(all.length)})`,
      ...all,
      ...all,
    );
  }
  if (actors.length > 0)
    removeOwned(
      ic,
      'group_member',
      `SELECT id, owner FROM group_members WHERE group_id IN (${inList(actors.length)}) OR user_id IN (${inList(actors.length)})`,
      ...actors,
      ...actors,
    );
  if (users.length > 0)
    removeOwned(
      ic,
      'application_credential',
      `SELECT id, owner FROM application_credentials WHERE user_id IN (${inList(users.length)})`,
      ...users.map((u) => u.id),
    );
  for (const p of projects) site.changelog.remove('project', p.id);
  for (const u of users) site.changelog.remove('user', u.id);
  for (const g of groups) site.changelog.remove('group', g.id);
  site.changelog.remove('domain', domainId);
  revokeMatching(ic, { domainId });
}
