/**
 * @module BootServers: the server create command after the API parsed, authenticated and (when
 * another site owns the zone) forwarded it (Nova's compute API -> conductor -> scheduler path).
 * It looks up the flavor, image, key pair and server group, leases addresses, then checks quotas,
 * schedules, claims, allocates ports and writes the server rows of the whole request in one unit of
 * work, and starts the builds after it committed. It sees ports and repositories only.
 */
import type { AuthContext } from '../../../core/auth.ts';
import { canRead } from '../../../core/auth.ts';
import { BadRequest } from '../../../core/errors.ts';
import type { Clock, Ids } from '../../../core/ports.ts';
import type { ImageForCompute, NetworkForCompute, NicRequest, ServerAddress } from '../../common/internal.ts';
import type { FlavorRow, KeypairRow, ServerGroupRow, ServerRow } from '../store/schema.ts';
import type { QuotaReader } from './quotas.ts';
import { checkMetadata, checkQuota } from './quotas.ts';
import type { ResourceRequest } from './scheduler.ts';
import { PowerState } from './states.ts';

export const NO_VALID_HOST = 'No valid host was found. There are not enough hosts available.';

/** What the command reads and writes, as ports (ComputeService wires them to the store and fabric). */
export interface BootServersDeps {
  /** This site: the owner of every server it boots. */
  site: string;
  clock: Clock;
  ids: Ids;
  catalog: {
    flavor(id: string): FlavorRow | undefined;
    hasFlavorAccess(flavorId: string, projectId: string): boolean;
    keypair(userId: string, name: string): KeypairRow | undefined;
    serverGroup(id: string): ServerGroupRow | undefined;
    groupHosts(groupId: string): string[];
  };
  quotas: QuotaReader;
  images: Pick<ImageForCompute, 'usableImage'> | undefined;
  network: NetworkForCompute | undefined;
  /** Picks a host for the request (inside the unit of work, so claims see each other). */
  schedule(req: ResourceRequest): { host?: string; why?: string };
  claims: {
    claim(id: string, serverId: string, host: string, vcpus: number, ramMb: number, diskGb: number): void;
  };
  servers: {
    put(row: ServerRow): void;
    get(id: string): ServerRow | undefined;
  };
  /** Runs fn atomically: everything it wrote, or (when it throws) nothing. No await inside. */
  unitOfWork<T>(fn: () => T): T;
  /** Instance actions (os-instance-actions) and the host build that follows the claim. */
  work: {
    startAction(s: ServerRow, action: string, auth: AuthContext, requestId: string): string;
    finishAction(actionId: string, error?: string): void;
    build(s: ServerRow, actionId: string): void;
  };
}

/** A parsed POST /servers. */
export interface BootServers {
  auth: AuthContext;
  projectId: string;
  requestId: string;
  name: string;
  /** The flavor's id or link. */
  flavorRef: string;
  /** The image's id or link; '' when none was given. */
  imageRef: string;
  keyName: string | undefined;
  /** As the body carried it (validated here against the project's metadata_items). */
  metadata: unknown;
  userData: string | undefined;
  nics: NicRequest[] | 'auto' | 'none';
  groupId: string | undefined;
  /** As the body carried them (Number()-converted), validated here. */
  minCount: number;
  maxCount: number;
  description: string | undefined;
  /** accessIPv4 / accessIPv6, already checked for their form. */
  accessIPv4?: string | undefined;
  accessIPv6?: string | undefined;
  /** Tags given at create (2.52), already checked. */
  tags?: string[] | undefined;
  /** OS-DCF:diskConfig, already checked. */
  diskConfig?: string | undefined;
  /** Booted from a volume (block_device_mapping_v2, boot_index 0): no image. */
  bootFromVolume?: boolean;
  /** Volumes attached at boot with delete_on_termination. */
  deleteVolumes?: string[];
  /** An admin's `zone:host`. */
  forceHost: string | undefined;
}

export interface BootedServer {
  row: ServerRow;
  /** false: no host could take it (the server is in ERROR with Nova's "No valid host" fault). */
  scheduled: boolean;
}

