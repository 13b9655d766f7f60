/**
 * @module Nova's security group proxy (`os-security-groups`, `os-security-group-rules`, and
 * `/servers/{id}/os-security-groups`; deprecated and gone from 2.36): Network service security groups
 * in Nova's shape, through the Network service's own API with the caller's token (proxy.ts). As in
 * Nova with Neutron, ids are UUIDs (anything else is a 400) and only ingress rules are shown.
 * https://docs.openstack.org/api-ref/compute/#security-groups-os-security-groups-deprecated
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { AuthContext } from '../../../core/auth.ts';
import { canRead } from '../../../core/auth.ts';
import { BadRequest, NotFound } from '../../../core/errors.ts';
import { isObj, query, wrapped } from '../../common/input.ts';
import type { Obj } from '../../common/input.ts';
import type { ComputeService } from '../service.ts';
import { atLeast } from './microversion.ts';
import { serviceCaller } from './proxy.ts';

const P = '/compute/v2.1';
const N = '/network/v2.0';
const UUID = /^[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}$/i;

/** Nova's rule: ports of a protocol with none given are its whole range; a CIDR or a group. */
function ruleView(r: Obj, groupsById: Map<string, Obj>): Obj {
  const proto = (r.protocol as string | null) ?? null;
  let from = (r.port_range_min as number | null) ?? null;
  let to = (r.port_range_max as number | null) ?? null;
  if (proto && from === null && to === null) {
    const p = proto.toLowerCase();
    if (p === 'tcp' || p === 'udp') [from, to] = [1, 65535];
    else if (p === 'icmp') [from, to] = [-1, -1];
  }
  const remote = r.remote_group_id ? groupsById.get(String(r.remote_group_id)) : undefined;
  return {
    id: r.id,
    parent_group_id: r.security_group_id,
    ip_protocol: proto,
    from_port: from,
    to_port: to,
    group: remote ? { name: remote.name, tenant_id: remote.project_id ?? remote.tenant_id } : {},
    ip_range: r.remote_group_id
      ? {}
      : { cidr: (r.remote_ip_prefix as string | null) ?? (r.ethertype === 'IPv6' ? '::/0' : '0.0.0.0/0') },
  };
}

function groupView(g: Obj, groupsById: Map<string, Obj>): Obj {
  return {
    id: g.id,
    name: g.name,
    description: g.description ?? '',
    tenant_id: g.project_id ?? g.tenant_id,
    rules: ((g.security_group_rules as Obj[] | undefined) ?? [])
      .filter((r) => r.direction === 'ingress')
      .map((r) => ruleView(r, groupsById)),
  };
}

/** A name or description as Nova validates them: a string of at most 255; a name not blank. */
function text(b: Obj, field: 'name' | 'description', required: boolean): string | undefined {
  const v = b[field];
  if (v === undefined && !required) return undefined;
  if (typeof v !== 'string' || v.length > 255 || (field === 'name' && !v.trim()))
    throw new BadRequest(`Invalid input for field/attribute ${field}.`);
  return v;
}

/** Nova's port number for a protocol: TCP/UDP 1-65535 (or -1 with ICMP semantics), ICMP -1-255. */
function port(v: unknown, field: string, proto: string): number {
  const n = typeof v === 'string' && /^-?\d+$/.test(v) ? Number(v) : v;
  const [min, max] = proto === 'icmp' ? [-1, 255] : [1, 65535];
  if (typeof n !== 'number' || !Number.isInteger(n) || n < min || n > max)
    throw new BadRequest(`Invalid port range ${String(v)} for ${field}.`);
  return n;
}

