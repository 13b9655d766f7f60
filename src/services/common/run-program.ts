/**
 * @module Runs a host program (qemu-img, ip, dnsmasq...) to completion without blocking the event
 * loop: the compute driver and the network data plane share it.
 */
import { spawn } from 'node:child_process';

/**
 * Runs a program to completion without blocking; rejects with its stderr when it fails. The kill
 * timeout is real time on purpose: it bounds a real process, which a virtual clock does not run.
 */
export function run(cmd: string, args: string[], timeoutMs = 60_000): Promise<string> {
  return new Promise((resolve, reject) => {
    const p = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    const t = setTimeout(() => p.kill('SIGKILL'), timeoutMs);
    p.stdout.on('data', (d: Buffer) => (out += d.toString()));
    p.stderr.on('data', (d: Buffer) => (err += d.toString()));
    p.on('error', (e) => {
      clearTimeout(t);
      reject(e);
    });
    p.on('close', (code) => {
      clearTimeout(t);
      if (code === 0) resolve(out);
      else
        reject(new Error(`${cmd} ${args[0] ?? ''} failed (${code ?? 'killed'}): ${err.trim().slice(-500)}`));
    });
  });
}
