/**
 * @module Neutron's agents (https://docs.openstack.org/api-ref/network/v2/#networking-agents), as
 * Atoll has them: no agent processes, each site's network service does for what it owns what
 * Neutron's DHCP and L3 agents do. So every site shows one DHCP agent and one L3 agent (host = the
 * site's name, alive while the site is up). A network is hosted by its owner site's DHCP agent, a
 * router by its owner site's L3 agent; an admin may take a network off its DHCP agent and put it back
 * (a flag on the network, which the data plane does not read: docs/network.md says so).
 */
import { Conflict } from '../../../core/errors.ts';
import type { NetworkDeps, StoredRow } from './deps.ts';
import { bodyOf, bump, saveBody, uuidFrom } from './records.ts';

export type AgentType = 'dhcp' | 'l3';

/** The key on a network's body that says its DHCP agent was removed (never shown). */
export const DHCP_UNSCHEDULED = 'atoll:dhcp_unscheduled';

export const AGENT_KINDS: Record<AgentType, { agentType: string; binary: string; topic: string }> = {
  dhcp: { agentType: 'DHCP agent', binary: 'neutron-dhcp-agent', topic: 'dhcp_agent' },
  l3: { agentType: 'L3 agent', binary: 'neutron-l3-agent', topic: 'l3_agent' },
};

/** A site's agent of a type: its id is derived, so every site names it alike. */
export function agentId(site: string, type: AgentType): string {
  return uuidFrom('network-agent', site, type);
}

/** Whether the network is on its owner site's DHCP agent. */
export function dhcpHosted(net: StoredRow): boolean {
  return bodyOf(net)[DHCP_UNSCHEDULED] !== true;
}

/**
 * Puts the network on, or takes it off, the DHCP agent of `site` (at the network's owner). Only the
 * owner's agent may host it: 409 for another site's, as Neutron answers for an agent that cannot.
 */
export function scheduleDhcp(d: NetworkDeps, net: StoredRow, site: string, hosted: boolean): void {
  if (site !== net.owner)
    throw new Conflict(
      `Network ${net.id} is served by the DHCP agent of its owner site ${net.owner}, not of ${site}.`,
      hosted ? 'NetworkHostedByDHCPAgent' : 'NetworkNotHostedByDhcpAgent',
    );
  if (dhcpHosted(net) === hosted) {
    if (hosted)
      throw new Conflict(
        `The network ${net.id} has been already hosted by the DHCP Agent ${agentId(site, 'dhcp')}.`,
        'NetworkHostedByDHCPAgent',
      );
    throw new Conflict(
      `The network ${net.id} is not hosted by the DHCP agent ${agentId(site, 'dhcp')}.`,
      'NetworkNotHostedByDhcpAgent',
    );
  }
  const b = bump(bodyOf(net));
  if (hosted) delete b[DHCP_UNSCHEDULED];
  else b[DHCP_UNSCHEDULED] = true;
  d.repo.tx(() => saveBody(d, 'network', net, b));
}
