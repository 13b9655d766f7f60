/**
 * @module Image tables. An image belongs to the site that created it (the only site holding its bytes)
 * and its metadata replicates everywhere, so any site can list it and boot from it. Members belong to
 * the image's site too. Blob reference counts stay local: bytes never leave the owner. Metadata
 * definition namespaces belong to the site that created them, with their items.
 */
import type { KindSpec } from '../../../federation/changelog.ts';
import { defineKind } from '../../../federation/changelog.ts';
import { anySite, ownerOf } from '../../../federation/origin.ts';

export const imageMigrations = [
  {
    id: 'image/001-images',
    sql: `
      CREATE TABLE images (
        id TEXT PRIMARY KEY, owner TEXT NOT NULL, project_id TEXT NOT NULL, name TEXT,
        status TEXT NOT NULL, visibility TEXT NOT NULL, protected INTEGER NOT NULL DEFAULT 0,
        os_hidden INTEGER NOT NULL DEFAULT 0, disk_format TEXT, container_format TEXT,
        size INTEGER, virtual_size INTEGER, checksum TEXT, os_hash_algo TEXT, os_hash_value TEXT,
        min_disk INTEGER NOT NULL DEFAULT 0, min_ram INTEGER NOT NULL DEFAULT 0,
        tags TEXT NOT NULL DEFAULT '[]', properties TEXT NOT NULL DEFAULT '{}',
        blob TEXT, created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL
      );
      CREATE INDEX images_project ON images (project_id);
      -- id = image_id + ':' + member_id
      CREATE TABLE image_members (
        id TEXT PRIMARY KEY, owner TEXT NOT NULL, image_id TEXT NOT NULL, member_id TEXT NOT NULL,
        status TEXT NOT NULL, created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL
      );
      CREATE INDEX image_members_image ON image_members (image_id);
      CREATE INDEX image_members_member ON image_members (member_id);
    `,
  },
  {
    // Metadata definitions (Glance metadefs). A namespace's id is a UUID (its name can change); its
    // objects, properties, tags and resource type associations are items of one table, by `type`.
    // Names are not UNIQUE in SQL: a replica must never be refused, so the API checks them.
    id: 'image/002-metadefs',
    sql: `
      CREATE TABLE metadef_namespaces (
        id TEXT PRIMARY KEY, owner TEXT NOT NULL, namespace TEXT NOT NULL, project_id TEXT NOT NULL,
        display_name TEXT, description TEXT, visibility TEXT NOT NULL, protected INTEGER NOT NULL,
        created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL
      );
      CREATE INDEX metadef_namespaces_name ON metadef_namespaces (namespace);
      CREATE TABLE metadef_items (
        id TEXT PRIMARY KEY, owner TEXT NOT NULL, namespace_id TEXT NOT NULL, type TEXT NOT NULL,
        name TEXT NOT NULL, body TEXT NOT NULL, created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL
      );
      CREATE INDEX metadef_items_namespace ON metadef_items (namespace_id, type, name);
    `,
  },
] as const;

export const imageKind = defineKind<ImageRow>({
  kind: 'image',
  table: 'images',
  replicate: 'all',
  origin: anySite,
});
export const imageMemberKind = defineKind<MemberRow>({
  kind: 'image_member',
  table: 'image_members',
  replicate: 'all',
  origin: ownerOf('the owner of its image', 'images', 'image_id'),
});
export const namespaceKind = defineKind<NamespaceRow>({
  kind: 'metadef_namespace',
  table: 'metadef_namespaces',
  replicate: 'all',
  origin: anySite,
});
export const metadefItemKind = defineKind<MetadefItemRow>({
  kind: 'metadef_item',
  table: 'metadef_items',
  replicate: 'all',
  origin: ownerOf('the owner of its namespace', 'metadef_namespaces', 'namespace_id'),
});

export const imageKinds: readonly KindSpec[] = [imageKind, imageMemberKind, namespaceKind, metadefItemKind];

export interface ImageRow {
  id: string;
  owner: string;
  project_id: string;
  name: string | null;
  status: 'queued' | 'saving' | 'uploading' | 'importing' | 'active' | 'killed' | 'deleted' | 'deactivated';
  visibility: 'public' | 'private' | 'shared' | 'community';
  protected: number;
  os_hidden: number;
  disk_format: string | null;
  container_format: string | null;
  size: number | null;
  virtual_size: number | null;
  checksum: string | null;
  os_hash_algo: string | null;
  os_hash_value: string | null;
  min_disk: number;
  min_ram: number;
  tags: string;
  properties: string;
  blob: string | null;
  created_at: number;
  updated_at: number;
}

export interface MemberRow {
  id: string;
  owner: string;
  image_id: string;
  member_id: string;
  status: 'pending' | 'accepted' | 'rejected';
  created_at: number;
  updated_at: number;
}

export interface NamespaceRow {
  id: string;
  owner: string;
  namespace: string;
  project_id: string;
  display_name: string | null;
  description: string | null;
  visibility: 'public' | 'private';
  protected: number;
  created_at: number;
  updated_at: number;
}

/** An object, property, tag or resource type association of a namespace; `body` is its JSON. */
export interface MetadefItemRow {
  id: string;
  owner: string;
  namespace_id: string;
  type: 'object' | 'property' | 'tag' | 'resource_type';
  name: string;
  body: string;
  created_at: number;
  updated_at: number;
}
