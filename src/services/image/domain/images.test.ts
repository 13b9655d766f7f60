/**
 * @module Unit tests of the image lifecycle on its ports alone: an in-memory repository and blob
 * store, a fixed clock and counted ids (no SQLite, no HTTP). Create, upload, the size cap, a failed
 * upload, deactivate, members, tags and delete, with Glance's status codes.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import type { AuthContext } from '../../../core/auth.ts';
import { CloudError } from '../../../core/errors.ts';
import type { StoredBlob } from '../store/blobs.ts';
import { BlobTooLarge } from '../store/blobs.ts';
import type { ImageRepository } from '../store/images.ts';
import type { ImageRow, MemberRow } from '../store/schema.ts';
import type { ImageBlobs } from './images.ts';
import { Images, UploadFailed, UploadTooLarge } from './images.ts';

class MemoryImages implements ImageRepository {
  images = new Map<string, ImageRow>();
  members_ = new Map<string, MemberRow>();
  get(id: string) {
    return this.images.get(id);
  }
  all() {
    return [...this.images.values()];
  }
  sharedWith(project: string, status: string) {
    return new Set(
      [...this.members_.values()]
        .filter((m) => m.member_id === project && m.status === status)
        .map((m) => m.image_id),
    );
  }
  countOf(project: string) {
    return this.all().filter((i) => i.project_id === project).length;
  }
  bytesOf(project: string) {
    return this.all()
      .filter((i) => i.project_id === project)
      .reduce((n, i) => n + (i.size ?? 0), 0);
  }
  saving(site: string) {
    return this.all().filter((i) => i.status === 'saving' && i.owner === site);
  }
  blobInUse(sha: string, site: string) {
    return this.all().some((i) => i.blob === sha && i.owner === site);
  }
  member(imageId: string, memberId: string) {
    return this.members_.get(`${imageId}:${memberId}`);
  }
  members(imageId: string) {
    return [...this.members_.values()].filter((m) => m.image_id === imageId);
  }
  tx<T>(fn: () => T): T {
    return fn();
  }
  save(img: ImageRow) {
    this.images.set(img.id, { ...img });
  }
  remove(imageId: string) {
    for (const m of this.members(imageId)) this.members_.delete(m.id);
    this.images.delete(imageId);
  }
  saveMember(m: MemberRow) {
    this.members_.set(m.id, { ...m });
  }
  removeMember(id: string) {
    this.members_.delete(id);
  }
}

class MemoryBlobs implements ImageBlobs {
  stored = new Set<string>();
  async write(source: Readable, maxBytes = Number.MAX_SAFE_INTEGER): Promise<StoredBlob> {
    const chunks: Buffer[] = [];
    for await (const c of source) chunks.push(Buffer.from(c as Buffer));
    const data = Buffer.concat(chunks);
    if (data.length > maxBytes) throw new BlobTooLarge(maxBytes);
    const sha256 = `${data.toString('hex')}`.padEnd(64, '0').slice(0, 64);
    this.stored.add(sha256);
    return { sha256, md5: 'md5', sha512: 'sha512', size: data.length };
  }
  async remove(sha256: string): Promise<void> {
    this.stored.delete(sha256);
  }
}

const auth = (projectId: string, isAdmin = false): AuthContext =>
  ({ userId: `u-${projectId}`, projectId, isAdmin, roles: ['member', 'reader'] }) as unknown as AuthContext;
const alice = auth('alice');
const bob = auth('bob');
const admin = auth('admin', true);

function setup(
  limits: Partial<{ imageSizeCap: number; imageCountTotal: number; imageSizeTotal: number }> = {},
) {
  const repo = new MemoryImages();
  const blobs = new MemoryBlobs();
  let n = 0;
  const images = new Images({
    repo,
    blobs,
    clock: { now: () => 1_700_000_000_000, setTimeout: () => ({}) as never },
    ids: { uuid: () => `00000000-0000-4000-8000-${String(++n).padStart(12, '0')}` },
    site: 'here',
    limits: {
      imageSizeCap: 1024,
      imageCountTotal: Number.POSITIVE_INFINITY,
      imageSizeTotal: Number.POSITIVE_INFINITY,
      ...limits,
    },
  });
  return { repo, blobs, images };
}

async function status(f: () => unknown): Promise<number> {
  try {
    await f();
  } catch (e) {
    assert.ok(e instanceof CloudError, String(e));
    return e.status;
  }
  return 200;
}

describe('image lifecycle (domain/images.ts on its ports)', () => {
  it('creates a queued image, uploads it active, and deletes it with its bytes', async () => {
    const { images, blobs, repo } = setup();
    const img = images.create(alice, { name: 'cirros', disk_format: 'raw', container_format: 'bare' });
    assert.equal(img.status, 'queued');
    assert.equal(img.owner, 'here');
    assert.equal(img.project_id, 'alice');
    await images.upload(alice, img, Readable.from([Buffer.from('abc')]), 3);
    const up = images.get(img.id)!;
    assert.equal(up.status, 'active');
    assert.equal(up.size, 3);
    assert.ok(up.blob && blobs.stored.has(up.blob));
    assert.equal(await status(() => images.upload(alice, up, Readable.from([]), 0)), 409);
    await images.delete(alice, up);
    assert.equal(repo.get(img.id), undefined);
    assert.equal(blobs.stored.size, 0);
  });

  it('refuses what Glance refuses: read-only attributes, publicize by a member, another project', async () => {
    const { images } = setup();
    assert.equal(await status(() => images.create(alice, { status: 'active' })), 403);
    assert.equal(await status(() => images.create(alice, { visibility: 'public' })), 403);
    assert.equal(images.create(admin, { visibility: 'public' }).visibility, 'public');
    const img = images.create(alice, {});
    assert.equal(await status(() => images.update(bob, img, [])), 403);
    assert.equal(await status(() => images.update(alice, img, {})), 400);
    assert.equal(images.update(alice, img, [{ op: 'replace', path: '/name', value: 'n' }]).name, 'n');
    assert.equal(await status(() => images.upload(alice, img, 'not a stream', 3)), 415);
  });

  it('bounds an upload by the size cap, before reading and while streaming', async () => {
    const { images } = setup({ imageSizeCap: 4 });
    const img = images.create(alice, {});
    await assert.rejects(images.upload(alice, img, Readable.from([Buffer.from('12345')]), 5), UploadTooLarge);
    await assert.rejects(
      images.upload(alice, img, Readable.from([Buffer.from('12345')]), Number.NaN),
      UploadTooLarge,
    );
    assert.equal(images.get(img.id)!.status, 'queued');
  });

  it('puts a failed upload back to queued', async () => {
    const { images } = setup();
    const img = images.create(alice, {});
    const broken = new Readable({
      read() {
        this.destroy(new Error('connection reset'));
      },
    });
    await assert.rejects(images.upload(alice, img, broken, 10), UploadFailed);
    assert.equal(images.get(img.id)!.status, 'queued');
  });

  it('recovers uploads interrupted by a restart', () => {
    const { images, repo } = setup();
    const img = images.create(alice, {});
    repo.save({ ...img, status: 'saving' });
    images.recoverInterruptedUploads();
    assert.equal(images.get(img.id)!.status, 'queued');
  });

  it('deactivates and reactivates only active images', async () => {
    const { images } = setup();
    const img = images.create(alice, {});
    assert.equal(await status(() => images.setActive(alice, img, 'deactivated')), 403);
    await images.upload(alice, img, Readable.from([Buffer.from('x')]), 1);
    images.setActive(alice, images.get(img.id)!, 'deactivated');
    assert.equal(images.get(img.id)!.status, 'deactivated');
    images.setActive(alice, images.get(img.id)!, 'active');
    assert.equal(images.get(img.id)!.status, 'active');
  });

  it('shares through members: pending, accepted, then listed and visible', () => {
    const { images } = setup();
    const img = images.create(alice, { visibility: 'shared' });
    assert.equal(images.canSee(bob, img), false);
    const m = images.addMember(alice, img, 'bob');
    assert.equal(m.status, 'pending');
    assert.equal(images.canSee(bob, img), true);
    assert.deepEqual(images.list(bob, { q: {}, tags: [] }), []);
    images.setMemberStatus(bob, m, 'accepted');
    assert.deepEqual(
      images.list(bob, { q: {}, tags: [] }).map((i) => i.id),
      [img.id],
    );
    assert.throws(() => images.setMemberStatus(alice, m, 'rejected'), { status: 403 });
    assert.throws(() => images.addMember(alice, img, 'bob'), { status: 409 });
    images.removeMember(alice, img, m);
    assert.equal(images.canSee(bob, img), false);
  });

  it('tags, and refuses to delete a protected image', async () => {
    const { images } = setup();
    const img = images.create(alice, { protected: true });
    images.tag(alice, img, 'gold', 'add');
    assert.deepEqual(JSON.parse(images.get(img.id)!.tags), ['gold']);
    assert.throws(() => images.tag(alice, images.get(img.id)!, 'silver', 'del'), { status: 404 });
    assert.equal(await status(() => images.delete(alice, images.get(img.id)!)), 403);
  });

  it('counts images against image_count_total', async () => {
    const { images } = setup({ imageCountTotal: 1 });
    images.create(alice, {});
    assert.equal(await status(() => images.create(alice, {})), 413);
    assert.equal(images.create(bob, {}).project_id, 'bob');
  });
});
