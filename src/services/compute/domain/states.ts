/**
 * @module Nova's server states: vm_state, task_state and power_state, and the API status derived from
 * them (nova/compute/vm_states.py, task_states.py, power_state.py, nova/api/openstack/common.py).
 */

export const VmState = {
  Active: 'active',
  Building: 'building',
  Paused: 'paused',
  Suspended: 'suspended',
  Stopped: 'stopped',
  Resized: 'resized',
  Error: 'error',
  Deleted: 'deleted',
  Shelved: 'shelved',
  ShelvedOffloaded: 'shelved_offloaded',
} as const;

export const PowerState = {
  NoState: 0,
  Running: 1,
  Paused: 3,
  Shutdown: 4,
  Crashed: 6,
  Suspended: 7,
} as const;

const STATUS: Record<string, Record<string, string>> = {
  active: {
    default: 'ACTIVE',
    rebooting: 'REBOOT',
    reboot_pending: 'REBOOT',
    reboot_started: 'REBOOT',
    rebooting_hard: 'HARD_REBOOT',
    reboot_pending_hard: 'HARD_REBOOT',
    reboot_started_hard: 'HARD_REBOOT',
    rebuilding: 'REBUILD',
    rebuild_spawning: 'REBUILD',
    resize_prep: 'RESIZE',
    resize_migrating: 'RESIZE',
    resize_migrated: 'RESIZE',
    resize_finish: 'RESIZE',
    rescuing: 'RESCUE',
  },
  building: { default: 'BUILD' },
  stopped: {
    default: 'SHUTOFF',
    resize_prep: 'RESIZE',
    resize_migrating: 'RESIZE',
    resize_migrated: 'RESIZE',
    resize_finish: 'RESIZE',
    rebuilding: 'REBUILD',
  },
  resized: { default: 'VERIFY_RESIZE', resize_reverting: 'REVERT_RESIZE' },
  paused: { default: 'PAUSED', rebooting_hard: 'HARD_REBOOT' },
  suspended: { default: 'SUSPENDED' },
  error: { default: 'ERROR', rebuilding: 'REBUILD' },
  deleted: { default: 'DELETED' },
  rescued: { default: 'RESCUE', unrescuing: 'RESCUE' },
  shelved: { default: 'SHELVED', unshelving: 'UNSHELVING' },
  shelved_offloaded: { default: 'SHELVED_OFFLOADED', unshelving: 'UNSHELVING' },
};

export function serverStatus(vmState: string, taskState: string | null): string {
  const m = STATUS[vmState];
  if (!m) return 'UNKNOWN';
  return (taskState && m[taskState]) || m.default!;
}

/** The vm_states a status filter (`server list --status`) selects. */
export function vmStatesForStatus(status: string): string[] {
  const s = status.toUpperCase();
  return Object.entries(STATUS)
    .filter(([, m]) => Object.values(m).includes(s))
    .map(([vm]) => vm);
}
