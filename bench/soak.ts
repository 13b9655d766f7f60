/**
 * @module The soak: N `atoll site` processes, each with its own nats-server, clustered through WAN
 * proxies (test/support/processes.ts), a steady mixed workload over HTTP, and a fault every interval
 * (a partition of a random site healed 20-30 s later, or a kill -9 of a random site restarted on its
 * data directory). Every acknowledged (2xx) write is recorded with its id and owner. At the end (all
 * healed, all running, convergence awaited with a bound) it checks: every site holds the same rows of
 * each kind, no acknowledged create is missing unless acknowledged-deleted, no acknowledged delete is
 * still there, no address is held twice. It samples RSS per site and NATS messages per site every 10 s
 * and writes bench/results/soak.{json,md,svg}. Exits 1 on a violated invariant.
 *
 *   node --import tsx bench/soak.ts --sites 20 --minutes 30 [--latency-ms 40] [--out bench/results/soak]
 *   node --import tsx bench/soak.ts --report    (rewrites soak.md and soak.svg from soak.json)
 */
import { readFileSync, writeFileSync, mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import Database from 'better-sqlite3';
import { startProcessFederation } from '../test/support/processes.ts';
import type { ProcFederation } from '../test/support/processes.ts';

export interface SoakOptions {
  sites: number;
  minutes: number;
  latencyMs?: number;
  /** Seconds between faults (60). */
  faultEverySec?: number;
  /** A fixed fault sequence (cycled) instead of random picks; the short test uses it. */
  faultPlan?: ('kill' | 'partition')[];
  sampleEverySec?: number;
  /** Concurrent workload loops (3). */
  workers?: number;
  seed?: number;
  log?: (line: string) => void;
}

type Kind = 'project' | 'user' | 'network' | 'port' | 'server' | 'volume' | 'image';
const TABLE: Record<Kind, string> = {
  project: 'projects',
  user: 'users',
  network: 'net_networks',
  port: 'net_ports',
  server: 'servers',
  volume: 'vol_volumes',
  image: 'images',
};
/** Kinds compared across sites (the workload's, plus what they make as a side effect). */
const COMPARED = [...Object.values(TABLE), 'net_subnets', 'net_ip_allocations', 'net_ip_blocks'];

interface Acked {
  kind: Kind;
  id: string;
  owner: string;
  via: string;
  at: number;
  deletedAt?: number;
  /**
   * A delete whose outcome the client never learned (no answer, or a 5xx: the owner may have run it
   * before the answer was lost): the row may be gone, so its absence is not a lost write.
   */
  deleteUnknownAt?: number;
}
export interface Sample {
  t: number;
  rssMb: (number | null)[];
  natsRssMb: (number | null)[];
  /** Messages the site published + received per second over the last interval (its NATS connection). */
  msgsPerSec: (number | null)[];
}
export interface Fault {
  t: number;
  kind: 'kill' | 'partition';
  site: string;
  endT?: number;
}
export interface SoakResult {
  sites: number;
  minutes: number;
  latencyMs: number;
  acked: Record<string, number>;
  ackedDeletes: Record<string, number>;
  failed: Record<string, number>;
  rows: Record<string, number>;
  addresses: number;
  faults: Fault[];
  samples: Sample[];
  convergeMs: number | null;
  violations: string[];
}

/** A small seeded PRNG (mulberry32), so a run can be repeated. */
function rng(seed: number) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function rssMb(pid: number | undefined): number | null {
  if (!pid) return null;
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Math.round(Number(m[1]) / 102.4) / 10 : null;
  } catch {
    return null;
  }
}

