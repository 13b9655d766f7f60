/**
 * @module The names of a port's devices on a host, shared by the network data plane (which makes
 * them) and the compute driver (which hands the tap to qemu). Neutron's convention: a device is a
 * short prefix and the first 11 characters of the id, so it fits Linux's 15-character interface
 * names and an operator finds the port from the device (and back) with a prefix search.
 */

/** The id part of a device name (Neutron: DEVICE_NAME_MAX_LEN 15 = prefix + 11 characters). */
export const idPart = (id: string): string => id.slice(0, 11);

/** The tap of a port (`tap` + first 11 characters of the port id, as Neutron's Linux bridge agent). */
export const tapName = (portId: string): string => `tap${idPart(portId)}`;

/** A NIC of a guest: the port, its MAC, its tap and the network's MTU. */
export interface Vif {
  portId: string;
  mac: string;
  tap: string;
  mtu: number;
}
