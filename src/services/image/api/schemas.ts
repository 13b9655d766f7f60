/**
 * @module The Image API's JSON-schema documents (`GET /image/v2/schemas/...`), as Glance serves them:
 * one schema per entity (image, member, metadefs/namespace...) and one per list of it (images, members,
 * metadefs/namespaces...), the list wrapping the entity's schema under its plural key. Clients (Horizon,
 * glanceclient) read them to learn which attributes exist; Tempest checks each `name`.
 * https://docs.openstack.org/api-ref/image/v2/#image-schemas
 */
import type { FastifyInstance } from 'fastify';
import type { Obj } from '../../common/input.ts';

const str = { type: 'string' };
const time = { type: 'string', readOnly: true, format: 'date-time' };
const bool = { type: 'boolean' };
const int = { type: ['null', 'integer'], minimum: 0 };
const strList = { type: 'array', items: str };

const imageProps: Obj = {
  id: {
    type: 'string',
    pattern: '^([0-9a-fA-F]){8}-([0-9a-fA-F]){4}-([0-9a-fA-F]){4}-([0-9a-fA-F]){4}-([0-9a-fA-F]){12}$',
  },
  name: { type: ['null', 'string'], maxLength: 255 },
  status: {
    type: 'string',
    readOnly: true,
    enum: [
      'queued',
      'saving',
      'active',
      'killed',
      'deleted',
      'uploading',
      'importing',
      'pending_delete',
      'deactivated',
    ],
  },
  visibility: { type: 'string', enum: ['community', 'public', 'private', 'shared'] },
  protected: bool,
  os_hidden: bool,
  owner: { type: ['null', 'string'], maxLength: 255 },
  checksum: { type: ['null', 'string'], readOnly: true, maxLength: 32 },
  os_hash_algo: { type: ['null', 'string'], readOnly: true, maxLength: 64 },
  os_hash_value: { type: ['null', 'string'], readOnly: true, maxLength: 128 },
  min_ram: int,
  min_disk: int,
  size: { type: ['null', 'integer'], readOnly: true },
  virtual_size: { type: ['null', 'integer'], readOnly: true },
  container_format: {
    type: ['null', 'string'],
    enum: [null, 'ami', 'ari', 'aki', 'bare', 'ovf', 'ova', 'docker', 'compressed'],
  },
  disk_format: {
    type: ['null', 'string'],
    enum: [null, 'ami', 'ari', 'aki', 'vhd', 'vhdx', 'vmdk', 'raw', 'qcow2', 'vdi', 'iso', 'ploop'],
  },
  created_at: time,
  updated_at: time,
  tags: { type: 'array', items: { type: 'string', maxLength: 255 } },
  direct_url: { type: 'string', readOnly: true },
  locations: { type: 'array', items: { type: 'object' } },
  self: { type: 'string', readOnly: true },
  file: { type: 'string', readOnly: true },
  schema: { type: 'string', readOnly: true },
};
const imageLinks = [
  { rel: 'self', href: '{self}' },
  { rel: 'enclosure', href: '{file}' },
  { rel: 'describedby', href: '{schema}' },
];

const memberProps: Obj = {
  member_id: str,
  image_id: str,
  status: { type: 'string', enum: ['pending', 'accepted', 'rejected'] },
  created_at: time,
  updated_at: time,
  schema: { type: 'string', readOnly: true },
};