export async function runSoak(o: SoakOptions): Promise<SoakResult> {
  const log = o.log ?? ((l: string) => console.log(l));
  const rand = rng(o.seed ?? 13);
  const pick = <T>(xs: T[]) => xs[Math.floor(rand() * xs.length)]!;
  const latencyMs = o.latencyMs ?? 40;
  const t0 = Date.now();
  const since = () => Math.round((Date.now() - t0) / 1000);
  log(`soak: starting ${o.sites} sites (nats-server each, ${latencyMs} ms WAN proxies on every route)`);
  const fed: ProcFederation = await startProcessFederation(o.sites, { latencyMs, heartbeatMs: 1000 });
  const names = fed.sites.map((s) => s.name);
  const violations: string[] = [];
  const acked: Acked[] = [];
  const failed: Record<string, number> = {};
  const faults: Fault[] = [];
  const samples: Sample[] = [];
  let convergeMs: number | null = null;
  const fail = (what: string) => (failed[what] = (failed[what] ?? 0) + 1);
  try {
    log(`soak: ${o.sites} sites up in ${since()} s; waiting for convergence`);
    await fed.converged(180_000);
    const token = await fed.token(0);
    const call = async (i: number, method: string, path: string, body?: unknown) => {
      try {
        const r = await fetch(`${fed.sites[i]!.url}${path}`, {
          method,
          headers: { 'x-auth-token': token, ...(body ? { 'content-type': 'application/json' } : {}) },
          ...(body ? { body: JSON.stringify(body) } : {}),
          signal: AbortSignal.timeout(20_000),
        });
        const text = await r.text();
        let json: any = {};
        try {
          json = text ? JSON.parse(text) : {};
        } catch {
          json = { text };
        }
        return { status: r.status, body: json, owner: r.headers.get('x-atoll-owner') ?? names[i]! };
      } catch (e) {
        return { status: 0, body: { error: String(e) }, owner: names[i]! };
      }
    };
    const must = async (i: number, method: string, path: string, body?: unknown) => {
      const r = await call(i, method, path, body);
      if (r.status < 200 || r.status > 299)
        throw new Error(`${method} ${path} at ${names[i]}: ${r.status} ${JSON.stringify(r.body)}`);
      return r.body;
    };
    // Setup at site-a: a flavor, a public image, a shared network with a /20 subnet, no quotas in the way.
    const project = (await must(0, 'GET', '/identity/v3/projects?name=admin')).projects[0].id as string;
    await must(0, 'POST', '/compute/v2.1/flavors', {
      flavor: { name: 'soak.tiny', id: 'soak.tiny', ram: 64, vcpus: 1, disk: 0 },
    });
    const img = await must(0, 'POST', '/image/v2/images', {
      name: 'soak-img',
      disk_format: 'raw',
      container_format: 'bare',
      visibility: 'public',
    });
    await fetch(`${fed.sites[0]!.url}/image/v2/images/${img.id}/file`, {
      method: 'PUT',
      headers: { 'x-auth-token': token, 'content-type': 'application/octet-stream' },
      body: Buffer.alloc(1024, 1),
    });
    const net = await must(0, 'POST', '/network/v2.0/networks', {
      network: { name: 'soak-net', shared: true },
    });
    const netId = net.network.id as string;
    await must(0, 'POST', '/network/v2.0/subnets', {
      subnet: { network_id: netId, cidr: '10.20.0.0/20', ip_version: 4, name: 'soak-sub' },
    });
    await call(0, 'PUT', `/network/v2.0/quotas/${project}`, { quota: { port: -1, network: -1 } });
    await call(0, 'PUT', `/compute/v2.1/os-quota-sets/${project}`, {
      quota_set: { instances: -1, cores: -1, ram: -1 },
    });
    await call(0, 'PUT', `/volume/v3/${project}/os-quota-sets/${project}`, {
      quota_set: { volumes: -1, gigabytes: -1 },
    });
    await fed.converged(120_000);
    log(`soak: setup done at ${since()} s; workload and faults for ${o.minutes} min`);

    const endAt = Date.now() + o.minutes * 60_000;
    let seq = 0;
    const live = () => acked.filter((a) => a.deletedAt === undefined && a.kind !== 'user');
    const create = async (kind: Kind) => {
      const i = Math.floor(rand() * names.length);
      const az = pick(names);
      const n = `soak-${kind}-${++seq}`;
      let r;
      if (kind === 'project')
        r = await call(i, 'POST', '/identity/v3/projects', { project: { name: n, domain_id: 'default' } });
      else if (kind === 'user')
        r = await call(i, 'POST', '/identity/v3/users', {
          user: { name: n, domain_id: 'default', password: 'soak-pw' },
        });
      else if (kind === 'network')
        r = await call(i, 'POST', '/network/v2.0/networks', { network: { name: n } });
      else if (kind === 'port')
        r = await call(i, 'POST', '/network/v2.0/ports', { port: { name: n, network_id: netId } });
      else if (kind === 'server')
        r = await call(i, 'POST', '/compute/v2.1/servers', {
          server: {
            name: n,
            flavorRef: 'soak.tiny',
            imageRef: img.id,
            availability_zone: az,
            networks: [{ uuid: netId }],
          },
        });
      else if (kind === 'volume')
        r = await call(i, 'POST', `/volume/v3/${project}/volumes`, {
          volume: { name: n, size: 1, availability_zone: az },
        });
      else
        r = await call(i, 'POST', '/image/v2/images', {
          name: n,
          disk_format: 'raw',
          container_format: 'bare',
        });
      if (r.status >= 200 && r.status < 300) {
        const b = r.body;
        const id = (b[kind]?.id ?? b.id) as string | undefined;
        if (!id) {
          violations.push(`2xx ${kind} create without an id: ${JSON.stringify(b)}`);
          return;
        }
        acked.push({ kind, id, owner: r.owner, via: names[i]!, at: since() });
      } else fail(`${kind} create ${r.status}`);
    };
    const remove = async () => {
      const cands = live();
      if (!cands.length) return;
      const a = pick(cands);
      const i = Math.floor(rand() * names.length);
      const path =
        a.kind === 'project'
          ? `/identity/v3/projects/${a.id}`
          : a.kind === 'network'
            ? `/network/v2.0/networks/${a.id}`
            : a.kind === 'port'
              ? `/network/v2.0/ports/${a.id}`
              : a.kind === 'server'
                ? `/compute/v2.1/servers/${a.id}`
                : a.kind === 'volume'
                  ? `/volume/v3/${project}/volumes/${a.id}`
                  : `/image/v2/images/${a.id}`;
      const r = await call(i, 'DELETE', path);
      if (r.status >= 200 && r.status < 300) a.deletedAt = since();
      else {
        if (r.status === 0 || r.status >= 500) a.deleteUnknownAt = since();
        fail(`${a.kind} delete ${r.status}`);
      }
    };
    const kinds: Kind[] = [
      'project',
      'user',
      'network',
      'port',
      'port',
      'server',
      'server',
      'volume',
      'image',
    ];
    const worker = async () => {
      while (Date.now() < endAt) {
        // About one delete for two creates, so the row count grows slowly.
        if (rand() < 0.33) await remove();
        else await create(pick(kinds));
        await sleep(150);
      }
    };

    // Sampling: RSS of each site process and its nats-server, messages on the site's NATS connection.
    const prev: ({ msgs: number; at: number } | null)[] = names.map(() => null);
    const sample = async () => {
      const s: Sample = { t: since(), rssMb: [], natsRssMb: [], msgsPerSec: [] };
      await Promise.all(
        names.map(async (_, i) => {
          s.rssMb[i] = rssMb(fed.sites[i]!.proc?.exitCode === null ? fed.sites[i]!.proc?.pid : undefined);
          try {
            const base = fed.monitorUrl(i);
            const v = (await (await fetch(`${base}/varz`, { signal: AbortSignal.timeout(5000) })).json()) as {
              mem: number;
            };
            s.natsRssMb[i] = Math.round(v.mem / 104857.6) / 10;
            const c = (await (
              await fetch(`${base}/connz`, { signal: AbortSignal.timeout(5000) })
            ).json()) as {
              connections?: { in_msgs: number; out_msgs: number }[];
            };
            const msgs = (c.connections ?? []).reduce((n, x) => n + x.in_msgs + x.out_msgs, 0);
            const p = prev[i];
            const now = Date.now();
            // A restarted site has a new connection whose counters start at 0.
            s.msgsPerSec[i] =
              p && msgs >= p.msgs ? Math.round(((msgs - p.msgs) * 1000) / (now - p.at)) : null;
            prev[i] = { msgs, at: now };
          } catch {
            s.natsRssMb[i] = null;
            s.msgsPerSec[i] = null;
          }
        }),
      );
      samples.push(s);
      const nums = (xs: (number | null)[]) => xs.filter((x): x is number => x !== null);
      const r = nums(s.rssMb);
      const m = nums(s.msgsPerSec);
      const ok = acked.length;
      const nf = Object.values(failed).reduce((a, b) => a + b, 0);
      log(
        `soak t=${s.t}s acked=${ok} (deleted ${acked.filter((a) => a.deletedAt !== undefined).length}) refused=${nf}` +
          ` rss MB max=${Math.max(0, ...r)} avg=${r.length ? Math.round(r.reduce((a, b) => a + b, 0) / r.length) : 0}` +
          ` msgs/site/s avg=${m.length ? Math.round(m.reduce((a, b) => a + b, 0) / m.length) : '-'} max=${Math.max(0, ...m)}` +
          ` faults=${faults.length}`,
      );
    };
    let sampling = true;
    const sampler = (async () => {
      while (sampling) {
        await sample();
        await sleep((o.sampleEverySec ?? 10) * 1000);
      }
    })();

    const faultEvery = (o.faultEverySec ?? 60) * 1000;
    const faulter = (async () => {
      let k = 0;
      for (;;) {
        await sleep(faultEvery / 2);
        if (Date.now() + faultEvery / 2 > endAt) return;
        const kind = o.faultPlan ? o.faultPlan[k % o.faultPlan.length]! : rand() < 0.5 ? 'kill' : 'partition';
        k++;
        const i = Math.floor(rand() * names.length);
        const f: Fault = { t: since(), kind, site: names[i]! };
        faults.push(f);
        if (kind === 'partition') {
          log(`soak fault t=${f.t}s: partition ${f.site}`);
          fed.isolate(i);
          await sleep(20_000 + rand() * 10_000);
          fed.heal();
        } else {
          log(`soak fault t=${f.t}s: kill -9 ${f.site}`);
          await fed.kill(i);
          await sleep(3000);
          try {
            await fed.restart(i);
          } catch (e) {
            violations.push(`${f.site} did not restart: ${String(e).slice(0, 500)}`);
          }
        }
        f.endT = since();
        log(`soak fault t=${f.endT}s: ${kind} of ${f.site} over`);
        await sleep(Math.max(0, faultEvery / 2 - (f.endT - f.t) * 1000));
      }
    })();
    await Promise.all([...Array.from({ length: o.workers ?? 3 }, worker), faulter]);

    // The end: everything healed and running; then convergence, bounded.
    fed.heal();
    for (let i = 0; i < names.length; i++)
      if (fed.sites[i]!.proc?.exitCode !== null) {
        violations.push(`${names[i]} was not running at the end`);
        await fed.restart(i).catch(() => undefined);
      }
    log(`soak t=${since()}s: workload over; waiting for convergence (bound 180 s)`);
    const cStart = Date.now();
    try {
      await fed.converged(180_000);
      convergeMs = Date.now() - cStart;
    } catch (e) {
      violations.push(`no convergence in 180 s: ${String(e).slice(0, 300)}`);
    }
    // Row sets per kind, straight from each site's database (read-only), until equal or 60 s more.
    const dbs = names.map(
      (n) => new Database(join(fed.dir, n, 'site.db'), { readonly: true, fileMustExist: true }),
    );
    const rowsOf = (i: number, table: string) =>
      dbs[i]!.prepare(`SELECT id, owner FROM ${table} ORDER BY id`).all() as { id: string; owner: string }[];
    const diff = () => {
      const out: string[] = [];
      for (const t of COMPARED) {
        const ref = JSON.stringify(rowsOf(0, t));
        for (let i = 1; i < names.length; i++)
          if (JSON.stringify(rowsOf(i, t)) !== ref) {
            const a = new Set(rowsOf(0, t).map((r) => r.id));
            const b = new Set(rowsOf(i, t).map((r) => r.id));
            out.push(
              `${t}: ${names[i]} differs from ${names[0]} (only at ${names[0]}: ${
                [...a]
                  .filter((x) => !b.has(x))
                  .slice(0, 3)
                  .join(',') || '-'
              }; only at ${names[i]}: ${
                [...b]
                  .filter((x) => !a.has(x))
                  .slice(0, 3)
                  .join(',') || '-'
              })`,
            );
          }
      }
      return out;
    };
    let d = diff();
    for (let k = 0; k < 30 && d.length; k++) {
      await sleep(2000);
      d = diff();
    }
    if (convergeMs !== null) convergeMs = Date.now() - cStart;
    violations.push(...d);
    const rows: Record<string, number> = {};
    for (const t of COMPARED) rows[t] = rowsOf(0, t).length;
    // No acknowledged write lost, no acknowledged delete undone, at any site.
    for (let i = 0; i < names.length; i++) {
      const ids = new Map(
        (Object.keys(TABLE) as Kind[]).map((k) => [
          k,
          new Map(rowsOf(i, TABLE[k]).map((r) => [r.id, r.owner])),
        ]),
      );
      for (const a of acked) {
        const owner = ids.get(a.kind)!.get(a.id);
        if (a.deletedAt === undefined && a.deleteUnknownAt === undefined && owner === undefined)
          violations.push(
            `lost: acked ${a.kind} ${a.id} (owner ${a.owner}, via ${a.via}, t=${a.at}s) missing at ${names[i]}`,
          );
        else if (a.deletedAt === undefined && owner !== undefined && owner !== a.owner)
          violations.push(`${a.kind} ${a.id} acked by owner ${a.owner} is owned by ${owner} at ${names[i]}`);
        else if (a.deletedAt !== undefined && owner !== undefined && a.kind !== 'server')
          violations.push(
            `undeleted: acked delete of ${a.kind} ${a.id} (t=${a.deletedAt}s) still at ${names[i]}`,
          );
      }
      // Servers are deleted asynchronously; an acked delete must leave nothing but a deleting row.
      for (const a of acked.filter((x) => x.kind === 'server' && x.deletedAt !== undefined)) {
        const row = dbs[i]!.prepare('SELECT vm_state, task_state FROM servers WHERE id = ?').get(a.id) as
          { vm_state: string; task_state: string | null } | undefined;
        if (row && row.vm_state !== 'deleted' && row.task_state !== 'deleting')
          violations.push(
            `undeleted: acked delete of server ${a.id} (t=${a.deletedAt}s) still at ${names[i]}`,
          );
      }
    }
    // No address held twice: allocations per site, and fixed_ips of every port at every site.
    let addresses = 0;
    const holder = new Map<string, string>();
    for (let i = 0; i < names.length; i++) {
      const dup = dbs[i]!.prepare(
        'SELECT subnet_id, ip, count(*) AS n FROM net_ip_allocations GROUP BY subnet_id, ip HAVING n > 1',
      ).all() as { subnet_id: string; ip: string; n: number }[];
      for (const x of dup) violations.push(`double address ${x.ip} (${x.n} allocations) at ${names[i]}`);
      for (const p of dbs[i]!.prepare('SELECT id, body FROM net_ports').all() as {
        id: string;
        body: string;
      }[]) {
        const fixed =
          (JSON.parse(p.body) as { fixed_ips?: { subnet_id: string; ip_address: string }[] }).fixed_ips ?? [];
        for (const f of fixed) {
          const key = `${f.subnet_id}/${f.ip_address}`;
          const had = holder.get(key);
          if (had === undefined) holder.set(key, p.id);
          else if (had !== p.id)
            violations.push(`address ${f.ip_address} held by ports ${had} and ${p.id} (${names[i]})`);
        }
      }
    }
    addresses = holder.size;
    for (const db of dbs) db.close();
    sampling = false;
    await sampler;

    const count = (f: (a: Acked) => boolean) => {
      const out: Record<string, number> = {};
      for (const a of acked.filter(f)) out[a.kind] = (out[a.kind] ?? 0) + 1;
      return out;
    };
    return {
      sites: o.sites,
      minutes: o.minutes,
      latencyMs,
      acked: count(() => true),
      ackedDeletes: count((a) => a.deletedAt !== undefined),
      failed,
      rows,
      addresses,
      faults,
      samples,
      convergeMs,
      violations: [...new Set(violations)],
    };
  } finally {
    await fed.stop();
  }
}

