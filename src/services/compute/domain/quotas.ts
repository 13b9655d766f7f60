/**
 * @module Compute's quota rules (Nova's os-quota-sets defaults, the over-quota 403 and the server
 * metadata limits), written against a reader of quota rows and usage. Usage counts every replica of
 * the project's servers, so a limit holds across sites up to replication lag (docs/compute.md).
 */
import { BadRequest, CloudError } from '../../../core/errors.ts';
import { isObj } from '../../common/input.ts';

export const DEFAULT_QUOTAS: Record<string, number> = {
  instances: 10,
  cores: 20,
  ram: 51200,
  key_pairs: 100,
  metadata_items: 128,
  injected_files: 5,
  injected_file_content_bytes: 10240,
  injected_file_path_bytes: 255,
  server_groups: 10,
  server_group_members: 10,
};

/** What the rules read: a project's quota row (if set) and its usage. */
export interface QuotaReader {
  quota(projectId: string): { limits: string } | undefined;
  usage(projectId: string): { instances: number; cores: number; ram: number };
}

/** The project's limits: its quota row over the defaults. */
export function limitsFor(q: QuotaReader, projectId: string): Record<string, number> {
  const row = q.quota(projectId);
  return { ...DEFAULT_QUOTAS, ...(row ? (JSON.parse(row.limits) as Record<string, number>) : {}) };
}

/** 403 with Nova's message when the request would go over a limit. */
export function checkQuota(
  q: QuotaReader,
  projectId: string,
  want: { instances: number; cores: number; ram: number },
): void {
  const limits = limitsFor(q, projectId);
  const used = q.usage(projectId);
  for (const k of ['instances', 'cores', 'ram'] as const) {
    const limit = limits[k]!;
    if (limit >= 0 && want[k] > 0 && used[k] + want[k] > limit)
      throw new CloudError(
        403,
        `Quota exceeded for ${k}: Requested ${want[k]}, but already used ${used[k]} of ${limit} ${k}`,
      );
  }
}

/**
 * Server metadata as Nova validates it: an object of string values, keys of 1 to 255 characters,
 * values of at most 255 (a 400), and no more items than the project's metadata_items quota (a 403).
 */
export function checkMetadata(q: QuotaReader, projectId: string, md: unknown): Record<string, string> {
  if (!isObj(md)) throw new BadRequest('Invalid input for field/attribute metadata.');
  for (const [k, v] of Object.entries(md)) {
    if (k.length < 1 || k.length > 255)
      throw new BadRequest(`Invalid input for field/attribute metadata. Key length must be 1 to 255.`);
    if (typeof v !== 'string' || v.length > 255)
      throw new BadRequest(`Invalid input for field/attribute metadata. Value of ${safeText(k)} is invalid.`);
  }
  const n = Object.keys(md).length;
  const limit = limitsFor(q, projectId).metadata_items!;
  if (limit >= 0 && n > limit)
    throw new CloudError(
      403,
      `Quota exceeded for metadata_items: Requested ${n}, but already used 0 of ${limit} metadata_items`,
    );
  return md as Record<string, string>;
}

/** A value for an error message that never throws (a body can carry objects with hostile toString). */
export function safeText(v: unknown): string {
  try {
    return typeof v === 'object' && v !== null ? JSON.stringify(v).slice(0, 100) : String(v);
  } catch {
    return typeof v;
  }
}
