/**
 * @module Tags on network resources (Neutron's standard-attr-tag,
 * https://docs.openstack.org/api-ref/network/v2/#standard-attributes-tag-extension): a resource's
 * `tags` list, kept in its body and written by its owner site like any other attribute (a new
 * revision each change). Lists filter on them (api/listing.ts: tags, tags-any, not-tags, not-tags-any).
 */
import { BadRequest, NotFound } from '../../../core/errors.ts';
import type { ResourceKind } from '../store/schema.ts';
import type { NetworkDeps, StoredRow } from './deps.ts';
import { bodyOf, bump, saveBody } from './records.ts';

/** Neutron's limits: a tag is 1 to 60 characters, a resource has at most 50. */
export const MAX_TAG_LENGTH = 60;
export const MAX_TAGS = 50;

export function tagsOf(r: StoredRow): string[] {
  const t = bodyOf(r).tags;
  return Array.isArray(t) ? (t as string[]) : [];
}

/** 400 unless `tag` is a tag Neutron accepts. */
export function checkTag(tag: unknown): string {
  if (typeof tag !== 'string' || tag.length === 0 || tag.length > MAX_TAG_LENGTH)
    throw new BadRequest(
      `Invalid input for operation: '${String(tag)}' is not a valid tag (1 to ${MAX_TAG_LENGTH} characters).`,
      'InvalidInput',
    );
  return tag;
}

/** The tags of a replace-all body: a list of valid tags, duplicates dropped (setTags counts them). */
export function checkTags(v: unknown): string[] {
  if (!Array.isArray(v))
    throw new BadRequest("Invalid input for operation: 'tags' must be a list.", 'InvalidInput');
  return [...new Set(v.map(checkTag))];
}

/** 404 TagNotFound unless the resource has the tag. */
export function requireTag(r: StoredRow, kind: ResourceKind, tag: string): void {
  if (!tagsOf(r).includes(tag))
    throw new NotFound(`Tag ${tag} could not be found for ${kind} ${r.id}.`, 'TagNotFound');
}

/** Sets the resource's tags (in the order given) and returns them. */
export function setTags(d: NetworkDeps, kind: ResourceKind, r: StoredRow, tags: string[]): string[] {
  if (tags.length > MAX_TAGS)
    throw new BadRequest(
      `Invalid input for operation: at most ${MAX_TAGS} tags per resource.`,
      'InvalidInput',
    );
  d.repo.tx(() => saveBody(d, kind, r, { ...bump(bodyOf(r)), tags }));
  return tags;
}