/** An SVG with two panels over time: RSS per site (MB) and messages per site per second; faults marked. */
export function soakSvg(r: SoakResult): string {
  const W = 900;
  const H = 260;
  const pad = 50;
  const tMax = Math.max(1, ...r.samples.map((s) => s.t));
  const x = (t: number) => pad + ((W - 2 * pad) * t) / tMax;
  const panel = (title: string, top: number, get: (s: Sample) => (number | null)[]) => {
    const vMax = Math.max(1, ...r.samples.flatMap((s) => get(s).filter((v): v is number => v !== null)));
    const y = (v: number) => top + H - pad - ((H - 2 * pad) * v) / vMax;
    const out = [
      `<text x="${pad}" y="${top + 20}" font-size="14">${title} (max ${Math.round(vMax)})</text>`,
      `<line x1="${pad}" y1="${y(0)}" x2="${W - pad}" y2="${y(0)}" stroke="#000"/>`,
      `<text x="${pad - 5}" y="${y(vMax) + 4}" font-size="10" text-anchor="end">${Math.round(vMax)}</text>`,
      `<text x="${pad - 5}" y="${y(0) + 4}" font-size="10" text-anchor="end">0</text>`,
      `<text x="${W - pad}" y="${y(0) + 15}" font-size="10" text-anchor="end">${tMax} s</text>`,
    ];
    for (const f of r.faults)
      out.push(
        `<rect x="${x(f.t)}" y="${top + pad}" width="${Math.max(1, x(f.endT ?? f.t) - x(f.t))}" height="${H - 2 * pad}" fill="${f.kind === 'kill' ? '#f88' : '#88f'}" opacity="0.3"><title>${f.kind} ${f.site}</title></rect>`,
      );
    for (let i = 0; i < r.sites; i++) {
      const pts = r.samples
        .map((s) => [s.t, get(s)[i]] as const)
        .filter((p): p is readonly [number, number] => p[1] !== null && p[1] !== undefined)
        .map(([t, v]) => `${x(t).toFixed(1)},${y(v).toFixed(1)}`);
      out.push(
        `<polyline fill="none" stroke="hsl(${(i * 360) / r.sites},70%,40%)" stroke-width="1" points="${pts.join(' ')}"/>`,
      );
    }
    return out.join('\n');
  };
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${2 * H + 30}" font-family="sans-serif">`,
    `<rect width="100%" height="100%" fill="#fff"/>`,
    panel('RSS per site process, MB', 0, (s) => s.rssMb),
    panel('NATS messages per site per second (published + received)', H, (s) => s.msgsPerSec),
    `<text x="${pad}" y="${2 * H + 20}" font-size="11">one line per site; red bands: kill -9 and restart; blue bands: partition until heal</text>`,
    '</svg>',
  ].join('\n');
}

