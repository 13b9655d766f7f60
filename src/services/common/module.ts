/**
 * @module The contract between a site and its service modules: what a module declares (tables, kinds,
 * catalog entries, the in-process APIs it provides and requires) and the narrow context it sees. The
 * site orders modules by their declarations (orderModules), so no order is written down anywhere else.
 * Nothing here, nor anywhere under services/, imports site/ or cli/.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { AuthContext } from '../../core/auth.ts';
import type { Clock, Ids, Logger } from '../../core/ports.ts';
import type { Fabric } from '../../fabric/fabric.ts';
import type { ChangeLog, KindRef, KindSpec } from '../../federation/changelog.ts';
import type { SiteRegistry } from '../../federation/registry.ts';
import type { Replicator } from '../../federation/replicator.ts';
import type { MessageSigner } from '../../federation/signed.ts';
import type { Migration, Store } from '../../store/db.ts';

/**
 * A typed name for an in-process API one module offers the others (compute asks network for ports).
 * `T` exists only for the type checker: `ctx.use(NetworkApi)` is a NetworkForCompute, no cast.
 */
export interface ApiToken<T> {
  readonly name: string;
  /** Never set; carries T. */
  readonly _type?: (t: T) => T;
}

export function defineApi<T>(name: string): ApiToken<T> {
  return { name };
}

/** The settings a service may read (the site's full configuration stays with the site). */
export interface ServiceConfig {
  /** Directory for the site's database and stores; ':memory:' keeps everything in memory. */
  readonly dataDir: string;
  readonly forwardTimeoutMs: number;
  readonly tokenTtlSeconds: number;
  /** scrypt cost parameter N (2^n) for password hashes. */
  readonly passwordHashCost: number;
  /** Free-form per-service settings (compute hosts, drivers, ...). */
  readonly services: Readonly<Record<string, Record<string, unknown>>>;
}

/** What a service module sees of its site. */
export interface ServiceContext {
  readonly name: string;
  readonly config: ServiceConfig;
  readonly store: Store;
  readonly changelog: ChangeLog;
  readonly registry: SiteRegistry;
  readonly replicator: Replicator;
  /** Signs this site's requests to other sites and checks theirs (federation/signed.ts). */
  readonly signer: MessageSigner;
  readonly fabric: Fabric;
  readonly clock: Clock;
  readonly ids: Ids;
  readonly log: Logger;
  /** The public base URL of this site. */
  publicUrl(): string;
  /** Validates X-Auth-Token (401 when missing or bad); cached per request. */
  authenticate(req: FastifyRequest): AuthContext;
  /** Sends the request to the owner site and relays its answer (503 naming the owner if unreachable). */
  forwardTo(owner: string, req: FastifyRequest, reply: FastifyReply): Promise<FastifyReply>;
  /** True when a resource with this owner is written here. */
  owns(owner: string): boolean;
  /**
   * How fresh this site's replica of `owner`'s resources is: stale when the owner has not been heard
   * from recently (lists then show the last replicated state, marked stale with its age).
   */
  freshness(owner: string): { stale: boolean; ageSeconds: number };
  /** Runs after remote changes of these kinds (handles or names) were applied; fn gets the kind's name. */
  onRemoteChange(kinds: readonly KindRef[], fn: (kind: string, id: string) => void): void;
  /** Offers `impl` under `api`: only for an api the module declares in `provides`, during register. */
  provide<T>(api: ApiToken<T>, impl: T): void;
  /** The implementation of `api`: only for an api the module declares in `requires`. */
  use<T>(api: ApiToken<T>): T;
}

/** An API service: its tables, replicated kinds, routes, catalog entries and in-process APIs. */
export interface ServiceModule {
  name: string;
  migrations: readonly Migration[];
  kinds: readonly KindSpec[];
  /** Catalog entries: service type, name and the path of its endpoint on this site's server. */
  catalog: readonly { type: string; name: string; path: string }[];
  /** APIs this module provides (with ctx.provide in register): it registers before their users. */
  provides?: readonly ApiToken<any>[];
  /** APIs this module uses (ctx.use): their providers register first. */
  requires?: readonly ApiToken<any>[];
  register(app: FastifyInstance, ctx: ServiceContext): void | Promise<void>;
  /** Runs after every module registered and replication started. */
  start?(ctx: ServiceContext): void | Promise<void>;
  /** Runs once the HTTP port is bound (publicUrl() is final). */
  listening?(ctx: ServiceContext): void | Promise<void>;
  close?(): void | Promise<void>;
}

/**
 * The modules in an order where every provider comes before the modules requiring its APIs; modules
 * with no such constraint keep the order they were given in. Throws naming the module and api when
 * nothing provides a required api, when two modules provide the same one, and on a cycle.
 */
export function orderModules<M extends ServiceModule>(modules: readonly M[]): M[] {
  const providerOf = new Map<string, M>();
  for (const m of modules)
    for (const api of m.provides ?? []) {
      const other = providerOf.get(api.name);
      if (other) throw new Error(`modules ${other.name} and ${m.name} both provide the ${api.name} api`);
      providerOf.set(api.name, m);
    }
  const needs = new Map<M, M[]>();
  for (const m of modules)
    needs.set(
      m,
      (m.requires ?? []).map((api) => {
        const p = providerOf.get(api.name);
        if (!p) throw new Error(`module ${m.name} requires the ${api.name} api, which no module provides`);
        return p;
      }),
    );
  const ordered: M[] = [];
  const state = new Map<M, 'visiting' | 'done'>();
  const visit = (m: M, path: M[]) => {
    const s = state.get(m);
    if (s === 'done') return;
    if (s === 'visiting') {
      const cycle = [...path.slice(path.indexOf(m)), m].map((x) => x.name).join(' -> ');
      throw new Error(`service modules require each other in a cycle: ${cycle}`);
    }
    state.set(m, 'visiting');
    for (const p of needs.get(m)!) if (p !== m) visit(p, [...path, m]);
    state.set(m, 'done');
    ordered.push(m);
  };
  for (const m of modules) visit(m, []);
  return ordered;
}
