/**
 * @module The network data plane as the API sees it: ports and routers are bookkeeping, and a driver
 * is told when they change (as Neutron's ML2 mechanism drivers and L3 agents are). The only driver
 * today does nothing; a real one (OVS, Linux bridge, a cloud fabric) implements this interface and is
 * chosen by config.services.network.driver.
 */

export interface PortBinding {
  portId: string;
  networkId: string;
  macAddress: string;
  fixedIps: { subnetId: string; ipAddress: string }[];
  deviceId: string;
  deviceOwner: string;
  hostId: string;
}

export interface RouterState {
  routerId: string;
  adminStateUp: boolean;
  /** Subnets attached through router interfaces. */
  interfaceSubnetIds: string[];
  externalNetworkId: string | undefined;
}

export interface NetworkDriver {
  readonly name: string;
  /** The port is bound to a host (or its binding changed). Must not throw for bookkeeping errors. */
  portBound(port: PortBinding): void;
  portUnbound(portId: string): void;
  routerUpdated(router: RouterState): void;
  routerDeleted(routerId: string): void;
}

export const noopNetworkDriver: NetworkDriver = {
  name: 'noop',
  portBound() {},
  portUnbound() {},
  routerUpdated() {},
  routerDeleted() {},
};