export function soakMarkdown(r: SoakResult): string {
  const nums = (xs: (number | null)[]) => xs.filter((v): v is number => v !== null);
  const all = (get: (s: Sample) => (number | null)[]) => r.samples.flatMap((s) => nums(get(s)));
  const stat = (xs: number[]) =>
    xs.length
      ? `${Math.min(...xs)} / ${Math.round(xs.reduce((a, b) => a + b, 0) / xs.length)} / ${Math.max(...xs)}`
      : '-';
  const last = r.samples.at(-1);
  const obj = (o: Record<string, number>) =>
    Object.entries(o)
      .map(([k, v]) => `${k} ${v}`)
      .join(', ') || 'none';
  return [
    `# Soak: ${r.sites} sites, ${r.minutes} min`,
    '',
    `${r.sites} \`atoll site\` processes, each with its own nats-server; the servers clustered through a WAN proxy`,
    `per route (${r.latencyMs} ms one way). A mixed workload from 3 loops over HTTP; a fault every minute`,
    '(partition of a random site for 20-30 s, or kill -9 and restart on the same data directory).',
    'Produced by `node --import tsx bench/soak.ts`; figures in soak.json, plot in soak.svg.',
    '',
    `- Result: ${r.violations.length ? `**${r.violations.length} violated invariants**` : 'all invariants held'}`,
    `- Acknowledged creates: ${obj(r.acked)}`,
    `- Acknowledged deletes: ${obj(r.ackedDeletes)}`,
    `- Refused or failed requests (not acknowledged, not checked): ${obj(r.failed)}`,
    `- Rows at the end (the same at every site): ${obj(r.rows)}; addresses held: ${r.addresses}`,
    `- Faults: ${r.faults.length} (${r.faults.filter((f) => f.kind === 'kill').length} kill -9, ${r.faults.filter((f) => f.kind === 'partition').length} partitions)`,
    `- Convergence after the last heal: ${r.convergeMs === null ? 'not reached' : `${(r.convergeMs / 1000).toFixed(1)} s`}`,
    `- RSS per site process, MB, min / mean / max over all samples: ${stat(all((s) => s.rssMb))}; at the end: ${last ? stat(nums(last.rssMb)) : '-'}`,
    `- nats-server RSS, MB, min / mean / max: ${stat(all((s) => s.natsRssMb))}`,
    `- NATS messages per site per second (the site's connection, in + out), min / mean / max: ${stat(all((s) => s.msgsPerSec))}`,
    '',
    ...(r.violations.length
      ? ['## Violations', '', ...r.violations.slice(0, 50).map((v) => `- ${v}`), '']
      : []),
    '## Not covered',
    '',
    '- Writes not acknowledged (503, timeouts, a site killed mid-request) are counted, not checked: they may or may not exist.',
    '- Only creates and deletes, by one admin token; no updates, no per-project users.',
    '- One fault at a time; a partition isolates one whole site (no split of the federation into halves);',
    '  only site processes are killed, never their nats-servers.',
    "- Messages are those of each site's own NATS connection (/connz); route traffic between nats-servers is not counted.",
    '',
    '## Faults',
    '',
    '| t (s) | fault | site | over at (s) |',
    '| --- | --- | --- | --- |',
    ...r.faults.map((f) => `| ${f.t} | ${f.kind} | ${f.site} | ${f.endT ?? '-'} |`),
    '',
  ].join('\n');
}

