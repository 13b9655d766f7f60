/**
 * @module Password and secret hashing with scrypt (a slow, memory-hard KDF). Cost: N = 2^cost, r = 8,
 * p = 1; at the default cost 14 one hash takes tens of milliseconds and 16 MiB, which is what limits
 * password token issue. Hashes carry their parameters, so the cost can be raised without a migration.
 */
import { randomBytes, scrypt, timingSafeEqual } from 'node:crypto';

function scryptAsync(secret: string, salt: Buffer, n: number): Promise<Buffer> {
  return new Promise((resolve, reject) =>
    scrypt(secret, salt, 32, { N: n, r: 8, p: 1, maxmem: 256 * n * 8 + 1024 * 1024 }, (err, key) =>
      err ? reject(err) : resolve(key),
    ),
  );
}

export async function hashSecret(secret: string, cost: number): Promise<string> {
  const n = 2 ** cost;
  const salt = randomBytes(16);
  const key = await scryptAsync(secret, salt, n);
  return `scrypt$${n}$${salt.toString('base64')}$${key.toString('base64')}`;
}

function parseHash(stored: string | null | undefined): { n: number; salt: Buffer; key: Buffer } | undefined {
  if (!stored) return undefined;
  const [alg, nText, saltText, keyText] = stored.split('$');
  if (alg !== 'scrypt' || !nText || !saltText || !keyText) return undefined;
  const n = Number(nText);
  if (!Number.isInteger(n) || n < 2 || n > 2 ** 20) return undefined;
  return { n, salt: Buffer.from(saltText, 'base64'), key: Buffer.from(keyText, 'base64') };
}

export async function verifySecret(secret: string, stored: string | null | undefined): Promise<boolean> {
  const h = parseHash(stored);
  if (!h) return false;
  const got = await scryptAsync(secret, h.salt, h.n);
  return got.length === h.key.length && timingSafeEqual(got, h.key);
}

/**
 * Checks passwords so that an unknown user, a user without a password and a wrong password cost the
 * same KDF work (at the configured cost) as a real check: the answer's timing does not tell which
 * user names exist. `stats.kdfRuns` counts every scrypt run, the real ones and the decoys.
 */
export class PasswordChecker {
  readonly stats = { kdfRuns: 0, decoys: 0 };
  private cost: () => number;

  constructor(cost: () => number) {
    this.cost = cost;
  }

  /** True when `secret` matches `stored`; a missing or unreadable hash runs a decoy and is false. */
  async verify(secret: string, stored: string | null | undefined): Promise<boolean> {
    const h = parseHash(stored);
    this.stats.kdfRuns++;
    if (!h) {
      this.stats.decoys++;
      await scryptAsync(secret, randomBytes(16), 2 ** this.cost());
      return false;
    }
    const got = await scryptAsync(secret, h.salt, h.n);
    return got.length === h.key.length && timingSafeEqual(got, h.key);
  }
}
