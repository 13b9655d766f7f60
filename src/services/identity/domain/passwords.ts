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

export async function verifySecret(secret: string, stored: string | null | undefined): Promise<boolean> {
  if (!stored) return false;
  const [alg, nText, saltText, keyText] = stored.split('$');
  if (alg !== 'scrypt' || !nText || !saltText || !keyText) return false;
  const n = Number(nText);
  if (!Number.isInteger(n) || n < 2 || n > 2 ** 20) return false;
  const expected = Buffer.from(keyText, 'base64');
  const got = await scryptAsync(secret, Buffer.from(saltText, 'base64'), n);
  return got.length === expected.length && timingSafeEqual(got, expected);
}
