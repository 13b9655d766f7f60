/**
 * @module Block Storage response views: exactly the fields Cinder answers with, per view and
 * microversion. Stored bodies keep more (the owning project, the attach status); clients such as
 * Tempest validate every answer against Cinder's schema, which allows no extra field. So each answer
 * is built from a list of fields here rather than by spreading the stored body.
 * https://docs.openstack.org/api-ref/block-storage/v3/
 */
import type { Obj } from '../../common/input.ts';
import type { Microversion } from '../../common/microversion.ts';
import { atLeast } from '../../common/microversion.ts';
import type { VolRow, VolumeService } from '../domain/volumes.ts';

/** Fields of a volume in every view, 3.0 on; later ones are added by microversion below. */
const VOLUME_FIELDS = [
  'id',
  'name',
  'description',
  'size',
  'status',
  'availability_zone',
  'created_at',
  'updated_at',
  'volume_type',
  'snapshot_id',
  'source_volid',
  'bootable',
  'encrypted',
  'multiattach',
  'metadata',
  'user_id',
  'replication_status',
  'consistencygroup_id',
  'migration_status',
] as const;

/** Fields that appear from a microversion on (Cinder's api/openstack/api_version_request history). */
const VOLUME_FIELDS_FROM: readonly (readonly [string, string])[] = [
  ['3.13', 'group_id'],
  ['3.21', 'provider_id'],
  ['3.63', 'volume_type_id'],
];

function pick(b: Obj, keys: readonly string[]): Obj {
  const out: Obj = {};
  for (const k of keys) out[k] = b[k] ?? null;
  return out;
}

/**
 * A volume as Cinder shows it. `detail` (show, list detail) adds the image metadata and, for admins,
 * the os-vol-* attributes; create and update answer without them, as Cinder does. `publicUrl` is
 * the site's, for the links.
 */
export function volumeView(
  svc: VolumeService,
  publicUrl: string,
  r: VolRow,
  mv: Microversion,
  detail: boolean,
  admin: boolean,
): Obj {
  const b = svc.body(r);
  const out = pick(b, VOLUME_FIELDS);
  for (const [from, k] of VOLUME_FIELDS_FROM) if (atLeast(mv, from)) out[k] = b[k] ?? null;
  out.attachments = svc.attachmentsOfVolume(r.id).map((a) => svc.attachmentView(a));
  out.links = [
    { rel: 'self', href: `${publicUrl}/volume/v3/${r.project_id}/volumes/${r.id}` },
    { rel: 'bookmark', href: `${publicUrl}/volume/${r.project_id}/volumes/${r.id}` },
  ];
  if (atLeast(mv, '3.48')) {
    out.service_uuid = svc.serviceUuid(r.owner);
    out.shared_targets = false;
  }
  if (atLeast(mv, '3.61')) out.cluster_name = null;
  if (!detail) return out;
  if (b.volume_image_metadata) out.volume_image_metadata = b.volume_image_metadata;
  // Cinder's policies: the owning project shows to whoever may see the volume, the host and the
  // migration status to admins only.
  out['os-vol-tenant-attr:tenant_id'] = r.project_id;
  if (admin) {
    out['os-vol-host-attr:host'] = svc.hostOf(r.owner);
    out['os-vol-mig-status-attr:migstat'] = null;
    out['os-vol-mig-status-attr:name_id'] = null;
  }
  return out;
}

const SNAPSHOT_FIELDS = [
  'id',
  'name',
  'description',
  'volume_id',
  'size',
  'status',
  'created_at',
  'updated_at',
  'metadata',
] as const;
const SNAPSHOT_FIELDS_FROM: readonly (readonly [string, string])[] = [
  ['3.14', 'group_snapshot_id'],
  ['3.41', 'user_id'],
  ['3.65', 'consumes_quota'],
];

/** A snapshot. `detail` (show, list detail) adds the os-extended-snapshot-attributes (Cinder: owner or admin). */
export function snapshotView(svc: VolumeService, r: VolRow, mv: Microversion, detail: boolean): Obj {
  const b = svc.body(r);
  const out = pick(b, SNAPSHOT_FIELDS);
  for (const [from, k] of SNAPSHOT_FIELDS_FROM) if (atLeast(mv, from)) out[k] = b[k] ?? null;
  if (detail) {
    out['os-extended-snapshot-attributes:project_id'] = r.project_id;
    out['os-extended-snapshot-attributes:progress'] = String(b.progress ?? '100%');
  }
  return out;
}

/** Which answer a volume type goes into: Cinder's create omits qos_specs_id, update also the access flag. */
export type TypeView = 'show' | 'create' | 'update';

export function typeView(t: Obj, view: TypeView, admin: boolean): Obj {
  const out = pick(t, ['id', 'name', 'description', 'is_public']);
  if (view !== 'update') out['os-volume-type-access:is_public'] = t.is_public ?? true;
  if (view === 'show') out.qos_specs_id = t.qos_specs_id ?? null;
  // Extra specs are the operator's: Cinder shows them to admins only.
  if (admin) out.extra_specs = t.extra_specs ?? {};
  return out;
}