export function registerSecurityGroupProxyRoutes(app: FastifyInstance, svc: ComputeService): void {
  const call = serviceCaller(app);
  const neutron = (
    req: FastifyRequest,
    method: 'GET' | 'POST' | 'PUT' | 'DELETE',
    url: string,
    body?: unknown,
  ) => {
    if (atLeast(req, '2.36')) throw new NotFound('The resource could not be found.');
    return call(req, method, url, body);
  };
  const auth = (req: FastifyRequest): AuthContext => svc.ctx.authenticate(req);
  const uuid = (id: string, what = 'Security group') => {
    if (!UUID.test(id)) throw new BadRequest(`${what} id should be uuid`);
    return id;
  };
  /** Every group the caller sees (an admin: all of them), by id too (to name rules' remote groups). */
  const groups = async (req: FastifyRequest) => {
    const list = (await neutron(req, 'GET', `${N}/security-groups`)).security_groups as Obj[];
    return { list, byId: new Map(list.map((g) => [String(g.id), g])) };
  };
  const one = async (req: FastifyRequest, id: string) =>
    (await neutron(req, 'GET', `${N}/security-groups/${uuid(id)}`)).security_group as Obj;

  type R = FastifyRequest<{ Params: { id: string } }>;
  app.get(`${P}/os-security-groups`, async (req) => {
    const a = auth(req);
    const q = query(req.query);
    const all =
      a.isAdmin && q.all_tenants !== undefined && q.all_tenants !== '0' && q.all_tenants !== 'false';
    const { list, byId } = await groups(req);
    const mine = all ? list : list.filter((g) => (g.project_id ?? g.tenant_id) === a.projectId);
    return { security_groups: mine.map((g) => groupView(g, byId)) };
  });
  app.post(`${P}/os-security-groups`, async (req) => {
    auth(req);
    const b = wrapped(req.body, 'security_group');
    const name = text(b, 'name', true)!;
    const description = text(b, 'description', false) ?? '';
    const g = (await neutron(req, 'POST', `${N}/security-groups`, { security_group: { name, description } }))
      .security_group as Obj;
    return { security_group: groupView(g, (await groups(req)).byId) };
  });
  app.get(`${P}/os-security-groups/:id`, async (req: R) => {
    auth(req);
    const g = await one(req, req.params.id);
    return { security_group: groupView(g, (await groups(req)).byId) };
  });
  app.put(`${P}/os-security-groups/:id`, async (req: R) => {
    auth(req);
    uuid(req.params.id);
    const b = wrapped(req.body, 'security_group');
    const name = text(b, 'name', false);
    const description = text(b, 'description', false);
    const g = (
      await neutron(req, 'PUT', `${N}/security-groups/${req.params.id}`, {
        security_group: {
          ...(name !== undefined ? { name } : {}),
          ...(description !== undefined ? { description } : {}),
        },
      })
    ).security_group as Obj;
    return { security_group: groupView(g, (await groups(req)).byId) };
  });
  app.delete(`${P}/os-security-groups/:id`, async (req: R, reply) => {
    auth(req);
    const g = await one(req, req.params.id);
    if (g.name === 'default') throw new BadRequest('Unable to delete the default security group.');
    await neutron(req, 'DELETE', `${N}/security-groups/${req.params.id}`);
    // Rules of other groups that named this one as their peer go with it (Neutron's cascade).
    const peers = (await call(req, 'GET', `${N}/security-group-rules?remote_group_id=${req.params.id}`))
      .security_group_rules as Obj[];
    for (const r of peers)
      await call(req, 'DELETE', `${N}/security-group-rules/${String(r.id)}`).catch(() => undefined);
    return reply.code(202).send();
  });

  app.post(`${P}/os-security-group-rules`, async (req) => {
    auth(req);
    const b = wrapped(req.body, 'security_group_rule');
    const parent = uuid(String(b.parent_group_id ?? ''));
    const proto =
      b.ip_protocol === undefined || b.ip_protocol === null ? null : String(b.ip_protocol).toLowerCase();
    if (proto !== null && !['tcp', 'udp', 'icmp'].includes(proto))
      throw new BadRequest(`Invalid IP protocol ${String(b.ip_protocol)}.`);
    const rule: Obj = { security_group_id: parent, direction: 'ingress', ethertype: 'IPv4', protocol: proto };
    if (proto) {
      const from = port(b.from_port, 'from_port', proto);
      const to = port(b.to_port, 'to_port', proto);
      if (proto !== 'icmp' && from > to)
        throw new BadRequest('Invalid port range: from_port is above to_port.');
      if (proto !== 'icmp' || from !== -1) rule.port_range_min = from;
      if (proto !== 'icmp' || to !== -1) rule.port_range_max = to;
    }
    if (b.group_id !== undefined && b.group_id !== null) rule.remote_group_id = uuid(String(b.group_id));
    else if (typeof b.cidr === 'string' && b.cidr) {
      rule.remote_ip_prefix = b.cidr;
      if (b.cidr.includes(':')) rule.ethertype = 'IPv6';
    }
    await one(req, parent); // a 404 for a parent that does not exist, before the rule's own checks
    let created: Obj;
    try {
      created = (await neutron(req, 'POST', `${N}/security-group-rules`, { security_group_rule: rule }))
        .security_group_rule as Obj;
    } catch (e) {
      // Neutron's 409 for a duplicate rule is Nova's 400 "This rule already exists".
      if ((e as { status?: number }).status === 409)
        throw new BadRequest('This rule already exists in group.');
      throw e;
    }
    return { security_group_rule: ruleView(created, (await groups(req)).byId) };
  });
  app.delete(`${P}/os-security-group-rules/:id`, async (req: R, reply) => {
    auth(req);
    await neutron(req, 'DELETE', `${N}/security-group-rules/${uuid(req.params.id, 'Security group rule')}`);
    return reply.code(202).send();
  });

  // addSecurityGroup / removeSecurityGroup (server actions): the group, by name or id among the
  // caller's, on or off every port of the server, as Nova does with Neutron.
  const byName = async (req: FastifyRequest, arg: unknown, action: string) => {
    const name = isObj(arg) ? arg.name : undefined;
    if (typeof name !== 'string' || !name.trim() || name.length > 255)
      throw new BadRequest(`Invalid input for field/attribute ${action}.`);
    const a = auth(req);
    const list = (await call(req, 'GET', `${N}/security-groups`)).security_groups as Obj[];
    const mine = list.filter((g) => (g.project_id ?? g.tenant_id) === a.projectId);
    const g = mine.find((x) => x.id === name) ?? mine.find((x) => x.name === name);
    if (!g) throw new NotFound(`Security group ${name} not found for project ${String(a.projectId)}.`);
    return { g, name };
  };
  const portsOf = async (req: FastifyRequest, serverId: string) =>
    (await call(req, 'GET', `${N}/ports?device_id=${encodeURIComponent(serverId)}`)).ports as Obj[];
  svc.proxyActions.set('addSecurityGroup', async (req, reply, _auth, s, arg) => {
    const { g } = await byName(req, arg, 'addSecurityGroup');
    const ports = await portsOf(req, s.id);
    if (!ports.length) throw new NotFound(`instance_id ${s.id} could not be found as device id on any ports`);
    for (const p of ports) {
      const now = (p.security_groups as string[] | undefined) ?? [];
      if (now.includes(String(g.id))) continue;
      if (p.port_security_enabled === false)
        throw new BadRequest(
          'Port security must be enabled and port must have an IP address in order to use security groups.',
        );
      await call(req, 'PUT', `${N}/ports/${String(p.id)}`, { port: { security_groups: [...now, g.id] } });
    }
    return reply.code(202).send();
  });
  svc.proxyActions.set('removeSecurityGroup', async (req, reply, _auth, s, arg) => {
    const { g, name } = await byName(req, arg, 'removeSecurityGroup');
    const ports = (await portsOf(req, s.id)).filter((p) =>
      ((p.security_groups as string[] | undefined) ?? []).includes(String(g.id)),
    );
    if (!ports.length)
      throw new BadRequest(`Security group ${name} not associated with the instance ${s.id}`);
    for (const p of ports) {
      const rest = ((p.security_groups as string[] | undefined) ?? []).filter((x) => x !== g.id);
      await call(req, 'PUT', `${N}/ports/${String(p.id)}`, { port: { security_groups: rest } });
    }
    return reply.code(202).send();
  });

  app.get(`${P}/servers/:id/os-security-groups`, async (req: R) => {
    const a = auth(req);
    const s = svc.repo.server(req.params.id);
    if (!s || !canRead(a, s.project_id)) throw new NotFound(`Instance ${req.params.id} could not be found.`);
    const ports = (await neutron(req, 'GET', `${N}/ports?device_id=${encodeURIComponent(s.id)}`))
      .ports as Obj[];
    const ids = new Set(ports.flatMap((p) => (p.security_groups as string[] | undefined) ?? []));
    const { list, byId } = await groups(req);
    return { security_groups: list.filter((g) => ids.has(String(g.id))).map((g) => groupView(g, byId)) };
  });
}