async function main() {
  const args = process.argv.slice(2);
  const arg = (name: string, dflt: number) => {
    const k = args.indexOf(`--${name}`);
    const v = k >= 0 ? Number(args[k + 1]) : dflt;
    if (!Number.isFinite(v) || v <= 0) throw new Error(`--${name} must be a positive number`);
    return v;
  };
  const k = args.indexOf('--out');
  const out = k >= 0 ? args[k + 1]! : join(import.meta.dirname, 'results', 'soak');
  // --report: rewrite the .md and .svg from an earlier run's .json.
  if (args.includes('--report')) {
    const r = JSON.parse(readFileSync(`${out}.json`, 'utf8')) as SoakResult;
    writeFileSync(`${out}.md`, soakMarkdown(r));
    writeFileSync(`${out}.svg`, soakSvg(r) + '\n');
    return;
  }
  const r = await runSoak({
    sites: arg('sites', 20),
    minutes: arg('minutes', 30),
    latencyMs: arg('latency-ms', 40),
  });
  mkdirSync(dirname(out), { recursive: true });
  writeFileSync(`${out}.json`, JSON.stringify(r, null, 1) + '\n');
  writeFileSync(`${out}.md`, soakMarkdown(r));
  writeFileSync(`${out}.svg`, soakSvg(r) + '\n');
  console.log(
    `soak done: acked ${JSON.stringify(r.acked)}, deletes ${JSON.stringify(r.ackedDeletes)}, faults ${r.faults.length}, violations ${r.violations.length}`,
  );
  for (const v of r.violations.slice(0, 30)) console.log(`VIOLATION ${v}`);
  process.exit(r.violations.length ? 1 : 0);
}

if (process.argv[1] && import.meta.filename === process.argv[1]) await main();
