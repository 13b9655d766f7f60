#!/usr/bin/env node
// Runs node's test runner on *.test.ts files (Node 20's --test has no globs), in tiers.
//
// Usage: node scripts/run-tests.mjs [--tier fast|slow|all] [--list] [folder|file ...]
//   no folder or file: the tiers below over src/ and test/; `all` (the default) runs the fast tier first
//   and stops there if it fails, then the slow tier.
//   folders or files given: those (of the tier, when --tier is given), each file with its budget below.
//   --list prints the files of the tier with why each slow one is slow, and runs nothing.
//
// Tiers (the one list; a test file not named in SLOW is fast):
//   fast: unit tests beside the code (src/**/*.test.ts) and the in-process tests under test/: the sites
//         run in this process over the in-memory fabric; no openstack CLI, nats-server, other site
//         processes or qemu. Under a minute on an idle 2-core machine.
//   slow: the rest, each with the reason it is slow.
//
// Budgets: Node 20's --test-timeout bounds a whole test file (its subprocess), not each test in it, so
// every file gets BUDGET_MS unless SLOW gives it more; files with the same budget run together.
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';

/** Per-file budget, ms: a hang costs two minutes, not fifteen. */
const BUDGET_MS = 120_000;
const CLI = 'runs the openstack CLI';
const NATS = 'starts nats-server processes';
const PROCS = 'starts site processes';

/** The slow tier: file -> why, and its budget when two minutes is not enough. */
const SLOW = {
  'test/cli-startup.test.ts': { why: PROCS },
  'test/compute-cli.test.ts': { why: CLI, budgetMs: 600_000 },
  'test/deploy-netns.test.ts': {
    why: `network namespaces (root; skipped otherwise); ${NATS}; ${PROCS}`,
    budgetMs: 300_000,
  },
  'test/fabric-conformance.test.ts': { why: NATS, budgetMs: 300_000 },
  'test/fabric-security-federation.test.ts': { why: `${PROCS}; ${CLI}`, budgetMs: 600_000 },
  'test/fabric-security.test.ts': { why: NATS, budgetMs: 300_000 },
  'test/federation-e2e.test.ts': { why: `${PROCS}; ${CLI}`, budgetMs: 600_000 },
  'test/fuzz-api.test.ts': { why: 'fuzz: 10,000 requests', budgetMs: 600_000 },
  'test/https.test.ts': { why: `${PROCS}; ${CLI}`, budgetMs: 300_000 },
  'test/identity-cli.test.ts': { why: CLI, budgetMs: 900_000 },
  'test/identity-delegation-cli.test.ts': { why: CLI, budgetMs: 600_000 },
  'test/identity-federation.test.ts': { why: CLI, budgetMs: 300_000 },
  'test/identity-http.test.ts': { why: CLI, budgetMs: 300_000 },
  'test/image-cli.test.ts': { why: CLI, budgetMs: 600_000 },
  'test/image-stream-procs.test.ts': { why: `${PROCS}; ${NATS}; 100 MiB image`, budgetMs: 300_000 },
  'test/image-conformance.test.ts': { why: CLI, budgetMs: 300_000 },
  'test/interop.test.ts': {
    why: "Tempest: the interop guideline's 217 required tests against a site process (about 4 min)",
    budgetMs: 1_200_000,
  },
  'test/isolation-matrix.test.ts': { why: CLI, budgetMs: 900_000 },
  'test/network-blocks.test.ts': {
    why: 'randomized partition schedules over five sites in real time (about 1.5 min of wall clock)',
    budgetMs: 300_000,
  },
  'test/network-cli.test.ts': { why: CLI, budgetMs: 600_000 },
  'test/network-compute.test.ts': { why: CLI, budgetMs: 300_000 },
  'test/network-dataplane.test.ts': {
    why: `qemu (two guests under TCG); ${PROCS}; ${NATS}; bridges, taps, namespaces and dnsmasq (root; skipped otherwise)`,
    budgetMs: 600_000,
  },
  'test/network-federation.test.ts': { why: CLI, budgetMs: 300_000 },
  'test/network-lease.test.ts': { why: CLI, budgetMs: 300_000 },
  'test/qemu-cross-site.test.ts': { why: `qemu; ${PROCS}; ${NATS}; 100 MiB image`, budgetMs: 600_000 },
  'test/qemu-guest.test.ts': { why: `qemu; ${PROCS}`, budgetMs: 900_000 },
  'test/qemu-restart.test.ts': { why: `qemu; ${PROCS}; ${NATS}`, budgetMs: 600_000 },
  'test/qemu-lifecycle.test.ts': { why: 'qemu: one guest through every lifecycle action', budgetMs: 600_000 },
  'test/qemu-snapshot.test.ts': { why: 'qemu', budgetMs: 600_000 },
  'test/qemu-volume.test.ts': { why: 'qemu', budgetMs: 600_000 },
  'test/secrets-at-rest.test.ts': { why: PROCS, budgetMs: 300_000 },
  'test/security-compromised-site.test.ts': { why: PROCS, budgetMs: 300_000 },
  'test/security-payload.test.ts': { why: NATS, budgetMs: 300_000 },
  'test/site-continuity.test.ts': { why: PROCS, budgetMs: 300_000 },
  'test/site-forget.test.ts': { why: `${NATS}; ${PROCS}`, budgetMs: 300_000 },
  'test/site-managed-nats.test.ts': { why: `${NATS}; ${PROCS}`, budgetMs: 300_000 },
  'test/site-name-conflict.test.ts': { why: `${NATS}; ${PROCS}`, budgetMs: 300_000 },
  'test/soak-short.test.ts': {
    why: `${NATS}; ${PROCS}; a minute of writes with a kill -9 and a partition in real time`,
    budgetMs: 300_000,
  },
  'test/volume-cli.test.ts': { why: CLI, budgetMs: 600_000 },
  'test/volume-upload.test.ts': {
    why: 'uploads two 1 GiB volumes to images (hashed, written)',
    budgetMs: 300_000,
  },
};

