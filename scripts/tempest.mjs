#!/usr/bin/env node
/**
 * @module Runs OpenStack's own conformance suite (Tempest, Debian's `tempest` package) against one fresh
 * Atoll site, so "clients work unchanged" is measured rather than assumed (issue 15).
 *
 *   node scripts/tempest.mjs [SUITE] [--concurrency 2] [--keep] [--out FILE] [--sites N --via SITE]
 *
 * SUITE is a Tempest regex (`tempest.api.volume`), a short name (identity, image, volume, compute,
 * network), `all` (each short name and each include list in turn) or a named include list: `interop` runs the 217 tests the OpenStack Powered Compute
 * guideline 2020.06 requires (conformance/interop-2020.06-powered-compute.txt), and fails when fewer
 * ran. The script installs `tempest` when missing, starts `atoll up --sites 1` on a free port with its
 * data in a temp dir, creates what Tempest needs (two images, two flavors, pre-provisioned accounts:
 * admins on the admin project and members of projects of their own), writes a Tempest workspace and
 * tempest.conf, runs `tempest run --regex SUITE`, prints one line per finished test and a summary, and
 * saves the summary (passed, failed, skipped, the failing test ids with their exception) to
 * bench/results/tempest-<suite>.json and the suite's row in docs/conformance.md. --keep leaves the temp
 * dir (site data, tempest.log, the full run log) for reading; it is removed otherwise. --out FILE
 * writes the summary there instead and leaves bench/results and docs/conformance.md alone (CI).
 * --sites N --via SITE starts N sites, provisions at the founder (site-a) and points Tempest at SITE,
 * which owns none of it: the results go to their own row and file (tempest-<suite>-via-SITE.json).
 */
import { execFileSync, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const SHORT = {
  identity: 'tempest.api.identity',
  image: 'tempest.api.image',
  volume: 'tempest.api.volume',
  compute: 'tempest.api.compute',
  network: 'tempest.api.network',
};
/**
 * Named include lists (`tempest run --include-list`, one regex a line): `interop` is the OpenStack
 * Powered Compute guideline 2020.06's 217 required tests (the file's header names its source).
 */
const LISTS = {
  interop: join(ROOT, 'conformance', 'interop-2020.06-powered-compute.txt'),
};
/** How many tests an include list names: its non-comment, non-empty lines. */
function listSize(file) {
  return readFileSync(file, 'utf8')
    .split('\n')
    .map((l) => l.split('#')[0].trim())
    .filter(Boolean).length;
}
/** The microversion range Atoll's Block Storage API offers (src/services/volume/api/routes.ts). */
const VOLUME_MV = { min: '3.0', max: '3.60' };
/** The Compute API's microversion range (src/services/compute/api/microversion.ts). */
const COMPUTE_MV = { min: '2.1', max: '2.79' };

const log = (msg) => process.stdout.write(`[tempest] ${msg}\n`);

function ensureTempest() {
  try {
    execFileSync('sh', ['-c', 'command -v tempest'], { stdio: 'ignore' });
    return;
  } catch {
    log("installing Debian's tempest package (apt-get)");
  }
  const sudo = process.getuid?.() === 0 ? [] : ['sudo'];
  const run = (args) =>
    execFileSync(sudo[0] ?? args[0], sudo.length ? args : args.slice(1), { stdio: 'inherit' });
  run(['apt-get', 'update', '-qq']);
  execFileSync(
    sudo[0] ?? 'apt-get',
    [...(sudo.length ? ['apt-get'] : []), 'install', '-y', '-qq', 'tempest'],
    {
      stdio: 'inherit',
      env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' },
    },
  );
}

/**
 * Starts `atoll up --sites N` (settings from configFile) and resolves once it serves, with every
 * site's region (its name) and base URL, the first (site-a, the founder) first.
 */
function startSites(dataDir, password, n, configFile) {
  const child = spawn(
    join(ROOT, 'bin/atoll'),
    ['up', '--sites', String(n), '--base-port', '0', '--data-dir', dataDir, '--config', configFile],
    {
      stdio: ['ignore', 'pipe', 'inherit'],
      env: { ...process.env, ATOLL_PASSWORD_HASH_COST: '4', ATOLL_ADMIN_PASSWORD: password },
    },
  );
  return new Promise((res, rej) => {
    let out = '';
    child.once('exit', (code) => rej(new Error(`atoll up exited (${code}) before serving:\n${out}`)));
    child.stdout.on('data', (b) => {
      out += String(b);
      if (!out.includes('Press Ctrl-C')) return;
      const sites = [...out.matchAll(/^\s+(\S+)\s+region\/AZ\s+\S+\s+(http\S+)/gm)].map((m) => ({
        region: m[1],
        url: m[2],
      }));
      child.removeAllListeners('exit');
      child.stdout.resume();
      res({ child, sites });
    });
  });
}

/**
 * The web-download source Tempest's import test fetches (`[image] http_image`): a local HTTP server
 * with one image's bytes, the only URL (with the unreachable one Tempest's negative test names) the
 * sites' webDownloadAllowed lists (docs/conformance.md).
 */
function startImageSource() {
  const bytes = randomBytes(4096);
  const server = createServer((req, res) => {
    if (req.url !== '/tempest-image.raw') return res.writeHead(404).end();
    res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': bytes.length });
    res.end(bytes);
  });
  return new Promise((res) =>
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      res({ server, base: `http://127.0.0.1:${port}/`, image: `http://127.0.0.1:${port}/tempest-image.raw` });
    }),
  );
}
/** The host Tempest's ImportImagesNegativeTest web-downloads from, to see the import fail. */
const TEMPEST_BAD_URL_PREFIX = 'http://does-not.exist/';

