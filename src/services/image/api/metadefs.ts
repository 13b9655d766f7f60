/**
 * @module Metadata definitions (Glance metadefs) under /image/v2/metadefs: namespaces with their
 * objects, properties, tags and resource type associations, and the fixed list of resource types.
 * They are the catalog Horizon and the CLI read to offer well-known image, volume and flavor
 * properties. https://docs.openstack.org/api-ref/image/v2/metadefs-index.html
 * Glance's default policy: a cloud admin writes them; anyone reads public namespaces, the owning
 * project its private ones. A namespace belongs to the site that created it, and so do its items:
 * writes made elsewhere are forwarded there.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { AuthContext } from '../../../core/auth.ts';
import { requireAdmin } from '../../../core/auth.ts';
import { BadRequest, Conflict, Forbidden, NotFound } from '../../../core/errors.ts';
import type { ServiceContext } from '../../common/module.ts';
import { isObj, novaTime, onlyKeys, optBool, optStr, optStrList, reqStr } from '../../common/input.ts';
import type { Obj } from '../../common/input.ts';
import type { MetadefRepository } from '../store/metadefs.ts';
import type { MetadefItemRow, NamespaceRow } from '../store/schema.ts';
import { forwardIfRemote } from '../../common/owner.ts';

/** Glance writes times as Nova does: 2026-11-24T12:00:00Z. */
const glanceTime = novaTime;
const BASE = '/image/v2/metadefs';

/** The resource types Glance ships definitions for (its etc/metadefs); associations must name one. */
export const RESOURCE_TYPES = [
  'OS::Glance::Image',
  'OS::Glance::Snapshot',
  'OS::Cinder::Volume',
  'OS::Cinder::Snapshot',
  'OS::Nova::Flavor',
  'OS::Nova::Aggregate',
  'OS::Nova::Server',
] as const;
/** When the fixed resource types were "created" (Glance reports the load time; this is stable). */
const RESOURCE_TYPES_SINCE = Date.UTC(2026, 0, 1);

type ItemType = MetadefItemRow['type'];

/** How one kind of namespace item is read from a request and shown. */
interface ItemKind {
  type: ItemType;
  /** The URL segment: /namespaces/{ns}/{segment}. */
  segment: string;
  /** The body's fields for a create or update, validated; `name` among them. */
  parse(body: Obj): Obj;
  /** The list answer, given the item views. */
  list(views: Obj[]): Obj;
  self?: (ns: string, name: string) => string;
}

const PROPERTY_TYPES = ['array', 'boolean', 'integer', 'number', 'object', 'string'];
const PROPERTY_KEYS = [
  'name',
  'title',
  'description',
  'operators',
  'type',
  'required',
  'default',
  'readonly',
  'minimum',
  'maximum',
  'minLength',
  'maxLength',
  'pattern',
  'enum',
  'items',
  'uniqueItems',
  'additionalItems',
];

function parseProperty(body: Obj): Obj {
  onlyKeys(body, PROPERTY_KEYS, 'a property');
  reqStr(body, 'name', { max: 80 });
  reqStr(body, 'title');
  if (!PROPERTY_TYPES.includes(body.type as string))
    throw new BadRequest(`"type" must be one of ${PROPERTY_TYPES.join(', ')}.`);
  optStr(body, 'description', { max: 1000 });
  if (body.enum !== undefined && !Array.isArray(body.enum)) throw new BadRequest('"enum" must be a list.');
  return { ...body };
}

function parseObject(body: Obj): Obj {
  onlyKeys(
    body,
    ['name', 'description', 'required', 'properties', 'schema', 'self', 'created_at', 'updated_at'],
    'an object',
  );
  const out: Obj = { name: reqStr(body, 'name', { max: 80 }) };
  const description = optStr(body, 'description', { max: 1000 });
  if (description !== undefined) out.description = description;
  out.required = optStrList(body, 'required') ?? [];
  if (body.properties !== undefined && !isObj(body.properties))
    throw new BadRequest('"properties" must be an object.');
  out.properties = body.properties ?? {};
  for (const [name, p] of Object.entries(out.properties as Obj)) {
    if (!isObj(p)) throw new BadRequest(`Property ${name} must be an object.`);
    parseProperty({ ...p, name });
  }
  return out;
}

