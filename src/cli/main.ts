/**
 * @module The `atoll` command.
 *   atoll up [--sites N] [--base-port P] [--data-dir D] [--latency-ms L]   local federation (main job)
 *   atoll site --name N [--port P] [--data-dir D] [--nats URL] [--bootstrap] [--config FILE]
 *   atoll sites                                                          the federation seen from OS_AUTH_URL
 * Config precedence for `atoll site`: flags > ATOLL_* environment > --config JSON file > defaults.
 */
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { COMPUTE_DRIVERS } from '../services/compute/agent/driver.ts';
import { adminCredentials, openrcForDisplay, saveOpenrc } from './admin-credentials.ts';
import { openrc, startFederation, startSite } from '../site/launch.ts';
import type { SiteConfig } from '../site/site.ts';
import type { NatsSupervisor } from './nats-supervisor.ts';
import type { NatsClusterConfig, NatsLeafConfig } from '../fabric/nats/server-config.ts';

const HELP = `atoll: many autonomous sites, one OpenStack-compatible cloud

  atoll up     [--sites 3] [--base-port 5000] [--host 127.0.0.1] [--data-dir .atoll] [--latency-ms 0]
               [--admin-password PW] [--log-level warn] [--compute-driver fake|qemu] [--config FILE]
               Starts a local federation on the in-process fabric, prints endpoints and an openrc
               (saved 0600 as DATA_DIR/openrc; the admin password is kept in DATA_DIR/admin-password
               across restarts and is never printed). --config FILE: JSON site settings every site
               gets (services.*, as for \`atoll site --config\`).
  atoll site   --name NAME [--port 5000] [--host 127.0.0.1] [--data-dir DIR] [--nats URL[,URL]]
               [--nats-user U --nats-password P] [--bootstrap] [--admin-password PW] [--config FILE]
               [--nats-tls-ca PEM [--nats-tls-cert PEM --nats-tls-key PEM]] (TLS, mutual with a cert)
               [--tls-cert PEM --tls-key PEM] (HTTPS) [--invite TOKEN] [--trust open|admitted]
               [--compute-driver fake|qemu] (real guests with qemu: docs/compute.md)
               Runs one site (over NATS when --nats is given). With --bootstrap, the admin password and
               an openrc are saved 0600 in DIR (admin-password, openrc), as for \`atoll up\`.
               --nats managed [--nats-port P] [--nats-cluster HOST:6222 --nats-routes nats-route://H:6222,...]
               [--nats-leaf HOST:7422 [--nats-leaf-advertise nats-leaf://PUBLIC:7422]]
               Runs and supervises the site's own nats-server from the generated least-privilege
               config (DIR/nats-server.conf): client port on loopback, routes (password from
               ATOLL_NATS_ROUTE_PASSWORD), a leaf listener for joining sites; --nats-tls-* are then
               the routes' and leaf listener's certificate, key and CA. Restarted when it dies.
  atoll site join [NATS_LEAF_URL] --name NAME --invite TOKEN [site options]
               Starts this site's own supervised nats-server as a leaf node of a member's server and
               the site on it. The URL, leaf credentials and CA come from the invite when the inviter
               runs --nats managed --nats-leaf; a restart (without --invite) links the same way.
  atoll site invite [--name NAME] [--ttl SECONDS]
               (admin openrc) A one-time join token for a new site; start it with --invite TOKEN.
  atoll site evict NAME [--reason TEXT]
               (admin openrc) Every site refuses NAME's changes, tokens and requests from now on.
  atoll site forget NAME [--reason TEXT]
               (admin openrc) Removes a site that was evicted, left or never made it from every list
               (atoll sites, AZs, regions, catalogs); refused for a live member (evict it first).
  atoll site rotate-key
               (admin openrc) New token-signing key at $OS_AUTH_URL's site; old tokens stay valid.
  atoll site leave
               Makes the site at $OS_AUTH_URL leave the federation cleanly (admin openrc; refused
               while it still owns resources), then stops it.
  atoll sites  Lists every site as seen from $OS_AUTH_URL (needs an admin openrc).
`;

