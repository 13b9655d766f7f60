/**
 * @module ResizeServer, ConfirmResize and RevertResize (Nova's resize, confirmResize, revertResize
 * actions), after the API parsed and authorized them, against ports only. A resize takes a second
 * claim (`<id>:resize`) on the destination in one unit of work with the server's move, then the hosts
 * migrate in the background; confirm drops the source's claim, revert the destination's.
 */
import type { AuthContext } from '../../../core/auth.ts';
import { BadRequest, Conflict } from '../../../core/errors.ts';
import type { Clock } from '../../../core/ports.ts';
import type { DriverOp } from '../agent/driver.ts';
import type { FlavorRow, ServerRow } from '../store/schema.ts';
import { NO_VALID_HOST } from './boot-servers.ts';
import { checkState } from './lifecycle.ts';
import type { QuotaReader } from './quotas.ts';
import { checkQuota } from './quotas.ts';
import type { ResourceRequest } from './scheduler.ts';
import { PowerState } from './states.ts';

export interface ResizeDeps {
  clock: Clock;
  catalog: {
    flavor(id: string): FlavorRow | undefined;
    hasFlavorAccess(flavorId: string, projectId: string): boolean;
  };
  quotas: QuotaReader;
  schedule(req: ResourceRequest): { host?: string; why?: string };
  claims: {
    claim(id: string, serverId: string, host: string, vcpus: number, ramMb: number, diskGb: number): void;
    release(id: string): void;
    moveClaim(from: string, to: string): void;
  };
  /** Re-reads the server and applies the patch (level-based); undefined when it is gone. */
  update(id: string, patch: Partial<ServerRow>): ServerRow | undefined;
  unitOfWork<T>(fn: () => T): T;
  actions: {
    start(s: ServerRow, action: string, auth: AuthContext, requestId: string): string;
    finish(actionId: string, error?: string): void;
  };
  /** One operation on one host's agent (over the fabric). */
  host(host: string, op: DriverOp, s: ServerRow): Promise<{ powerState: number }>;
  /** Host work after the answer; the server counts as busy until it settles. */
  background(p: Promise<unknown>, serverId?: string): void;
}

export interface ResizeCommand {
  auth: AuthContext;
  requestId: string;
  server: ServerRow;
  /** The new flavor's id or link. */
  flavorRef: string;
}

