/**
 * @module The compute driver interface (after nova/virt/driver.py): what a host agent asks of the
 * hypervisor. The controller never calls a driver directly; it sends host RPCs over the fabric
 * (subject atoll.<site>.rpc.host.<hostname>) and the agent on that host calls its driver.
 */

export interface InstanceSpec {
  id: string;
  name: string;
  vcpus: number;
  ramMb: number;
  diskGb: number;
  imageId: string | null;
}

export type DriverOp =
  | 'spawn'
  | 'destroy'
  | 'power_off'
  | 'power_on'
  | 'reboot'
  | 'pause'
  | 'unpause'
  | 'suspend'
  | 'resume'
  | 'rebuild'
  | 'migrate_disk_and_power_off'
  | 'finish_migration'
  | 'confirm_migration'
  | 'finish_revert_migration'
  | 'snapshot';

export interface ComputeDriver {
  /** Runs an operation on an instance of this host; resolves with the power state after it. */
  run(host: string, op: DriverOp, instance: InstanceSpec): Promise<{ powerState: number; data?: string }>;
}

/** The wire format of one host RPC. */
export interface HostRpc {
  op: DriverOp;
  instance: InstanceSpec;
}
export type HostRpcReply =
  | { ok: true; powerState: number; data?: string }
  | { ok: false; error: { type: string; message: string; retryable: boolean } };
