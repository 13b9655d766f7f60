/**
 * @module The in-process contracts between services of one site (Nova asks Neutron for ports and
 * Cinder for attachments, as nova-compute does over REST in OpenStack). Each is a typed api token: the
 * offering module lists it in `provides` and calls ctx.provide, each caller lists it in `requires` and
 * calls ctx.use (module.ts). All calls run on the site that owns the server, so they only touch what
 * this site owns or may use.
 */
import type { Readable } from 'node:stream';
import type { AuthContext, TokenValidator } from '../../core/auth.ts';
import { defineApi } from './module.ts';
import type { Vif } from './vif.ts';

/** A network request from `server create --nic` / the `networks` field of POST /servers. */
export interface NicRequest {
  networkId?: string;
  portId?: string;
  fixedIp?: string;
}

export interface ServerAddress {
  /** network name -> addresses, as in the server body's `addresses` */
  networkName: string;
  addr: string;
  version: 4 | 6;
  mac: string;
  portId: string;
}

export interface NetworkForCompute {
  /**
   * Creates (or binds existing) ports for a server being built on this site; 'auto' picks the project's
   * only network (or a shared one), 'none' allocates nothing. Throws CloudError (400/404/409) on bad
   * requests, leaving nothing allocated.
   */
  allocateForServer(
    auth: AuthContext,
    server: { id: string; projectId: string; host: string },
    nics: NicRequest[] | 'auto' | 'none',
  ): ServerAddress[];
  /**
   * The asynchronous half, called first and outside any transaction: leases address blocks from the
   * owners of other sites' networks the server needs, so that allocateForServer finds room locally.
   */
  prepareForServer?(auth: AuthContext, nics: NicRequest[] | 'auto' | 'none'): Promise<void>;
  /** Deletes the ports it created for the server and unbinds the ones it was given. */
  releaseForServer(serverId: string): void;
  addressesOf(serverId: string): ServerAddress[];
  /** The NICs the site's data plane plugs for the server (tap, MAC, MTU; none without a data plane). */
  vifsOf?(serverId: string): Vif[];
  /** Resolves when the server's taps exist on their networks' bridges (before its guest starts). */
  plugServer?(serverId: string): Promise<void>;
}

export interface VolumeAttachment {
  id: string;
  volumeId: string;
  serverId: string;
  device: string;
}

export interface VolumeForCompute {
  /** Marks the volume in-use by the server (409 when it is not available). */
  attach(auth: AuthContext, volumeId: string, serverId: string, device: string | undefined): VolumeAttachment;
  detach(auth: AuthContext, volumeId: string, serverId: string): void;
  attachmentsOf(serverId: string): VolumeAttachment[];
  /** Detaches everything from a server being deleted. */
  detachAll(serverId: string): void;
  /** Deletes a volume of this site once detached (a boot volume's delete_on_termination). */
  deleteDetached?(volumeId: string): void;
}

export interface ImageForCompute {
  /** The image if `auth` may boot from it (owner, public, shared or community), else undefined. */
  usableImage(
    auth: AuthContext,
    imageId: string,
  ):
    | { id: string; name: string; status: string; minDisk: number; minRam: number; size: number | null }
    | undefined;
  /**
   * Where an active image's bytes are: `path` when this site stores them (it owns the image), else
   * only their sha256 (fetch them with imageBytes); its disk format and properties. Undefined when the
   * image is not active.
   */
  imageFile?(
    imageId: string,
  ): { path?: string; sha256: string; diskFormat: string; properties: Record<string, unknown> } | undefined;
  /**
   * The whole image's bytes, verified (from this site's store, its cache, or streamed from the owner:
   * image/remote-bytes.ts); rejects with a 503 naming the owner when it cannot be reached.
   */
  imageBytes?(imageId: string): Promise<Readable>;
}

/** What compute's createImage action needs beyond booting: a new image from a server's disk. */
export interface ImageForComputeSnapshots extends ImageForCompute {
  snapshot(
    auth: AuthContext,
    name: string,
    properties: Record<string, string>,
    data: Buffer,
  ): Promise<string>;
  /** Deletes an image `auth` may delete (an unshelve drops its shelved snapshot, as Nova does). */
  deleteImage(auth: AuthContext, imageId: string): Promise<void>;
}

/** An image made for a volume upload, as Cinder's os-volume_upload_image answer names it. */
export interface QueuedImage {
  id: string;
  name: string | null;
  diskFormat: string;
  containerFormat: string;
  visibility: string;
  protected: boolean;
}

/**
 * What the volume service needs of the image service (Cinder's copy_volume_to_image): an image owned
 * by this site (the volume's), created queued at once so that bad input is refused before anything
 * else changes, then filled from a stream of the volume's bytes, never held whole in memory.
 */
export interface ImageForVolumes {
  /**
   * A queued image of `auth`'s project. `attrs` are Glance attributes (name, disk_format,
   * container_format, visibility, protected); `properties` are copied as image properties, except the
   * ones Glance keeps for itself. Throws CloudError (400, 403, 413) and leaves nothing behind.
   */
  createQueued(
    auth: AuthContext,
    attrs: Record<string, unknown>,
    properties: Record<string, string>,
  ): QueuedImage;
  /** Streams `source` into the queued image: saving, then active with its size and checksums. */
  fill(auth: AuthContext, imageId: string, source: Readable): Promise<void>;
  /** Removes an image whose upload failed (Cinder deletes it), if it is still there. */
  discard(auth: AuthContext, imageId: string): Promise<void>;
}

/** Identity's token validator: the site authenticates every request through it. */
export const TokensApi = defineApi<TokenValidator>('tokens');
export const NetworkApi = defineApi<NetworkForCompute>('network');
export const VolumeApi = defineApi<VolumeForCompute>('volume');
export const ImageApi = defineApi<ImageForComputeSnapshots & ImageForVolumes>('image');
