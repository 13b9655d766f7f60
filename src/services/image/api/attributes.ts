/**
 * @module Glance's own image attributes: every other key of an image is a free-form property (Nova's
 * image metadata). One list for the Image API and for Compute's deprecated `/images` proxy.
 */
export const GLANCE_CORE_ATTRIBUTES: ReadonlySet<string> = new Set([
  'id',
  'name',
  'status',
  'visibility',
  'protected',
  'os_hidden',
  'owner',
  'disk_format',
  'container_format',
  'size',
  'virtual_size',
  'checksum',
  'os_hash_algo',
  'os_hash_value',
  'min_disk',
  'min_ram',
  'tags',
  'created_at',
  'updated_at',
  'self',
  'file',
  'schema',
  'locations',
  'direct_url',
]);
