/**
 * @module Network quotas (https://docs.openstack.org/api-ref/network/v2/#quotas-extension-quotas):
 * a project's limits over Neutron's defaults, its usage, and the check each create makes inside its
 * transaction. -1 means unlimited.
 */
import { Conflict } from '../../../core/errors.ts';
import type { Obj } from '../../common/input.ts';
import type { ResourceKind } from '../store/schema.ts';
import type { NetworkDeps, QuotaKey } from './deps.ts';

export const DEFAULT_QUOTAS = {
  network: 100,
  subnet: 100,
  port: 500,
  router: 10,
  floatingip: 50,
  security_group: 10,
  security_group_rule: 100,
  rbac_policy: 10,
  subnetpool: -1,
} as const satisfies Record<QuotaKey, number>;

/** The resource kind each counted quota key counts. */
const counted: Partial<Record<QuotaKey, ResourceKind>> = {
  network: 'network',
  subnet: 'subnet',
  port: 'port',
  router: 'router',
  floatingip: 'floating_ip',
  security_group: 'security_group',
  security_group_rule: 'security_group_rule',
};

export function quotas(d: NetworkDeps, projectId: string): Record<QuotaKey, number> {
  return { ...DEFAULT_QUOTAS, ...(d.repo.quotaLimits(projectId) ?? {}) };
}

export function usage(d: NetworkDeps, projectId: string): Record<QuotaKey, number> {
  const count = (k: ResourceKind) => d.repo.countOf(k, projectId);
  return {
    network: count('network'),
    subnet: count('subnet'),
    port: count('port'),
    router: count('router'),
    floatingip: count('floating_ip'),
    security_group: count('security_group'),
    security_group_rule: count('security_group_rule'),
    rbac_policy: 0,
    subnetpool: 0,
  };
}

export function setQuotas(
  d: NetworkDeps,
  projectId: string,
  changes: Partial<Record<QuotaKey, number>>,
): Record<QuotaKey, number> {
  return d.repo.tx(() => {
    const next: Obj = { ...(d.repo.quotaLimits(projectId) ?? {}), ...changes };
    d.repo.saveQuotaLimits(projectId, next);
    return quotas(d, projectId);
  });
}

export function resetQuotas(d: NetworkDeps, projectId: string): void {
  d.repo.tx(() => d.repo.removeQuotaLimits(projectId));
}

/** 409 OverQuota when the project may not have `adding` more of `key`. */
export function checkQuota(d: NetworkDeps, projectId: string, key: QuotaKey, adding = 1): void {
  if (projectId === '') return;
  const limit = quotas(d, projectId)[key];
  if (limit < 0) return;
  const kind = counted[key];
  if (!kind) return;
  const used = d.repo.countOf(kind, projectId);
  if (used + adding > limit) throw new Conflict(`Quota exceeded for resources: ['${key}'].`, 'OverQuota');
}
