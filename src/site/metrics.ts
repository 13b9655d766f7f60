/**
 * @module A small Prometheus text-format registry: counters and gauges with labels, and a histogram of
 * request durations. Enough for /metrics without a dependency.
 */
import type { AuthContext } from '../core/auth.ts';
import { requireAdmin } from '../core/auth.ts';

type Labels = Record<string, string>;

const key = (l: Labels) =>
  Object.keys(l)
    .sort()
    .map((k) => `${k}="${String(l[k]).replace(/["\\\n]/g, '_')}"`)
    .join(',');

export class Metrics {
  private counters = new Map<string, { help: string; values: Map<string, number> }>();
  private gauges = new Map<string, { help: string; read: () => number | [Labels, number][] }>();
  private buckets = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5];
  private hist = new Map<string, { counts: number[]; sum: number; n: number }>();

  inc(name: string, help: string, labels: Labels = {}, by = 1): void {
    let c = this.counters.get(name);
    if (!c) this.counters.set(name, (c = { help, values: new Map() }));
    const k = key(labels);
    c.values.set(k, (c.values.get(k) ?? 0) + by);
  }

  gauge(name: string, help: string, read: () => number | [Labels, number][]): void {
    this.gauges.set(name, { help, read });
  }

  observeSeconds(labels: Labels, seconds: number): void {
    const k = key(labels);
    let h = this.hist.get(k);
    if (!h) this.hist.set(k, (h = { counts: this.buckets.map(() => 0), sum: 0, n: 0 }));
    for (let i = 0; i < this.buckets.length; i++) if (seconds <= this.buckets[i]!) h.counts[i]!++;
    h.sum += seconds;
    h.n++;
  }

  render(): string {
    const out: string[] = [];
    for (const [name, c] of this.counters) {
      out.push(`# HELP ${name} ${c.help}`, `# TYPE ${name} counter`);
      for (const [k, v] of c.values) out.push(`${name}${k ? `{${k}}` : ''} ${v}`);
    }
    for (const [name, g] of this.gauges) {
      out.push(`# HELP ${name} ${g.help}`, `# TYPE ${name} gauge`);
      const v = g.read();
      if (typeof v === 'number') out.push(`${name} ${v}`);
      else for (const [l, x] of v) out.push(`${name}{${key(l)}} ${x}`);
    }
    const hn = 'atoll_http_request_duration_seconds';
    out.push(`# HELP ${hn} HTTP request duration`, `# TYPE ${hn} histogram`);
    for (const [k, h] of this.hist) {
      this.buckets.forEach((b, i) => out.push(`${hn}_bucket{${k},le="${b}"} ${h.counts[i]}`));
      out.push(`${hn}_bucket{${k},le="+Inf"} ${h.n}`, `${hn}_sum{${k}} ${h.sum}`, `${hn}_count{${k}} ${h.n}`);
    }
    return out.join('\n') + '\n';
  }
}

/**
 * Who may read /metrics (SiteConfig.metricsAccess): 'local' (the default) a client on this host's
 * loopback, or a cloud admin's token; 'admin' a cloud admin's token only; 'open' anyone. Metrics
 * name peers, routes and counts, so they are not for every tenant. A request forwarded by another
 * site arrives through the site's own stack from loopback, so it never counts as local.
 */
export type MetricsAccess = 'local' | 'admin' | 'open';

const LOOPBACK = /^(127\.|::1$|::ffff:127\.)/;

export function requireMetricsAccess(
  access: MetricsAccess,
  req: { socket: { remoteAddress?: string | undefined }; headers: Record<string, unknown> },
  forwardedHeader: string,
  authenticate: () => AuthContext,
): void {
  if (access === 'open') return;
  const local = LOOPBACK.test(req.socket.remoteAddress ?? '') && req.headers[forwardedHeader] === undefined;
  if (access === 'local' && local) return;
  requireAdmin(authenticate());
}