/**
 * Waits until `site` has replicated what was provisioned at the founder: the last account can log in
 * there and the images are listed there.
 */
async function waitReplicated(url, account, imageIds) {
  const deadline = Date.now() + 60_000;
  for (;;) {
    try {
      const res = await fetch(`${url}/identity/v3/auth/tokens`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({
          auth: {
            identity: {
              methods: ['password'],
              password: {
                user: { name: account.username, domain: { id: 'default' }, password: account.password },
              },
            },
          },
        }),
      });
      if (res.status === 201) {
        const token = res.headers.get('x-subject-token');
        const seen = await Promise.all(
          imageIds.map(
            async (id) =>
              (await fetch(`${url}/image/v2/images/${id}`, { headers: { 'x-auth-token': token } })).status,
          ),
        );
        if (seen.every((st) => st === 200)) return;
      }
    } catch {
      // not serving yet
    }
    if (Date.now() > deadline)
      throw new Error(`${url} did not replicate the provisioned accounts and images in 60 s`);
    await new Promise((r) => setTimeout(r, 500));
  }
}

/** A small JSON client for the provisioning calls (admin token, catalog-free paths). */
function client(url, password) {
  let token;
  const call = async (method, path, body, headers = {}) => {
    const res = await fetch(`${url}${path}`, {
      method,
      headers: {
        ...(token ? { 'x-auth-token': token } : {}),
        ...(body !== undefined && !(body instanceof Uint8Array)
          ? { 'content-type': 'application/json' }
          : {}),
        ...headers,
      },
      ...(body !== undefined ? { body: body instanceof Uint8Array ? body : JSON.stringify(body) } : {}),
    });
    const text = await res.text();
    if (res.status >= 400) throw new Error(`${method} ${path}: ${res.status} ${text}`);
    if (path === '/identity/v3/auth/tokens') token = res.headers.get('x-subject-token');
    return text ? JSON.parse(text) : {};
  };
  const login = () =>
    call('POST', '/identity/v3/auth/tokens', {
      auth: {
        identity: {
          methods: ['password'],
          password: { user: { name: 'admin', domain: { id: 'default' }, password } },
        },
        scope: { project: { name: 'admin', domain: { id: 'default' } } },
      },
    });
  return { call, login };
}

