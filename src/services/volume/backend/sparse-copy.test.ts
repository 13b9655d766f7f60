/**
 * @module Unit tests of copySparse, both ways (GNU cp and the chunked fallback): the copy has the same
 * bytes and size, holes stay holes, and a failed copy leaves no file behind.
 */
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import {
  closeSync,
  existsSync,
  ftruncateSync,
  mkdtempSync,
  openSync,
  readFileSync,
  rmSync,
  statSync,
  writeSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { copySparse } from './sparse-copy.ts';

const MIB = 1024 * 1024;

describe('copySparse', () => {
  const dir = mkdtempSync(join(tmpdir(), 'atoll-sparse-'));
  after(() => rmSync(dir, { recursive: true, force: true }));

  /** 256 MiB apparent size, data only at a few offsets (one not chunk-aligned, one at the very end). */
  const src = join(dir, 'src.img');
  const fd = openSync(src, 'w');
  ftruncateSync(fd, 256 * MIB);
  const marks = [0, 3 * MIB + 17, 100 * MIB, 256 * MIB - 5];
  for (const at of marks) writeSync(fd, Buffer.from('atoll'), 0, 5, at);
  closeSync(fd);

  for (const method of ['auto', 'chunked'] as const)
    it(`(${method}) copies the bytes and keeps holes as holes`, async () => {
      const dst = join(dir, `dst-${method}.img`);
      await copySparse(src, dst, method);
      assert.equal(statSync(dst).size, 256 * MIB);
      assert.ok(readFileSync(dst).equals(readFileSync(src)), 'same content');
      const allocated = statSync(dst).blocks * 512;
      assert.ok(allocated <= marks.length * 2 * MIB, `${allocated} bytes allocated for 20 bytes of data`);
    });

  for (const method of ['auto', 'chunked'] as const)
    it(`(${method}) fails for a missing source and leaves no destination`, async () => {
      const dst = join(dir, `missing-${method}.img`);
      await assert.rejects(copySparse(join(dir, 'nope.img'), dst, method));
      assert.equal(existsSync(dst), false);
    });
});
