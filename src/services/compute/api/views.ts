/**
 * @module Nova response bodies: servers (with the OS-EXT-* extension fields), flavors, keypairs.
 * https://docs.openstack.org/api-ref/compute/
 */
import { createHash } from 'node:crypto';
import type { FastifyRequest } from 'fastify';
import type { AuthContext } from '../../../core/auth.ts';
import type { ServerAddress } from '../../common/internal.ts';
import { novaTime } from '../../common/input.ts';
import type { Obj } from '../../common/input.ts';
import { serverStatus } from '../domain/states.ts';
import type { FlavorRow, KeypairRow, ServerRow } from '../store/schema.ts';
import { atLeast } from './microversion.ts';

export const link = (base: string, kind: string, id: string) => [
  { rel: 'self', href: `${base}/compute/v2.1/${kind}/${id}` },
  { rel: 'bookmark', href: `${base}/compute/${kind}/${id}` },
];

export function flavorView(f: FlavorRow, base: string, req: FastifyRequest): Obj {
  const v: Obj = {
    id: f.id,
    name: f.name,
    ram: f.ram,
    disk: f.disk,
    vcpus: f.vcpus,
    swap: f.swap === 0 ? '' : f.swap,
    'OS-FLV-EXT-DATA:ephemeral': f.ephemeral,
    'OS-FLV-DISABLED:disabled': !!f.disabled,
    'os-flavor-access:is_public': !!f.is_public,
    rxtx_factor: f.rxtx_factor,
    links: link(base, 'flavors', f.id),
  };
  if (atLeast(req, '2.55')) v.description = f.description;
  if (atLeast(req, '2.61')) v.extra_specs = JSON.parse(f.extra_specs) as Obj;
  if (atLeast(req, '2.75') && f.swap === 0) v.swap = 0;
  return v;
}

export function keypairView(k: KeypairRow, req: FastifyRequest, brief: boolean): Obj {
  const v: Obj = { name: k.name, public_key: k.public_key, fingerprint: k.fingerprint };
  if (atLeast(req, '2.2')) v.type = k.type;
  if (brief) return v;
  return {
    ...v,
    user_id: k.user_id,
    created_at: novaTime(k.created_at).replace('Z', '.000000'),
    deleted: false,
    deleted_at: null,
    updated_at: null,
    id: Number.parseInt(createHash('md5').update(k.id).digest('hex').slice(0, 7), 16),
  };
}

export function addressesView(list: ServerAddress[]): Obj {
  const out: Record<string, Obj[]> = {};
  for (const a of list)
    (out[a.networkName] ??= []).push({
      version: a.version,
      addr: a.addr,
      'OS-EXT-IPS:type': 'fixed',
      'OS-EXT-IPS-MAC:mac_addr': a.mac,
    });
  return out;
}

/**
 * A server as Nova shows it. `fresh` says whether this site's replica of the owner is current: when the
 * owner is unreachable the last replicated state is shown, marked `atoll:stale` with its age in seconds
 * (Nova's answer for a down cell is status UNKNOWN; the last known state is more useful at the edge).
 */
