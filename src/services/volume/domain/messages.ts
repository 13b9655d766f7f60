/**
 * @module Cinder's user messages (microversion 3.3): what went wrong with a request that had already
 * answered 202 (a volume no backend could take, an upload to an image that failed), told to the
 * project in words rather than only as an `error` status. A message is kept by the site where the
 * event happened and replicated; an admin sees every project's, others their own project's. Event ids
 * and texts are Cinder's (cinder/message/message_field.py): VOLUME_<resource>_<action>_<detail>.
 * https://docs.openstack.org/api-ref/block-storage/v3/#messages-messages
 */
import type { AuthContext } from '../../../core/auth.ts';
import { NotFound } from '../../../core/errors.ts';
import type { Clock, Ids } from '../../../core/ports.ts';
import { novaTime } from '../../common/input.ts';
import type { Obj } from '../../common/input.ts';
import type { MessageRow, VolumeRepository } from '../store/volumes.ts';

/** Cinder's message_ttl: a message is guaranteed to be kept this long (30 days). */
export const MESSAGE_TTL_SECONDS = 2_592_000;

/** The actions and details Atoll reports, with Cinder's codes and texts. */
export const MESSAGE_ACTIONS = {
  scheduleAllocateVolume: ['001', 'schedule allocate volume'],
  copyVolumeToImage: ['003', 'copy volume to image'],
} as const;
export const MESSAGE_DETAILS = {
  unknownError: ['001', 'An unknown error occurred.'],
  noBackendAvailable: ['003', 'Could not find any available weighted backend.'],
  failedToUploadVolume: ['004', 'Failed to upload volume to image at backend.'],
} as const;

export type MessageAction = keyof typeof MESSAGE_ACTIONS;
export type MessageDetail = keyof typeof MESSAGE_DETAILS;

export class UserMessages {
  constructor(
    private readonly repo: VolumeRepository,
    private readonly clock: Clock,
    private readonly ids: Ids,
  ) {}

  /** Records an error message about a volume for its project (call inside the caller's transaction or alone). */
  record(projectId: string, volumeId: string, action: MessageAction, detail: MessageDetail): string {
    const id = this.ids.uuid();
    const now = this.clock.now();
    const [actionId, actionText] = MESSAGE_ACTIONS[action];
    const [detailId, detailText] = MESSAGE_DETAILS[detail];
    const body: Obj = {
      id,
      event_id: `VOLUME_VOLUME_${actionId}_${detailId}`,
      user_message: `${actionText}:${detailText}`,
      message_level: 'ERROR',
      resource_type: 'VOLUME',
      resource_uuid: volumeId,
      created_at: novaTime(now),
      guaranteed_until: novaTime(now + MESSAGE_TTL_SECONDS * 1000),
      request_id: `req-${this.ids.uuid()}`,
    };
    const row: MessageRow = {
      id,
      project_id: projectId,
      resource_uuid: volumeId,
      body: JSON.stringify(body),
      created_at: now,
    };
    this.repo.tx(() => this.repo.putMessage(row));
    return id;
  }

  /** The messages `auth` may see: all for an admin, its project's otherwise; newest first. */
  list(auth: AuthContext): (MessageRow & { owner: string })[] {
    return this.repo.messages(auth.isAdmin ? undefined : (auth.projectId ?? ''));
  }

  /** One message `auth` may see; 404 otherwise. */
  visible(auth: AuthContext, id: string): MessageRow & { owner: string } {
    const m = this.repo.message(id);
    if (!m || (!auth.isAdmin && m.project_id !== auth.projectId))
      throw new NotFound(`Message ${id} could not be found.`);
    return m;
  }

  remove(id: string): void {
    this.repo.tx(() => this.repo.removeMessage(id));
  }

  /** A message as Cinder's view shows it, with its links. */
  view(m: MessageRow, publicUrl: string): Obj {
    const b = JSON.parse(m.body) as Obj;
    return {
      ...b,
      links: [
        { rel: 'self', href: `${publicUrl}/volume/v3/${m.project_id}/messages/${m.id}` },
        { rel: 'bookmark', href: `${publicUrl}/volume/${m.project_id}/messages/${m.id}` },
      ],
    };
  }
}