async function main(argv: string[]): Promise<void> {
  const [cmd, ...rest] = argv;
  // A site's data directory holds its private keys, token keys and password hashes: whatever the
  // caller's umask, everything it creates (database, WAL, images, volumes, configs) is the owner's only.
  if (cmd === 'up' || cmd === 'site') process.umask(0o077);
  switch (cmd) {
    case 'up':
      return up(rest);
    case 'site':
      return site(rest);
    case 'sites':
      return sites();
    case undefined:
    case 'help':
    case '--help':
    case '-h':
      process.stdout.write(HELP);
      return;
    default:
      process.stderr.write(`atoll: unknown command ${cmd}\n\n${HELP}`);
      process.exitCode = 2;
  }
}

/** --compute-driver: the hypervisor of the site's compute hosts (docs/compute.md). */
function computeDriver(v: string): string {
  if (!(COMPUTE_DRIVERS as readonly string[]).includes(v))
    throw new Error(`--compute-driver is one of ${COMPUTE_DRIVERS.join(', ')}`);
  return v;
}

/** The bootstrap admin's credentials, kept in dir (src/cli/admin-credentials.ts). */
function adminFrom(dir: string, pw: string | undefined) {
  return adminCredentials(dir, pw ?? process.env.ATOLL_ADMIN_PASSWORD);
}

/** Saves the openrc in dir and prints where it is and its lines, the password read from its file. */
function showOpenrc(dir: string, rc: string, passwordFile: string, note: string): string[] {
  const path = saveOpenrc(dir, rc);
  const shown = relative(process.cwd(), path);
  return [
    `# openrc saved as ${path} (mode 0600, with the admin password; ${note})`,
    openrcForDisplay(rc, passwordFile),
    `# source ${shown.startsWith('..') ? path : shown} && openstack server list`,
  ];
}

async function up(args: string[]): Promise<void> {
  const { values } = parseArgs({
    args,
    options: {
      sites: { type: 'string', default: '3' },
      'base-port': { type: 'string', default: '5000' },
      host: { type: 'string', default: '127.0.0.1' },
      'data-dir': { type: 'string', default: '.atoll' },
      'latency-ms': { type: 'string', default: '0' },
      'admin-password': { type: 'string' },
      'log-level': { type: 'string', default: 'warn' },
      'compute-driver': { type: 'string', default: 'fake' },
      config: { type: 'string' },
    },
  });
  const driver = computeDriver(values['compute-driver']);
  // Settings every site gets (services.*, limits), as `atoll site --config` reads them.
  const shared = values.config
    ? (JSON.parse(readFileSync(values.config, 'utf8')) as Partial<SiteConfig>)
    : undefined;
  const n = Number(values.sites);
  if (!Number.isInteger(n) || n < 1 || n > 26) throw new Error('--sites must be 1 to 26');
  const dataDir = values['data-dir'] === ':memory:' ? ':memory:' : resolve(values['data-dir']);
  // Without a data directory the credentials go to a private temp directory, removed at exit.
  const secretsDir = dataDir === ':memory:' ? mkdtempSync(join(tmpdir(), 'atoll-up-')) : dataDir;
  const { admin, passwordFile } = adminFrom(secretsDir, values['admin-password']);
  const fed = await startFederation({
    sites: n,
    basePort: Number(values['base-port']),
    host: values.host,
    dataDir,
    admin,
    latencyMs: Number(values['latency-ms']),
    logLevel: values['log-level'] as SiteConfig['logLevel'],
    ...(shared || driver !== 'fake'
      ? {
          site: {
            ...shared,
            ...(driver !== 'fake'
              ? { services: { ...shared?.services, compute: { ...shared?.services?.compute, driver } } }
              : {}),
          },
        }
      : {}),
  });
  const first = fed.sites[0]!;
  const rc = openrc(`${first.ctx.publicUrl()}/identity/v3`, first.ctx.name, admin);
  const out = [
    `Atoll: ${n} site(s) on the in-process fabric (one-way latency ${values['latency-ms']} ms)`,
    '',
  ];
  for (const s of fed.sites)
    out.push(`  ${s.ctx.name.padEnd(8)} region/AZ ${s.ctx.name.padEnd(8)} ${s.ctx.publicUrl()}`);
  out.push(
    '',
    ...showOpenrc(
      secretsDir,
      rc,
      passwordFile,
      'any site works: change OS_AUTH_URL and OS_REGION_NAME to talk to another one',
    ),
  );
  out.push('Press Ctrl-C to stop.', '');
  process.stdout.write(out.join('\n'));
  onSignals(async () => {
    await fed.close();
    if (secretsDir !== dataDir) rmSync(secretsDir, { recursive: true, force: true });
  });
}

