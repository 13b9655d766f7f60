/**
 * @module Site-to-site messages signed by their sender. A request one site sends another (a forwarded
 * HTTP request, an address-lease call) names its sender in `from`; the body is not proof, so the
 * sender signs the message with its identity key (Ed25519) over everything but the signature, with a
 * timestamp and a random id. The receiver verifies against the identity key the federation knows for
 * `from` (an unknown or evicted sender has none), refuses messages older or newer than the window,
 * and remembers ids within it to refuse replays (issue 11, class 7).
 */
import { createPrivateKey, createPublicKey, sign, verify } from 'node:crypto';
import type { Ids } from '../core/ports.ts';
import { randomIds } from '../core/ports.ts';

/** How old (or early) a signed message may be; its id is remembered this long to refuse replays. */
export const SIGNED_WINDOW_MS = 30_000;

/** The sender's identity key signs each message; the receiver verifies it before acting on it. */
export interface SignerKeys {
  /** PEM of this site's identity private key. */
  privateKey(): string;
  /** PEM of a site's identity public key if it is known and not evicted. */
  identityKey(site: string): string | undefined;
  now(): number;
  /** Where message ids come from (random by default). */
  ids?: Ids;
}

/** The fields a signed message carries besides its own. */
export interface SignedFields {
  from: string;
  /** sent at, ms; message id (replays refused); Ed25519 over the message without `sig`, base64url */
  at?: number;
  id?: string;
  sig?: string;
}

export class MessageSigner {
  private keys: SignerKeys;
  private seen = new Map<string, number>();

  constructor(keys: SignerKeys) {
    this.keys = keys;
  }

  private static bytes(m: SignedFields): Buffer {
    const { sig: _sig, ...rest } = m;
    return Buffer.from(JSON.stringify(rest));
  }

  /** Stamps and signs `m` (in place) as this site's. */
  sign<T extends SignedFields>(m: T): T {
    m.at = this.keys.now();
    m.id = (this.keys.ids ?? randomIds).uuid();
    m.sig = sign(null, MessageSigner.bytes(m), createPrivateKey(this.keys.privateKey())).toString(
      'base64url',
    );
    return m;
  }

  /** Why a message must not be acted on (unsigned, unknown or evicted sender, stale, replayed), or undefined. */
  refusal(m: SignedFields): string | undefined {
    const pem = typeof m.from === 'string' ? this.keys.identityKey(m.from) : undefined;
    if (!pem) return `sender ${String(m.from)} is unknown or evicted`;
    if (typeof m.sig !== 'string' || typeof m.id !== 'string' || typeof m.at !== 'number')
      return 'request is not signed';
    let ok = false;
    try {
      ok = verify(null, MessageSigner.bytes(m), createPublicKey(pem), Buffer.from(m.sig, 'base64url'));
    } catch {
      ok = false;
    }
    if (!ok) return `request signature does not verify as ${m.from}`;
    const now = this.keys.now();
    if (Math.abs(now - m.at) > SIGNED_WINDOW_MS) return 'request is stale';
    for (const [id, at] of this.seen) if (at < now - SIGNED_WINDOW_MS) this.seen.delete(id);
    const key = `${m.from}/${m.id}`;
    if (this.seen.has(key)) return 'request is a replay';
    this.seen.set(key, m.at);
    return undefined;
  }
}
