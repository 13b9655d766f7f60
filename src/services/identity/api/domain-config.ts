/**
 * @module Domain-specific configuration (/v3/domains/{d}/config[/{group}[/{option}]] and the defaults
 * under /v3/domains/config): the `identity` and `ldap` options Keystone lets a domain override, stored
 * per domain. Atoll has one identity driver (its own tables) and no LDAP, so a domain's configuration
 * is stored and served but changes nothing yet. A cloud admin writes it; a system reader reads it.
 * Unknown groups and options are a 403, as in Keystone. The configuration is written at the domain's
 * home site (writes elsewhere are forwarded).
 * https://docs.openstack.org/api-ref/identity/v3/#domain-configuration
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { BadRequest, Forbidden, NotFound } from '../../../core/errors.ts';
import type { Obj } from '../../common/input.ts';
import { isObj } from '../../common/input.ts';
import type { IdentityContext } from '../context.ts';
import { notFound } from '../domain/common.ts';
import { putDomainConfig } from '../domain/credentials.ts';
import { domainOwnerOrThrow, forwardIfRemote, param } from './common.ts';
import { isSystemReader, requireCloudAdmin } from './policy.ts';

type Config = Record<string, Record<string, unknown>>;

/** The options a domain may set, with Keystone's defaults (null where Keystone has none). */
const DEFAULTS: Config = {
  identity: { driver: 'sql', list_limit: null },
  ldap: {
    url: 'ldap://localhost',
    user: null,
    suffix: 'cn=example,cn=com',
    query_scope: 'one',
    page_size: 0,
    alias_dereferencing: 'default',
    debug_level: null,
    chase_referrals: null,
    user_tree_dn: null,
    user_filter: null,
    user_objectclass: 'inetOrgPerson',
    user_id_attribute: 'cn',
    user_name_attribute: 'sn',
    user_description_attribute: 'description',
    user_mail_attribute: 'mail',
    user_pass_attribute: 'userPassword',
    user_enabled_attribute: 'enabled',
    user_enabled_invert: false,
    user_enabled_mask: 0,
    user_enabled_default: 'True',
    user_attribute_ignore: ['default_project_id'],
    user_default_project_id_attribute: null,
    user_enabled_emulation: false,
    user_enabled_emulation_dn: null,
    user_enabled_emulation_use_group_config: false,
    user_additional_attribute_mapping: [],
    group_tree_dn: null,
    group_filter: null,
    group_objectclass: 'groupOfNames',
    group_id_attribute: 'cn',
    group_name_attribute: 'ou',
    group_member_attribute: 'member',
    group_members_are_ids: false,
    group_desc_attribute: 'description',
    group_attribute_ignore: [],
    group_additional_attribute_mapping: [],
    group_ad_nesting: false,
    tls_cacertfile: null,
    tls_cacertdir: null,
    use_tls: false,
    tls_req_cert: 'demand',
    connection_timeout: -1,
    use_pool: true,
    pool_size: 10,
    pool_retry_max: 3,
    pool_retry_delay: 0.1,
    pool_connection_timeout: -1,
    pool_connection_lifetime: 600,
    use_auth_pool: true,
    auth_pool_size: 100,
    auth_pool_connection_lifetime: 60,
  },
};
/** Options a domain may set but that are never shown as defaults (Keystone's sensitive ones). */
const SENSITIVE: Record<string, string[]> = { ldap: ['password'] };

function knownGroup(group: string): void {
  if (!(group in DEFAULTS)) throw new Forbidden(`Group ${group} cannot be configured for a domain.`);
}
function knownOption(group: string, option: string): void {
  knownGroup(group);
  if (!(option in DEFAULTS[group]!) && !SENSITIVE[group]?.includes(option))
    throw new Forbidden(`Option ${option} in group ${group} cannot be configured for a domain.`);
}
const MAX_CONFIG = 65_535;

/** A body's `config` as groups of options, each checked; 400 when malformed, 403 when unknown. */
function parseConfig(body: unknown): Config {
  if (!isObj(body) || !isObj(body.config))
    throw new BadRequest('"config" is required and must be an object.');
  if (JSON.stringify(body.config).length > MAX_CONFIG)
    throw new BadRequest('The configuration is too large.');
  const out: Config = {};
  for (const [g, opts] of Object.entries(body.config)) {
    knownGroup(g);
    if (!isObj(opts)) throw new BadRequest(`Group ${g} must be an object of options.`);
    for (const o of Object.keys(opts)) knownOption(g, o);
    out[g] = { ...opts };
  }
  return out;
}

