/**
 * @module Volume transfers (Cinder's os-volume-transfer): the owner offers a volume and gets a one-time
 * auth key, kept only as a salted hash; another project accepts with the transfer id and the key, and
 * the volume (and its snapshots unless no_snapshots) then belongs to it. The volume waits in
 * `awaiting-transfer` meanwhile. These commands run on the volume's site (the routes forward there).
 * https://docs.openstack.org/api-ref/block-storage/v3/#volume-transfers-volume-transfers-3-55-or-later
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type { AuthContext } from '../../../core/auth.ts';
import { BadRequest, NotFound } from '../../../core/errors.ts';
import type { Clock, Ids } from '../../../core/ports.ts';
import { optBool, optStr } from '../../common/input.ts';
import type { Obj } from '../../common/input.ts';
import type { TransferRow, VolRow, VolumeRepository } from '../store/volumes.ts';
import type { VolumeService } from './volumes.ts';

const hashKey = (salt: string, key: string) => createHash('sha256').update(`${salt}\0${key}`).digest();

export interface VolumeTransfersOptions {
  volumes: VolumeService;
  repo: VolumeRepository;
  clock: Clock;
  ids: Ids;
  site: string;
}

export class VolumeTransfers {
  constructor(private readonly opts: VolumeTransfersOptions) {}

  get(id: string): TransferRow | undefined {
    return this.opts.repo.transfer(id);
  }

  /** The transfer as its project (or an admin) sees it; anyone with the key may accept, by id. */
  visible(auth: AuthContext, id: string): TransferRow {
    const t = this.get(id);
    if (!t || !(auth.isAdmin || t.project_id === auth.projectId))
      throw new NotFound(`Transfer ${id} could not be found.`);
    return t;
  }

  /** Every transfer, or a project's only, oldest first. */
  list(project?: string): TransferRow[] {
    return this.opts.repo.transfers(project);
  }

  /** Offers `vol` (`o` is the request's transfer: name, no_snapshots); the key is returned once and never stored. */
  create(vol: VolRow, o: Obj): { t: TransferRow; key: string } {
    const { repo, volumes } = this.opts;
    if (vol.status !== 'available')
      throw new BadRequest(`Invalid volume: status must be available to transfer, but it is ${vol.status}.`);
    const key = randomBytes(8).toString('hex');
    const salt = randomBytes(8).toString('hex');
    const t: TransferRow = {
      id: this.opts.ids.uuid(),
      owner: this.opts.site,
      project_id: vol.project_id,
      volume_id: vol.id,
      name: optStr(o, 'name') ?? null,
      salt,
      key_hash: hashKey(salt, key).toString('hex'),
      no_snapshots: optBool(o, 'no_snapshots') ? 1 : 0,
      created_at: this.opts.clock.now(),
    };
    repo.tx(() => {
      repo.putTransfer(t);
      volumes.setStatus(vol, 'awaiting-transfer');
    });
    return { t, key };
  }

  /** Withdraws the offer: the volume is available again. */
  remove(t: TransferRow): void {
    const { repo, volumes } = this.opts;
    repo.tx(() => {
      repo.removeTransfer(t.id);
      const v = volumes.volume(t.volume_id);
      if (v?.status === 'awaiting-transfer') volumes.setStatus(v, 'available');
    });
  }

  /** The volume moves to the caller's project, if the key is the one the offer gave. */
  accept(auth: AuthContext, t: TransferRow, key: string): void {
    const { repo, volumes } = this.opts;
    const want = Buffer.from(t.key_hash, 'hex');
    if (!timingSafeEqual(want, hashKey(t.salt, key)))
      throw new BadRequest(`Invalid auth key: Attempt to transfer ${t.id} with invalid auth key.`);
    const v = volumes.volume(t.volume_id);
    if (!v) throw new NotFound(`Volume ${t.volume_id} could not be found.`);
    const to = String(auth.projectId);
    volumes.transferTo(v, to, auth.userId, t.no_snapshots !== 1, () => repo.removeTransfer(t.id));
  }
}
