import type { ListingRoutes } from './scope.ts';
export function registerBackupRoutes(_r: ListingRoutes): void {}