/** What Tempest needs up front: two images with bytes and two flavors. Returns their ids. */
async function provision(api) {
  const image = async (name) => {
    const img = await api.call('POST', '/image/v2/images', {
      name,
      disk_format: 'raw',
      container_format: 'bare',
      visibility: 'public',
    });
    await api.call('PUT', `/image/v2/images/${img.id}/file`, new Uint8Array(randomBytes(1024)), {
      'content-type': 'application/octet-stream',
    });
    return img.id;
  };
  const flavor = async (name, ram, disk) =>
    (await api.call('POST', '/compute/v2.1/flavors', { flavor: { name, ram, vcpus: 1, disk } })).flavor.id;
  // The external network Tempest's router and floating IP tests use (public_network_id): not shared,
  // as in a usual deployment, with a subnet for gateway and floating addresses.
  const publicNet = (
    await api.call('POST', '/network/v2.0/networks', {
      network: { name: 'public', 'router:external': true, shared: false },
    })
  ).network;
  await api.call('POST', '/network/v2.0/subnets', {
    subnet: { network_id: publicNet.id, name: 'public-subnet', ip_version: 4, cidr: '172.24.4.0/24' },
  });
  // The extensions the site offers: Tempest's [network-feature-enabled] api_extensions, so tests of
  // what Atoll does not offer (l3-ha, filter-validation, ...) are skipped, as on a Neutron whose
  // deployment lists its extensions (docs/conformance.md).
  const networkExtensions = (await api.call('GET', '/network/v2.0/extensions')).extensions.map(
    (e) => e.alias,
  );
  return {
    networkExtensions,
    publicNet: publicNet.id,
    image: await image('tempest-image'),
    imageAlt: await image('tempest-image-alt'),
    flavor: await flavor('tempest-tiny', 128, 1),
    flavorAlt: await flavor('tempest-small', 256, 1),
  };
}

/**
 * Pre-provisioned credentials (Tempest's accounts.yaml). Dynamic credentials would give each test class
 * an admin of a fresh project, and only the admin role on the admin project makes a cloud admin in
 * Atoll (Keystone's admin_project_name, docs/security.md); so admins here are users with the admin role
 * on the admin project and on the system, and the others are members of projects of their own. Enough of each for
 * --concurrency classes at once, each locking a primary, an alt and an admin.
 */
async function provisionAccounts(api, concurrency) {
  const roleId = async (name) => {
    const { roles } = await api.call('GET', `/identity/v3/roles?name=${name}`);
    if (!roles?.length) throw new Error(`no ${name} role`);
    return roles[0].id;
  };
  const [admin, member] = [await roleId('admin'), await roleId('member')];
  const { projects } = await api.call('GET', '/identity/v3/projects?name=admin');
  const adminProject = projects[0].id;
  const user = async (name, projectId, role) => {
    const password = randomBytes(12).toString('base64url');
    const u = (
      await api.call('POST', '/identity/v3/users', {
        user: { name, password, domain_id: 'default', default_project_id: projectId },
      })
    ).user;
    await api.call('PUT', `/identity/v3/projects/${projectId}/users/${u.id}/roles/${role}`);
    // Admins on the system too: they provision the identity admin classes' dynamic credentials with
    // system-scoped tokens ([auth] admin_system = all).
    if (role === admin) await api.call('PUT', `/identity/v3/system/users/${u.id}/roles/${role}`);
    return { username: name, password };
  };
  const accounts = [];
  const n = Math.max(2, Number(concurrency));
  for (let i = 1; i <= n * 2; i++) {
    const project = (
      await api.call('POST', '/identity/v3/projects', {
        project: { name: `tempest-project-${i}`, domain_id: 'default' },
      })
    ).project;
    // Room for what failed tests leave behind: accounts are reused from class to class.
    await api.call('PUT', `/volume/v3/${adminProject}/os-quota-sets/${project.id}`, {
      quota_set: { volumes: 100, snapshots: 100, gigabytes: 10000 },
    });
    accounts.push({
      ...(await user(`tempest-user-${i}`, project.id, member)),
      project_name: project.name,
      roles: ['member'],
    });
  }
  await api.call('PUT', `/volume/v3/${adminProject}/os-quota-sets/${adminProject}`, {
    quota_set: { volumes: 100, snapshots: 100, gigabytes: 10000 },
  });
  for (let i = 1; i <= n; i++)
    accounts.push({
      ...(await user(`tempest-admin-${i}`, adminProject, admin)),
      project_name: 'admin',
      roles: ['admin'],
      types: ['admin'],
    });
  return accounts;
}

