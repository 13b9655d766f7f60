/**
 * @module The bootstrap admin's password and openrc on disk, never on stdout (issue 11, class 9; issue
 * 13, item 8). The password is kept in <data dir>/admin-password (0600), so a restart on the same data
 * directory keeps it and a saved openrc goes on working; the openrc is written 0600 beside it, and what
 * the CLI prints is the openrc with OS_PASSWORD read from that file.
 */
import { randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { BootstrapOptions } from '../services/identity/bootstrap.ts';

export interface AdminCredentials {
  admin: BootstrapOptions;
  /** Where the password is kept. */
  passwordFile: string;
}

/** Writes a file only its owner can read, whatever its mode was before: a fresh 0600 file renamed over it. */
export function writeSecretFile(path: string, text: string): void {
  const tmp = `${path}.${process.pid}.tmp`;
  writeFileSync(tmp, text, { mode: 0o600 });
  chmodSync(tmp, 0o600);
  renameSync(tmp, path);
}

/**
 * The admin's credentials: the given password (--admin-password or ATOLL_ADMIN_PASSWORD), else the one
 * kept in dir, else a new random one; whichever it is is kept in dir for the next start. A password
 * read back from dir is only reused (keepPassword): an admin who changed it since keeps the new one.
 */
export function adminCredentials(dir: string, given?: string): AdminCredentials {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const passwordFile = join(dir, 'admin-password');
  const kept = existsSync(passwordFile) ? readFileSync(passwordFile, 'utf8').trim() : '';
  const password = given ?? (kept || randomBytes(12).toString('base64url'));
  if (password !== kept) writeSecretFile(passwordFile, `${password}\n`);
  return {
    admin: {
      adminUser: 'admin',
      adminPassword: password,
      adminProject: 'admin',
      ...(given === undefined && kept ? { keepPassword: true } : {}),
    },
    passwordFile,
  };
}

/** Saves the openrc 0600 in dir and returns its path. */
export function saveOpenrc(dir: string, rc: string): string {
  const path = join(dir, 'openrc');
  writeSecretFile(path, rc);
  return path;
}

/** The openrc as it may be shown: every line as it is but OS_PASSWORD, which reads the password file. */
export function openrcForDisplay(rc: string, passwordFile: string): string {
  return rc
    .split('\n')
    .map((l) =>
      l.startsWith('export OS_PASSWORD=')
        ? `export OS_PASSWORD="$(cat '${passwordFile.replace(/'/g, "'\\''")}')"`
        : l,
    )
    .join('\n');
}