function envConfig(): Partial<SiteConfig> {
  const e = process.env;
  const c: Partial<SiteConfig> = {};
  if (e.ATOLL_SITE_NAME) c.name = e.ATOLL_SITE_NAME;
  if (e.ATOLL_PORT) c.port = Number(e.ATOLL_PORT);
  if (e.ATOLL_HOST) c.host = e.ATOLL_HOST;
  if (e.ATOLL_DATA_DIR) c.dataDir = e.ATOLL_DATA_DIR;
  if (e.ATOLL_PUBLIC_URL) c.publicUrl = e.ATOLL_PUBLIC_URL;
  if (e.ATOLL_LOG_LEVEL) c.logLevel = e.ATOLL_LOG_LEVEL as SiteConfig['logLevel'];
  if (e.ATOLL_PASSWORD_HASH_COST) c.passwordHashCost = Number(e.ATOLL_PASSWORD_HASH_COST);
  if (e.ATOLL_TOKEN_TTL_SECONDS) c.tokenTtlSeconds = Number(e.ATOLL_TOKEN_TTL_SECONDS);
  return c;
}

async function site(argv: string[]): Promise<void> {
  if (argv[0] === 'leave') return leave();
  if (argv[0] === 'invite') return invite(argv.slice(1));
  if (argv[0] === 'evict') return evict(argv.slice(1));
  if (argv[0] === 'forget') return forget(argv.slice(1));
  if (argv[0] === 'rotate-key') return adminPost('/atoll/v1/keys/rotate', {}, 201);
  let joining = false;
  let joinUrl: string | undefined;
  let args = argv;
  if (argv[0] === 'join') {
    joining = true;
    // The leaf URL may come from the invite instead (a managed nats-server at the inviter).
    if (argv[1] && !argv[1].startsWith('-')) {
      joinUrl = argv[1];
      args = argv.slice(2);
    } else args = argv.slice(1);
  }
  const { values } = parseArgs({
    args,
    options: {
      name: { type: 'string' },
      port: { type: 'string' },
      host: { type: 'string' },
      'data-dir': { type: 'string' },
      'public-url': { type: 'string' },
      nats: { type: 'string' },
      'nats-user': { type: 'string' },
      'nats-password': { type: 'string' },
      'nats-tls-ca': { type: 'string' },
      'nats-tls-cert': { type: 'string' },
      'nats-tls-key': { type: 'string' },
      bootstrap: { type: 'boolean', default: false },
      'admin-password': { type: 'string' },
      'log-level': { type: 'string' },
      'heartbeat-ms': { type: 'string' },
      config: { type: 'string' },
      'nats-port': { type: 'string' },
      'nats-cluster': { type: 'string' },
      'nats-routes': { type: 'string' },
      'nats-route-password': { type: 'string' },
      'nats-leaf': { type: 'string' },
      'nats-leaf-advertise': { type: 'string' },
      'nats-monitor-port': { type: 'string' },
      invite: { type: 'string' },
      trust: { type: 'string' },
      'tls-cert': { type: 'string' },
      'tls-key': { type: 'string' },
      'compute-driver': { type: 'string' },
    },
  });
  const file = values.config
    ? (JSON.parse(readFileSync(values.config, 'utf8')) as Partial<SiteConfig> & { nats?: string })
    : {};
  const flags: Partial<SiteConfig> = {};
  if (values.name) flags.name = values.name;
  if (values.port) flags.port = Number(values.port);
  if (values.host) flags.host = values.host;
  if (values['data-dir']) flags.dataDir = resolve(values['data-dir']);
  if (values['public-url']) flags.publicUrl = values['public-url'];
  if (values['log-level']) flags.logLevel = values['log-level'] as SiteConfig['logLevel'];
  if (values['tls-cert']) flags.tlsCertFile = resolve(values['tls-cert']);
  if (values['tls-key']) flags.tlsKeyFile = resolve(values['tls-key']);
  if (values.trust) {
    if (values.trust !== 'open' && values.trust !== 'admitted')
      throw new Error('--trust is open or admitted');
    flags.trust = values.trust;
  }
  if (values['heartbeat-ms']) {
    flags.heartbeatMs = Number(values['heartbeat-ms']);
    flags.downAfterMs = Math.round(flags.heartbeatMs * 3.5);
  }
  const config = { logLevel: 'info' as const, port: 5000, ...file, ...envConfig(), ...flags };
  if (!config.name) throw new Error('--name is required');
  const driverFlag = values['compute-driver'] ?? process.env.ATOLL_COMPUTE_DRIVER;
  if (driverFlag) {
    const services = config.services ?? {};
    config.services = {
      ...services,
      compute: { ...services.compute, driver: computeDriver(driverFlag) },
    };
  }
  if (!config.dataDir || config.dataDir === ':memory:') config.dataDir = resolve('.atoll', config.name);
  let natsUrl = values.nats ?? process.env.ATOLL_NATS_URL ?? file.nats;
  const inviteToken = values.invite ?? process.env.ATOLL_INVITE;
  let stopNats: (() => Promise<void>) | undefined;
  let managedUser: { user: string; pass: string } | undefined;
  if (joining || natsUrl === 'managed') {
    const m = await startManagedNats(
      config as SiteConfig,
      values,
      joining ? { joinUrl, inviteToken } : undefined,
    );
    natsUrl = m.supervisor.url;
    stopNats = () => m.supervisor.stop();
    managedUser = { user: config.name, pass: m.password };
    if (m.leafInvite) config.natsLeafInvite = m.leafInvite;
    if (joining) joinUrl = m.remote;
  }
  let fabric;
  if (natsUrl) {
    const { NatsFabric } = await import('../fabric/nats/nats-fabric.ts');
    // The password may come from the environment so that it does not show in `ps`.
    const natsUser = managedUser?.user ?? values['nats-user'] ?? process.env.ATOLL_NATS_USER;
    const natsPass = managedUser?.pass ?? values['nats-password'] ?? process.env.ATOLL_NATS_PASSWORD;
    // A managed server's client port is loopback, plain: the TLS files are its routes' and leaf nodes'.
    const [tlsCa, tlsCert, tlsKey] = (['nats-tls-ca', 'nats-tls-cert', 'nats-tls-key'] as const).map((k) =>
      values[k] && !managedUser ? resolve(values[k]) : undefined,
    );
    if (!tlsCert !== !tlsKey) throw new Error('--nats-tls-cert and --nats-tls-key go together');
    const tls =
      tlsCa || tlsCert
        ? {
            ...(tlsCa ? { caFile: tlsCa } : {}),
            ...(tlsCert && tlsKey ? { certFile: tlsCert, keyFile: tlsKey } : {}),
          }
        : undefined;
    const servers = natsUrl.split(',');
    // A URL nats.js would dial for its full 20 s before failing (http://, a typo) is refused at once.
    const bad = servers.filter((u) => !/^(nats|tls):\/\/[^/\s]+\/?$/.test(u) && !/^[^:/\s]+:\d+$/.test(u));
    if (bad.length)
      throw new Error(`--nats takes nats://host:port (or tls://host:port) URLs, not ${bad.join(', ')}`);
    fabric = await NatsFabric.connect(config.name, {
      servers,
      ...(natsUser ? { user: natsUser } : {}),
      ...(natsPass ? { pass: natsPass } : {}),
      ...(tls ? { tls } : {}),
    }).catch((e: unknown) => {
      const why = (e as { code?: string }).code ?? (e instanceof Error ? e.message : String(e));
      throw new Error(
        `cannot connect to the nats-server at ${natsUrl}: ${why} (is it running, and are the user, password and TLS settings right?)`,
      );
    });
  } else {
    const { MemoryNetwork } = await import('../fabric/memory/network.ts');
    const { systemClock } = await import('../core/ports.ts');
    fabric = new MemoryNetwork(systemClock).connect(config.name);
  }
  const creds = values.bootstrap ? adminFrom(config.dataDir, values['admin-password']) : undefined;
  const admin = creds?.admin;
  const s = await startSite(config as SiteConfig, fabric, {
    ...(admin ? { bootstrap: admin } : {}),
    ...(inviteToken ? { invite: inviteToken } : {}),
  }).catch(async (e: unknown) => {
    await stopNats?.();
    throw e;
  });
  process.stdout.write(
    `site ${s.ctx.name} listening on ${s.ctx.publicUrl()} (fabric: ${natsUrl ? `nats ${natsUrl}` : 'in-process, alone'})\n`,
  );
  if (joinUrl) {
    // A dead or wrong leaf URL leaves the site alone on its own nats-server: say so, once.
    const waitMs = 4 * (config.downAfterMs ?? 3500);
    setTimeout(() => {
      if (s.ctx.replicator.peers.size === 0)
        process.stderr.write(
          `atoll: no member site heard through ${joinUrl} after ${waitMs} ms: is the leaf URL right and the member's nats-server up? This site runs alone until one is.\n`,
        );
    }, waitMs).unref();
  }
  if (creds) {
    const rc = openrc(`${s.ctx.publicUrl()}/identity/v3`, s.ctx.name, creds.admin);
    const lines = showOpenrc(
      config.dataDir,
      rc,
      creds.passwordFile,
      'the admin of the cloud this site bootstraps',
    );
    process.stdout.write(`\n${lines.join('\n')}\n`);
  }
  const stop = onSignals(async () => {
    await s.close();
    await stopNats?.();
  });
  void s.left.then(() => stop('left the federation'));
}