/** accounts.yaml by hand: a list of flat maps whose values are strings or lists of strings. */
function accountsYaml(accounts) {
  const q = (v) => JSON.stringify(v);
  return accounts
    .map((a) => {
      const lines = Object.entries({ ...a, user_domain_name: 'Default', project_domain_name: 'Default' }).map(
        ([k, v]) => `${k}: ${Array.isArray(v) ? `[${v.map(q).join(', ')}]` : q(v)}`,
      );
      return `- ${lines.join('\n  ')}`;
    })
    .join('\n')
    .concat('\n');
}

/** tempest.conf: what Atoll offers, switched on; what it does not, off (docs/conformance.md). */
function tempestConf({ url, region, password, ids, workspace, list, httpImage }) {
  const sections = {
    DEFAULT: { log_file: join(workspace, 'tempest.log'), debug: 'true' },
    auth: {
      use_dynamic_credentials: 'false',
      test_accounts_file: join(workspace, 'etc', 'accounts.yaml'),
      admin_username: 'admin',
      admin_password: password,
      admin_project_name: 'admin',
      admin_domain_name: 'Default',
      // The provisioning admin (dynamic credentials) works with a system-scoped token.
      admin_system: 'all',
      default_credentials_domain_name: 'Default',
    },
    enforce_scope: { keystone: 'true' },
    identity: {
      uri_v3: `${url}/identity/v3`,
      auth_version: 'v3',
      region,
      disable_ssl_certificate_validation: 'true',
    },
    // What a Keystone deployment has (docs/conformance.md): trusts, application credentials with
    // access rules, project tags, domain-specific configuration. Not security compliance (password
    // history, lockout), which Keystone leaves off by default and Atoll does not implement.
    'identity-feature-enabled': {
      api_v2: 'false',
      api_v3: 'true',
      trust: 'true',
      application_credentials: 'true',
      access_rules: 'true',
      project_tags: 'true',
      domain_specific_drivers: 'true',
      security_compliance: 'false',
    },
    service_available: {
      cinder: 'true',
      glance: 'true',
      nova: 'true',
      neutron: 'true',
      swift: 'false',
      heat: 'false',
      horizon: 'false',
    },
    compute: {
      region,
      image_ref: ids.image,
      image_ref_alt: ids.imageAlt,
      flavor_ref: ids.flavor,
      flavor_ref_alt: ids.flavorAlt,
      build_timeout: '60',
      min_microversion: COMPUTE_MV.min,
      max_microversion: COMPUTE_MV.max,
    },
    'compute-feature-enabled': {
      console_output: 'false',
      vnc_console: 'false',
      spice_console: 'false',
      // Tempest 33 runs its server metadata writes only under this (deprecated) flag; Atoll's server
      // metadata is writable. The interop guideline requires those tests; the flag also turns on
      // os-agents and resetNetwork tests, which Atoll does not offer, so only the interop run sets it.
      ...(list === 'interop' ? { xenapi_apis: 'true' } : {}),
    },
    // The fake compute driver boots no guest to log in to (Nova's fake-driver jobs run the same way).
    validation: { run_validation: 'false' },
    // web-download fetches http_image from the harness's local server (startImageSource).
    image: { region, build_timeout: '60', http_image: httpImage },
    // Interoperable import (glance-direct, web-download, copy-image), one store per site; no cache
    // API, no locations.
    'image-feature-enabled': {
      api_v1: 'false',
      api_v2: 'true',
      import_image: 'true',
      os_glance_reserved: 'true',
    },
    network: { region, public_network_id: ids.publicNet, floating_network_name: 'public' },
    'network-feature-enabled': { api_extensions: ids.networkExtensions.join(', ') },
    volume: {
      region,
      catalog_type: 'volumev3',
      min_microversion: VOLUME_MV.min,
      max_microversion: VOLUME_MV.max,
      build_timeout: '60',
      storage_protocol: 'iSCSI',
      vendor_name: 'Open Source',
      volume_size: '1',
    },
    'volume-feature-enabled': {
      backup: 'true',
      snapshot: 'true',
      clone: 'true',
      manage_snapshot: 'false',
      manage_volume: 'false',
      extend_attached_volume: 'false',
      multi_backend: 'false',
      cluster_active_active: 'false',
    },
  };
  return Object.entries(sections)
    .map(
      ([s, kv]) =>
        `[${s}]\n${Object.entries(kv)
          .map(([k, v]) => `${k} = ${v}`)
          .join('\n')}\n`,
    )
    .join('\n');
}

