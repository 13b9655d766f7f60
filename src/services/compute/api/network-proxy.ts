/**
 * @module Nova's network proxies (deprecated, gone from 2.36): `os-floating-ips`,
 * `os-floating-ip-pools`, `os-networks` and `os-tenant-networks` as views of Network service
 * floating IPs and networks, and the `addFloatingIp` / `removeFloatingIp` server actions (gone from
 * 2.44). Every call goes through the Network service's own API with the caller's token (proxy.ts), so
 * its rules (visibility, quotas, a router to the external network, forwarding) apply unchanged.
 * https://docs.openstack.org/api-ref/compute/#floating-ips-os-floating-ips-deprecated
 */
import { isIP } from 'node:net';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { BadRequest, CloudError, Conflict, Forbidden, NotFound } from '../../../core/errors.ts';
import { isObj } from '../../common/input.ts';
import type { Obj } from '../../common/input.ts';
import type { ComputeService } from '../service.ts';
import { atLeast } from './microversion.ts';
import { serviceCaller } from './proxy.ts';

const P = '/compute/v2.1';
const N = '/network/v2.0';

const status = (e: unknown) => (e instanceof CloudError ? e.status : 500);

/** Nova's floating IP: the pool is the external network's name, the instance the port's device. */
function floatingIpView(f: Obj, netName: Map<string, string>, deviceOf: Map<string, string>): Obj {
  const port = (f.port_id as string | null) ?? null;
  return {
    id: f.id,
    ip: f.floating_ip_address,
    fixed_ip: (f.fixed_ip_address as string | null) ?? null,
    instance_id: port ? (deviceOf.get(port) ?? null) : null,
    pool: netName.get(String(f.floating_network_id)) ?? null,
  };
}

/** Nova's network dict for Neutron networks: the id and the name as label; nova-network's fields null. */
function networkView(n: Obj): Obj {
  const out: Obj = { id: n.id, label: n.name };
  for (const f of [
    'cidr',
    'netmask',
    'gateway',
    'broadcast',
    'dns1',
    'dns2',
    'cidr_v6',
    'gateway_v6',
    'netmask_v6',
  ])
    out[f] = null;
  return out;
}

