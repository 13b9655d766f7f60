/**
 * @module Routes of routers (https://docs.openstack.org/api-ref/network/v2/#routers-routers) and their
 * actions: add/remove an interface, add/remove extra routes. Actions on a router another site owns are
 * forwarded to it.
 */
import type { FastifyInstance } from 'fastify';
import type { AuthContext } from '../../../core/auth.ts';
import { BadRequest, Forbidden } from '../../../core/errors.ts';
import type { ServiceContext } from '../../common/module.ts';
import { isObj, optBool, optStr, wrapped } from '../../common/input.ts';
import type { Obj } from '../../common/input.ts';
import { forwardIfRemote } from '../../common/owner.ts';
import { writable } from '../domain/access.ts';
import type { StoredRow } from '../domain/deps.ts';
import { parseCidr, requireIp } from '../domain/ip.ts';
import { bodyOf, optStrListOf } from '../domain/records.ts';
import type { ExtraRoute, NewRouter, RouterChanges } from '../domain/routers.ts';
import {
  addInterface,
  createRouter,
  deleteRouter,
  removeInterface,
  updateRouter,
} from '../domain/routers.ts';
import type { NetworkService } from '../service.ts';
import type { Resource } from './resource.ts';
import { V2 } from './resource.ts';
import { renderRouter } from './views.ts';

/** A create body, read in Neutron's order (the gateway is checked by the command, after the quota). */
export function parseNewRouter(o: Obj): NewRouter {
  return {
    name: optStr(o, 'name') ?? '',
    description: optStr(o, 'description') ?? '',
    adminStateUp: optBool(o, 'admin_state_up') ?? true,
    distributed: optBool(o, 'distributed') ?? false,
    ha: optBool(o, 'ha') ?? false,
    availabilityZoneHints: optStrListOf(o, 'availability_zone_hints'),
    // An empty object is no gateway (Neutron's dict_or_nodata); Tempest creates routers so.
    externalGatewayInfo:
      isObj(o.external_gateway_info) && Object.keys(o.external_gateway_info).length
        ? o.external_gateway_info
        : undefined,
  };
}

function parseRoutes(v: unknown): ExtraRoute[] {
  if (!Array.isArray(v)) throw new BadRequest('Invalid input for routes.', 'InvalidInput');
  return v.map((x) => {
    if (!isObj(x) || typeof x.destination !== 'string' || !parseCidr(x.destination, false))
      throw new BadRequest('Invalid input for routes.', 'InvalidInput');
    requireIp(x.nexthop, 'routes.nexthop');
    return { destination: x.destination, nexthop: x.nexthop as string };
  });
}

/**
 * `distributed` and `ha` are an admin's to set and to see, as in Neutron's policy (a project member
 * gets 403 for either in a create or update body, and their routers' bodies leave both out).
 */
const ADMIN_ONLY = ['distributed', 'ha'] as const;
function adminOnlyAttributes(auth: AuthContext, action: 'create' | 'update', o: Obj): void {
  if (auth.isAdmin) return;
  for (const k of ADMIN_ONLY)
    if (o[k] !== undefined) throw new Forbidden(`(rule:${action}_router:${k}) is disallowed by policy`);
}
/** A router as the caller sees it (admin-only attributes left out for others). */
function routerView(auth: AuthContext | undefined, r: StoredRow): Obj {
  const b = renderRouter(r);
  if (!auth?.isAdmin) for (const k of ADMIN_ONLY) delete b[k];
  return b;
}

/** An update body: `external_gateway_info` empty or not an object clears the gateway. */
export function parseRouterChanges(o: Obj): RouterChanges {
  const egi = o.external_gateway_info;
  return {
    name: optStr(o, 'name'),
    description: optStr(o, 'description'),
    adminStateUp: optBool(o, 'admin_state_up'),
    distributed: optBool(o, 'distributed'),
    // null clears the routes (Neutron converts None to an empty list).
    routes: o.routes === undefined ? undefined : o.routes === null ? [] : parseRoutes(o.routes),
    externalGatewayInfo: !('external_gateway_info' in o)
      ? undefined
      : isObj(egi) && Object.keys(egi).length
        ? egi
        : null,
  };
}

export function routerResource(svc: NetworkService): Resource {
  const d = svc.deps;
  return {
    kind: 'router',
    path: 'routers',
    singular: 'router',
    collection: 'routers',
    label: 'router',
    render: (r, auth) => routerView(auth, r),
    create: (auth, project, o) => {
      adminOnlyAttributes(auth, 'create', o);
      return routerView(auth, createRouter(d, auth, project, parseNewRouter(o)));
    },
    update: (auth, r, o) => {
      adminOnlyAttributes(auth, 'update', o);
      return routerView(auth, updateRouter(d, auth, r, parseRouterChanges(o)));
    },
    remove: (_auth, r) => deleteRouter(d, r),
  };
}

export function registerRouterActions(app: FastifyInstance, ctx: ServiceContext, svc: NetworkService): void {
  const d = svc.deps;
  /** A router action: the caller may change the router, and it runs at the router's site. */
  const action = (name: string, run: (auth: AuthContext, r: StoredRow, body: unknown) => unknown) =>
    app.put(`${V2}/routers/:id/${name}`, async (req, reply) => {
      const auth = ctx.authenticate(req);
      const { id } = req.params as { id: string };
      const r = writable(d, auth, 'router', id, 'router');
      return forwardIfRemote(ctx, r.owner, req, reply) ?? run(auth, r, req.body);
    });
  for (const name of ['add_router_interface', 'remove_router_interface'] as const) {
    action(name, (auth, r, body) => {
      if (!isObj(body)) throw new BadRequest('The request body must be a JSON object.');
      return name === 'add_router_interface'
        ? addInterface(d, auth, r, body)
        : removeInterface(d, auth, r, body);
    });
  }
  for (const name of ['add_extraroutes', 'remove_extraroutes'] as const) {
    action(name, (auth, r, body) => {
      const o = wrapped(body, 'router');
      const routes = Array.isArray(o.routes) ? (o.routes as Obj[]) : [];
      const cur = (bodyOf(r).routes as Obj[]) ?? [];
      const same = (a: Obj, b: Obj) => a.destination === b.destination && a.nexthop === b.nexthop;
      const next =
        name === 'add_extraroutes'
          ? [...cur, ...routes.filter((x) => !cur.some((c) => same(c, x)))]
          : cur.filter((c) => !routes.some((x) => same(c, x)));
      return { router: routerView(auth, updateRouter(d, auth, r, parseRouterChanges({ routes: next }))) };
    });
  }
}