/** One line of `tempest run` output: "{0} tempest.x.Y.test_z [0.1s] ... ok" (or FAILED, SKIPPED: why). */
const RESULT = /^\{\d+\}\s+(\S+(?:\s+\([^)]*\))?)\s+(?:\[[^\]]*\]\s+)?\.\.\.\s+(ok|FAILED|SKIPPED:?\s*(.*))$/;

function testId(raw) {
  // setUpClass (tempest.api.x.Class) -> tempest.api.x.Class.setUpClass; drop the [id-...,smoke] tags.
  const m = /^(\w+)\s+\(([^)]+)\)$/.exec(raw);
  return (m ? `${m[2]}.${m[1]}` : raw).replace(/\[[^\]]*\]$/, '');
}

/**
 * The exception of a failing test, from the traceback tempest prints right after its FAILED line: the
 * first "module.Exception: text" line at the traceback's indentation, with the "Details:" line after it.
 */
function errorOf(block) {
  const i = block.findIndex((l) => /^ {4}[A-Za-z_][\w.]*:\s/.test(l) && !/^ {4}(File|Traceback)\b/.test(l));
  if (i < 0) return '';
  const details = /^Details:/.test(block[i + 1] ?? '') ? ` ${block[i + 1].trim()}` : '';
  return `${block[i].trim()}${details}`.slice(0, 500);
}

/**
 * Tempest 33's identity admin classes run as system admins (scripts/tempest-shim/sitecustomize.py):
 * their dynamic admins get the admin role on the system and system-scoped tokens, as later Tempest
 * releases do with [enforce_scope] keystone = true. Without it they are admins of fresh projects,
 * which no scope-enforcing cloud treats as cloud admins (docs/conformance.md).
 */
function shimEnv() {
  const shim = fileURLToPath(new URL('./tempest-shim', import.meta.url));
  const path = [shim, process.env.PYTHONPATH].filter(Boolean).join(':');
  return { ...process.env, PYTHONPATH: path, ATOLL_TEMPEST_SYSTEM_SCOPE: '1' };
}

async function runTempest(workspace, selection, concurrency, logFile) {
  const counts = { passed: 0, failed: 0, skipped: 0 };
  const failing = [];
  const skipped = [];
  const lines = [];
  const child = spawn('tempest', ['run', ...selection, '--concurrency', String(concurrency)], {
    cwd: workspace,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: shimEnv(),
  });
  child.stderr.on('data', (b) => lines.push(String(b)));
  let block = null;
  const closeBlock = () => {
    if (block) block.test.error = errorOf(block.lines);
    block = null;
  };
  for await (const line of createInterface({ input: child.stdout })) {
    lines.push(line);
    const m = RESULT.exec(line.trim());
    if (!m) {
      if (block && /^Captured pythonlogging/.test(line)) closeBlock();
      else block?.lines.push(line);
      continue;
    }
    closeBlock();
    const id = testId(m[1]);
    if (m[2] === 'ok') counts.passed++;
    else if (m[2] === 'FAILED') {
      counts.failed++;
      const test = { id, error: '' };
      failing.push(test);
      block = { test, lines: [] };
    } else {
      counts.skipped++;
      skipped.push({ id, reason: m[3] ?? '' });
    }
    const done = counts.passed + counts.failed + counts.skipped;
    const word = m[2] === 'ok' ? ' ok ' : m[2] === 'FAILED' ? 'FAIL' : 'skip';
    log(`${String(done).padStart(4)} ${word} ${id}`);
  }
  closeBlock();
  await new Promise((res) => child.once('close', res));
  writeFileSync(logFile, lines.join('\n'));
  return { counts, failing, skipped };
}

/**
 * Keeps docs/conformance.md's table of latest results in step: the row of this suite between the
 * tempest:results markers is replaced (or added), the other suites' rows are left as they are.
 */