export function serverView(
  s: ServerRow,
  base: string,
  req: FastifyRequest,
  auth: AuthContext,
  fresh: { stale: boolean; ageSeconds: number } = { stale: false, ageSeconds: 0 },
  volumeIds: string[] = [],
): Obj {
  const flavor = JSON.parse(s.flavor) as FlavorRow;
  const status = serverStatus(s.vm_state, s.task_state);
  const v: Obj = {
    id: s.id,
    name: s.name,
    status,
    tenant_id: s.project_id,
    user_id: s.user_id,
    metadata: JSON.parse(s.metadata) as Obj,
    hostId: s.host
      ? createHash('sha224')
          .update(s.project_id + s.host)
          .digest('hex')
      : '',
    image: s.image_id
      ? { id: s.image_id, links: [{ rel: 'bookmark', href: `${base}/compute/images/${s.image_id}` }] }
      : '',
    flavor: atLeast(req, '2.47')
      ? {
          vcpus: flavor.vcpus,
          ram: flavor.ram,
          disk: flavor.disk,
          ephemeral: flavor.ephemeral,
          swap: flavor.swap,
          original_name: flavor.name,
          extra_specs: JSON.parse(flavor.extra_specs) as Obj,
        }
      : { id: s.flavor_id, links: [{ rel: 'bookmark', href: `${base}/compute/flavors/${s.flavor_id}` }] },
    created: novaTime(s.created_at),
    updated: novaTime(s.updated_at),
    addresses: addressesView(JSON.parse(s.addresses) as ServerAddress[]),
    accessIPv4: s.access_ipv4 ?? '',
    accessIPv6: s.access_ipv6 ?? '',
    links: link(base, 'servers', s.id),
    'OS-DCF:diskConfig': s.disk_config ?? 'MANUAL',
    'OS-EXT-AZ:availability_zone': s.owner,
    config_drive: '',
    key_name: s.key_name,
    'OS-SRV-USG:launched_at': s.launched_at ? novaTime(s.launched_at).replace('Z', '.000000') : null,
    'OS-SRV-USG:terminated_at': null,
    'OS-EXT-STS:task_state': s.task_state,
    'OS-EXT-STS:vm_state': s.vm_state,
    'OS-EXT-STS:power_state': s.power_state,
    'os-extended-volumes:volumes_attached': volumeIds.map((id) => ({
      id,
      ...(atLeast(req, '2.3')
        ? { delete_on_termination: (JSON.parse(s.delete_volumes ?? '[]') as string[]).includes(id) }
        : {}),
    })),
    security_groups: [{ name: 'default' }],
  };
  if (status === 'BUILD' || status === 'ACTIVE') v.progress = status === 'ACTIVE' ? 100 : 0;
  if (auth.isAdmin) {
    v['OS-EXT-SRV-ATTR:host'] = s.host;
    v['OS-EXT-SRV-ATTR:hypervisor_hostname'] = s.host;
    v['OS-EXT-SRV-ATTR:instance_name'] = `instance-${s.id.slice(0, 8)}`;
  }
  if (s.fault && (s.vm_state === 'error' || s.vm_state === 'deleted')) {
    const f = JSON.parse(s.fault) as { code: number; message: string; created: number };
    v.fault = {
      code: f.code,
      message: f.message,
      created: novaTime(f.created),
      ...(auth.isAdmin ? { details: f.message } : {}),
    };
  }
  if (atLeast(req, '2.9')) v.locked = !!s.locked;
  if (atLeast(req, '2.73')) v.locked_reason = s.locked_reason;
  if (atLeast(req, '2.19')) v.description = s.description;
  if (atLeast(req, '2.26')) v.tags = JSON.parse(s.tags ?? '[]') as string[];
  if (atLeast(req, '2.63')) v.trusted_image_certificates = null;
  if (atLeast(req, '2.71')) v.server_groups = s.server_group_id ? [s.server_group_id] : [];
  if (fresh.stale) {
    v['atoll:stale'] = true;
    v['atoll:stale_seconds'] = fresh.ageSeconds;
  }
  return v;
}

/** Keys Nova leaves out of the update and rebuild answers below 2.75 (its view with every show_* off). */
const EXTENDED_KEYS = [
  'key_name',
  'security_groups',
  'config_drive',
  'OS-EXT-AZ:availability_zone',
  'OS-SRV-USG:launched_at',
  'OS-SRV-USG:terminated_at',
  'OS-EXT-STS:task_state',
  'OS-EXT-STS:vm_state',
  'OS-EXT-STS:power_state',
  'OS-EXT-SRV-ATTR:host',
  'OS-EXT-SRV-ATTR:hypervisor_hostname',
  'OS-EXT-SRV-ATTR:instance_name',
  'os-extended-volumes:volumes_attached',
];

/**
 * The server in a PUT /servers/{id} or rebuild answer: below 2.75 Nova shows it without the extension
 * attributes (and addresses without their OS-EXT-IPS fields); from 2.75 it is the full view.
 */
export function serverWriteView(full: Obj, req: FastifyRequest, rebuild?: { userData: string | null }): Obj {
  const v: Obj = { ...full };
  // A rebuild answer has key_name from 2.54 and user_data from 2.57.
  if (rebuild && atLeast(req, '2.57')) v.user_data = rebuild.userData;
  if (atLeast(req, '2.75')) return v;
  const keep = rebuild && atLeast(req, '2.54') ? ['key_name'] : [];
  for (const k of EXTENDED_KEYS) if (!keep.includes(k)) delete v[k];
  v.addresses = plainAddresses(v.addresses as Record<string, Obj[]>);
  return v;
}

/** Addresses by network with only version and addr (os-ips, and views without OS-EXT-IPS). */
export function plainAddresses(byNetwork: Record<string, Obj[]>): Record<string, Obj[]> {
  return Object.fromEntries(
    Object.entries(byNetwork).map(([net, list]) => [
      net,
      list.map((a) => ({ version: a.version, addr: a.addr })),
    ]),
  );
}
