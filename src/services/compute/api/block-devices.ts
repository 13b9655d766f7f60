/**
 * @module A create's `block_device_mapping_v2`, checked as Nova checks it: source and destination
 * types, the boot sequence (boot indexes 0, 1, ... with no gap; no image means a device of index 0),
 * and every volume looked up in Block Storage with the caller's token (it must be available). What
 * is supported: existing volumes (source `volume`, destination `volume`, booted from when of index 0),
 * the image itself (`image` to `local`, index 0) and ephemeral or swap disks (`blank` to `local`,
 * accepted and not made: the drivers give a server its root disk only). A volume made at boot (`image`,
 * `snapshot` or `blank` to `volume`) is a clear 400 for now.
 * https://docs.openstack.org/nova/latest/user/block-device-mapping.html
 */
import type { FastifyRequest } from 'fastify';
import { BadRequest, CloudError } from '../../../core/errors.ts';
import { isObj } from '../../common/input.ts';
import type { Obj } from '../../common/input.ts';
import type { ServiceCall } from './proxy.ts';

export interface BootVolume {
  volumeId: string;
  bootIndex: number | null;
  deleteOnTermination: boolean;
}

export interface BlockDevices {
  volumes: BootVolume[];
  /** A volume has boot index 0: the server has no image. */
  bootFromVolume: boolean;
  /** The image of an `image` to `local` device of index 0, when the body names no imageRef. */
  imageRef?: string;
}

const invalid = (why: string) => new BadRequest(`Block Device Mapping is Invalid: ${why}`);
const BOOT_SEQUENCE =
  'Boot sequence for the instance and image/block device mapping combination is not valid.';

function bootIndex(v: unknown): number | null {
  if (v === undefined || v === null || v === 'none' || v === 'None') return null;
  const n = typeof v === 'string' && /^-?[0-9]+$/.test(v) ? Number(v) : v;
  if (typeof n !== 'number' || !Number.isInteger(n))
    throw new BadRequest(`Invalid input for field/attribute boot_index. Value: ${String(v)}.`);
  return n < 0 ? null : n;
}

function flag(v: unknown, field: string): boolean {
  if (v === undefined || v === null) return false;
  if (typeof v === 'boolean') return v;
  if (typeof v === 'string' && /^(true|1|yes|on|t|y)$/i.test(v)) return true;
  if (typeof v === 'string' && /^(false|0|no|off|f|n)$/i.test(v)) return false;
  throw new BadRequest(`Invalid input for field/attribute ${field}. Value: ${String(v)}.`);
}

export async function parseBlockDevices(
  call: ServiceCall,
  req: FastifyRequest,
  projectId: string,
  raw: unknown,
  imageRef: string,
): Promise<BlockDevices> {
  if (raw === undefined || raw === null) return { volumes: [], bootFromVolume: false };
  if (!Array.isArray(raw)) throw new BadRequest('Invalid input for field/attribute block_device_mapping_v2.');
  const volumes: BootVolume[] = [];
  const indexes: number[] = [];
  let image: string | undefined;
  for (const d of raw as unknown[]) {
    if (!isObj(d)) throw new BadRequest('Invalid input for field/attribute block_device_mapping_v2.');
    const source = d.source_type ?? 'volume';
    if (source !== 'volume' && source !== 'image' && source !== 'snapshot' && source !== 'blank')
      throw new BadRequest(`Invalid input for field/attribute source_type. Value: ${String(source)}.`);
    const dest = d.destination_type ?? (source === 'volume' || source === 'snapshot' ? 'volume' : 'local');
    if (dest !== 'local' && dest !== 'volume')
      throw new BadRequest(`Invalid input for field/attribute destination_type. Value: ${String(dest)}.`);
    const uuid = d.uuid;
    if (source !== 'blank' && (typeof uuid !== 'string' || !/^[a-zA-Z0-9._-]{1,255}$/.test(uuid)))
      throw invalid(`a device of source ${source} needs a uuid.`);
    const index = bootIndex(d.boot_index);
    if (index !== null) indexes.push(index);
    const del = flag(d.delete_on_termination, 'delete_on_termination');
    if (source === 'volume') {
      if (dest !== 'volume') throw invalid(`a volume can only be mapped to destination_type volume.`);
      volumes.push({ volumeId: String(uuid), bootIndex: index, deleteOnTermination: del });
    } else if (dest === 'volume') {
      throw invalid(`a volume made at boot (source ${source}, destination volume) is not supported yet.`);
    } else if (source === 'snapshot') {
      throw invalid('a snapshot can only be mapped to destination_type volume.');
    } else if (source === 'image') {
      if (index !== 0) throw invalid(BOOT_SEQUENCE);
      if (imageRef && imageRef.replace(/^.*\/images\//, '') !== uuid)
        throw invalid('the image of the boot device is not the imageRef of the server.');
      image = String(uuid);
    } else if (index === 0) {
      throw invalid(BOOT_SEQUENCE); // a blank local disk is no root disk
    }
  }
  // Boot indexes: 0, 1, 2... once each; a server with no image boots from the device of index 0.
  const sorted = [...indexes].sort((a, b) => a - b);
  if (sorted.some((n, i) => n !== i)) throw invalid(BOOT_SEQUENCE);
  const bootFromVolume = volumes.some((v) => v.bootIndex === 0);
  if (!imageRef && !image && !bootFromVolume) throw invalid(BOOT_SEQUENCE);
  const seen = new Set<string>();
  for (const v of volumes) {
    if (seen.has(v.volumeId)) throw invalid(`volume ${v.volumeId} is mapped twice.`);
    seen.add(v.volumeId);
    let vol: Obj;
    try {
      vol = (await call(req, 'GET', `/volume/v3/${projectId}/volumes/${encodeURIComponent(v.volumeId)}`))
        .volume as Obj;
    } catch (e) {
      if (e instanceof CloudError && (e.status === 404 || e.status === 403))
        throw invalid(`failed to get volume ${v.volumeId}.`);
      throw e;
    }
    if (v.bootIndex === 0 && String(vol.bootable) !== 'true')
      throw invalid(`Volume ${v.volumeId} is not bootable.`);
    if (vol.status !== 'available')
      throw new BadRequest(
        `Invalid volume: volume ${v.volumeId} status must be available, but it is ${String(vol.status)}.`,
      );
  }
  return { volumes, bootFromVolume, ...(image && !imageRef ? { imageRef: image } : {}) };
}