const args = process.argv.slice(2);
let tier = 'all';
let list = false;
const roots = [];
for (let i = 0; i < args.length; i++) {
  if (args[i] === '--list') list = true;
  else if (args[i] === '--tier') tier = args[++i];
  else if (args[i].startsWith('--tier=')) tier = args[i].slice('--tier='.length);
  else roots.push(args[i]);
}
if (!['fast', 'slow', 'all'].includes(tier)) {
  console.error(`unknown tier ${tier}: use fast, slow or all`);
  process.exit(2);
}

const walk = (p, out) => {
  const st = statSync(p, { throwIfNoEntry: false });
  if (!st) return out;
  if (st.isDirectory()) {
    for (const e of readdirSync(p)) if (e !== 'node_modules') walk(join(p, e), out);
  } else if (p.endsWith('.test.ts')) out.push(p);
  return out;
};
const norm = (p) => p.split('\\').join('/').replace(/^\.\//, '');
const filesUnder = (rs) => [...new Set(rs.flatMap((r) => walk(r, [])).map(norm))].sort();

const all = filesUnder(roots.length ? roots : ['src', 'test']);
for (const f of Object.keys(SLOW))
  if (!roots.length && !all.includes(f)) {
    console.error(`scripts/run-tests.mjs: ${f} is listed in SLOW but does not exist`);
    process.exit(2);
  }
const fast = all.filter((f) => !SLOW[f]);
const slow = all.filter((f) => SLOW[f]);

if (list) {
  const show = (name, files) =>
    files.forEach((f) => console.log(`${name}\t${f}${SLOW[f] ? `\t${SLOW[f].why}` : ''}`));
  if (tier !== 'slow') show('fast', fast);
  if (tier !== 'fast') show('slow', slow);
  process.exit(0);
}

const concurrency = process.env.ATOLL_TEST_CONCURRENCY ?? '2';
/** Runs files, one `node --test` per budget; true when all passed. */
function run(name, files) {
  if (files.length === 0) return true;
  const byBudget = new Map();
  for (const f of files) {
    const b = SLOW[f]?.budgetMs ?? BUDGET_MS;
    byBudget.set(b, [...(byBudget.get(b) ?? []), f]);
  }
  let ok = true;
  const t0 = Date.now();
  for (const [budget, group] of [...byBudget].sort((x, y) => x[0] - y[0])) {
    const r = spawnSync(
      process.execPath,
      [
        '--import',
        'tsx',
        '--test',
        `--test-concurrency=${concurrency}`,
        `--test-timeout=${budget}`,
        ...group,
      ],
      { stdio: 'inherit' },
    );
    if (r.status !== 0) ok = false;
  }
  const s = ((Date.now() - t0) / 1000).toFixed(1);
  console.error(`run-tests: ${name}: ${files.length} files in ${s} s: ${ok ? 'passed' : 'FAILED'}`);
  return ok;
}

if (roots.length)
  process.exit(run(`given (${tier})`, tier === 'fast' ? fast : tier === 'slow' ? slow : all) ? 0 : 1);
if (tier === 'fast') process.exit(run('fast tier', fast) ? 0 : 1);
if (tier === 'slow') process.exit(run('slow tier', slow) ? 0 : 1);
if (!run('fast tier', fast)) {
  console.error('run-tests: the fast tier failed; the slow tier was not run');
  process.exit(1);
}
process.exit(run('slow tier', slow) ? 0 : 1);
