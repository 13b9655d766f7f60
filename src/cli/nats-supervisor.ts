/**
 * @module A site's own nats-server, run and supervised by `atoll site --nats managed` (and `atoll site
 * join`). The configuration is generated (src/fabric/nats/server-config.ts): the client port on
 * loopback with one user, this site's, with its least privilege; routes to other sites' servers or a
 * leaf node link, with credentials and TLS. The supervisor restarts the server when it dies (logged once
 * per outage) and stops it with the site. The server's pid file lives in the data directory: a server
 * left by a site that was killed is found and stopped at the next start, and on Linux the server is
 * started under `setpriv --pdeathsig KILL`, so it dies with the site process.
 */
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { closeSync, existsSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';
import { natsServerConfig } from '../fabric/nats/server-config.ts';
import type { NatsClusterConfig, NatsLeafConfig } from '../fabric/nats/server-config.ts';

export const NATS_SERVER_BIN = process.env.NATS_SERVER_BIN ?? '/usr/sbin/nats-server';
const SETPRIV = '/usr/bin/setpriv';

/** A secret kept 0600 in the data directory, made on first use (the site's NATS password...). */
export function keptSecret(dataDir: string, file: string, given?: string): string {
  const path = join(dataDir, file);
  if (given) {
    writeFileSync(path, `${given}\n`, { mode: 0o600 });
    return given;
  }
  if (existsSync(path)) return readFileSync(path, 'utf8').trim();
  const s = randomBytes(18).toString('base64url');
  writeFileSync(path, `${s}\n`, { mode: 0o600 });
  return s;
}

/**
 * Claims the data directory for this process (`site.pid`): refused while another live process holds
 * it, so that a second `atoll site` on the same directory never stops the first one's nats-server.
 * Returns the release function (also run at exit).
 */
export function claimDataDir(dataDir: string): () => void {
  const path = join(dataDir, 'site.pid');
  try {
    const pid = Number(readFileSync(path, 'utf8').trim());
    if (Number.isInteger(pid) && pid > 1 && pid !== process.pid && alive(pid)) {
      let cmd = '';
      try {
        cmd = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
      } catch {
        cmd = 'node';
      }
      if (/node|atoll/.test(cmd))
        throw new Error(
          `another atoll site (pid ${pid}) runs on the data directory ${dataDir}: stop it first (one process per data directory)`,
        );
    }
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
  }
  writeFileSync(path, `${process.pid}\n`, { mode: 0o600 });
  const release = () => {
    try {
      if (Number(readFileSync(path, 'utf8').trim()) === process.pid) rmSync(path, { force: true });
    } catch {
      // already gone
    }
  };
  process.once('exit', release);
  return release;
}

export interface ManagedNatsOptions {
  site: string;
  dataDir: string;
  /** Client port, on 127.0.0.1: only this site connects to it. */
  clientPort: number;
  /** The site's password on its server. */
  password: string;
  monitorPort?: number;
  cluster?: NatsClusterConfig;
  leafnodes?: NatsLeafConfig;
  /** Where lines for the operator go (stderr by default). */
  say?: (line: string) => void;
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

function portOpen(port: number): Promise<boolean> {
  return new Promise((res) => {
    const c = connect(port, '127.0.0.1', () => {
      c.destroy();
      res(true);
    });
    c.on('error', () => res(false));
  });
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

export class NatsSupervisor {
  readonly url: string;
  readonly confPath: string;
  readonly pidPath: string;
  readonly logPath: string;
  private proc: ChildProcess | undefined;
  private stopping = false;
  private down = false;
  private restarts = 0;
  private readonly o: ManagedNatsOptions;
  private readonly say: (line: string) => void;

  constructor(o: ManagedNatsOptions) {
    this.o = o;
    this.say = o.say ?? ((l) => process.stderr.write(`atoll: ${l}\n`));
    this.url = `nats://127.0.0.1:${o.clientPort}`;
    this.confPath = join(o.dataDir, 'nats-server.conf');
    this.pidPath = join(o.dataDir, 'nats-server.pid');
    this.logPath = join(o.dataDir, 'nats-server.log');
  }

  /** The generated configuration's text. */
  config(): string {
    const o = this.o;
    return natsServerConfig({
      serverName: o.site,
      port: o.clientPort,
      ...(o.monitorPort ? { monitor: { port: o.monitorPort } } : {}),
      pidFile: this.pidPath,
      users: [{ site: o.site, password: o.password }],
      ...(o.cluster ? { cluster: o.cluster } : {}),
      ...(o.leafnodes ? { leafnodes: o.leafnodes } : {}),
    });
  }

  /** Stops a server a killed site left behind (its pid file), writes the config, starts and waits. */
  async start(): Promise<void> {
    await this.reapStale();
    writeFileSync(this.confPath, this.config(), { mode: 0o600 });
    if (await portOpen(this.o.clientPort))
      throw new Error(
        `port ${this.o.clientPort} (--nats-port) is taken by another process: choose another port for this site's nats-server`,
      );
    this.spawn();
    if (!(await this.ready(10_000)))
      throw new Error(`nats-server did not start (config ${this.confPath}):\n${this.logTail()}`);
  }

  /** SIGTERM, then SIGKILL after 3 s; removes the pid file. */
  async stop(): Promise<void> {
    this.stopping = true;
    const p = this.proc;
    if (p && p.exitCode === null && p.signalCode === null) {
      const gone = new Promise<void>((r) => p.once('exit', () => r()));
      p.kill('SIGTERM');
      if (!(await Promise.race([gone.then(() => true), sleep(3000).then(() => false)]))) {
        p.kill('SIGKILL');
        await gone;
      }
    }
    rmSync(this.pidPath, { force: true });
  }

  /** The pid of the running server, if any. */
  pid(): number | undefined {
    return this.proc?.pid;
  }

  private async reapStale(): Promise<void> {
    let pid: number;
    try {
      pid = Number(readFileSync(this.pidPath, 'utf8').trim());
    } catch {
      return;
    }
    if (!Number.isInteger(pid) || pid <= 1 || !alive(pid)) return;
    let cmd = '';
    try {
      cmd = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
    } catch {
      // Not Linux, or gone already: trust the pid file only when the process still runs.
    }
    if (cmd && !cmd.includes('nats-server')) return;
    this.say(`stopping the nats-server (pid ${pid}) a previous run of site ${this.o.site} left running`);
    process.kill(pid, 'SIGTERM');
    for (let i = 0; i < 60 && alive(pid); i++) await sleep(50);
    if (alive(pid)) process.kill(pid, 'SIGKILL');
    for (let i = 0; i < 40 && alive(pid); i++) await sleep(50);
  }

  private spawn(): void {
    const fd = openSync(this.logPath, 'a', 0o600);
    const args = ['-c', this.confPath];
    const [cmd, argv] = existsSync(SETPRIV)
      ? [SETPRIV, ['--pdeathsig', 'KILL', '--', NATS_SERVER_BIN, ...args]]
      : [NATS_SERVER_BIN, args];
    const proc = spawn(cmd, argv, { stdio: ['ignore', fd, fd] });
    closeSync(fd);
    this.proc = proc;
    proc.once('exit', (code, signal) => {
      if (this.proc !== proc || this.stopping) return;
      this.proc = undefined;
      const wait = Math.min(30_000, 500 * 2 ** Math.min(this.restarts, 6));
      this.restarts++;
      if (!this.down)
        this.say(`nats-server exited (${signal ?? `code ${code}`}); restarting it (log ${this.logPath})`);
      this.down = true;
      void sleep(wait).then(() => this.respawn());
    });
    proc.once('error', (e) => this.say(`cannot run ${NATS_SERVER_BIN}: ${e.message}`));
  }

  private async respawn(): Promise<void> {
    if (this.stopping) return;
    this.spawn();
    if (await this.ready(10_000)) {
      if (this.down) this.say('nats-server is running again');
      this.down = false;
      this.restarts = 0;
    }
  }

  private async ready(ms: number): Promise<boolean> {
    const end = Date.now() + ms;
    while (Date.now() < end) {
      if (!this.proc) return false;
      if (await portOpen(this.o.clientPort)) return true;
      await sleep(50);
    }
    return false;
  }

  private logTail(): string {
    try {
      return readFileSync(this.logPath, 'utf8').split('\n').slice(-15).join('\n');
    } catch {
      return '(no log)';
    }
  }
}
