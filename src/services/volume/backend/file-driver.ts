/**
 * @module The 'file' volume driver: sparse files under <dataDir>/volumes, or a temp dir for an
 * in-memory site. Making, growing and dropping a file are metadata operations and stay synchronous;
 * copying one (snapshot, clone) is off the event loop (./sparse-copy.ts).
 */
import {
  closeSync,
  createReadStream,
  ftruncateSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  rmSync,
  statSync,
} from 'node:fs';
import type { Readable } from 'node:stream';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { VolumeDriver } from '../domain/driver.ts';
import { copySparse } from './sparse-copy.ts';

const GiB = 1024 * 1024 * 1024;

export class FileVolumeDriver implements VolumeDriver {
  readonly name = 'file';
  private dir: string;
  private temp: boolean;
  constructor(dataDir: string) {
    this.temp = dataDir === ':memory:';
    this.dir = this.temp ? mkdtempSync(join(tmpdir(), 'atoll-volumes-')) : join(dataDir, 'volumes');
    mkdirSync(this.dir, { recursive: true });
  }
  private path(kind: 'vol' | 'snap', id: string): string {
    if (!/^[\w-]+$/.test(id)) throw new Error(`bad id ${id}`);
    return join(this.dir, `${kind}-${id}.img`);
  }
  private truncate(path: string, sizeGb: number): void {
    const fd = openSync(path, 'a');
    try {
      ftruncateSync(fd, sizeGb * GiB);
    } finally {
      closeSync(fd);
    }
  }
  create(volumeId: string, sizeGb: number): void {
    this.truncate(this.path('vol', volumeId), sizeGb);
  }
  async createFrom(
    volumeId: string,
    source: { snapshotId?: string; volumeId?: string },
    sizeGb: number,
  ): Promise<void> {
    const src = source.snapshotId ? this.path('snap', source.snapshotId) : this.path('vol', source.volumeId!);
    await copySparse(src, this.path('vol', volumeId));
    this.truncate(this.path('vol', volumeId), sizeGb);
  }
  extend(volumeId: string, sizeGb: number): void {
    this.truncate(this.path('vol', volumeId), sizeGb);
  }
  delete(volumeId: string): void {
    rmSync(this.path('vol', volumeId), { force: true });
  }
  snapshot(snapshotId: string, volumeId: string): Promise<void> {
    return copySparse(this.path('vol', volumeId), this.path('snap', snapshotId));
  }
  deleteSnapshot(snapshotId: string): void {
    rmSync(this.path('snap', snapshotId), { force: true });
  }
  /** The file holding a volume's or a snapshot's bytes (what the backup store reads and restores into). */
  fileOf(what: 'volume' | 'snapshot', id: string): string {
    return this.path(what === 'volume' ? 'vol' : 'snap', id);
  }
  /** Streams the file in 1 MiB chunks (the holes of a sparse file read as zeros). */
  read(volumeId: string): Readable {
    return createReadStream(this.path('vol', volumeId), { highWaterMark: 1 << 20 });
  }
  /** Size on disk of a volume's file (apparent size), for tests. */
  apparentSize(volumeId: string): number {
    return statSync(this.path('vol', volumeId)).size;
  }
  close(): void {
    if (this.temp) rmSync(this.dir, { recursive: true, force: true });
  }
}