/** "host:port" (or ":port", or "port") -> [host, port]; the host defaults to 0.0.0.0. */
function hostPort(v: string, flag: string): [string, number] {
  const m = /^(?:(.*):)?(\d+)$/.exec(v);
  const port = m ? Number(m[2]) : NaN;
  if (!m || port < 1 || port > 65535) throw new Error(`${flag} takes HOST:PORT, not ${v}`);
  return [m[1] || '0.0.0.0', port];
}

async function freeLoopbackPort(): Promise<number> {
  const net = await import('node:net');
  return new Promise<number>((res) => {
    const srv = net.createServer().listen(0, '127.0.0.1', () => {
      const p = (srv.address() as { port: number }).port;
      srv.close(() => res(p));
    });
  });
}

/**
 * This site's own nats-server from the generated least-privilege config (nats-supervisor.ts): routes to
 * other sites' servers (--nats-cluster, --nats-routes), a leaf node listener for joining sites
 * (--nats-leaf), or, for `atoll site join`, a leaf node link to a member's server with the URL,
 * credentials and CA its invite carries.
 */
async function startManagedNats(
  config: SiteConfig,
  v: Record<string, string | boolean | undefined>,
  joinOpts?: { joinUrl: string | undefined; inviteToken: string | undefined },
): Promise<{
  supervisor: NatsSupervisor;
  password: string;
  remote?: string;
  leafInvite?: { url: string; user: string; password: string; ca?: string };
}> {
  const { NatsSupervisor, claimDataDir, keptSecret } = await import('./nats-supervisor.ts');
  const { decodeInvite } = await import('../federation/membership.ts');
  const str = (k: string) => (typeof v[k] === 'string' ? (v[k] as string) : undefined);
  if (str('nats-routes') && !str('nats-cluster'))
    throw new Error('--nats-routes needs --nats-cluster HOST:PORT (where this server takes routes)');
  if (str('nats-leaf-advertise') && !str('nats-leaf'))
    throw new Error('--nats-leaf-advertise needs --nats-leaf HOST:PORT (where this server takes leaf nodes)');
  const dir = config.dataDir;
  mkdirSync(dir, { recursive: true });
  claimDataDir(dir);
  const password = keptSecret(dir, 'nats-password');
  const clientPort = str('nats-port') ? Number(str('nats-port')) : await freeLoopbackPort();
  if (!Number.isInteger(clientPort) || clientPort < 1 || clientPort > 65535)
    throw new Error(`--nats-port must be a port number, not ${str('nats-port')}`);
  const cert = str('nats-tls-cert') && resolve(str('nats-tls-cert')!);
  const key = str('nats-tls-key') && resolve(str('nats-tls-key')!);
  const ca = str('nats-tls-ca') && resolve(str('nats-tls-ca')!);
  if (!cert !== !key) throw new Error('--nats-tls-cert and --nats-tls-key go together');
  if (cert && !ca) throw new Error('--nats-tls-cert needs --nats-tls-ca (the CA routes are verified with)');
  let cluster: NatsClusterConfig | undefined;
  if (str('nats-cluster')) {
    const [host, port] = hostPort(str('nats-cluster')!, '--nats-cluster');
    const routePassword = str('nats-route-password') ?? process.env.ATOLL_NATS_ROUTE_PASSWORD;
    if (!routePassword)
      throw new Error(
        '--nats-cluster needs the route password (ATOLL_NATS_ROUTE_PASSWORD), the same on every site',
      );
    const routes = (str('nats-routes') ?? '').split(',').filter(Boolean);
    for (const r of routes)
      if (!/^nats-route:\/\/[^/\s]+:\d+$/.test(r))
        throw new Error(`--nats-routes takes nats-route://host:port URLs, not ${r}`);
    cluster = {
      name: 'atoll',
      host,
      port,
      routes,
      user: 'route',
      password: routePassword,
      ...(cert && key && ca ? { tls: { cert, key, ca, verify: true } } : {}),
    };
  }
  let leafnodes: NatsLeafConfig | undefined;
  let leafInvite: { url: string; user: string; password: string; ca?: string } | undefined;
  if (str('nats-leaf')) {
    const [host, port] = hostPort(str('nats-leaf')!, '--nats-leaf');
    const leafPassword = keptSecret(dir, 'nats-leaf-password');
    leafnodes = {
      listen: { host, port, user: 'leaf', password: leafPassword },
      // Joining sites verify this server with the CA; they log in with the password (no certificate).
      ...(cert && key && ca ? { tls: { cert, key, ca } } : {}),
    };
    const advertise =
      str('nats-leaf-advertise') ?? `nats-leaf://${host === '0.0.0.0' ? config.host : host}:${port}`;
    leafInvite = {
      url: advertise,
      user: 'leaf',
      password: leafPassword,
      ...(ca ? { ca: readFileSync(ca, 'utf8') } : {}),
    };
  }
  let remote: string | undefined;
  if (joinOpts) {
    // The link is kept in the data directory, so that a restart (`atoll site join` again, without the
    // invite, which is used up) links the same way.
    const kept = join(dir, 'nats-leaf-remote.json');
    const saved = existsSync(kept)
      ? (JSON.parse(readFileSync(kept, 'utf8')) as {
          url: string;
          user: string;
          password: string;
          ca?: string;
        })
      : undefined;
    const fromInvite = (joinOpts.inviteToken ? decodeInvite(joinOpts.inviteToken).n : undefined) ?? saved;
    remote = joinOpts.joinUrl ?? fromInvite?.url;
    if (fromInvite && remote)
      writeFileSync(kept, JSON.stringify({ ...fromInvite, url: remote }), { mode: 0o600 });
    if (!remote)
      throw new Error(
        'usage: atoll site join [NATS_LEAF_URL] --name NAME --invite TOKEN (the URL is needed when the invite names none)',
      );
    let remoteCa = ca;
    if (!remoteCa && fromInvite?.ca) {
      remoteCa = join(dir, 'nats-leaf-ca.pem');
      writeFileSync(remoteCa, fromInvite.ca, { mode: 0o600 });
    }
    leafnodes = {
      ...leafnodes,
      remotes: [
        {
          url: remote,
          ...(fromInvite ? { user: fromInvite.user, password: fromInvite.password } : {}),
          ...(remoteCa ? { tls: cert && key ? { cert, key, ca: remoteCa } : { ca: remoteCa } } : {}),
        },
      ],
    };
  }
  const monitor = str('nats-monitor-port');
  const supervisor = new NatsSupervisor({
    site: config.name,
    dataDir: dir,
    clientPort,
    password,
    ...(monitor ? { monitorPort: Number(monitor) } : {}),
    ...(cluster ? { cluster } : {}),
    ...(leafnodes ? { leafnodes } : {}),
  });
  await supervisor.start();
  return { supervisor, password, ...(remote ? { remote } : {}), ...(leafInvite ? { leafInvite } : {}) };
}

