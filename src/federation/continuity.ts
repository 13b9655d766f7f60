/**
 * @module Is this process the site the federation knows? A site restarted on an empty or lost data
 * directory makes a new identity key; one restored from an old backup has a log shorter than what its
 * peers applied of it. Either would serve, issue tokens and accept writes that no other site ever
 * applies (its batches fail verification, or reuse seqs already applied), while looking healthy
 * (issue 13, item 1). So on the first heartbeat from each peer the site asks that peer (its `cursor`
 * RPC) which identity key it knows for this site and how far it applied this site's log; a different
 * key, or a cursor past this site's head, puts the site in conflict: it refuses to serve (503 with the
 * reason and the recovery) and says so once in its log. Peers show it as `conflict` on their side
 * (Replicator.refusal). A peer that cannot be asked proves nothing: an isolated site keeps serving.
 */
import type { Fabric } from '../fabric/fabric.ts';
import { decodeJson, encodeJson, siteOfSubject, subjects } from '../fabric/fabric.ts';
import type { Logger } from '../core/ports.ts';
import type { CursorReply } from './replicator.ts';
import { fingerprint } from './replicator.ts';

export interface ContinuitySelf {
  site: string;
  /** This site's identity key (PEM) and the head of its own log, as its data directory holds them. */
  identityKey(): string;
  head(): number;
}

/** How to recover, said with every refusal. */
const RECOVERY =
  'Stop this process and restore the site data directory from its latest backup, or start it under ' +
  'a new name with an invite (docs/operations.md, "A site that lost its disk").';

export class ContinuityCheck {
  private fabric: Fabric;
  private self: ContinuitySelf;
  private log: Logger;
  private asked = new Set<string>();
  private conflictWhy: string | undefined;
  private unsub: (() => void) | undefined;

  constructor(fabric: Fabric, self: ContinuitySelf, log: Logger) {
    this.fabric = fabric;
    this.self = self;
    this.log = log;
  }

  /** Why this site must not serve, with the way out; undefined while it is the site its peers know. */
  conflict(): string | undefined {
    return this.conflictWhy;
  }

  start(): void {
    this.unsub = this.fabric.subscribe(subjects.allHeartbeats, (m) => {
      const peer = siteOfSubject(m.subject);
      if (!peer || peer === this.self.site || this.asked.has(peer) || this.asked.size >= 64) return;
      this.asked.add(peer);
      void this.ask(peer);
    });
  }

  stop(): void {
    this.unsub?.();
  }

  /** Asks one peer what it knows of this site; a peer that does not answer is asked again later. */
  private async ask(peer: string): Promise<void> {
    let r: CursorReply;
    try {
      r = decodeJson<CursorReply>(
        await this.fabric.request(subjects.rpc(peer, 'cursor'), encodeJson({ origin: this.self.site }), 2000),
      );
    } catch {
      this.asked.delete(peer);
      return;
    }
    if (this.conflictWhy) return;
    const mine = fingerprint(this.self.identityKey());
    const head = this.self.head();
    let why: string | undefined;
    if (typeof r.identity === 'string' && r.identity !== mine)
      why = `${peer} knows site ${this.self.site} by another identity key: this data directory is not that site's (empty, lost or replaced).`;
    else if (Number(r.cursor) > head)
      why = `${peer} has applied site ${this.self.site}'s log up to seq ${r.cursor}, but this data directory holds only ${head}: it is older than the site (an old backup, or a lost disk).`;
    if (!why) return;
    this.conflictWhy = `${why} ${RECOVERY}`;
    this.log.error({ peer, site: this.self.site }, `refusing to serve: ${this.conflictWhy}`);
  }
}
