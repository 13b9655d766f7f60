/**
 * @module Helpers for tests with real guests (the QEMU driver): whether qemu runs here, the tiny
 * guest (scripts/build-guest.sh), and the qemu processes of an instance found through /proc.
 */
import { execFile } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';

const exec = promisify(execFile);

/** A reason to skip when qemu-system-x86_64 cannot run here, else undefined. */
export async function qemuSkip(): Promise<string | undefined> {
  try {
    await exec('qemu-system-x86_64', ['-version']);
    return undefined;
  } catch (e) {
    return `qemu-system-x86_64 does not run here (${(e as Error).message.split('\n')[0]}); sh scripts/install-deps.sh installs it`;
  }
}

/** Builds the tiny guest (idempotent: a stamp names the kernel package it was built from). */
export async function buildGuest(): Promise<void> {
  await exec('sh', [join(import.meta.dirname, '..', '..', 'scripts', 'build-guest.sh')], {
    timeout: 120_000,
  });
}

/** The pids of the qemu processes running instance `id` (its `-name guest=<id>`). */
export function qemuPids(id: string): number[] {
  return readdirSync('/proc')
    .filter((p) => /^\d+$/.test(p))
    .filter((p) => {
      try {
        return readFileSync(`/proc/${p}/cmdline`, 'utf8').includes(`guest=${id}`);
      } catch {
        return false;
      }
    })
    .map(Number);
}