function updateDocsTable(summary) {
  const file = join(ROOT, 'docs', 'conformance.md');
  let text;
  try {
    text = readFileSync(file, 'utf8');
  } catch {
    return;
  }
  const begin = '<!-- tempest:results:begin -->';
  const end = '<!-- tempest:results:end -->';
  const [i, j] = [text.indexOf(begin), text.indexOf(end)];
  if (i < 0 || j < i) return;
  const key = `| \`${summary.row}\` |`;
  const row = `${key} ${summary.passed} | ${summary.failed} | ${summary.skipped} | ${summary.date} |`;
  const rows = text
    .slice(i + begin.length, j)
    .split('\n')
    .filter((l) => l.startsWith('| `'))
    .filter((l) => !l.startsWith(key));
  rows.push(row);
  rows.sort();
  const table = ['| suite | passed | failed | skipped | date |', '|---|---|---|---|---|', ...rows].join('\n');
  writeFileSync(file, `${text.slice(0, i + begin.length)}\n${table}\n${text.slice(j)}`);
}

/**
 * `all`: every short-named suite and the interop list, one after the other, each against a fresh
 * federation (this script again, with the same options), then one line per suite. --out FILE writes
 * FILE.<suite>.json for each. Exits non-zero when any suite failed.
 */
async function runAll(rest, out) {
  const opts = [];
  for (let i = 0; i < rest.length; i++) {
    if (rest[i] === 'all') continue;
    if (rest[i] === '--out') i++;
    else if (!rest[i].startsWith('--out=')) opts.push(rest[i]);
  }
  const lines = [];
  let failed = false;
  for (const suite of [...Object.keys(SHORT), ...Object.keys(LISTS)]) {
    const args = [
      fileURLToPath(import.meta.url),
      suite,
      ...opts,
      ...(out ? ['--out', `${out}.${suite}.json`] : []),
    ];
    const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'inherit'] });
    let text = '';
    child.stdout.on('data', (b) => {
      process.stdout.write(b);
      text += String(b);
    });
    const code = await new Promise((res) => child.once('exit', res));
    if (code !== 0) failed = true;
    const last = [...text.matchAll(/^\[tempest\] (\S+: \d+ passed, \d+ failed, \d+ skipped)$/gm)].at(-1);
    lines.push(last ? last[1] : `${suite}: did not finish (exit ${code})`);
  }
  log('all suites:');
  for (const l of lines) log(`  ${l}`);
  process.exitCode = failed ? 1 : 0;
}

