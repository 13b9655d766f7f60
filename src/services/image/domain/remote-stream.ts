/**
 * @module The bytes of an image another site holds, as a Node stream: fetched in chunks with a bounded
 * window of requests in flight (flow control; the reader's backpressure stops new requests), each chunk
 * checked against the sha256 its sender computed (a bad one is asked for again), delivered in order.
 * A chunk that fails because the link is cut is asked for again after a pause, so after a heal the
 * transfer resumes where the verified bytes end; it gives up when nothing verified arrived for
 * `resumeWithinMs` (and at the first failure while no byte was delivered yet). For a whole image the stream also hashes everything it delivers and holds back the
 * last chunk until that hash matches the image's os_hash_value (or checksum): a reader never gets the
 * complete image unless it is the one the row describes. Memory: at most `window` chunks plus the
 * stream's own buffer, whatever the image's size. It sees ports only (a chunk source and the clock).
 */
import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import { CloudError } from '../../../core/errors.ts';
import type { Clock } from '../../../core/ports.ts';
import { sleep } from '../../../core/ports.ts';

/** One chunk as the holder sent it: its bytes and the sha256 it computed over them. */
export interface FetchedChunk {
  data: Uint8Array;
  sha256: string;
}

export interface RemoteStreamOptions {
  /** Asks the holder for `length` bytes at `offset`. */
  fetch(offset: number, length: number): Promise<FetchedChunk>;
  /** First byte and end (exclusive) of what to deliver. */
  start: number;
  end: number;
  chunkBytes: number;
  /** Chunks requested and not yet delivered, at most. */
  window: number;
  clock: Clock;
  /** Give up when no chunk verified for this long (the link stayed cut). */
  resumeWithinMs: number;
  /** Pause before asking again after a failure. */
  retryMs: number;
  /** Whether a failure may heal (a cut link, a timeout) rather than be final (404, 409). */
  retryable(e: unknown): boolean;
  /** The whole image's hash, checked when the stream covers the whole image. */
  whole?: { algo: 'sha512' | 'md5'; expected: string };
  /** What the error names when it gives up: the holder site. */
  holder: string;
}

export interface RemoteStreamStats {
  chunks: number;
  bytes: number;
  /** Chunks whose bytes did not match their sha256 (asked for again). */
  corrupt: number;
  /** Requests that failed and were asked for again. */
  retries: number;
}

/** The delivered bytes do not hash to the image's checksum: the stream fails before its last chunk. */
export class ImageChecksumMismatch extends CloudError {
  constructor(message: string) {
    super(503, message);
  }
}

/** How many times one chunk may come back corrupt before the transfer fails. */
const MAX_CORRUPT_PER_CHUNK = 3;

export class RemoteImageStream extends Readable {
  readonly stats: RemoteStreamStats = { chunks: 0, bytes: 0, corrupt: 0, retries: 0 };
  /** Resolves once the first chunk is verified; rejects if the transfer fails before that. */
  readonly started: Promise<void>;
  private readonly o: RemoteStreamOptions;
  private next: number;
  private emitAt: number;
  private inflight = 0;
  private ready = new Map<number, Uint8Array>();
  private paused = false;
  private failed = false;
  private lastProgress: number;
  private hash: ReturnType<typeof createHash> | undefined;
  private resolveStart!: () => void;
  private rejectStart!: (e: unknown) => void;
  private isStarted = false;

  constructor(o: RemoteStreamOptions) {
    super({ highWaterMark: o.chunkBytes });
    if (!(o.chunkBytes > 0) || !(o.window > 0) || o.end < o.start) throw new RangeError('bad stream options');
    this.o = o;
    this.next = o.start;
    this.emitAt = o.start;
    this.lastProgress = o.clock.now();
    if (o.whole) this.hash = createHash(o.whole.algo);
    this.started = new Promise<void>((res, rej) => {
      this.resolveStart = res;
      this.rejectStart = rej;
    });
    this.started.catch(() => undefined);
    if (o.start === o.end) {
      this.markStarted();
      this.push(null);
    }
    this.pump();
  }

