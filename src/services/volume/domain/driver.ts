/**
 * @module Where volume bytes live, as the volume service sees it: the driver port. The API keeps the
 * bookkeeping; a driver makes, grows, copies and drops the backing store. Two drivers: 'file'
 * (../backend/file-driver.ts: sparse files on disk) and 'fake' (here: nothing on disk, for scale
 * tests), chosen by config.services.volume.driver. Making, growing and dropping are synchronous (inside
 * the caller's transaction); copying (snapshot, clone) is async, so callers write the row as
 * 'creating' first and finish it after. Reading a volume's bytes (an upload to an image) is a stream.
 */
import { Readable } from 'node:stream';

export interface VolumeDriver {
  readonly name: string;
  create(volumeId: string, sizeGb: number): void;
  /** A new volume with the content of a snapshot (or another volume), grown to sizeGb; off the event loop. */
  createFrom(
    volumeId: string,
    source: { snapshotId?: string; volumeId?: string },
    sizeGb: number,
  ): Promise<void>;
  extend(volumeId: string, sizeGb: number): void;
  delete(volumeId: string): void;
  /** A snapshot file with the volume's content; off the event loop. */
  snapshot(snapshotId: string, volumeId: string): Promise<void>;
  deleteSnapshot(snapshotId: string): void;
  /** The volume's bytes, streamed from the start (an upload to an image). */
  read(volumeId: string): Readable;
  close(): void;
}

export const fakeVolumeDriver: VolumeDriver = {
  name: 'fake',
  create() {},
  createFrom: () => Promise.resolve(),
  extend() {},
  delete() {},
  snapshot: () => Promise.resolve(),
  deleteSnapshot() {},
  // The fake driver keeps no bytes: an image uploaded from one of its volumes is empty.
  read: () => Readable.from([]),
  close() {},
};