function parseTag(body: Obj): Obj {
  onlyKeys(body, ['name', 'created_at', 'updated_at'], 'a tag');
  return { name: reqStr(body, 'name', { max: 255 }) };
}

function parseResourceType(body: Obj): Obj {
  onlyKeys(
    body,
    ['name', 'prefix', 'properties_target', 'created_at', 'updated_at'],
    'a resource type association',
  );
  const name = reqStr(body, 'name', { max: 80 });
  if (!(RESOURCE_TYPES as readonly string[]).includes(name))
    throw new NotFound(`Resource type ${name} not found.`);
  const out: Obj = { name };
  for (const k of ['prefix', 'properties_target']) {
    const v = optStr(body, k, { max: 80 });
    if (v !== undefined) out[k] = v;
  }
  return out;
}

const ITEM_KINDS: ItemKind[] = [
  {
    type: 'object',
    segment: 'objects',
    parse: parseObject,
    list: (views) => ({ objects: views, schema: '/v2/schemas/metadefs/objects' }),
    self: (ns, name) => `/v2/metadefs/namespaces/${ns}/objects/${name}`,
  },
  {
    type: 'property',
    segment: 'properties',
    parse: parseProperty,
    // Glance lists properties as an object keyed by name.
    list: (views) => ({ properties: Object.fromEntries(views.map((v) => [v.name, withoutName(v)])) }),
  },
  { type: 'tag', segment: 'tags', parse: parseTag, list: (views) => ({ tags: views }) },
  {
    type: 'resource_type',
    segment: 'resource_types',
    parse: parseResourceType,
    list: (views) => ({ resource_type_associations: views }),
  },
];
const kindOf = (type: ItemType) => ITEM_KINDS.find((k) => k.type === type)!;

function withoutName(v: Obj): Obj {
  const { name: _name, ...rest } = v;
  return rest;
}

const NAMESPACE_KEYS = [
  'namespace',
  'display_name',
  'description',
  'visibility',
  'protected',
  'owner',
  'resource_type_associations',
  'properties',
  'objects',
  'tags',
  'schema',
  'self',
  'created_at',
  'updated_at',
];

type Params = { ns: string; name?: string };

