/**
 * @module A site's cache of image bytes it fetched from their owners (docs/image.md, "Cache"): whole
 * images only, each stored under its sha256 once the stream that filled it verified the whole-image
 * hash (domain/remote-stream.ts delivers its end only then), evicted least recently used first to stay
 * within `limitBytes`. The first download of an image tees the owner's stream into the cache; another
 * download of the same image while that fetch runs waits for it and reads the cached copy, so one fetch
 * serves them all. A cached image is served without the owner, also while the owner is cut off.
 * Off when the limit is 0 (the default).
 */
import { createReadStream, createWriteStream, mkdirSync, readdirSync, rmSync, statSync } from 'node:fs';
import type { ReadStream } from 'node:fs';
import { rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import type { Readable } from 'node:stream';
import type { Ids, Logger } from '../../core/ports.ts';

const BLOB = /^[0-9a-f]{64}$/;

export class ImageCache {
  readonly limitBytes: number;
  private readonly dir: string;
  private readonly tmp: string;
  private readonly ids: Ids;
  private readonly log: Logger;
  /** Cached blobs and their sizes, least recently used first (Map order). */
  private entries = new Map<string, number>();
  private fetching = new Map<string, Promise<boolean>>();
  readonly stats = { hits: 0, fills: 0, shared: 0, evicted: 0 };

  constructor(dir: string, limitBytes: number, ids: Ids, log: Logger) {
    this.dir = dir;
    this.tmp = join(dir, 'tmp');
    this.limitBytes = limitBytes;
    this.ids = ids;
    this.log = log;
    rmSync(this.tmp, { recursive: true, force: true });
    mkdirSync(this.tmp, { recursive: true });
    // After a restart the order is that of the files' modification times (when they were filled).
    const found = readdirSync(dir)
      .filter((f) => BLOB.test(f))
      .map((f) => ({ f, st: statSync(join(dir, f)) }))
      .sort((a, b) => a.st.mtimeMs - b.st.mtimeMs);
    for (const { f, st } of found) this.entries.set(f, st.size);
  }

  get enabled(): boolean {
    return this.limitBytes > 0;
  }

  get usedBytes(): number {
    let n = 0;
    for (const s of this.entries.values()) n += s;
    return n;
  }

  /** The cached copy of `blob` (and marks it used), or undefined. */
  open(blob: string, range?: { start: number; end: number }): ReadStream | undefined {
    const size = this.entries.get(blob);
    if (size === undefined) return undefined;
    this.entries.delete(blob);
    this.entries.set(blob, size);
    this.stats.hits++;
    const path = join(this.dir, blob);
    return createReadStream(
      path,
      range ? { start: range.start, end: Math.max(range.start, range.end - 1) } : {},
    );
  }

  /** Resolves when a fetch of `blob` under way ends (true: it is cached now); undefined if none is. */
  pending(blob: string): Promise<boolean> | undefined {
    const p = this.fetching.get(blob);
    if (p) this.stats.shared++;
    return p;
  }

  /**
   * Tees a verified whole-image stream into the cache; returns what to send the reader. The fill goes
   * on if the reader leaves early (the owner's stream then runs at the disk's pace).
   */
  fill(blob: string, size: number, source: Readable): Readable {
    const out = new PassThrough();
    if (!this.enabled || size > this.limitBytes || !BLOB.test(blob) || this.fetching.has(blob)) {
      source.pipe(out);
      source.on('error', (e) => out.destroy(e));
      return out;
    }
    const tmpFile = join(this.tmp, this.ids.uuid());
    const file = createWriteStream(tmpFile, { flags: 'wx' });
    const done = new Promise<boolean>((resolve) => {
      let failed = false;
      const fail = (e: unknown) => {
        if (failed) return;
        failed = true;
        file.destroy();
        void rm(tmpFile, { force: true });
        this.log.warn({ blob, err: String(e) }, 'image cache fill failed');
        resolve(false);
      };
      source.on('error', (e) => {
        out.destroy(e);
        fail(e);
      });
      file.on('error', fail);
      file.on('finish', () => {
        if (failed) return;
        rename(tmpFile, join(this.dir, blob)).then(() => {
          this.entries.set(blob, size);
          this.stats.fills++;
          this.evict(blob);
          resolve(true);
        }, fail);
      });
    });
    this.fetching.set(blob, done);
    void done.then(() => this.fetching.delete(blob));
    source.pipe(file);
    source.pipe(out);
    // A reader that leaves must not stop the fill: unpipe its branch and keep the source flowing.
    out.on('close', () => source.unpipe(out));
    return out;
  }

  /** Drops the least recently used copies (never `keep`) until the cache fits its limit. */
  private evict(keep: string): void {
    let used = this.usedBytes;
    for (const [blob, size] of this.entries) {
      if (used <= this.limitBytes) break;
      if (blob === keep) continue;
      this.entries.delete(blob);
      rmSync(join(this.dir, blob), { force: true });
      used -= size;
      this.stats.evicted++;
    }
  }
}
