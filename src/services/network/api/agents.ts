/**
 * @module Routes of agents and their scheduling (https://docs.openstack.org/api-ref/network/v2/#networking-agents,
 * #dhcp-agent-scheduler, #l3-agent-scheduler): one DHCP and one L3 agent per site (domain/agents.ts).
 * Agents are an admin's: a project member lists none and gets 404 for one. A network's DHCP agent
 * change runs at the network's owner (forwarded there). Routers stay on their owner's L3 agent.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { AuthContext } from '../../../core/auth.ts';
import { requireAdmin } from '../../../core/auth.ts';
import { Conflict, NotFound } from '../../../core/errors.ts';
import type { ServiceContext } from '../../common/module.ts';
import { isObj, novaTime, optStr } from '../../common/input.ts';
import type { Obj } from '../../common/input.ts';
import { forwardIfRemote } from '../../common/owner.ts';
import type { AgentType } from '../domain/agents.ts';
import { AGENT_KINDS, agentId, dhcpHosted, scheduleDhcp } from '../domain/agents.ts';
import { visible } from '../domain/access.ts';
import { requiredRef } from '../domain/records.ts';
import type { NetworkService } from '../service.ts';
import { listBody, multiQuery } from './listing.ts';
import { V2 } from './resource.ts';
import { renderNetwork, renderRouter } from './views.ts';

const bodyObj = (b: unknown): Obj => (isObj(b) ? b : {});

interface Agent {
  id: string;
  site: string;
  type: AgentType;
}

export function registerAgentRoutes(app: FastifyInstance, ctx: ServiceContext, svc: NetworkService): void {
  const d = svc.deps;
  const agents = (): Agent[] =>
    ctx.registry
      .list()
      .filter((s) => s.state === 'active' || s.state === 'leaving')
      .flatMap((s) =>
        (['dhcp', 'l3'] as const).map((type) => ({ id: agentId(s.id, type), site: s.id, type })),
      );
  const render = (a: Agent): Obj => {
    const k = AGENT_KINDS[a.type];
    const site = ctx.registry.get(a.site);
    const alive = a.site === ctx.name || ctx.replicator.isUp(a.site);
    const joined = novaTime(site?.joined_at ?? 0);
    return {
      id: a.id,
      agent_type: k.agentType,
      binary: k.binary,
      topic: k.topic,
      host: a.site,
      admin_state_up: true,
      alive,
      availability_zone: a.site,
      created_at: joined,
      started_at: joined,
      heartbeat_timestamp: novaTime(ctx.clock.now()),
      description: `The ${k.agentType} role of site ${a.site}'s network service (no agent process).`,
      configurations: {},
      resources_synced: null,
    };
  };
  /** The agent an admin names, or 404. */
  const agentOf = (req: FastifyRequest, type?: AgentType): Agent => {
    const { id } = req.params as { id: string };
    const a = agents().find((x) => x.id === id && (!type || x.type === type));
    if (!a) throw new NotFound(`Agent ${id} could not be found.`, 'AgentNotFound');
    return a;
  };
  const admin = (req: FastifyRequest): AuthContext => {
    const auth = ctx.authenticate(req);
    requireAdmin(auth);
    return auth;
  };

  app.get(`${V2}/agents`, async (req) => {
    const auth = ctx.authenticate(req);
    // get_agent is an admin's (Neutron's policy): others see an empty list, as Neutron filters them.
    const items = auth.isAdmin ? agents().map(render) : [];
    return listBody('agents', items, multiQuery(req.query), `${ctx.publicUrl()}${V2}/agents`);
  });
  app.get(`${V2}/agents/:id`, async (req) => {
    const auth = ctx.authenticate(req);
    if (!auth.isAdmin) throw new NotFound(`Agent ${(req.params as { id: string }).id} could not be found.`);
    return { agent: render(agentOf(req)) };
  });
  app.put(`${V2}/agents/:id`, async (req) => {
    admin(req);
    agentOf(req);
    throw new Conflict(
      'Atoll agents are the sites themselves: they cannot be changed.',
      'AgentUpdateRefused',
    );
  });
  app.delete(`${V2}/agents/:id`, async (req) => {
    admin(req);
    agentOf(req);
    throw new Conflict('Atoll agents are the sites themselves: remove the site instead.', 'AgentInUse');
  });

  // DHCP agent scheduler
  app.get(`${V2}/agents/:id/dhcp-networks`, async (req) => {
    admin(req);
    const a = agentOf(req, 'dhcp');
    const nets = svc.repo
      .all('network')
      .filter((n) => n.owner === a.site && dhcpHosted(n))
      .map((n) => renderNetwork(svc.repo, n));
    return { networks: nets };
  });
  app.post(`${V2}/agents/:id/dhcp-networks`, async (req, reply) => {
    const auth = admin(req);
    const a = agentOf(req, 'dhcp');
    const net = visible(d, auth, 'network', requiredRef(bodyObj(req.body), 'network_id'));
    const fwd = forwardIfRemote(ctx, net.owner, req, reply);
    if (fwd) return fwd;
    scheduleDhcp(d, net, a.site, true);
    return reply.code(201).send({});
  });
  app.delete(`${V2}/agents/:id/dhcp-networks/:network`, async (req, reply) => {
    const auth = admin(req);
    const a = agentOf(req, 'dhcp');
    const net = visible(d, auth, 'network', (req.params as { network: string }).network);
    const fwd = forwardIfRemote(ctx, net.owner, req, reply);
    if (fwd) return fwd;
    scheduleDhcp(d, net, a.site, false);
    return reply.code(204).send();
  });
  app.get(`${V2}/networks/:id/dhcp-agents`, async (req) => {
    const auth = admin(req);
    const net = visible(d, auth, 'network', (req.params as { id: string }).id);
    const hosting = dhcpHosted(net)
      ? [{ id: agentId(net.owner, 'dhcp'), site: net.owner, type: 'dhcp' as const }]
      : [];
    return { agents: hosting.map(render) };
  });

  // L3 agent scheduler: a router is on its owner's L3 agent and stays there.
  app.get(`${V2}/agents/:id/l3-routers`, async (req) => {
    admin(req);
    const a = agentOf(req, 'l3');
    return {
      routers: svc.repo
        .all('router')
        .filter((r) => r.owner === a.site)
        .map(renderRouter),
    };
  });
  app.get(`${V2}/routers/:id/l3-agents`, async (req) => {
    const auth = admin(req);
    const r = visible(d, auth, 'router', (req.params as { id: string }).id);
    return { agents: [render({ id: agentId(r.owner, 'l3'), site: r.owner, type: 'l3' })] };
  });
  const l3Refused = (req: FastifyRequest, routerId: string | undefined) => {
    const auth = admin(req);
    const a = agentOf(req, 'l3');
    const r = visible(d, auth, 'router', routerId ?? '');
    throw new Conflict(
      r.owner === a.site
        ? `The router ${r.id} has been already hosted by the L3 Agent ${a.id}.`
        : `Router ${r.id} is routed by its owner site ${r.owner}; it cannot move to ${a.site}'s L3 agent.`,
      'RouterHostedByL3Agent',
    );
  };
  app.post(`${V2}/agents/:id/l3-routers`, async (req) =>
    l3Refused(req, optStr(bodyObj(req.body), 'router_id')),
  );
  app.delete(`${V2}/agents/:id/l3-routers/:router`, async (req) =>
    l3Refused(req, (req.params as { router: string }).router),
  );
}
