/**
 * @module Test support: a local cloud of N in-process sites (real Fastify on loopback, real SQLite), and
 * a runner for Debian's real `openstack` CLI against any of them. The CLI runs as a child process with
 * an async exec, so the sites in this process keep serving while it runs (never use spawnSync here).
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startFederation } from '../../src/site/launch.ts';
import type { Federation } from '../../src/site/launch.ts';
import type { SiteConfig } from '../../src/site/site.ts';

export const ADMIN = { adminUser: 'admin', adminPassword: 'admin-secret', adminProject: 'admin' };

export interface LocalCloud {
  fed: Federation;
  /** Base URL of site i, e.g. http://127.0.0.1:40123 */
  url(i?: number): string;
  /** OS_* environment for the admin (or another user) against site i. */
  env(
    i?: number,
    user?: Partial<{ username: string; password: string; project: string; domain: string }>,
  ): Record<string, string>;
  /** Runs `openstack ARGS` against site i; never throws on a non-zero exit. */
  os(args: string[], opts?: { site?: number; env?: Record<string, string> }): Promise<CliResult>;
  /** Runs `openstack ARGS -f json` and parses stdout; throws with stderr when the command fails. */
  osJson<T = any>(args: string[], opts?: { site?: number; env?: Record<string, string> }): Promise<T>;
  /** Resolves once every site has applied every other site's whole change log. */
  converged(ms?: number): Promise<void>;
  /** A token for the admin on site i, over HTTP. */
  adminToken(i?: number): Promise<string>;
  close(): Promise<void>;
}

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

export async function startLocalCloud(
  opts: {
    sites?: number;
    latencyMs?: number;
    site?: Partial<SiteConfig>;
    onDisk?: boolean;
    /** false: the in-process network does not apply the fabric permissions (tests that play an attacker on it). */
    enforcePermissions?: boolean;
  } = {},
): Promise<LocalCloud> {
  const dir = opts.onDisk ? mkdtempSync(join(tmpdir(), 'atoll-test-')) : ':memory:';
  const fed = await startFederation({
    sites: opts.sites ?? 1,
    basePort: 0,
    host: '127.0.0.1',
    dataDir: dir,
    admin: ADMIN,
    latencyMs: opts.latencyMs ?? 0,
    logLevel: 'silent',
    site: { passwordHashCost: 10, heartbeatMs: 200, downAfterMs: 1000, ...opts.site },
    ...(opts.enforcePermissions === false ? { enforcePermissions: false } : {}),
  });
  const converged = async (ms = 10_000) => {
    await eventually(() => federationConverged(fed), ms, 'replication to converge');
  };
  await converged();
  const url = (i = 0) => fed.sites[i]!.ctx.publicUrl();
  const env = (
    i = 0,
    user: Partial<{ username: string; password: string; project: string; domain: string }> = {},
  ) => ({
    PATH: process.env.PATH ?? '/usr/bin:/bin',
    HOME: process.env.HOME ?? '/tmp',
    OS_AUTH_URL: `${url(i)}/identity/v3`,
    OS_IDENTITY_API_VERSION: '3',
    OS_USERNAME: user.username ?? ADMIN.adminUser,
    OS_PASSWORD: user.password ?? ADMIN.adminPassword,
    OS_PROJECT_NAME: user.project ?? ADMIN.adminProject,
    OS_USER_DOMAIN_NAME: user.domain ?? 'Default',
    OS_PROJECT_DOMAIN_NAME: user.domain ?? 'Default',
    OS_REGION_NAME: fed.sites[i]!.ctx.name,
    OS_INTERFACE: 'public',
  });
  const os = (args: string[], o: { site?: number; env?: Record<string, string> } = {}) =>
    runOpenstack(args, o.env ?? env(o.site ?? 0));
  return {
    fed,
    url,
    env,
    os,
    async osJson(args, o = {}) {
      const r = await os([...args, '-f', 'json'], o);
      if (r.code !== 0) throw new Error(`openstack ${args.join(' ')} failed (${r.code}): ${r.stderr}`);
      return r.stdout.trim() ? JSON.parse(r.stdout) : undefined;
    },
    converged,
    adminToken: (i = 0) => passwordToken(url(i)),
    async close() {
      await fed.close();
      if (dir !== ':memory:') rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** POST /identity/v3/auth/tokens?nocatalog with a password; the scope is optional (unscoped login). */
export function passwordLogin(
  baseUrl: string,
  user: { name: string; password: string; domainId?: string },
  scope?: unknown,
): Promise<Response> {
  return fetch(`${baseUrl}/identity/v3/auth/tokens?nocatalog`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({
      auth: {
        identity: {
          methods: ['password'],
          password: {
            user: { name: user.name, domain: { id: user.domainId ?? 'default' }, password: user.password },
          },
        },
        ...(scope ? { scope } : {}),
      },
    }),
  });
}

/** A project-scoped token for a user (the admin by default) from the site at `baseUrl`, over HTTP. */
export async function passwordToken(
  baseUrl: string,
  user: { name: string; password: string; project: string } = {
    name: ADMIN.adminUser,
    password: ADMIN.adminPassword,
    project: ADMIN.adminProject,
  },
): Promise<string> {
  const res = await passwordLogin(baseUrl, user, {
    project: { name: user.project, domain: { id: 'default' } },
  });
  if (res.status !== 201) throw new Error(`token from ${baseUrl}: ${res.status} ${await res.text()}`);
  return res.headers.get('x-subject-token')!;
}

/** True when every site has applied every other site's log up to its head. */
export function federationConverged(fed: Federation): boolean {
  return fed.sites.every((a) =>
    fed.sites.every((b) => a === b || a.ctx.changelog.cursor(b.ctx.name) >= b.ctx.changelog.head()),
  );
}

export function runOpenstack(args: string[], env: Record<string, string>): Promise<CliResult> {
  return new Promise((resolve) => {
    // stdin is closed at once: commands such as `image create` read image data from a non-tty stdin.
    const child = execFile(
      'openstack',
      args,
      { env, timeout: 120_000, maxBuffer: 16 * 1024 * 1024 },
      (err, stdout, stderr) => {
        const code = err
          ? typeof (err as { code?: unknown }).code === 'number'
            ? (err as { code: number }).code
            : 1
          : 0;
        resolve({ code, stdout: String(stdout), stderr: String(stderr) });
      },
    );
    child.stdin?.end();
  });
}

/** Polls `fn` until it returns a truthy value or `ms` pass. */
export async function eventually<T>(
  fn: () => T | Promise<T>,
  ms = 5000,
  what = 'condition',
): Promise<NonNullable<T>> {
  const end = Date.now() + ms;
  let last: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v) return v as NonNullable<T>;
    } catch (e) {
      last = e;
    }
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}${last ? `: ${String(last)}` : ''}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}
