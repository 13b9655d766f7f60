/**
 * @module The block storage service (Cinder v3 compatible) as a site module. The driver comes from
 * config.services.volume.driver: 'file' (default) or 'fake'.
 */
import type { FastifyInstance } from 'fastify';
import { ImageApi, TokensApi, VolumeApi } from '../common/internal.ts';
import type { ServiceContext, ServiceModule } from '../common/module.ts';
import { registerVolumeRoutes } from './api/routes.ts';
import { FileBackupStore } from './backend/backup-store.ts';
import { FileVolumeDriver } from './backend/file-driver.ts';
import type { BackupStore } from './domain/backups.ts';
import { VolumeBackups, fakeBackupStore } from './domain/backups.ts';
import type { VolumeDriver } from './domain/driver.ts';
import { fakeVolumeDriver } from './domain/driver.ts';
import { volumeForCompute } from './internal.ts';
import { VolumeService } from './domain/volumes.ts';
import { BackupRepository } from './store/backups.ts';
import { VolumeRepository } from './store/volumes.ts';
import { volumeKinds, volumeMigrations } from './store/schema.ts';

export function volumeModule(): ServiceModule & { service?: VolumeService } {
  let driver: VolumeDriver | undefined;
  let store: BackupStore | undefined;
  let backups: VolumeBackups | undefined;
  const mod: ServiceModule & { service?: VolumeService } = {
    name: 'volume',
    migrations: volumeMigrations,
    kinds: volumeKinds,
    catalog: [
      { type: 'block-storage', name: 'cinder', path: '/volume/v3/$(project_id)s' },
      { type: 'volumev3', name: 'cinderv3', path: '/volume/v3/$(project_id)s' },
    ],
    provides: [VolumeApi],
    requires: [TokensApi, ImageApi],
    register(app: FastifyInstance, ctx: ServiceContext) {
      const name = String(ctx.config.services.volume?.driver ?? 'file');
      if (name === 'file') {
        const files = new FileVolumeDriver(ctx.config.dataDir);
        driver = files;
        store = new FileBackupStore(ctx.config.dataDir, files);
      } else if (name === 'fake') {
        driver = fakeVolumeDriver;
        store = fakeBackupStore;
      } else throw new Error(`unknown volume driver ${name}: use file or fake`);
      const svc = new VolumeService({
        repo: new VolumeRepository(ctx.store, ctx.changelog),
        driver,
        clock: ctx.clock,
        ids: ctx.ids,
        log: ctx.log,
        site: ctx.name,
        owns: (owner) => ctx.owns(owner),
      });
      mod.service = svc;
      ctx.provide(VolumeApi, volumeForCompute(svc));
      backups = new VolumeBackups({
        volumes: svc,
        repo: new BackupRepository(ctx.store, ctx.changelog),
        store,
        clock: ctx.clock,
        ids: ctx.ids,
        log: ctx.log,
        site: ctx.name,
      });
      registerVolumeRoutes(app, ctx, svc, backups);
    },
    start() {
      mod.service?.failInterruptedCopies();
      backups?.failInterrupted();
    },
    async close() {
      // Uploads to images still streaming settle first (their files are about to go).
      await mod.service?.drain();
      await backups?.idle();
      driver?.close();
      store?.close();
    },
  };
  return mod;
}