async function adminToken(): Promise<{ token: string; base: string }> {
  const e = process.env;
  if (!e.OS_AUTH_URL || !e.OS_USERNAME || !e.OS_PASSWORD)
    throw new Error('source an openrc first (OS_AUTH_URL, OS_USERNAME, OS_PASSWORD)');
  const res = await fetch(`${e.OS_AUTH_URL.replace(/\/$/, '')}/auth/tokens?nocatalog`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({
      auth: {
        identity: {
          methods: ['password'],
          password: {
            user: {
              name: e.OS_USERNAME,
              domain: { name: e.OS_USER_DOMAIN_NAME ?? 'Default' },
              password: e.OS_PASSWORD,
            },
          },
        },
        scope: {
          project: {
            name: e.OS_PROJECT_NAME ?? 'admin',
            domain: { name: e.OS_PROJECT_DOMAIN_NAME ?? 'Default' },
          },
        },
      },
    }),
  });
  if (res.status !== 201) throw new Error(`authentication failed: ${res.status} ${await res.text()}`);
  return {
    token: res.headers.get('x-subject-token')!,
    base: e.OS_AUTH_URL.replace(/\/identity\/v3\/?$/, ''),
  };
}

async function adminPost(path: string, body: unknown, want: number): Promise<void> {
  const { token, base } = await adminToken();
  const r = await fetch(`${base}${path}`, {
    method: 'POST',
    headers: { 'x-auth-token': token, 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  const text = await r.text();
  if (r.status !== want) throw new Error(`${path}: ${r.status} ${text}`);
  process.stdout.write(`${text}\n`);
}

async function invite(args: string[]): Promise<void> {
  const { values } = parseArgs({
    args,
    options: { name: { type: 'string' }, ttl: { type: 'string', default: '3600' } },
  });
  await adminPost(
    '/atoll/v1/invites',
    { invite: { site_name: values.name ?? null, ttl_seconds: Number(values.ttl) } },
    201,
  );
}

async function evict(args: string[]): Promise<void> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: { reason: { type: 'string' } },
  });
  if (!positionals[0]) throw new Error('usage: atoll site evict NAME [--reason TEXT]');
  await adminPost(
    `/atoll/v1/sites/${encodeURIComponent(positionals[0])}/evict`,
    { evict: { reason: values.reason ?? 'evicted by an administrator' } },
    202,
  );
}

