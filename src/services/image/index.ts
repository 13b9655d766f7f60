/**
 * @module The image service (Glance v2 compatible) as a site module. It also offers compute the
 * ImageForCompute contract (ImageApi), extended with snapshots (ImageForComputeSnapshots), and the
 * volume service uploads of volumes (ImageForVolumes).
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { NotFound } from '../../core/errors.ts';
import type { ImageForComputeSnapshots, ImageForVolumes } from '../common/internal.ts';
import { ImageApi, TokensApi } from '../common/internal.ts';
import type { ServiceContext, ServiceModule } from '../common/module.ts';
import { GLANCE_CORE_ATTRIBUTES } from './api/attributes.ts';
import { registerMetadefRoutes } from './api/metadefs.ts';
import { registerImageRoutes } from './api/routes.ts';
import { Images } from './domain/images.ts';
import { imageLimits } from './limits.ts';
import { httpWebDownload, webDownloadAllowed } from './import.ts';
import { ImageCache } from './cache.ts';
import { cacheBytes, ownerBytes, serveImageChunks, streamSettings } from './remote-bytes.ts';
import { BlobStore } from './store/blobs.ts';
import { SqlImageRepository } from './store/images.ts';
import { MetadefRepository } from './store/metadefs.ts';
import { imageKinds, imageMigrations } from './store/schema.ts';

export type { ImageForComputeSnapshots } from '../common/internal.ts';

export function imageModule(): ServiceModule {
  let blobs: BlobStore | undefined;
  let stopChunks: (() => void) | undefined;
  return {
    name: 'image',
    migrations: imageMigrations,
    kinds: imageKinds,
    catalog: [{ type: 'image', name: 'glance', path: '/image' }],
    provides: [ImageApi],
    requires: [TokensApi],
    register(app, site: ServiceContext) {
      blobs = new BlobStore(site.config.dataDir, site.ids);
      const images = new Images({
        repo: new SqlImageRepository(site.store, site.changelog),
        blobs,
        clock: site.clock,
        ids: site.ids,
        site: site.name,
        limits: imageLimits(site.config.services.image),
        webDownload: httpWebDownload(webDownloadAllowed(site.config.services.image), site.clock),
        log: site.log,
      });
      images.recoverInterruptedUploads();
      const streaming = streamSettings(site.config.services.image, site.config.forwardTimeoutMs);
      const cache = new ImageCache(
        join(blobs.dir, 'cache'),
        cacheBytes(site.config.services.image),
        site.ids,
        site.log,
      );
      registerImageRoutes(app, site, images, blobs, streaming, cache);
      stopChunks = serveImageChunks(site, images, blobs);
      registerMetadefRoutes(app, site, new MetadefRepository(site.store, site.changelog));
      const internal: ImageForComputeSnapshots & ImageForVolumes = {
        usableImage(auth, imageId) {
          const img = images.get(imageId);
          if (!img || !images.canSee(auth, img)) return undefined;
          return {
            id: img.id,
            name: img.name ?? '',
            status: img.status,
            minDisk: img.min_disk,
            minRam: img.min_ram,
            size: img.size,
          };
        },
        imageFile(imageId) {
          const img = images.get(imageId);
          if (!img || img.status !== 'active' || !img.blob || !blobs) return undefined;
          const path = blobs.path(img.blob);
          return {
            ...(site.owns(img.owner) && existsSync(path) ? { path } : {}),
            sha256: img.blob,
            diskFormat: img.disk_format ?? 'raw',
            properties: JSON.parse(img.properties) as Record<string, unknown>,
          };
        },
        async imageBytes(imageId) {
          const img = images.get(imageId);
          if (!img || img.status !== 'active' || !img.blob || img.size === null || !blobs)
            throw new NotFound(`Image ${imageId} has no data to boot from.`);
          if (site.owns(img.owner)) return blobs.open(img.blob);
          return ownerBytes(site, img, undefined, streaming, cache);
        },
        async snapshot(auth, name, properties, data) {
          const img = await images.createFromBytes(
            auth,
            { name, disk_format: 'raw', container_format: 'bare', visibility: 'private', ...properties },
            data,
          );
          return img.id;
        },
        createQueued(auth, attrs, properties) {
          const img = images.create(auth, { ...attrs, ...userProperties(properties) });
          return {
            id: img.id,
            name: img.name,
            diskFormat: img.disk_format ?? 'raw',
            containerFormat: img.container_format ?? 'bare',
            visibility: img.visibility,
            protected: !!img.protected,
          };
        },
        async fill(auth, imageId, source) {
          await images.upload(auth, images.find(auth, imageId), source, Number.NaN);
        },
        async deleteImage(auth, imageId) {
          await images.delete(auth, images.find(auth, imageId));
        },
        async discard(auth, imageId) {
          const img = images.get(imageId);
          if (img && img.status !== 'active') await images.delete(auth, img);
        },
      };
      site.provide(ImageApi, internal);
    },
    close() {
      stopChunks?.();
      blobs?.close();
    },
  };
}

/** Properties a client may set: Glance's core attributes and its os_glance_* namespace are left out. */
function userProperties(props: Record<string, string>): Record<string, string> {
  return Object.fromEntries(
    Object.entries(props).filter(([k]) => !GLANCE_CORE_ATTRIBUTES.has(k) && !k.startsWith('os_glance')),
  );
}
