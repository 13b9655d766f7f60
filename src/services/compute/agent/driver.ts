/**
 * @module The compute driver interface (after nova/virt/driver.py): what a host agent asks of the
 * hypervisor. The controller never calls a driver directly; it sends host RPCs over the fabric
 * (subject atoll.<site>.rpc.host.<hostname>) and the agent on that host calls its driver.
 */

import type { Vif } from '../../common/vif.ts';

/** The drivers a compute host can run (services.compute.driver, `--compute-driver`). */
export const COMPUTE_DRIVERS = ['fake', 'qemu'] as const;

export interface InstanceSpec {
  id: string;
  name: string;
  vcpus: number;
  ramMb: number;
  diskGb: number;
  imageId: string | null;
  /** What a real driver boots and shows the guest; set by the controller (the fake driver ignores it). */
  boot?: BootSpec;
  /** The volume of an attach_volume / detach_volume operation. */
  volume?: VolumeFile;
}

/** A volume whose bytes are a file on this site (the volume service's file backend). */
export interface VolumeFile {
  id: string;
  path: string;
}

/** An image's bytes: here (`path`) or to be fetched from its owner by id, checked against sha256. */
export interface ImageBytes {
  id: string;
  path?: string;
  sha256: string;
}

/** The image's bytes on this site and what the config drive carries (openstack/latest/*). */
export interface BootSpec {
  image?: {
    id: string;
    /**
     * A file on this site's image store, content-addressed by sha256, when this site owns the image;
     * else the driver fetches the bytes (QemuDriverOptions.fetchImage) into its base cache.
     */
    path?: string;
    sha256: string;
    format: string;
    /** Direct kernel boot (kernel_id / ramdisk_id image properties, AMI-style). */
    kernel?: ImageBytes;
    ramdisk?: ImageBytes;
    cmdline?: string;
  };
  hostname: string;
  projectId: string;
  availabilityZone: string;
  metadata: Record<string, string>;
  /** Base64, as the API took it. */
  userData: string | null;
  publicKeys: Record<string, string>;
  /** Attached volumes with a file here: virtio disks after the config drive (serial = volume id). */
  volumes?: VolumeFile[];
  /** The server's NICs when the site has a data plane: a tap (made on its bridge) and the port's MAC. */
  nics?: Vif[];
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
  | 'snapshot'
  | 'get_console_output'
  /** The power state the hypervisor reports (Nova's get_info), for the power state sync. */
  | 'get_info'
  /** Hot-plug / unplug of a volume into a running guest (QMP blockdev-add + device_add, and back). */
  | 'attach_volume'
  | 'detach_volume';

/** What an operation answers: the power state after it, and what some operations return. */
export interface DriverResult {
  powerState: number;
  /** Console output (get_console_output); the fake driver's disk bytes (snapshot). */
  data?: string;
  /**
   * snapshot on a real driver: a standalone qcow2 of the instance's disk, a file on this site (the
   * host agents run in the site's process). The caller streams it into an image and removes it.
   */
  file?: string;
}

export interface ComputeDriver {
  /** Runs an operation on an instance of this host; resolves with the power state after it. */
  run(host: string, op: DriverOp, instance: InstanceSpec): Promise<DriverResult>;
}

/** The wire format of one host RPC. */
export interface HostRpc {
  op: DriverOp;
  instance: InstanceSpec;
}