  /** Bytes delivered in order and verified so far: where a resumed transfer picks up. */
  get verifiedOffset(): number {
    return this.emitAt;
  }

  override _read(): void {
    this.paused = false;
    this.drain();
    this.pump();
  }

  override _destroy(err: Error | null, cb: (error?: Error | null) => void): void {
    this.failed = true;
    this.ready.clear();
    if (!this.isStarted) this.rejectStart(err ?? new CloudError(503, 'image transfer was cancelled'));
    cb(err);
  }

  private markStarted(): void {
    if (this.isStarted) return;
    this.isStarted = true;
    this.resolveStart();
  }

  private fail(e: unknown): void {
    if (this.failed) return;
    this.destroy(e instanceof Error ? e : new Error(String(e)));
  }

  private pump(): void {
    while (
      !this.failed &&
      !this.paused &&
      this.next < this.o.end &&
      this.inflight + this.ready.size < this.o.window
    ) {
      const offset = this.next;
      const length = Math.min(this.o.chunkBytes, this.o.end - offset);
      this.next += length;
      this.inflight++;
      this.fetchVerified(offset, length).then(
        (data) => {
          this.inflight--;
          if (this.failed) return;
          this.ready.set(offset, data);
          this.drain();
          this.pump();
        },
        (e: unknown) => {
          this.inflight--;
          this.fail(e);
        },
      );
    }
  }

  /** Delivers the chunks that are next in order, while the reader wants more. */
  private drain(): void {
    while (!this.failed && !this.paused) {
      const data = this.ready.get(this.emitAt);
      if (!data) return;
      this.ready.delete(this.emitAt);
      const last = this.emitAt + data.byteLength === this.o.end;
      if (this.hash) {
        this.hash.update(data);
        if (last) {
          const got = this.hash.digest('hex');
          if (got !== this.o.whole!.expected) {
            this.fail(
              new ImageChecksumMismatch(
                `Image data from ${this.o.holder} does not match its ${this.o.whole!.algo} (${got} instead of ${this.o.whole!.expected}); the transfer was stopped before its end.`,
              ),
            );
            return;
          }
        }
      }
      this.emitAt += data.byteLength;
      this.stats.chunks++;
      this.stats.bytes += data.byteLength;
      this.markStarted();
      if (!this.push(data)) this.paused = true;
      if (last) {
        this.push(null);
        return;
      }
    }
  }

  /** One chunk, asked for again until its bytes match their sha256 or the transfer gives up. */
  private async fetchVerified(offset: number, length: number): Promise<Uint8Array> {
    let corrupt = 0;
    for (;;) {
      if (this.failed) return new Uint8Array(0);
      let chunk: FetchedChunk;
      try {
        chunk = await this.o.fetch(offset, length);
      } catch (e) {
        if (this.failed) return new Uint8Array(0);
        // Before the first byte is delivered nothing is lost by failing: the reader gets a clean 503
        // at once (as a write to an unreachable owner does) rather than waiting for a heal.
        const quiet = this.o.clock.now() - this.lastProgress;
        if (!this.isStarted || !this.o.retryable(e) || quiet >= this.o.resumeWithinMs) throw e;
        this.stats.retries++;
        await sleep(this.o.clock, this.o.retryMs);
        continue;
      }
      const ok =
        chunk.data.byteLength === length &&
        createHash('sha256').update(chunk.data).digest('hex') === chunk.sha256;
      if (ok) {
        this.lastProgress = this.o.clock.now();
        return chunk.data;
      }
      this.stats.corrupt++;
      if (++corrupt >= MAX_CORRUPT_PER_CHUNK)
        throw new ImageChecksumMismatch(
          `Image data from ${this.o.holder} at offset ${offset} came back corrupt ${corrupt} times.`,
        );
    }
  }
}
