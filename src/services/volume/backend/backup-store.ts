/**
 * @module The file backup store: a site's backups under <dataDir>/backups (a temp dir for an in-memory
 * site), one folder per backup: the source's bytes in 4 MiB chunks, each chunk file named by its index
 * and listed with its sha256 in manifest.json. All-zero chunks are not stored (a sparse volume backs up
 * into little), and an incremental backup stores only the chunks whose sha256 differs from its
 * parent's, pointing at the parent's for the rest. The manifest is written last, so a backup cut short
 * has none and is removed. A restore checks every chunk's sha256 before it writes it. I/O is async, so
 * the event loop only waits on it.
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { mkdir, open, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { BackupSource, BackupStore } from '../domain/backups.ts';
import type { FileVolumeDriver } from './file-driver.ts';

/** Chunk size: big enough to keep the manifest small, small enough to hash in a few milliseconds. */
export const CHUNK = 4 * 1024 * 1024;
const ZERO = Buffer.alloc(CHUNK);
const GiB = 1024 * 1024 * 1024;

/** One stored chunk: its index in the volume, its sha256 and the backup folder that holds it. */
interface ChunkEntry {
  i: number;
  sha256: string;
  in: string;
}
interface Manifest {
  version: 1;
  size: number;
  chunk: number;
  chunks: ChunkEntry[];
}

export class FileBackupStore implements BackupStore {
  /** Cinder's name for a file-system backup driver, which clients (Tempest) expect as a prefix. */
  readonly service = 'cinder.backup.drivers.posix';
  private readonly dir: string;
  private readonly temp: boolean;
  constructor(
    dataDir: string,
    private readonly volumes: FileVolumeDriver,
  ) {
    this.temp = dataDir === ':memory:';
    this.dir = this.temp ? mkdtempSync(join(tmpdir(), 'atoll-backups-')) : join(dataDir, 'backups');
    mkdirSync(this.dir, { recursive: true });
  }

  private folder(key: string): string {
    if (!/^[\w-]+$/.test(key)) throw new Error(`bad backup key ${key}`);
    return join(this.dir, key);
  }
  private async manifest(key: string): Promise<Manifest> {
    return JSON.parse(await readFile(join(this.folder(key), 'manifest.json'), 'utf8')) as Manifest;
  }

  async write(key: string, source: BackupSource, parent?: string): Promise<{ objects: number }> {
    const file = source.snapshotId
      ? this.volumes.fileOf('snapshot', source.snapshotId)
      : this.volumes.fileOf('volume', source.volumeId!);
    const dst = this.folder(key);
    const base = parent ? new Map((await this.manifest(parent)).chunks.map((c) => [c.i, c])) : undefined;
    await mkdir(dst, { recursive: true });
    try {
      const from = await open(file, 'r');
      const chunks: ChunkEntry[] = [];
      let objects = 0;
      let size = 0;
      try {
        const st = await from.stat();
        size = st.size;
        // A file with no blocks allocated is all holes: nothing to read (an empty sparse volume).
        const empty = st.blocks === 0;
        const buf = Buffer.alloc(CHUNK);
        for (let i = 0; !empty && i * CHUNK < size; i++) {
          const { bytesRead } = await from.read(buf, 0, Math.min(CHUNK, size - i * CHUNK), i * CHUNK);
          const data = buf.subarray(0, bytesRead);
          if (data.equals(ZERO.subarray(0, bytesRead))) continue;
          const sha256 = createHash('sha256').update(data).digest('hex');
          const prior = base?.get(i);
          if (prior?.sha256 === sha256) {
            chunks.push(prior);
            continue;
          }
          await writeFile(join(dst, `${i}.chunk`), data);
          chunks.push({ i, sha256, in: key });
          objects++;
        }
      } finally {
        await from.close();
      }
      const m: Manifest = { version: 1, size, chunk: CHUNK, chunks };
      await writeFile(join(dst, 'manifest.tmp'), JSON.stringify(m));
      await rename(join(dst, 'manifest.tmp'), join(dst, 'manifest.json'));
      return { objects: objects + 1 };
    } catch (e) {
      await rm(dst, { recursive: true, force: true });
      throw e;
    }
  }

  async restore(key: string, volumeId: string, sizeGb: number): Promise<void> {
    const m = await this.manifest(key);
    const to = await open(this.volumes.fileOf('volume', volumeId), 'r+');
    try {
      // Emptied first, so what the backup holds as zeros (not stored) reads as zeros.
      await to.truncate(0);
      await to.truncate(Math.max(sizeGb * GiB, m.size));
      for (const c of m.chunks) {
        const data = await readFile(join(this.folder(c.in), `${c.i}.chunk`));
        if (createHash('sha256').update(data).digest('hex') !== c.sha256)
          throw new Error(`backup ${key}: chunk ${c.i} does not match its sha256`);
        await to.write(data, 0, data.length, c.i * m.chunk);
      }
    } finally {
      await to.close();
    }
  }

  has(key: string): boolean {
    return existsSync(join(this.folder(key), 'manifest.json'));
  }

  delete(key: string): void {
    rmSync(this.folder(key), { recursive: true, force: true });
  }

  close(): void {
    if (this.temp) rmSync(this.dir, { recursive: true, force: true });
  }
}
