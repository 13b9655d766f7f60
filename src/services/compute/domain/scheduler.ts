/**
 * @module The scheduler's filters and weighers (after nova/scheduler/filters and weights): a pure
 * function of the hosts' free resources, so the caller can run it inside the SQLite transaction that
 * also writes the claim. Filters: enabled and up, RAM, vCPU, disk, server-group affinity and
 * anti-affinity. Weigher: most free RAM first (Nova's default spread), then fewest instances.
 */

export interface HostState {
  id: string;
  vcpus: number;
  ramMb: number;
  diskGb: number;
  usedVcpus: number;
  usedRamMb: number;
  usedDiskGb: number;
  runningVms: number;
  up: boolean;
  enabled: boolean;
}

export interface ResourceRequest {
  vcpus: number;
  ramMb: number;
  diskGb: number;
  /** Hosts of the other members of the server's group, with the group's policy. */
  group?: { policy: string; memberHosts: string[] };
  /** Pin to one host (az 'site:host', admin only). */
  forceHost?: string;
  /** Hosts the request may not use (a resize that must move). */
  ignoreHosts?: string[];
}

export type FilterName = 'ComputeFilter' | 'RamFilter' | 'CoreFilter' | 'DiskFilter' | 'ServerGroupFilter';

export interface ScheduleResult {
  host?: HostState;
  /** The filter that removed the last candidates, when no host is left. */
  rejectedBy?: FilterName;
}

export function selectHost(hosts: readonly HostState[], req: ResourceRequest): ScheduleResult {
  let candidates = hosts.filter(
    (h) => (!req.forceHost || h.id === req.forceHost) && !(req.ignoreHosts ?? []).includes(h.id),
  );
  const steps: [FilterName, (h: HostState) => boolean][] = [
    ['ComputeFilter', (h) => h.up && h.enabled],
    ['RamFilter', (h) => h.ramMb - h.usedRamMb >= req.ramMb],
    ['CoreFilter', (h) => h.vcpus - h.usedVcpus >= req.vcpus],
    ['DiskFilter', (h) => h.diskGb - h.usedDiskGb >= req.diskGb],
    ['ServerGroupFilter', groupFilter(req.group)],
  ];
  for (const [name, keep] of steps) {
    candidates = candidates.filter(keep);
    if (candidates.length === 0) return { rejectedBy: name };
  }
  let best = candidates[0]!;
  for (const h of candidates) if (weigh(h, best) > 0) best = h;
  return { host: best };
}

function groupFilter(group: ResourceRequest['group']): (h: HostState) => boolean {
  if (!group) return () => true;
  const hosts = new Set(group.memberHosts);
  if (group.policy === 'affinity' || group.policy === 'soft-affinity')
    return hosts.size === 0 || group.policy === 'soft-affinity' ? () => true : (h) => hosts.has(h.id);
  if (group.policy === 'anti-affinity') return (h) => !hosts.has(h.id);
  return () => true;
}

/** > 0 when a is the better host. */
function weigh(a: HostState, b: HostState): number {
  const freeA = a.ramMb - a.usedRamMb;
  const freeB = b.ramMb - b.usedRamMb;
  if (freeA !== freeB) return freeA - freeB;
  return b.runningVms - a.runningVms;
}