export function registerNetworkProxyRoutes(app: FastifyInstance, svc: ComputeService): void {
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
  const auth = (req: FastifyRequest) => svc.ctx.authenticate(req);
  const externals = async (req: FastifyRequest) =>
    (await neutron(req, 'GET', `${N}/networks?router:external=true`)).networks as Obj[];
  /** What a floating IP view needs: pool names and the device of every port the caller sees. */
  const context = async (req: FastifyRequest) => {
    const nets = await externals(req);
    const ports = (await neutron(req, 'GET', `${N}/ports`)).ports as Obj[];
    return {
      netName: new Map(nets.map((n) => [String(n.id), String(n.name)])),
      deviceOf: new Map(ports.filter((p) => p.device_id).map((p) => [String(p.id), String(p.device_id)])),
    };
  };
  const oneFip = async (req: FastifyRequest, id: string) => {
    try {
      return (await neutron(req, 'GET', `${N}/floatingips/${encodeURIComponent(id)}`)).floatingip as Obj;
    } catch (e) {
      if (status(e) === 404) throw new NotFound(`Floating IP not found for ID ${id}`);
      throw e;
    }
  };

  type R = FastifyRequest<{ Params: { id: string } }>;
  app.get(`${P}/os-floating-ips`, async (req) => {
    const a = auth(req);
    const project = a.projectId ? `?project_id=${encodeURIComponent(a.projectId)}` : '';
    const fips = (await neutron(req, 'GET', `${N}/floatingips${project}`)).floatingips as Obj[];
    const { netName, deviceOf } = await context(req);
    return { floating_ips: fips.map((f) => floatingIpView(f, netName, deviceOf)) };
  });
  app.get(`${P}/os-floating-ips/:id`, async (req: R) => {
    auth(req);
    const f = await oneFip(req, req.params.id);
    const { netName, deviceOf } = await context(req);
    return { floating_ip: floatingIpView(f, netName, deviceOf) };
  });
  app.post(`${P}/os-floating-ips`, async (req) => {
    auth(req);
    const body = req.body;
    const given = isObj(body) && body.pool !== undefined && body.pool !== null ? body.pool : undefined;
    if (given !== undefined && typeof given !== 'string')
      throw new BadRequest('Invalid input for field/attribute pool.');
    const nets = await externals(req);
    // No pool named: the one external network when there is exactly one (Nova: its default pool).
    const pool =
      given === undefined
        ? nets.length === 1
          ? nets[0]
          : undefined
        : nets.find((n) => n.name === given || n.id === given);
    if (!pool) throw new NotFound(`Floating IP pool not found.`);
    let f: Obj;
    try {
      f = (
        await neutron(req, 'POST', `${N}/floatingips`, {
          floatingip: { floating_network_id: pool.id },
        })
      ).floatingip as Obj;
    } catch (e) {
      const s = status(e);
      if (s === 409 && /quota/i.test((e as Error).message))
        throw new Forbidden('Maximum number of floating IPs exceeded');
      if (s === 409 || s === 400) throw new NotFound(`No more floating IPs in pool ${String(pool.name)}.`);
      throw e;
    }
    const { netName, deviceOf } = await context(req);
    return { floating_ip: floatingIpView(f, netName, deviceOf) };
  });
  app.delete(`${P}/os-floating-ips/:id`, async (req: R, reply) => {
    auth(req);
    const f = await oneFip(req, req.params.id);
    await neutron(req, 'DELETE', `${N}/floatingips/${String(f.id)}`);
    return reply.code(202).send();
  });
  app.get(`${P}/os-floating-ip-pools`, async (req) => {
    auth(req);
    return { floating_ip_pools: (await externals(req)).map((n) => ({ name: n.name })) };
  });

  // os-networks and os-tenant-networks: read-only; every network the caller sees.
  for (const path of ['os-networks', 'os-tenant-networks']) {
    const tenant = path === 'os-tenant-networks';
    const view = (n: Obj) => (tenant ? { id: n.id, cidr: null, label: n.name } : networkView(n));
    app.get(`${P}/${path}`, async (req) => {
      auth(req);
      return { networks: ((await neutron(req, 'GET', `${N}/networks`)).networks as Obj[]).map(view) };
    });
    app.get(`${P}/${path}/:id`, async (req: R) => {
      auth(req);
      try {
        const n = (await neutron(req, 'GET', `${N}/networks/${encodeURIComponent(req.params.id)}`))
          .network as Obj;
        return { network: view(n) };
      } catch (e) {
        if (status(e) === 404) throw new NotFound('Network not found');
        throw e;
      }
    });
  }

  // ---- addFloatingIp / removeFloatingIp (server actions, below 2.44) --------------------------------
  /** The floating IP with that address the caller sees (404 as Nova), after Nova's schema check. */
  const byAddress = async (req: FastifyRequest, arg: unknown) => {
    const address = isObj(arg) ? arg.address : undefined;
    if (typeof address !== 'string' || !isIP(address))
      throw new BadRequest('Invalid input for field/attribute address.');
    const list = (
      await call(req, 'GET', `${N}/floatingips?floating_ip_address=${encodeURIComponent(address)}`)
    ).floatingips as Obj[];
    const f = list[0];
    if (!f) throw new NotFound(`floating IP not found for address ${address}`);
    return { f, address };
  };
  const serverPorts = async (req: FastifyRequest, serverId: string) =>
    (await call(req, 'GET', `${N}/ports?device_id=${encodeURIComponent(serverId)}`)).ports as Obj[];

  svc.proxyActions.set('addFloatingIp', async (req, reply, _auth, s, arg) => {
    if (atLeast(req, '2.44')) throw new BadRequest('There is no such action: addFloatingIp');
    const fixedWanted = isObj(arg) ? arg.fixed_address : undefined;
    if (fixedWanted !== undefined && (typeof fixedWanted !== 'string' || !isIP(fixedWanted)))
      throw new BadRequest('Invalid input for field/attribute fixed_address.');
    const { f, address } = await byAddress(req, arg);
    const fixed = (await serverPorts(req, s.id)).flatMap((p) =>
      ((p.fixed_ips as Obj[] | undefined) ?? []).map((ip) => ({
        port: String(p.id),
        ip: String(ip.ip_address),
      })),
    );
    const chosen =
      fixedWanted !== undefined
        ? fixed.find((x) => x.ip === fixedWanted)
        : fixed.find((x) => isIP(x.ip) === 4);
    if (!chosen)
      throw new BadRequest(
        fixedWanted !== undefined
          ? 'Specified fixed address not assigned to instance'
          : `Unable to associate floating IP ${address} to any fixed IPs for instance ${s.id}. Instance has no fixed IPv4 addresses to associate.`,
      );
    try {
      await call(req, 'PUT', `${N}/floatingips/${String(f.id)}`, {
        floatingip: { port_id: chosen.port, fixed_ip_address: chosen.ip },
      });
    } catch (e) {
      if (status(e) === 403) throw e;
      // Nova answers any refusal of the association (a fixed IP that has one already, no router) 400.
      throw new BadRequest(
        `Unable to associate floating IP ${address} to fixed IP ${chosen.ip} for instance ${s.id}. Error: ${(e as Error).message}`,
      );
    }
    return reply.code(202).send();
  });
  svc.proxyActions.set('removeFloatingIp', async (req, reply, _auth, s, arg) => {
    if (atLeast(req, '2.44')) throw new BadRequest('There is no such action: removeFloatingIp');
    const { f, address } = await byAddress(req, arg);
    const ports = new Set((await serverPorts(req, s.id)).map((p) => String(p.id)));
    if (!f.port_id || !ports.has(String(f.port_id)))
      throw new Conflict(`Floating IP ${address} is not associated with instance ${s.id}.`);
    await call(req, 'PUT', `${N}/floatingips/${String(f.id)}`, { floatingip: { port_id: null } });
    return reply.code(202).send();
  });
}