async function main() {
  const { values, positionals } = parseArgs({
    allowPositionals: true,
    options: {
      concurrency: { type: 'string', default: '2' },
      keep: { type: 'boolean', default: false },
      // Write the summary here and leave bench/results and docs/conformance.md alone (the CI test).
      out: { type: 'string' },
      // A federation of N sites, Tempest pointed at --via (not the founder, where everything
      // Tempest is given was made): forwarding to owners is then on every write path.
      sites: { type: 'string', default: '1' },
      via: { type: 'string' },
    },
  });
  const nSites = Number(values.sites);
  if (!Number.isInteger(nSites) || nSites < 1 || nSites > 26) throw new Error('--sites must be 1 to 26');
  if (values.via && nSites < 2) throw new Error('--via needs --sites 2 or more');
  const arg = positionals[0] ?? 'volume';
  if (arg === 'all') return runAll(process.argv.slice(3), values.out);
  const suite = LISTS[arg] ? arg : (SHORT[arg] ?? arg);
  const selection = LISTS[arg] ? ['--include-list', LISTS[arg]] : ['--regex', suite];
  ensureTempest();
  const tmp = mkdtempSync(join(tmpdir(), 'atoll-tempest-'));
  const password = randomBytes(12).toString('base64url');
  const source = await startImageSource();
  const siteConfig = join(tmp, 'site-config.json');
  writeFileSync(
    siteConfig,
    JSON.stringify({ services: { image: { webDownloadAllowed: [source.base, TEMPEST_BAD_URL_PREFIX] } } }),
  );
  log(`starting ${nSites === 1 ? 'one site' : `${nSites} sites`} (data in ${tmp})`);
  const fed = await startSites(join(tmp, 'site'), password, nSites, siteConfig);
  const founder = fed.sites[0];
  const via = values.via ? fed.sites.find((x) => x.region === values.via) : founder;
  if (!founder || !via)
    throw new Error(`no site ${values.via} among ${fed.sites.map((x) => x.region).join(', ')}`);
  const cleanups = [() => source.server.close()];
  const stop = () => fed.child.kill('SIGTERM');
  process.on('SIGINT', () => {
    stop();
    process.exit(130);
  });
  try {
    log(`site ${founder.region} at ${founder.url}; provisioning images and flavors`);
    const api = client(founder.url, password);
    await api.login();
    const ids = await provision(api);
    const accounts = await provisionAccounts(api, values.concurrency);
    if (via !== founder) {
      log(`waiting for ${via.region} (${via.url}) to replicate them; Tempest talks to ${via.region}`);
      await waitReplicated(via.url, accounts[accounts.length - 1], [ids.image, ids.imageAlt]);
    }
    const workspace = join(tmp, 'workspace');
    // A workspace of its own name, so runs never collide in ~/.tempest/workspace.yaml; removed after.
    const name = `atoll-${randomBytes(4).toString('hex')}`;
    execFileSync('tempest', ['init', '--name', name, workspace], { stdio: 'ignore', cwd: tmp });
    cleanups.push(() =>
      execFileSync('tempest', ['workspace', 'remove', '--name', name], { stdio: 'ignore', cwd: tmp }),
    );
    mkdirSync(join(workspace, 'etc'), { recursive: true });
    writeFileSync(join(workspace, 'etc', 'accounts.yaml'), accountsYaml(accounts));
    writeFileSync(
      join(workspace, 'etc', 'tempest.conf'),
      tempestConf({
        ...via,
        password,
        ids,
        workspace,
        list: LISTS[arg] ? arg : undefined,
        httpImage: source.image,
      }),
    );
    log(`running tempest run ${selection.join(' ')} --concurrency ${values.concurrency}`);
    const started = Date.now();
    const r = await runTempest(workspace, selection, values.concurrency, join(tmp, 'run.log'));
    const summary = {
      suite,
      // The results table's row: a run through a non-owner site has a row of its own.
      row: via === founder ? suite : `${suite} (${nSites} sites, via ${via.region})`,
      date: new Date().toISOString().slice(0, 10),
      tempest: execFileSync('dpkg-query', ['-W', '-f=${Version}', 'tempest'], { encoding: 'utf8' }).trim(),
      sites: nSites,
      ...(via !== founder ? { via: via.region, owner_of_provisioned: founder.region } : {}),
      seconds: Math.round((Date.now() - started) / 1000),
      ...r.counts,
      ...(LISTS[arg] ? { listed: listSize(LISTS[arg]) } : {}),
      failing: r.failing,
      skipped_tests: r.skipped,
    };
    const out = values.out
      ? resolve(values.out)
      : join(
          ROOT,
          'bench',
          'results',
          `tempest-${suite.replace(/^tempest\.api\./, '').replace(/[^\w.-]+/g, '_')}${via === founder ? '' : `-via-${via.region}`}.json`,
        );
    writeFileSync(out, `${JSON.stringify(summary, null, 2)}\n`);
    if (!values.out) updateDocsTable(summary);
    log(`${suite}: ${r.counts.passed} passed, ${r.counts.failed} failed, ${r.counts.skipped} skipped`);
    for (const f of r.failing) log(`  FAIL ${f.id}${f.error ? `: ${f.error}` : ''}`);
    const ran = r.counts.passed + r.counts.failed + r.counts.skipped;
    // An include list must run every test it names: one that was not found or not run is a failure.
    const short = summary.listed !== undefined && ran < summary.listed;
    if (short) log(`${suite}: the list names ${summary.listed} tests, ${ran} ran`);
    log(
      `summary saved to ${values.out ? out : out.slice(ROOT.length + 1)}${values.keep ? `; run log in ${join(tmp, 'run.log')}` : ''}`,
    );
    process.exitCode = r.counts.failed || short ? 1 : 0;
  } finally {
    stop();
    for (const c of cleanups) c();
    if (!values.keep) rmSync(tmp, { recursive: true, force: true });
  }
}

await main();