export function registerMetadefRoutes(
  app: FastifyInstance,
  site: ServiceContext,
  repo: MetadefRepository,
): void {
  const byName = (name: string) => repo.byName(name);
  const items = (nsId: string, type?: ItemType) => repo.items(nsId, type);
  const item = (nsId: string, type: ItemType, name: string) => repo.item(nsId, type, name);

  const canSee = (auth: AuthContext, ns: NamespaceRow) =>
    auth.isAdmin || ns.visibility === 'public' || ns.project_id === auth.projectId;
  /** The namespace if this token may see it; 404 otherwise (Glance hides what you may not see). */
  const find = (auth: AuthContext, name: string): NamespaceRow => {
    const ns = byName(name);
    if (!ns || !canSee(auth, ns)) throw new NotFound(`Metadata definition namespace=${name} was not found.`);
    return ns;
  };
  /**
   * A write on namespace `name`: admin only, done at the namespace's site. Undefined when the request
   * was forwarded there (the reply is sent).
   */
  const toWrite = async (req: FastifyRequest, reply: FastifyReply, name: string) => {
    const auth = site.authenticate(req);
    requireAdmin(auth);
    const ns = find(auth, name);
    const fwd = forwardIfRemote(site, ns.owner, req, reply);
    if (!fwd) return { auth, ns };
    await fwd;
    return undefined;
  };

  const itemView = (ns: NamespaceRow, row: MetadefItemRow): Obj => {
    const body = JSON.parse(row.body) as Obj;
    if (row.type === 'property') return body;
    const view: Obj = {
      ...body,
      created_at: glanceTime(row.created_at),
      updated_at: glanceTime(row.updated_at),
    };
    const self = kindOf(row.type).self;
    if (self)
      Object.assign(view, { schema: '/v2/schemas/metadefs/object', self: self(ns.namespace, row.name) });
    return view;
  };
  const namespaceView = (ns: NamespaceRow, withItems: boolean): Obj => {
    const view: Obj = {
      namespace: ns.namespace,
      visibility: ns.visibility,
      protected: !!ns.protected,
      owner: ns.project_id,
      created_at: glanceTime(ns.created_at),
      updated_at: glanceTime(ns.updated_at),
      schema: '/v2/schemas/metadefs/namespace',
      self: `/v2/metadefs/namespaces/${ns.namespace}`,
    };
    if (ns.display_name !== null) view.display_name = ns.display_name;
    if (ns.description !== null) view.description = ns.description;
    const assoc = items(ns.id, 'resource_type').map((r) => itemView(ns, r));
    if (assoc.length) view.resource_type_associations = assoc;
    if (!withItems) return view;
    for (const kind of ITEM_KINDS.filter((k) => k.type !== 'resource_type')) {
      const views = items(ns.id, kind.type).map((r) => itemView(ns, r));
      if (views.length) Object.assign(view, withoutSchema(kind.list(views)));
    }
    return view;
  };

  const newItem = (ns: NamespaceRow, type: ItemType, body: Obj): MetadefItemRow => {
    const now = site.clock.now();
    return {
      id: site.ids.uuid(),
      owner: site.name,
      namespace_id: ns.id,
      type,
      name: body.name as string,
      body: JSON.stringify(body),
      created_at: now,
      updated_at: now,
    };
  };
  const putItem = (row: MetadefItemRow) => repo.putItem(row);
  const duplicate = (ns: NamespaceRow, type: ItemType, name: string, except?: string) => {
    const other = item(ns.id, type, name);
    if (other && other.id !== except)
      throw new Conflict(
        `A metadata definition ${type} with name=${name} already exists in namespace=${ns.namespace}.`,
      );
  };

  /** A namespace's fields from a create or update body (`base` holds the current values). */
  const parseNamespace = (auth: AuthContext, body: unknown, base: NamespaceRow): NamespaceRow => {
    if (!isObj(body)) throw new BadRequest('The request body must be a JSON object.');
    onlyKeys(body, NAMESPACE_KEYS, 'a namespace');
    const next: NamespaceRow = { ...base, namespace: reqStr(body, 'namespace', { max: 80 }) };
    for (const k of ['display_name', 'description'] as const)
      if (k in body) next[k] = optStr(body, k, { max: k === 'description' ? 500 : 80 }) ?? null;
    if (body.visibility !== undefined) {
      if (body.visibility !== 'public' && body.visibility !== 'private')
        throw new BadRequest('"visibility" must be public or private.');
      next.visibility = body.visibility;
    }
    const prot = optBool(body, 'protected');
    if (prot !== undefined) next.protected = prot ? 1 : 0;
    const owner = optStr(body, 'owner');
    if (owner !== undefined && owner !== next.project_id) {
      if (!auth.isAdmin) throw new Forbidden('Only an administrator may set a namespace owner.');
      next.project_id = owner;
    }
    const other = byName(next.namespace);
    if (other && other.id !== base.id)
      throw new Conflict(`A metadata definition namespace with name=${next.namespace} already exists.`);
    return next;
  };

  /** `?resource_types=A,B` (Horizon's filter): namespaces associated with any of them. */
  const associatedWith = (raw: unknown) => {
    if (typeof raw !== 'string' || raw === '') return () => true;
    const want = new Set(raw.split(','));
    return (ns: NamespaceRow) => items(ns.id, 'resource_type').some((r) => want.has(r.name));
  };

  // ---- resource types -----------------------------------------------------------------------------
  app.get(`${BASE}/resource_types`, async (req) => {
    site.authenticate(req);
    const at = glanceTime(RESOURCE_TYPES_SINCE);
    return { resource_types: RESOURCE_TYPES.map((name) => ({ name, created_at: at, updated_at: at })) };
  });

  // ---- namespaces ---------------------------------------------------------------------------------
  app.get(`${BASE}/namespaces`, async (req) => {
    const auth = site.authenticate(req);
    const q = req.query as Obj;
    const rows = repo
      .namespaces()
      .filter((ns) => canSee(auth, ns))
      .filter((ns) => q.visibility === undefined || ns.visibility === q.visibility)
      .filter(associatedWith(q.resource_types));
    return {
      namespaces: rows.map((ns) => namespaceView(ns, false)),
      first: '/v2/metadefs/namespaces',
      schema: '/v2/schemas/metadefs/namespaces',
    };
  });

  app.post(`${BASE}/namespaces`, async (req, reply) => {
    const auth = site.authenticate(req);
    requireAdmin(auth);
    const now = site.clock.now();
    const blank: NamespaceRow = {
      id: site.ids.uuid(),
      owner: site.name,
      namespace: '',
      project_id: auth.projectId ?? '',
      display_name: null,
      description: null,
      visibility: 'private',
      protected: 0,
      created_at: now,
      updated_at: now,
    };
    const ns = parseNamespace(auth, req.body, blank);
    const body = req.body as Obj;
    const children: MetadefItemRow[] = [];
    const add = (type: ItemType, raw: unknown) => {
      if (!isObj(raw)) throw new BadRequest(`Each ${kindOf(type).segment} entry must be an object.`);
      const parsed = kindOf(type).parse(raw);
      if (children.some((c) => c.type === type && c.name === parsed.name))
        throw new Conflict(`Duplicate ${type} ${String(parsed.name)} in namespace ${ns.namespace}.`);
      children.push(newItem(ns, type, parsed));
    };
    for (const [key, type] of [
      ['resource_type_associations', 'resource_type'],
      ['objects', 'object'],
      ['tags', 'tag'],
    ] as const) {
      const list = body[key];
      if (list === undefined) continue;
      if (!Array.isArray(list)) throw new BadRequest(`"${key}" must be a list.`);
      for (const raw of list) add(type, raw);
    }
    if (body.properties !== undefined) {
      if (!isObj(body.properties)) throw new BadRequest('"properties" must be an object.');
      for (const [name, p] of Object.entries(body.properties)) add('property', isObj(p) ? { ...p, name } : p);
    }
    repo.tx(() => {
      repo.putNamespace(ns);
      for (const c of children) putItem(c);
    });
    reply.code(201);
    return namespaceView(ns, true);
  });

  app.get<{ Params: Params }>(`${BASE}/namespaces/:ns`, async (req) => {
    const auth = site.authenticate(req);
    return namespaceView(find(auth, req.params.ns), true);
  });

  app.put<{ Params: Params }>(`${BASE}/namespaces/:ns`, async (req, reply) => {
    const w = await toWrite(req, reply, req.params.ns);
    if (!w) return reply;
    const next = parseNamespace(w.auth, req.body, w.ns);
    next.updated_at = site.clock.now();
    repo.putNamespace(next);
    return namespaceView(next, true);
  });

  app.delete<{ Params: Params }>(`${BASE}/namespaces/:ns`, async (req, reply) => {
    const w = await toWrite(req, reply, req.params.ns);
    if (!w) return reply;
    if (w.ns.protected)
      throw new Forbidden(`Namespace ${w.ns.namespace} is protected and cannot be deleted.`);
    repo.removeNamespace(w.ns);
    return reply.code(204).send();
  });

  for (const kind of ITEM_KINDS) registerItemRoutes(kind);

  /** List, create, show, update and delete for one kind of namespace item. */
  function registerItemRoutes(kind: ItemKind): void {
    const coll = `${BASE}/namespaces/:ns/${kind.segment}`;
    const one = (ns: NamespaceRow, name: string) => {
      const row = item(ns.id, kind.type, name);
      if (!row)
        throw new NotFound(
          `Metadata definition ${kind.type}=${name} not found in namespace=${ns.namespace}.`,
        );
      return row;
    };

    app.get<{ Params: Params }>(coll, async (req) => {
      const auth = site.authenticate(req);
      const ns = find(auth, req.params.ns);
      return kind.list(items(ns.id, kind.type).map((r) => itemView(ns, r)));
    });

    app.post<{ Params: Params }>(coll, async (req, reply) => {
      const w = await toWrite(req, reply, req.params.ns);
      if (!w) return reply;
      if (kind.type === 'tag') return createTags(w.ns, req, reply);
      if (!isObj(req.body)) throw new BadRequest('The request body must be a JSON object.');
      const parsed = kind.parse(req.body);
      duplicate(w.ns, kind.type, parsed.name as string);
      const row = newItem(w.ns, kind.type, parsed);
      putItem(row);
      reply.code(201);
      return itemView(w.ns, row);
    });

    app.delete<{ Params: Params }>(coll, async (req, reply) => {
      const w = await toWrite(req, reply, req.params.ns);
      if (!w) return reply;
      if (w.ns.protected)
        throw new Forbidden(
          `Namespace ${w.ns.namespace} is protected: its ${kind.segment} cannot be deleted.`,
        );
      repo.tx(() => {
        for (const r of items(w.ns.id, kind.type)) repo.removeItem(r.id);
      });
      return reply.code(204).send();
    });

    app.get<{ Params: Params }>(`${coll}/:name`, async (req) => {
      const auth = site.authenticate(req);
      const ns = find(auth, req.params.ns);
      return itemView(ns, one(ns, req.params.name!));
    });

    // Tags are created one by one with an empty POST to their own URL.
    if (kind.type === 'tag')
      app.post<{ Params: Params }>(`${coll}/:name`, async (req, reply) => {
        const w = await toWrite(req, reply, req.params.ns);
        if (!w) return reply;
        const parsed = parseTag({ name: req.params.name });
        duplicate(w.ns, 'tag', parsed.name as string);
        const row = newItem(w.ns, 'tag', parsed);
        putItem(row);
        reply.code(201);
        return itemView(w.ns, row);
      });

    if (kind.type !== 'resource_type')
      app.put<{ Params: Params }>(`${coll}/:name`, async (req, reply) => {
        const w = await toWrite(req, reply, req.params.ns);
        if (!w) return reply;
        const cur = one(w.ns, req.params.name!);
        if (!isObj(req.body)) throw new BadRequest('The request body must be a JSON object.');
        const parsed = kind.parse(req.body);
        duplicate(w.ns, kind.type, parsed.name as string, cur.id);
        const row: MetadefItemRow = {
          ...cur,
          name: parsed.name as string,
          body: JSON.stringify(parsed),
          updated_at: site.clock.now(),
        };
        putItem(row);
        return itemView(w.ns, row);
      });

    app.delete<{ Params: Params }>(`${coll}/:name`, async (req, reply) => {
      const w = await toWrite(req, reply, req.params.ns);
      if (!w) return reply;
      const row = one(w.ns, req.params.name!);
      repo.removeItem(row.id);
      return reply.code(204).send();
    });
  }

  /**
   * POST /namespaces/{ns}/tags: `{"tags": [{"name": ...}]}` replaces the namespace's tags, or adds to
   * them with `X-Openstack-Append: true` (Glance 2.10+).
   */
  function createTags(ns: NamespaceRow, req: FastifyRequest, reply: FastifyReply): Obj {
    const body = req.body;
    if (!isObj(body) || !Array.isArray(body.tags)) throw new BadRequest('"tags" must be a list.');
    const names = body.tags.map((t) => parseTag(isObj(t) ? t : { name: t }).name as string);
    if (new Set(names).size !== names.length) throw new Conflict('Duplicate tag names in the request.');
    const append = String(req.headers['x-openstack-append'] ?? '').toLowerCase() === 'true';
    const existing = items(ns.id, 'tag');
    if (append) for (const n of names) duplicate(ns, 'tag', n);
    const rows = names.map((name) => newItem(ns, 'tag', { name }));
    repo.tx(() => {
      if (!append) for (const r of existing) repo.removeItem(r.id);
      for (const r of rows) putItem(r);
    });
    reply.code(201);
    return { tags: rows.map((r) => itemView(ns, r)) };
  }
}

function withoutSchema(list: Obj): Obj {
  const { schema: _schema, ...rest } = list;
  return rest;
}