export function registerDomainConfigRoutes(app: FastifyInstance, ic: IdentityContext): void {
  const { site, repos, reader } = ic;
  const base = '/identity/v3/domains/:domain_id/config';

  const readable = (req: FastifyRequest) => {
    if (!isSystemReader(site.authenticate(req))) throw new Forbidden();
  };
  const domainOf = (req: FastifyRequest): string => {
    const id = param(req, 'domain_id');
    if (!reader.domain(id)) throw notFound('domain', id);
    return id;
  };
  const stored = (domainId: string): Config | undefined => {
    const row = repos.domainConfigs.get(domainId);
    return row ? (JSON.parse(row.config) as Config) : undefined;
  };
  const existing = (domainId: string): Config => {
    const c = stored(domainId);
    if (!c) throw new NotFound(`Could not find config for domain ${domainId}.`);
    return c;
  };
  /** Authorizes a write, then forwards it to the domain's home or runs it here. */
  const write =
    (fn: (domainId: string, req: FastifyRequest) => { status: number; body?: Obj }) =>
    async (req: FastifyRequest, reply: FastifyReply): Promise<unknown> => {
      requireCloudAdmin(site.authenticate(req));
      const domainId = domainOf(req);
      const fwd = forwardIfRemote(site, domainOwnerOrThrow(ic, domainId), req, reply);
      if (fwd) return fwd;
      const { status, body } = fn(domainId, req);
      reply.code(status);
      return body === undefined ? reply.send() : body;
    };

  // Defaults (static paths: they win over /domains/:domain_id/...).
  app.get('/identity/v3/domains/config/default', async (req) => {
    readable(req);
    return { config: DEFAULTS };
  });
  app.get('/identity/v3/domains/config/:group/default', async (req) => {
    readable(req);
    const g = param(req, 'group');
    knownGroup(g);
    return { config: { [g]: DEFAULTS[g] } };
  });
  app.get('/identity/v3/domains/config/:group/:option/default', async (req) => {
    readable(req);
    const g = param(req, 'group');
    const o = param(req, 'option');
    knownOption(g, o);
    if (!(o in DEFAULTS[g]!)) throw new Forbidden(`Option ${o} has no default to show.`);
    return { config: { [o]: DEFAULTS[g]![o] } };
  });

  app.put(
    base,
    write((domainId, req) => {
      const config = parseConfig(req.body);
      const had = stored(domainId) !== undefined;
      putDomainConfig(ic, domainId, config);
      return { status: had ? 200 : 201, body: { config } };
    }),
  );
  app.get(base, async (req) => {
    readable(req);
    return { config: existing(domainOf(req)) };
  });
  app.patch(
    base,
    write((domainId, req) => {
      const cur = existing(domainId);
      const patch = parseConfig(req.body);
      for (const [g, opts] of Object.entries(patch)) cur[g] = { ...cur[g], ...opts };
      putDomainConfig(ic, domainId, cur);
      return { status: 200, body: { config: cur } };
    }),
  );
  app.delete(
    base,
    write((domainId) => {
      existing(domainId);
      putDomainConfig(ic, domainId, {});
      return { status: 204 };
    }),
  );

  const groupOf = (req: FastifyRequest): string => {
    const g = param(req, 'group');
    knownGroup(g);
    return g;
  };
  app.get(`${base}/:group`, async (req) => {
    readable(req);
    const g = groupOf(req);
    const cur = existing(domainOf(req));
    if (!cur[g]) throw new NotFound(`Could not find group ${g} in the domain's config.`);
    return { config: { [g]: cur[g] } };
  });
  app.patch(
    `${base}/:group`,
    write((domainId, req) => {
      const g = groupOf(req);
      const cur = existing(domainId);
      const patch = parseConfig(req.body);
      if (Object.keys(patch).some((k) => k !== g))
        throw new BadRequest(`The body may only configure group ${g}.`);
      if (!cur[g]) throw new NotFound(`Could not find group ${g} in the domain's config.`);
      cur[g] = { ...cur[g], ...patch[g] };
      putDomainConfig(ic, domainId, cur);
      return { status: 200, body: { config: cur } };
    }),
  );
  app.delete(
    `${base}/:group`,
    write((domainId, req) => {
      const g = groupOf(req);
      const cur = existing(domainId);
      if (!cur[g]) throw new NotFound(`Could not find group ${g} in the domain's config.`);
      delete cur[g];
      putDomainConfig(ic, domainId, cur);
      return { status: 204 };
    }),
  );

  const optionOf = (req: FastifyRequest): [string, string] => {
    const g = param(req, 'group');
    const o = param(req, 'option');
    knownOption(g, o);
    return [g, o];
  };
  app.get(`${base}/:group/:option`, async (req) => {
    readable(req);
    const [g, o] = optionOf(req);
    const cur = existing(domainOf(req));
    if (!cur[g] || !(o in cur[g])) throw new NotFound(`Could not find option ${o} in group ${g}.`);
    return { config: { [o]: cur[g][o] } };
  });
  app.patch(
    `${base}/:group/:option`,
    write((domainId, req) => {
      const [g, o] = optionOf(req);
      const cur = existing(domainId);
      const b = req.body;
      if (!isObj(b) || !isObj(b.config) || Object.keys(b.config).some((k) => k !== o))
        throw new BadRequest(`The body must be {"config": {"${o}": value}}.`);
      if (!cur[g] || !(o in cur[g])) throw new NotFound(`Could not find option ${o} in group ${g}.`);
      cur[g] = { ...cur[g], [o]: b.config[o] };
      putDomainConfig(ic, domainId, cur);
      return { status: 200, body: { config: cur } };
    }),
  );
  app.delete(
    `${base}/:group/:option`,
    write((domainId, req) => {
      const [g, o] = optionOf(req);
      const cur = existing(domainId);
      if (!cur[g] || !(o in cur[g])) throw new NotFound(`Could not find option ${o} in group ${g}.`);
      const rest = { ...cur[g] };
      delete rest[o];
      if (Object.keys(rest).length === 0) delete cur[g];
      else cur[g] = rest;
      putDomainConfig(ic, domainId, cur);
      return { status: 204 };
    }),
  );
}