async function forget(args: string[]): Promise<void> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: { reason: { type: 'string' } },
  });
  if (!positionals[0]) throw new Error('usage: atoll site forget NAME [--reason TEXT]');
  await adminPost(
    `/atoll/v1/sites/${encodeURIComponent(positionals[0])}/forget`,
    { forget: { reason: values.reason ?? 'forgotten by an administrator' } },
    202,
  );
}

async function leave(): Promise<void> {
  const { token, base } = await adminToken();
  const r = await fetch(`${base}/atoll/v1/leave`, { method: 'POST', headers: { 'x-auth-token': token } });
  const body = await r.text();
  if (r.status !== 202) throw new Error(`leave refused: ${r.status} ${body}`);
  process.stdout.write(`${body}\n`);
}

async function sites(): Promise<void> {
  const { token, base } = await adminToken();
  const r = await fetch(`${base}/atoll/v1/sites`, { headers: { 'x-auth-token': token } });
  const body = (await r.json()) as { site: string; sites: Record<string, unknown>[] };
  if (r.status !== 200) throw new Error(`GET /atoll/v1/sites: ${r.status} ${JSON.stringify(body)}`);
  // Why a site is in conflict is the last column, shown only when some site is.
  const cols = [
    'name',
    'state',
    'version',
    'lag_changes',
    'rtt_ms',
    'last_seen_ms_ago',
    'endpoint',
    ...(body.sites.some((x) => x.conflict) ? (['conflict'] as const) : []),
  ] as const;
  const rows = body.sites.map((s) =>
    cols.map((c) => (s[c] === null || s[c] === undefined ? '-' : String(s[c]))),
  );
  const widths = cols.map((c, i) => Math.max(c.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: readonly string[]) => cells.map((x, i) => x.padEnd(widths[i]!)).join('  ');
  process.stdout.write(`as seen from ${body.site}\n${line(cols)}\n${rows.map(line).join('\n')}\n`);
}

function onSignals(close: () => Promise<void>): (why: string) => void {
  let closing = false;
  const stop = (sig: string) => {
    if (closing) return;
    closing = true;
    process.stderr.write(`\n${sig}: stopping (draining requests)...\n`);
    close().then(
      () => process.exit(0),
      (e: unknown) => {
        process.stderr.write(`shutdown failed: ${String(e)}\n`);
        process.exit(1);
      },
    );
  };
  process.on('SIGINT', () => stop('SIGINT'));
  process.on('SIGTERM', () => stop('SIGTERM'));
  return stop;
}

main(process.argv.slice(2)).catch((e: unknown) => {
  process.stderr.write(`atoll: ${e instanceof Error ? e.message : String(e)}\n`);
  process.exit(1);
});
