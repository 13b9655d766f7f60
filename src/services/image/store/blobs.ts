/**
 * @module The content-addressed image store on disk: bytes stream in through md5, sha256 and sha512
 * hashers into a temp file, which is renamed to its sha256 name once complete. Nothing is ever held
 * whole in memory, and a failed write leaves no file behind.
 */
import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import type { ReadStream } from 'node:fs';
import { open, rename, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Transform } from 'node:stream';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { Ids } from '../../../core/ports.ts';

export interface StoredBlob {
  sha256: string;
  md5: string;
  sha512: string;
  size: number;
}

/** The data went past the write's byte limit (nothing is kept). */
export class BlobTooLarge extends Error {
  readonly limit: number;
  constructor(limit: number) {
    super(`image data exceeds ${limit} bytes`);
    this.limit = limit;
  }
}

export class BlobStore {
  readonly dir: string;
  private tmp: string;
  private ownsDir: boolean;
  private ids: Ids;

  /** dataDir ':memory:' uses a fresh temp directory, removed by close(). Temp files are named by `ids`. */
  constructor(dataDir: string, ids: Ids) {
    this.ids = ids;
    this.ownsDir = dataDir === ':memory:';
    this.dir = this.ownsDir ? mkdtempSync(join(tmpdir(), 'atoll-images-')) : join(dataDir, 'images');
    this.tmp = join(this.dir, 'tmp');
    // Temp files left by a crash mid-upload are garbage: their images go back to queued at start.
    rmSync(this.tmp, { recursive: true, force: true });
    mkdirSync(this.tmp, { recursive: true });
  }

  path(sha256: string): string {
    if (!/^[0-9a-f]{64}$/.test(sha256)) throw new Error('bad blob name');
    return join(this.dir, sha256);
  }

  /**
   * Streams `source` to disk. `maxBytes` bounds the size; exceeding it fails the write.
   * On any failure the temp file is removed and the error rethrown.
   */
  async write(source: Readable, maxBytes = Number.MAX_SAFE_INTEGER): Promise<StoredBlob> {
    const md5 = createHash('md5');
    const sha256 = createHash('sha256');
    const sha512 = createHash('sha512');
    let size = 0;
    const hasher = new Transform({
      transform(chunk: Buffer, _enc, cb) {
        size += chunk.length;
        if (size > maxBytes) return cb(new BlobTooLarge(maxBytes));
        md5.update(chunk);
        sha256.update(chunk);
        sha512.update(chunk);
        cb(null, chunk);
      },
    });
    const tmpFile = join(this.tmp, this.ids.uuid());
    try {
      await pipeline(source, hasher, createWriteStream(tmpFile, { flags: 'wx' }));
      const blob: StoredBlob = {
        sha256: sha256.digest('hex'),
        md5: md5.digest('hex'),
        sha512: sha512.digest('hex'),
        size,
      };
      await rename(tmpFile, this.path(blob.sha256));
      return blob;
    } catch (e) {
      await rm(tmpFile, { force: true });
      throw e;
    }
  }

  /** The blob's bytes, or those in [start, end) when a range is given. */
  open(sha256: string, range?: { start: number; end: number }): ReadStream {
    return createReadStream(
      this.path(sha256),
      range ? { start: range.start, end: Math.max(range.start, range.end - 1) } : {},
    );
  }

  /** Up to `length` bytes at `offset` (fewer at the end of the blob). */
  async readAt(sha256: string, offset: number, length: number): Promise<Buffer> {
    const fh = await open(this.path(sha256), 'r');
    try {
      const buf = Buffer.allocUnsafe(length);
      let got = 0;
      while (got < length) {
        const { bytesRead } = await fh.read(buf, got, length - got, offset + got);
        if (bytesRead === 0) break;
        got += bytesRead;
      }
      return buf.subarray(0, got);
    } finally {
      await fh.close();
    }
  }

  async exists(sha256: string): Promise<boolean> {
    try {
      await stat(this.path(sha256));
      return true;
    } catch {
      return false;
    }
  }

  async remove(sha256: string): Promise<void> {
    await rm(this.path(sha256), { force: true });
  }

  close(): void {
    if (this.ownsDir) rmSync(this.dir, { recursive: true, force: true });
  }
}
