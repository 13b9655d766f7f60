/**
 * @module Image bytes across sites: `atoll.<site>.rpc.image` serves chunks of the images a site owns,
 * and `remoteImage` reads an image another site owns as a stream of those chunks
 * (domain/remote-stream.ts: window, per-chunk sha256, resumption, whole-image checksum). Each request is
 * signed by its sender (federation/signed.ts) and names the image, its blob (so a changed image is a
 * 409, never a mix of two), an offset and a length; the reply carries the bytes raw after the envelope
 * (defineRpc `bytes`, fabric/rpc.ts) with their sha256. A chunk is at most CHUNK_LIMIT bytes, below any
 * fabric's max payload in use. docs/image.md, "Image bytes across sites".
 */
import { createHash } from 'node:crypto';
import type { Readable } from 'node:stream';
import { BadRequest, CloudError, Conflict, Forbidden, NotFound } from '../../core/errors.ts';
import type { Unsubscribe } from '../../fabric/fabric.ts';
import { RpcVersionMismatch, defineRpc } from '../../fabric/rpc.ts';
import type { ServiceContext } from '../common/module.ts';
import type { ImageCache } from './cache.ts';
import type { Images } from './domain/images.ts';
import { RemoteImageStream } from './domain/remote-stream.ts';
import type { BlobStore } from './store/blobs.ts';
import type { ImageRow } from './store/schema.ts';

export interface ImageChunkRequest {
  from: string;
  image: string;
  /** The image's blob (sha256 of its data) the reader expects. */
  blob: string;
  offset: number;
  length: number;
  at?: number;
  id?: string;
  sig?: string;
}

export interface ImageChunkReply {
  /** The whole image's size. */
  size: number;
  /** sha256 of `data`, computed by the sender over what it read. */
  sha256: string;
  data: Uint8Array;
}

export const imageChunkRpc = defineRpc<ImageChunkRequest, ImageChunkReply>({
  name: 'image',
  version: 1,
  bytes: true,
});

/** The largest chunk a site serves: 1 MiB of NATS max_payload leaves room for the envelope. */
export const CHUNK_LIMIT = 512 * 1024;

export interface StreamSettings {
  chunkBytes: number;
  window: number;
  chunkTimeoutMs: number;
  resumeWithinMs: number;
  retryMs: number;
}

/** services.image.{streamChunkBytes, streamWindow, streamChunkTimeoutMs, streamResumeMs}. */
export function streamSettings(
  cfg: Record<string, unknown> | undefined,
  forwardTimeoutMs: number,
): StreamSettings {
  const num = (k: string, d: number, min: number, max: number) => {
    const v = cfg?.[k];
    if (v === undefined) return d;
    if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < min || v > max)
      throw new Error(`services.image.${k} must be an integer in [${min}, ${max}], not ${JSON.stringify(v)}`);
    return v;
  };
  return {
    chunkBytes: num('streamChunkBytes', 256 * 1024, 4096, CHUNK_LIMIT),
    window: num('streamWindow', 16, 1, 256),
    chunkTimeoutMs: num('streamChunkTimeoutMs', Math.max(forwardTimeoutMs, 10_000), 100, 600_000),
    resumeWithinMs: num('streamResumeMs', 60_000, 0, 3_600_000),
    retryMs: num('streamRetryMs', 250, 10, 60_000),
  };
}

/** services.image.cacheBytes: the size limit of the site's cache of fetched images; 0 (default) is off. */
export function cacheBytes(cfg: Record<string, unknown> | undefined): number {
  const v = cfg?.cacheBytes;
  if (v === undefined) return 0;
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0)
    throw new Error(`services.image.cacheBytes must be a non-negative integer, not ${JSON.stringify(v)}`);
  return v;
}

const isInt = (x: unknown): x is number => typeof x === 'number' && Number.isSafeInteger(x) && x >= 0;