export async function bootServers(deps: BootServersDeps, cmd: BootServers): Promise<BootedServer[]> {
  const { auth, projectId: project } = cmd;
  const flavor = findFlavor(deps, auth, cmd.flavorRef);
  if (cmd.imageRef === '' && !cmd.bootFromVolume)
    throw new BadRequest(
      'Block Device Mapping is Invalid: Boot sequence for the instance and image/block device mapping combination is not valid.',
    );
  const image = cmd.imageRef === '' ? undefined : findImage(deps, auth, cmd.imageRef, flavor);
  if (cmd.keyName && !deps.catalog.keypair(auth.userId, cmd.keyName))
    throw new BadRequest('Invalid key_name provided.');
  const metadata = checkMetadata(deps.quotas, project, cmd.metadata);
  const groupId = cmd.groupId;
  const group = groupId ? deps.catalog.serverGroup(groupId) : undefined;
  if (groupId && (!group || !canRead(auth, group.project_id)))
    throw new BadRequest(`Invalid server group ${groupId}`);
  const { minCount, maxCount } = cmd;
  if (!Number.isInteger(minCount) || !Number.isInteger(maxCount) || minCount < 1 || maxCount < minCount)
    throw new BadRequest('min_count and max_count must be integers with 1 <= min_count <= max_count.');
  // Addresses on networks owned by other sites come from blocks leased to this site: get the lease
  // (one round trip to the network's owner) before the synchronous unit of work below.
  await deps.network?.prepareForServer?.(auth, cmd.nics);

  // Quota, scheduling, claims, addresses and the server rows of the whole request: one transaction
  // with no await inside, so a refused request (over quota, a port in use, no address left) leaves
  // nothing behind and concurrent boots never overcommit a host. Builds start after the commit.
  const created: BootedServer[] = [];
  deps.unitOfWork(() => {
    for (let i = 0; i < maxCount; i++) {
      try {
        checkQuota(deps.quotas, project, { instances: 1, cores: flavor.vcpus, ram: flavor.ram });
      } catch (e) {
        if (i >= minCount) break;
        throw e;
      }
      const id = deps.ids.uuid();
      const now = deps.clock.now();
      const row: ServerRow = {
        id,
        owner: deps.site,
        project_id: project,
        user_id: auth.userId,
        name: maxCount > 1 ? `${cmd.name}-${i + 1}` : cmd.name,
        host: null,
        flavor_id: flavor.id,
        flavor: JSON.stringify(flavor),
        vcpus: flavor.vcpus,
        ram: flavor.ram,
        disk: flavor.disk,
        image_id: image?.id ?? null,
        key_name: cmd.keyName ?? null,
        metadata: JSON.stringify(metadata),
        user_data: cmd.userData ?? null,
        vm_state: 'building',
        task_state: 'scheduling',
        power_state: PowerState.NoState,
        locked: 0,
        locked_reason: null,
        fault: null,
        addresses: '[]',
        server_group_id: groupId ?? null,
        old_flavor: null,
        old_host: null,
        description: cmd.description ?? null,
        access_ipv4: cmd.accessIPv4 ?? null,
        access_ipv6: cmd.accessIPv6 ?? null,
        tags: JSON.stringify(cmd.tags ?? []),
        disk_config: cmd.diskConfig ?? 'MANUAL',
        delete_volumes: JSON.stringify(cmd.deleteVolumes ?? []),
        created_at: now,
        updated_at: now,
        launched_at: null,
      };
      const pick = deps.schedule({
        vcpus: flavor.vcpus,
        ramMb: flavor.ram,
        diskGb: flavor.disk + flavor.ephemeral,
        ...(cmd.forceHost ? { forceHost: cmd.forceHost } : {}),
        ...(group ? { group: { policy: group.policy, memberHosts: deps.catalog.groupHosts(group.id) } } : {}),
      });
      let scheduled = false;
      if (!pick.host) {
        // Nova's behaviour: the build fails in ERROR with a fault, the request itself is accepted.
        row.vm_state = 'error';
        row.task_state = null;
        row.fault = JSON.stringify({ code: 500, message: NO_VALID_HOST, created: now });
      } else {
        let addresses: ServerAddress[];
        try {
          addresses =
            deps.network?.allocateForServer(auth, { id, projectId: project, host: pick.host }, cmd.nics) ??
            [];
        } catch (e) {
          if (i >= minCount) break;
          throw e;
        }
        deps.claims.claim(id, id, pick.host, flavor.vcpus, flavor.ram, flavor.disk + flavor.ephemeral);
        row.host = pick.host;
        row.task_state = 'spawning';
        row.addresses = JSON.stringify(addresses);
        scheduled = true;
      }
      deps.servers.put(row);
      created.push({ row, scheduled });
    }
  });
  for (const { row, scheduled } of created) {
    const actionId = deps.work.startAction(row, 'create', auth, cmd.requestId);
    if (scheduled) deps.work.build(deps.servers.get(row.id)!, actionId);
    else deps.work.finishAction(actionId, NO_VALID_HOST);
  }
  return created;
}

function findFlavor(deps: BootServersDeps, auth: AuthContext, ref: string): FlavorRow {
  const id = ref.replace(/^.*\/flavors\//, '');
  const f = deps.catalog.flavor(id);
  if (!f || (!f.is_public && !auth.isAdmin && !deps.catalog.hasFlavorAccess(f.id, auth.projectId ?? '')))
    throw new BadRequest(`Flavor ${id} could not be found.`);
  if (f.disabled) throw new BadRequest(`Flavor ${id} is disabled.`);
  return f;
}

function findImage(deps: BootServersDeps, auth: AuthContext, ref: string, f: FlavorRow) {
  const id = ref.replace(/^.*\/images\//, '');
  const img = deps.images?.usableImage(auth, id);
  if (!img) throw new BadRequest(`Image ${id} could not be found.`);
  if (img.status !== 'active') throw new BadRequest(`Image ${id} is not active.`);
  if (f.disk > 0 && img.minDisk > f.disk)
    throw new BadRequest("Flavor's disk is too small for requested image.");
  if (img.minRam > f.ram) throw new BadRequest("Flavor's memory is too small for requested image.");
  if (f.disk > 0 && img.size !== null && img.size > f.disk * 1024 ** 3)
    throw new BadRequest("Flavor's disk is too small for requested image.");
  return img;
}
