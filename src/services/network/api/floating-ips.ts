/**
 * @module Routes of floating IPs (https://docs.openstack.org/api-ref/network/v2/#floating-ips-floatingips).
 */
import { createFloatingIp, deleteFloatingIp, updateFloatingIp } from '../domain/floating-ips.ts';
import type { NetworkService } from '../service.ts';
import type { Resource } from './resource.ts';
import { renderFloatingIp } from './views.ts';

export function floatingIpResource(svc: NetworkService): Resource {
  const d = svc.deps;
  const render = (r: Parameters<typeof renderFloatingIp>[1]) => renderFloatingIp(svc.repo, r);
  return {
    kind: 'floating_ip',
    path: 'floatingips',
    singular: 'floatingip',
    collection: 'floatingips',
    label: 'floating IP',
    render,
    create: (auth, project, o) => render(createFloatingIp(d, auth, project, o)),
    update: (auth, r, o) => render(updateFloatingIp(d, auth, r, o)),
    remove: (_auth, r) => deleteFloatingIp(d, r),
  };
}
