/**
 * @module One process per site name. Before a site serves anything or subscribes to its rpc subjects,
 * it asks the fabric whether the name is already alive: a ping on `atoll.<name>.rpc.ping`. Nothing of
 * this process answers yet, so any answer is another process holding the name (a second `atoll site
 * --name X`, or a copy of X's data directory). On a NATS without per-site credentials both would join
 * the rpc queue groups and split X's forwarded writes between them, so the newcomer refuses to start.
 * See docs/federation.md, "One process per name".
 */
import type { Fabric } from '../fabric/fabric.ts';
import { FabricError, decodeJson, encodeJson, subjects } from '../fabric/fabric.ts';

export class NameInUse extends Error {
  constructor(site: string, instance: string) {
    super(
      `site name ${site} is already in use: another process answers as ${site} on the fabric` +
        ` (instance ${instance || 'unknown'}). Stop that process first (two processes must never share` +
        ` a name or a data directory), or start this one under a new name with an invite.`,
    );
    this.name = 'NameInUse';
  }
}

/** Throws NameInUse when a live process answers for `site`; a fabric that cannot tell (timeout, no
 * responders, cut off) lets the site start: it then watches its own heartbeat subject (Replicator). */
export async function assertNameFree(fabric: Fabric, site: string, timeoutMs: number): Promise<void> {
  let reply: Uint8Array;
  try {
    reply = await fabric.request(subjects.rpc(site, 'ping'), encodeJson({}), timeoutMs);
  } catch (e) {
    if (e instanceof FabricError) return;
    // Any other failure (the holder's responder threw) still means someone holds the name.
    throw new NameInUse(site, '');
  }
  let instance = '';
  try {
    instance = String(decodeJson<{ instance?: unknown }>(reply).instance ?? '');
  } catch {
    // An answer we cannot read is an answer all the same.
  }
  throw new NameInUse(site, instance);
}