export function resizeServer(deps: ResizeDeps, cmd: ResizeCommand): void {
  const { auth, server: s } = cmd;
  checkState(s, 'resize', ['active', 'stopped'], auth);
  const id = cmd.flavorRef.replace(/^.*\/flavors\//, '');
  const f = deps.catalog.flavor(id);
  if (!f || (!f.is_public && !auth.isAdmin && !deps.catalog.hasFlavorAccess(f.id, auth.projectId ?? '')))
    throw new BadRequest(`Flavor ${id} could not be found.`);
  if (f.id === s.flavor_id) throw new BadRequest('When resizing, instances must change flavor!');
  const cur = JSON.parse(s.flavor) as FlavorRow;
  if (f.disk < cur.disk && f.disk !== 0) throw new BadRequest('Resize to zero disk flavor is not allowed.');
  checkQuota(deps.quotas, s.project_id, {
    instances: 0,
    cores: Math.max(0, f.vcpus - s.vcpus),
    ram: Math.max(0, f.ram - s.ram),
  });
  let dest: string | undefined;
  deps.unitOfWork(() => {
    const pick = deps.schedule({ vcpus: f.vcpus, ramMb: f.ram, diskGb: f.disk + f.ephemeral });
    if (!pick.host) return;
    dest = pick.host;
    deps.claims.claim(`${s.id}:resize`, s.id, dest, f.vcpus, f.ram, f.disk + f.ephemeral);
    deps.update(s.id, {
      task_state: 'resize_prep',
      old_flavor: s.flavor,
      old_host: s.host,
      host: dest,
      flavor_id: f.id,
      flavor: JSON.stringify(f),
      vcpus: f.vcpus,
      ram: f.ram,
      disk: f.disk,
    });
  });
  if (!dest) throw new BadRequest(`${NO_VALID_HOST} No host can take flavor ${f.name}.`);
  const actionId = deps.actions.start(s, 'resize', auth, cmd.requestId);
  const source = s.host!;
  const target = dest;
  deps.background(
    (async () => {
      try {
        await deps.host(source, 'migrate_disk_and_power_off', s);
        // The guest starts with the new flavor (`s` is the row as it was before the claim).
        const resized = { vcpus: f.vcpus, ram: f.ram, disk: f.disk };
        const r = await deps.host(target, 'finish_migration', { ...s, ...resized, host: target });
        deps.update(s.id, { vm_state: 'resized', task_state: null, power_state: r.powerState });
        deps.actions.finish(actionId);
      } catch (e) {
        deps.unitOfWork(() => {
          deps.claims.release(`${s.id}:resize`);
          deps.update(s.id, {
            vm_state: 'error',
            task_state: null,
            fault: JSON.stringify({ code: 500, message: (e as Error).message, created: deps.clock.now() }),
          });
        });
        deps.actions.finish(actionId, (e as Error).message);
      }
    })(),
    s.id,
  );
}

export interface ResizeDecision {
  auth: AuthContext;
  requestId: string;
  server: ServerRow;
}

/** The resized server stays where it is now: the source's claim goes, the source host lets go. */
export function confirmResize(deps: ResizeDeps, cmd: ResizeDecision): void {
  const { auth, server: s } = cmd;
  if (s.vm_state !== 'resized')
    throw new Conflict(`Cannot 'confirmResize' instance ${s.id} while it is in vm_state ${s.vm_state}`);
  const oldHost = s.old_host;
  const actionId = deps.actions.start(s, 'confirmResize', auth, cmd.requestId);
  deps.unitOfWork(() => {
    deps.claims.release(s.id);
    deps.claims.moveClaim(`${s.id}:resize`, s.id);
    deps.update(s.id, {
      vm_state: s.power_state === PowerState.Shutdown ? 'stopped' : 'active',
      task_state: null,
      old_flavor: null,
      old_host: null,
    });
  });
  if (oldHost && oldHost !== s.host)
    deps.background(deps.host(oldHost, 'confirm_migration', s).catch(() => undefined));
  deps.actions.finish(actionId);
}

/** The server goes back to its old flavor and host: the destination's claim goes, its guest too. */
export function revertResize(deps: ResizeDeps, cmd: ResizeDecision): void {
  const { auth, server: s } = cmd;
  if (s.vm_state !== 'resized')
    throw new Conflict(`Cannot 'revertResize' instance ${s.id} while it is in vm_state ${s.vm_state}`);
  const old = JSON.parse(s.old_flavor!) as FlavorRow;
  const newHost = s.host!;
  const oldHost = s.old_host!;
  const actionId = deps.actions.start(s, 'revertResize', auth, cmd.requestId);
  deps.unitOfWork(() => {
    deps.claims.release(`${s.id}:resize`);
    deps.update(s.id, {
      task_state: 'resize_reverting',
      host: oldHost,
      flavor_id: old.id,
      flavor: JSON.stringify(old),
      vcpus: old.vcpus,
      ram: old.ram,
      disk: old.disk,
      old_flavor: null,
      old_host: null,
    });
  });
  deps.background(
    (async () => {
      try {
        if (newHost !== oldHost) await deps.host(newHost, 'destroy', s);
        // The guest starts with the old flavor again (`s` is the resized row).
        const back = { vcpus: old.vcpus, ram: old.ram, disk: old.disk };
        const r = await deps.host(oldHost, 'finish_revert_migration', { ...s, ...back, host: oldHost });
        deps.update(s.id, { vm_state: 'active', task_state: null, power_state: r.powerState });
        deps.actions.finish(actionId);
      } catch (e) {
        deps.update(s.id, { vm_state: 'error', task_state: null });
        deps.actions.finish(actionId, (e as Error).message);
      }
    })(),
    s.id,
  );
}
