/**
 * @module What every group of Block Storage routes is registered with: the server, the site, the
 * volume service, the URL base (`/volume/v3/{project_id}`) and the gate every request passes first
 * (authentication, the URL's project, the microversion). One type, so that the route files
 * (transfers, QoS, group types, services) do not each declare their own.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { AuthContext } from '../../../core/auth.ts';
import type { ServiceContext } from '../../common/module.ts';
import type { Microversion } from '../../common/microversion.ts';
import type { VolumeService } from '../domain/volumes.ts';

/** Authenticates, checks the URL's project (and, for a write, that the token may write) and the microversion. */
export type Enter = (
  req: FastifyRequest,
  reply: FastifyReply,
  write?: boolean,
) => { auth: AuthContext; mv: Microversion; project: string };

export interface VolumeRoutes {
  app: FastifyInstance;
  ctx: ServiceContext;
  svc: VolumeService;
  /** `/volume/v3/:project_id` */
  base: string;
  enter: Enter;
}

/**
 * Listing helpers of routes.ts, for route files with lists of their own: `listOf` filters, sorts and
 * pages (Cinder's query terms, `<collection>_links`, `with_count`); `listedProject` is the project a
 * list shows (the caller's, or an admin's `project_id`), undefined for an admin's `all_tenants`.
 */
export type ListOf = (
  req: FastifyRequest,
  collection: string,
  items: Record<string, unknown>[],
  filterable: Record<string, unknown>[],
  path: string,
) => Record<string, unknown>;
export interface ListingRoutes extends VolumeRoutes {
  listOf: ListOf;
  listedProject: (auth: AuthContext, req: FastifyRequest) => string | undefined;
}