/** Serves chunks of the images this site owns to the other sites. */
export function serveImageChunks(site: ServiceContext, images: Images, blobs: BlobStore): Unsubscribe {
  return imageChunkRpc.serve(
    site.fabric,
    async (req) => {
      const refused = site.signer.refusal(req);
      if (refused) throw new Forbidden(`Image data request refused: ${refused}.`);
      if (typeof req.image !== 'string' || typeof req.blob !== 'string')
        throw new BadRequest('image and blob are required.');
      if (!isInt(req.offset) || !isInt(req.length) || req.length < 1 || req.length > CHUNK_LIMIT)
        throw new BadRequest(`offset and length (1 to ${CHUNK_LIMIT}) must be integers.`);
      const img = images.get(req.image);
      if (!img || !site.owns(img.owner))
        throw new NotFound(`No image ${req.image} is stored at ${site.name}.`);
      if ((img.status !== 'active' && img.status !== 'deactivated') || !img.blob || img.size === null)
        throw new Conflict(`Image ${img.id} has no data.`);
      if (img.blob !== req.blob) throw new Conflict(`The data of image ${img.id} changed.`);
      if (req.offset >= img.size) throw new BadRequest(`offset ${req.offset} is past the image's end.`);
      const data = await blobs.readAt(img.blob, req.offset, Math.min(req.length, img.size - req.offset));
      return { size: img.size, sha256: createHash('sha256').update(data).digest('hex'), data };
    },
    {
      internal: (e) => {
        site.log.error({ err: String(e) }, 'image chunk request failed');
        return new CloudError(500, `image chunk request failed at ${site.name}: ${String(e)}`);
      },
    },
  );
}

/** A failure that may heal: the holder unreachable or timing out, or a retryable error it sent. */
function retryable(e: unknown): boolean {
  if (e instanceof RpcVersionMismatch) return false;
  return e instanceof CloudError && e.status >= 500;
}

/** The bytes [start, end) of an image `img.owner` holds, streamed from there. */
export function remoteImage(
  site: ServiceContext,
  img: ImageRow,
  range: { start: number; end: number },
  s: StreamSettings,
): RemoteImageStream {
  const blob = img.blob!;
  const holder = img.owner;
  const wholeImage = range.start === 0 && range.end === img.size;
  const whole = !wholeImage
    ? undefined
    : img.os_hash_algo === 'sha512' && img.os_hash_value
      ? { algo: 'sha512' as const, expected: img.os_hash_value }
      : img.checksum
        ? { algo: 'md5' as const, expected: img.checksum }
        : undefined;
  return new RemoteImageStream({
    fetch: (offset, length) =>
      imageChunkRpc.call(
        site.fabric,
        holder,
        { from: site.name, image: img.id, blob, offset, length },
        {
          timeoutMs: s.chunkTimeoutMs,
          seal: (m) => site.signer.sign(m),
          unreachable: (why) => `image data request ${why}`,
        },
      ),
    start: range.start,
    end: range.end,
    chunkBytes: s.chunkBytes,
    window: s.window,
    clock: site.clock,
    resumeWithinMs: s.resumeWithinMs,
    retryMs: s.retryMs,
    retryable,
    ...(whole ? { whole } : {}),
    holder,
  });
}

/**
 * The bytes of an image another site owns, whole or [start, end): this site's cached copy when it has
 * one (also while the owner is cut off), else the whole-image fetch under way (one fetch for all its
 * readers), else a stream from the owner, teed into the cache when whole. Resolves once the first
 * chunk is verified, so an unreachable owner is a clean 503 (the download route and compute's boots).
 */
export async function ownerBytes(
  site: ServiceContext,
  img: ImageRow,
  range: { start: number; end: number } | undefined,
  s: StreamSettings,
  cache: ImageCache,
): Promise<Readable> {
  const blob = img.blob!;
  const size = img.size ?? 0;
  let body: Readable | undefined = cache.open(blob, range);
  const pending = !body && !range ? cache.pending(blob) : undefined;
  if (pending && (await pending)) body = cache.open(blob);
  if (body) return body;
  const stream = remoteImage(site, img, range ?? { start: 0, end: size }, s);
  stream.on('error', (e) =>
    site.log.warn({ image: img.id, owner: img.owner, err: String(e) }, 'image download from owner failed'),
  );
  await stream.started;
  return range ? stream : cache.fill(blob, size, stream);
}
