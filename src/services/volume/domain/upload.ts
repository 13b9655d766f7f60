/**
 * @module A volume's bytes into a new image (Cinder's `os-volume_upload_image`, copy_volume_to_image).
 * It runs on the volume's site, and the image belongs to that site too (the image service there owns
 * it), so the bytes never cross the WAN. As in Cinder the request answers 202 at once: the image is
 * created `queued` (bad input is refused before anything changes) and the volume goes to `uploading`;
 * then the volume's bytes stream into the image (`saving`, then `active` with its size and checksums)
 * and the volume goes back to `available` (or `in-use`). A failed upload deletes the image, puts the
 * volume back and leaves a user message. Only raw bytes are written: no format conversion.
 * https://docs.openstack.org/api-ref/block-storage/v3/#upload-volume-to-image
 */
import type { AuthContext } from '../../../core/auth.ts';
import { BadRequest } from '../../../core/errors.ts';
import type { ImageForVolumes } from '../../common/internal.ts';
import { isObj, optStr } from '../../common/input.ts';
import type { Obj } from '../../common/input.ts';
import type { Microversion } from '../../common/microversion.ts';
import { atLeast } from '../../common/microversion.ts';
import type { VolRow, VolumeService } from './volumes.ts';
import { boolArg, stringValues } from './volumes.ts';

/** Cinder's glance_core_properties: volume image metadata that is not copied into the new image. */
const NOT_COPIED = new Set([
  'checksum',
  'container_format',
  'disk_format',
  'image_name',
  'image_id',
  'min_disk',
  'min_ram',
  'name',
  'size',
]);

/**
 * Starts the upload and returns Cinder's answer (`os-volume_upload_image`). The caller has forwarded
 * the request to the volume's site. `typeView` renders the volume's type for the answer.
 */
export function uploadToImage(
  svc: VolumeService,
  images: ImageForVolumes,
  auth: AuthContext,
  r: VolRow,
  a: Obj,
  mv: Microversion,
  typeView: (t: Obj) => Obj,
): Obj {
  const name = optStr(a, 'image_name');
  if (!name || name.length > 255)
    throw new BadRequest('Invalid input received: image_name is required (1 to 255 characters).');
  const force = a.force === undefined ? false : boolArg(a.force, 'force');
  if (r.status !== 'available' && !(force && r.status === 'in-use'))
    throw new BadRequest(
      r.status === 'in-use'
        ? `Invalid volume: Volume ${r.id} status must be available, or in-use with force, to upload to an image.`
        : `Invalid volume: Volume ${r.id} status must be available or in-use, but current status is: ${r.status}.`,
    );
  const diskFormat = optStr(a, 'disk_format') ?? 'raw';
  if (diskFormat !== 'raw')
    throw new BadRequest(
      `Invalid input received: disk_format ${diskFormat} is not supported: Atoll uploads a volume's raw bytes and does not convert them.`,
    );
  const containerFormat = optStr(a, 'container_format') ?? 'bare';
  if (containerFormat !== 'bare')
    throw new BadRequest(
      `Invalid input received: container_format ${containerFormat} is not supported (bare).`,
    );
  // visibility and protected exist from 3.1; before, the image is private and unprotected.
  const v31 = atLeast(mv, '3.1');
  const visibility = (v31 ? optStr(a, 'visibility') : undefined) ?? 'private';
  const isProtected = v31 && a.protected !== undefined ? boolArg(a.protected, 'protected') : false;
  const body = svc.body(r);
  const meta = isObj(body.volume_image_metadata) ? stringValues(body.volume_image_metadata) : {};
  const properties = Object.fromEntries(Object.entries(meta).filter(([k]) => !NOT_COPIED.has(k)));
  const img = images.createQueued(
    auth,
    {
      name,
      disk_format: diskFormat,
      container_format: containerFormat,
      visibility,
      protected: isProtected,
    },
    properties,
  );
  const before = svc.patchVolume(r, { status: 'uploading' });
  svc.background(fill(svc, images, auth, r, img.id));
  const type = svc.type(String(body.volume_type_id ?? ''));
  return {
    'os-volume_upload_image': {
      id: r.id,
      updated_at: before.updated_at ?? null,
      status: 'uploading',
      display_description: body.description ?? null,
      size: r.size,
      volume_type: type ? typeView(type) : null,
      image_id: img.id,
      container_format: img.containerFormat,
      disk_format: img.diskFormat,
      image_name: img.name,
      ...(v31 ? { visibility: img.visibility, protected: img.protected } : {}),
    },
  };
}

/** The background half: stream the bytes, then put the volume back (and clean up on failure). */
async function fill(
  svc: VolumeService,
  images: ImageForVolumes,
  auth: AuthContext,
  r: VolRow,
  imageId: string,
): Promise<void> {
  let failed = false;
  try {
    await images.fill(auth, imageId, svc.driver.read(r.id));
  } catch (e) {
    failed = true;
    svc.log.warn({ volume: r.id, image: imageId, err: String(e) }, 'upload to image failed');
    await images.discard(auth, imageId).catch((err: unknown) => {
      svc.log.warn({ image: imageId, err: String(err) }, 'could not remove the image of a failed upload');
    });
  }
  const cur = svc.volume(r.id);
  if (cur && cur.status === 'uploading') svc.setStatus(cur, svc.restingStatus(r.id));
  if (failed && cur) svc.messages.record(cur.project_id, r.id, 'copyVolumeToImage', 'failedToUploadVolume');
}
