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

/**
 * The Compute and Image calls tests with real guests make against one site: JSON or raw bodies, the
 * tiny guest as AMI-style images, a boot that waits for ACTIVE, the console log and the status.
 */
export class GuestApi {
  /** Every server created through this client, for killLeftovers(). */
  readonly created: string[] = [];

  constructor(
    private url: string,
    private token: string,
    private microversion = '2.45',
  ) {}

  async call(method: string, path: string, body?: unknown): Promise<{ status: number; body: any }> {
    const raw = body instanceof Uint8Array;
    const r = await fetch(`${this.url}${path}`, {
      method,
      headers: {
        'x-auth-token': this.token,
        'openstack-api-version': `compute ${this.microversion}`,
        ...(body !== undefined
          ? { 'content-type': raw ? 'application/octet-stream' : 'application/json' }
          : {}),
      },
      ...(body !== undefined ? { body: raw ? new Blob([new Uint8Array(body)]) : JSON.stringify(body) } : {}),
    });
    const text = await r.text();
    return { status: r.status, body: text ? (JSON.parse(text) as unknown) : undefined };
  }

  async image(name: string, data: Uint8Array, attrs: Record<string, string>): Promise<string> {
    const c = await this.call('POST', '/image/v2/images', { name, container_format: 'bare', ...attrs });
    if (c.status !== 201) throw new Error(`image create: ${c.status} ${JSON.stringify(c.body)}`);
    const u = await this.call('PUT', `/image/v2/images/${c.body.id}/file`, data);
    if (u.status !== 204) throw new Error(`image upload: ${u.status} ${JSON.stringify(u.body)}`);
    return c.body.id as string;
  }

  /** The tiny guest as a 1 MiB raw root disk booting its kernel and initramfs (kernel_id, ramdisk_id). */
  async tinyImage(guestDir: string, name = 'tiny'): Promise<{ root: string; kernel: string }> {
    const kernel = await this.image(`${name}-k`, readFileSync(join(guestDir, 'vmlinuz')), {
      disk_format: 'aki',
    });
    const ramdisk = await this.image(`${name}-r`, readFileSync(join(guestDir, 'initramfs.gz')), {
      disk_format: 'ari',
    });
    const root = await this.image(name, new Uint8Array(1024 * 1024), {
      disk_format: 'raw',
      kernel_id: kernel,
      ramdisk_id: ramdisk,
    });
    return { root, kernel };
  }

  async flavor(name: string, ram: number, disk: number, vcpus = 1): Promise<string> {
    const f = await this.call('POST', '/compute/v2.1/flavors', { flavor: { name, ram, vcpus, disk } });
    if (f.status !== 200) throw new Error(`flavor create: ${f.status} ${JSON.stringify(f.body)}`);
    return f.body.flavor.id as string;
  }

  /** Creates a server (no network) and returns its id; does not wait. */
  async create(name: string, imageRef: string, flavorRef: string, userData?: string): Promise<string> {
    const c = await this.call('POST', '/compute/v2.1/servers', {
      server: { name, flavorRef, imageRef, networks: 'none', ...(userData ? { user_data: userData } : {}) },
    });
    if (c.status !== 202) throw new Error(`server create: ${c.status} ${JSON.stringify(c.body)}`);
    this.created.push(c.body.server.id as string);
    return c.body.server.id as string;
  }

  /**
   * SIGKILL to the qemu of every server created here that still runs: a failed test leaves guests of
   * an on-disk site running (they outlive the site by design), so its `after` calls this.
   */
  killLeftovers(): void {
    for (const pid of this.created.flatMap((id) => qemuPids(id)))
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // gone already
      }
  }

  async status(id: string): Promise<string | undefined> {
    return (await this.call('GET', `/compute/v2.1/servers/${id}`)).body?.server?.status as string | undefined;
  }

  async consoleLog(id: string): Promise<string> {
    const r = await this.call('POST', `/compute/v2.1/servers/${id}/action`, { 'os-getConsoleOutput': {} });
    return (r.body?.output ?? '') as string;
  }

  action(id: string, body: unknown) {
    return this.call('POST', `/compute/v2.1/servers/${id}/action`, body);
  }
}

/** A user_data shell script, base64 as the API takes it. */
export const userData = (sh: string) => Buffer.from(`#!/bin/sh\n${sh}\n`).toString('base64');

/** How many times the guest printed its boot banner in `log`. */
export const boots = (log: string) => (log.match(/atoll-guest: booted/g) ?? []).length;