const namespaceProps: Obj = {
  namespace: { type: 'string', maxLength: 80 },
  display_name: { type: 'string', maxLength: 80 },
  description: { type: 'string', maxLength: 500 },
  visibility: { type: 'string', enum: ['public', 'private'] },
  protected: bool,
  owner: { type: 'string', maxLength: 255 },
  created_at: time,
  updated_at: time,
  schema: { type: 'string', readOnly: true },
  self: { type: 'string', readOnly: true },
  resource_type_associations: { type: 'array', items: { type: 'object' } },
  properties: { type: 'object' },
  objects: { type: 'array', items: { type: 'object' } },
  tags: { type: 'array', items: { type: 'object' } },
};
const propertyProps: Obj = {
  name: { type: 'string', maxLength: 80 },
  title: str,
  description: str,
  operators: strList,
  type: { type: 'string', enum: ['array', 'boolean', 'integer', 'number', 'object', 'string', null] },
  required: strList,
  default: {},
  readonly: bool,
  minimum: { type: 'number' },
  maximum: { type: 'number' },
  minLength: { type: 'integer', minimum: 0 },
  maxLength: { type: 'integer', minimum: 0 },
  pattern: { type: 'string', format: 'regex' },
  enum: { type: 'array' },
  items: { type: 'object' },
  uniqueItems: bool,
  additionalItems: bool,
};
const objectProps: Obj = {
  name: { type: 'string', maxLength: 80 },
  description: str,
  required: strList,
  properties: { type: 'object' },
  created_at: time,
  updated_at: time,
  schema: { type: 'string', readOnly: true },
  self: { type: 'string', readOnly: true },
};
const tagProps: Obj = { name: { type: 'string', maxLength: 255 }, created_at: time, updated_at: time };
const resourceTypeProps: Obj = {
  name: { type: 'string', maxLength: 80 },
  prefix: { type: 'string', maxLength: 80 },
  properties_target: { type: 'string', maxLength: 80 },
  created_at: time,
  updated_at: time,
};

interface EntitySchema {
  /** Path under /schemas/ and the document's `name`. */
  path: string;
  name: string;
  properties: Obj;
  required?: string[];
  additionalProperties?: unknown;
  links?: Obj[];
  /** The list document: its path and name, and the key its items sit under. */
  list: { path: string; name: string; key: string };
}

const ENTITIES: EntitySchema[] = [
  {
    path: 'image',
    name: 'image',
    properties: imageProps,
    additionalProperties: { type: 'string' },
    links: imageLinks,
    list: { path: 'images', name: 'images', key: 'images' },
  },
  {
    path: 'member',
    name: 'member',
    properties: memberProps,
    list: { path: 'members', name: 'members', key: 'members' },
  },
  {
    path: 'metadefs/namespace',
    name: 'namespace',
    properties: namespaceProps,
    required: ['namespace'],
    additionalProperties: false,
    list: { path: 'metadefs/namespaces', name: 'namespaces', key: 'namespaces' },
  },
  {
    path: 'metadefs/object',
    name: 'object',
    properties: objectProps,
    required: ['name'],
    additionalProperties: false,
    list: { path: 'metadefs/objects', name: 'objects', key: 'objects' },
  },
  {
    path: 'metadefs/property',
    name: 'property',
    properties: propertyProps,
    required: ['name', 'title', 'type'],
    additionalProperties: false,
    list: { path: 'metadefs/properties', name: 'properties', key: 'properties' },
  },
  {
    path: 'metadefs/tag',
    name: 'tag',
    properties: tagProps,
    required: ['name'],
    additionalProperties: false,
    list: { path: 'metadefs/tags', name: 'tags', key: 'tags' },
  },
  {
    path: 'metadefs/resource_type',
    name: 'resource_type_association',
    properties: resourceTypeProps,
    required: ['name'],
    additionalProperties: false,
    list: {
      path: 'metadefs/resource_types',
      name: 'resource_type_associations',
      key: 'resource_type_associations',
    },
  },
];

function entityDoc(e: EntitySchema): Obj {
  const doc: Obj = { name: e.name, properties: e.properties };
  if (e.required) doc.required = e.required;
  if (e.additionalProperties !== undefined) doc.additionalProperties = e.additionalProperties;
  if (e.links) doc.links = e.links;
  return doc;
}

function listDoc(e: EntitySchema): Obj {
  return {
    name: e.list.name,
    properties: {
      [e.list.key]: { type: 'array', items: entityDoc(e) },
      first: str,
      next: str,
      schema: str,
    },
    links: [
      { rel: 'first', href: '{first}' },
      { rel: 'next', href: '{next}' },
      { rel: 'describedby', href: '{schema}' },
    ],
  };
}

/** Every schema document, by its path under /schemas/. */
export const SCHEMAS: ReadonlyMap<string, Obj> = new Map(
  ENTITIES.flatMap((e) => [
    [e.path, entityDoc(e)],
    [e.list.path, listDoc(e)],
  ]),
);

export function registerSchemaRoutes(app: FastifyInstance): void {
  for (const [path, doc] of SCHEMAS) app.get(`/image/v2/schemas/${path}`, async () => doc);
}
