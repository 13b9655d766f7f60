/**
 * @module Routes of ports (https://docs.openstack.org/api-ref/network/v2/#ports). A port is made here,
 * whoever owns its network: addresses come from blocks leased to this site, and a block is asked of
 * the subnet's owner (one round trip) when none has room (docs/network.md).
 */
import { Conflict } from '../../../core/errors.ts';
import { visible } from '../domain/access.ts';
import { createPort, deletePort, updatePort } from '../domain/ports.ts';
import { bodyOf, requiredRef } from '../domain/records.ts';
import type { NetworkService } from '../service.ts';
import type { Resource } from './resource.ts';
import { renderPort } from './views.ts';

export function portResource(svc: NetworkService): Resource {
  const d = svc.deps;
  return {
    kind: 'port',
    path: 'ports',
    singular: 'port',
    collection: 'ports',
    label: 'port',
    render: renderPort,
    create: async (auth, project, o) => {
      const netId = requiredRef(o, 'network_id');
      const net = visible(d, auth, 'network', netId);
      return svc.leases.withLeases(() => createPort(d, auth, project, net, o), net.id);
    },
    update: (auth, r, o) =>
      o.fixed_ips === undefined
        ? updatePort(d, auth, r, o)
        : svc.leases.withLeases(
            () => updatePort(d, auth, svc.repo.row('port', r.id) ?? r, o),
            String(r.network_id),
          ),
    remove: (_auth, r) => {
      const b = bodyOf(r);
      if (String(b.device_owner).startsWith('network:router') || b.device_owner === 'network:floatingip')
        throw new Conflict(
          `Port ${r.id} cannot be deleted directly via the port API: has device owner ${String(b.device_owner)}.`,
          'ServicePortInUse',
        );
      deletePort(d, r);
    },
  };
}
