/**
 * @module Origin authenticity of replicated changes. Each site signs its change batches with its
 * identity key (Ed25519, made on the site, never leaving it); receivers verify against the origin's
 * identity key before applying anything, so neither a relay (a NATS server, a proxy) nor another site
 * can forge or alter a site's changes.
 *
 * Which key is the origin's: the one in its replicated `sites` row, once known. The very first batch
 * from a site this one has never heard of carries that site's own row (its log starts with it); in
 * `open` trust mode it is accepted on first use (TOFU) when it is signed by the key it carries, as SSH
 * does for new hosts. In `admitted` mode only sites admitted through an invite (kind `admission`) or
 * named as anchors are trusted. An evicted site is never trusted again.
 */
import { createPublicKey, sign, verify, createPrivateKey } from 'node:crypto';
import type { KeyObject } from 'node:crypto';
import type { Change } from './changelog.ts';
import type { ChangeSealer, SealRefusal } from './replicator.ts';
import { SealRefusalCode } from './replicator.ts';
import type { SiteRegistry } from './registry.ts';

export type TrustMode = 'open' | 'admitted';

const refused = (why: string): SealRefusal => ({ code: SealRefusalCode.Refused, why });

export class SiteSealer implements ChangeSealer {
  private registry: SiteRegistry;
  private mode: TrustMode;
  private privateKey: KeyObject | undefined;
  private keys = new Map<string, { pem: string; key: KeyObject }>();

  constructor(registry: SiteRegistry, mode: TrustMode) {
    this.registry = registry;
    this.mode = mode;
  }

  seal(body: string): string {
    this.privateKey ??= createPrivateKey(this.registry.identity().privateKey);
    return sign(null, Buffer.from(body), this.privateKey).toString('base64url');
  }

  /** What the registry says of each origin, until the registry's trust data changes. */
  private trust = new Map<string, { epoch: number; evicted: boolean; pem: string | undefined }>();
  private trustOf(origin: string) {
    const hit = this.trust.get(origin);
    if (hit && hit.epoch === this.registry.epoch) return hit;
    const known = this.registry.get(origin);
    const t = {
      epoch: this.registry.epoch,
      evicted: known?.state === 'evicted' || this.registry.isEvicted(origin),
      pem: this.registry.identityKeyOf(origin),
    };
    this.trust.set(origin, t);
    return t;
  }

  open(origin: string, body: string, sig: string, changes: Change[]): SealRefusal | undefined {
    const t = this.trustOf(origin);
    if (t.evicted) return refused(`site ${origin} was evicted`);
    let pem = t.pem;
    if (!pem && this.mode === 'admitted') return refused(`site ${origin} was never admitted`);
    if (!pem) {
      // Trust on first use: the batch must carry the origin's own registry row with its identity key.
      const own = changes.find((c) => c.kind === 'site' && c.id === origin && c.op === 'put');
      const carried = own?.row?.identity_key;
      if (typeof carried !== 'string' || !carried)
        return {
          code: SealRefusalCode.NotMetYet,
          why: `unknown site ${origin}: pull its log from the start`,
        };
      pem = carried;
    }
    let entry = this.keys.get(origin);
    if (!entry || entry.pem !== pem) {
      try {
        entry = { pem, key: createPublicKey(pem) };
      } catch {
        return refused(`identity key of ${origin} is not a public key`);
      }
      this.keys.set(origin, entry);
    }
    let ok = false;
    try {
      ok = verify(null, Buffer.from(body), entry.key, Buffer.from(sig, 'base64url'));
    } catch {
      ok = false;
    }
    if (!ok)
      return refused(`signature does not verify with the identity key of ${origin} (forged or altered)`);
    // A batch may not replace the origin's own identity key: that needs a new admission.
    for (const c of changes)
      if (c.kind === 'site' && c.id === origin && c.row && c.row.identity_key !== pem)
        return refused(`batch tries to change the identity key of ${origin}`);
    return undefined;
  }
}
