/**
 * @module A floating IP's association with a port, apart from the floating IP commands because a
 * port's deletion clears it too (domain/ports.ts) and floating IPs make ports.
 */
import type { NetworkDeps, StoredRow } from './deps.ts';
import { bodyOf, bump, save } from './records.ts';

/** Points the floating IP at a port's fixed address through a router, or at nothing. */
export function setFloatingPort(
  d: NetworkDeps,
  fip: StoredRow,
  to: { portId: string; fixedIp: string; routerId: string } | null,
): StoredRow {
  const b = bump(bodyOf(fip));
  b.port_id = to?.portId ?? null;
  b.fixed_ip_address = to?.fixedIp ?? null;
  b.router_id = to?.routerId ?? null;
  b.status = to ? 'ACTIVE' : 'DOWN';
  b.port_details = null;
  save(
    d,
    'floating_ip',
    {
      floating_network_id: fip.floating_network_id,
      floating_ip_address: fip.floating_ip_address,
      port_id: b.port_id,
    },
    b,
  );
  return d.repo.row('floating_ip', fip.id)!;
}
