/**
 * @module Keeps time and randomness behind the ports (src/core/ports.ts): no file under src/ reads the
 * system clock, sets a real timer or draws a random number or uuid directly, except the adapters
 * listed here, which are the real implementations (or talk to real processes and sockets). A service
 * that needs time takes `ctx.clock`; one that needs an id takes `ctx.ids`; then it runs under a
 * VirtualClock in tests like everything else.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative, sep } from 'node:path';
import { fileURLToPath } from 'node:url';

const SRC = join(fileURLToPath(new URL('.', import.meta.url)), '..');

/** Files allowed to use real time and randomness, and why. Paths relative to src/, '/' separated. */
const ADAPTERS: Record<string, string> = {
  'core/ports.ts': 'the system clock and random ids themselves',
  'fabric/nats/nats-fabric.ts': 'the NATS adapter: reconnect jitter and request deadlines on a real socket',
  'fabric/wan-proxy.ts': 'a TCP proxy delaying real bytes on real sockets (the WAN model for processes)',
  'services/common/run-program.ts': 'the kill timer of a real host program (qemu-img, ip, dnsmasq)',
  'services/compute/agent/qemu-driver.ts': 'kill timers of real qemu processes (owned by the compute rework)',
  'services/compute/agent/fake-driver.ts': 'build delay; moves to ctx.clock in the compute rework',
};
/** Folders whose files are process entry points (real time is theirs to use). */
const ADAPTER_DIRS = ['cli/'];

/** Direct uses of the system clock, real timers and randomness (a `clock.setTimeout(` call is fine). */
const FORBIDDEN: [string, RegExp][] = [
  ['Date.now()', /\bDate\.now\s*\(/],
  ['setTimeout(', /(?:^|[^\w.]|globalThis\.)setTimeout\s*\(/],
  ['setInterval(', /\bsetInterval\s*\(/],
  ['Math.random()', /\bMath\.random\s*\(/],
  ['randomUUID()', /\brandomUUID\s*\(/],
];

function sources(dir: string, out: string[] = []): string[] {
  for (const e of readdirSync(dir)) {
    const p = join(dir, e);
    if (statSync(p).isDirectory()) sources(p, out);
    else if (p.endsWith('.ts') && !p.endsWith('.test.ts')) out.push(p);
  }
  return out;
}

/** Lines of code with comments blanked (line comments and JSDoc-style lines). */
function codeLines(text: string): string[] {
  return text.split('\n').map((l) => {
    const t = l.trimStart();
    if (t.startsWith('//') || t.startsWith('*') || t.startsWith('/*')) return '';
    const i = l.indexOf('//');
    return i >= 0 && !/['"`].*\/\//.test(l) ? l.slice(0, i) : l;
  });
}

function escapes(root = SRC): string[] {
  const found: string[] = [];
  for (const file of sources(root)) {
    const rel = relative(root, file).split(sep).join('/');
    if (ADAPTERS[rel] || ADAPTER_DIRS.some((d) => rel.startsWith(d))) continue;
    codeLines(readFileSync(file, 'utf8')).forEach((line, i) => {
      for (const [name, re] of FORBIDDEN)
        if (re.test(line)) found.push(`src/${rel}:${i + 1}: ${name} outside the ports: ${line.trim()}`);
    });
  }
  return found;
}

describe('time and randomness go through the ports', () => {
  it('no file under src/ outside the adapters uses the system clock, real timers or randomness', () => {
    assert.deepEqual(escapes(), []);
  });

  it('the check sees a direct use (and not a clock port call)', () => {
    const hit = (line: string) => FORBIDDEN.some(([, re]) => re.test(codeLines(line)[0]!));
    assert.equal(hit('const t = Date.now();'), true);
    assert.equal(hit('await new Promise((r) => setTimeout(r, 10));'), true);
    assert.equal(hit('globalThis.setTimeout(f, 1);'), true);
    assert.equal(hit('this.timer = setInterval(tick, 5);'), true);
    assert.equal(hit('const id = crypto.randomUUID();'), true);
    assert.equal(hit('const x = Math.random();'), true);
    assert.equal(hit('this.ctx.clock.setTimeout(() => r(undefined), 50);'), false);
    assert.equal(hit('// Date.now() in a comment'), false);
    assert.equal(hit('clock.now()'), false);
  });

  it('every listed adapter exists (a stale entry is removed, not kept)', () => {
    for (const rel of Object.keys(ADAPTERS))
      assert.ok(statSync(join(SRC, rel), { throwIfNoEntry: false }), `src/${rel} is listed but missing`);
  });
});
