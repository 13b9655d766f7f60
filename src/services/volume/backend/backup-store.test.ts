/**
 * @module The file backup store on real files: a full backup stores only non-zero chunks, an
 * incremental one only the chunks that changed, a restore gives back the exact bytes (zeros included,
 * over whatever the volume held), and a chunk whose bytes no longer match its sha256 fails the restore.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import {
  mkdtempSync,
  openSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
  closeSync,
  writeSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CHUNK, FileBackupStore } from './backup-store.ts';
import { FileVolumeDriver } from './file-driver.ts';

describe('file backup store', () => {
  let dir: string;
  let volumes: FileVolumeDriver;
  let store: FileBackupStore;
  const poke = (id: string, offset: number, text: string) => {
    const fd = openSync(volumes.fileOf('volume', id), 'r+');
    try {
      writeSync(fd, Buffer.from(text), 0, text.length, offset);
    } finally {
      closeSync(fd);
    }
  };
  const peek = (id: string, offset: number, n: number) =>
    readFileSync(volumes.fileOf('volume', id))
      .subarray(offset, offset + n)
      .toString();

  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'atoll-backup-test-'));
    volumes = new FileVolumeDriver(dir);
    store = new FileBackupStore(dir, volumes);
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('backs up non-zero chunks, incrementally the changed ones, and restores the exact bytes', async () => {
    volumes.create('v1', 1);
    poke('v1', 10, 'hello');
    poke('v1', 5 * CHUNK + 3, 'world');
    const full = await store.write('b1', { volumeId: 'v1' });
    assert.equal(full.objects, 3, 'two data chunks and the manifest');
    assert.deepEqual(readdirSync(join(dir, 'backups', 'b1')).sort(), ['0.chunk', '5.chunk', 'manifest.json']);
    poke('v1', 5 * CHUNK + 3, 'WORLD');
    const inc = await store.write('b2', { volumeId: 'v1' }, 'b1');
    assert.equal(inc.objects, 2, 'only the changed chunk and the manifest');
    assert.ok(store.has('b2'));

    volumes.create('v2', 1);
    poke('v2', 100, 'old bytes that the restore must clear');
    await store.restore('b2', 'v2', 1);
    assert.equal(peek('v2', 10, 5), 'hello');
    assert.equal(peek('v2', 5 * CHUNK + 3, 5), 'WORLD');
    assert.equal(peek('v2', 100, 3), '\0\0\0');
    await store.restore('b1', 'v2', 1);
    assert.equal(peek('v2', 5 * CHUNK + 3, 5), 'world');
  });

  it('a chunk that does not match its sha256 fails the restore; a delete drops the folder', async () => {
    volumes.create('v3', 1);
    poke('v3', 0, 'data');
    await store.write('b3', { volumeId: 'v3' });
    writeFileSync(join(dir, 'backups', 'b3', '0.chunk'), 'tampered');
    await assert.rejects(store.restore('b3', 'v3', 1), /sha256/);
    store.delete('b3');
    assert.equal(store.has('b3'), false);
    await assert.rejects(store.write('b4', { volumeId: 'missing' }));
    assert.equal(store.has('b4'), false, 'a failed backup leaves nothing');
  });
});
