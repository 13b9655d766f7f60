/**
 * @module Benchmark helpers: percentiles, a closed-loop HTTP load generator, saving figures as JSON and
 * markdown under bench/results/, and small SVG line charts (no dependency) for the figures people would
 * rather look at than read.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import http from 'node:http';

export const RESULTS = join(dirname(fileURLToPath(import.meta.url)), '..', 'results');

export function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[i]!;
}

export function summarize(latenciesMs: number[]) {
  const s = [...latenciesMs].sort((a, b) => a - b);
  return {
    n: s.length,
    p50: round(percentile(s, 50)),
    p99: round(percentile(s, 99)),
    max: round(s[s.length - 1] ?? NaN),
    mean: round(s.reduce((a, b) => a + b, 0) / Math.max(1, s.length)),
  };
}

export const round = (x: number, d = 2) => Math.round(x * 10 ** d) / 10 ** d;

export interface LoadResult {
  concurrency: number;
  requests: number;
  errors: number;
  seconds: number;
  rps: number;
  p50: number;
  p99: number;
}

/**
 * Closed-loop load: `concurrency` clients each send the next request when the last one answered,
 * for `seconds`. Uses keep-alive sockets. `make(i)` gives the request for the i-th call.
 */
export async function load(
  baseUrl: string,
  concurrency: number,
  seconds: number,
  make: (i: number) => { method: string; path: string; headers?: Record<string, string>; body?: string },
  okStatus: (s: number) => boolean = (s) => s < 400,
): Promise<LoadResult> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: concurrency });
  const url = new URL(baseUrl);
  const lat: number[] = [];
  let errors = 0;
  let i = 0;
  const end = performance.now() + seconds * 1000;
  const one = (r: ReturnType<typeof make>) =>
    new Promise<number>((resolve) => {
      const req = http.request(
        { host: url.hostname, port: url.port, method: r.method, path: r.path, headers: r.headers, agent },
        (res) => {
          res.resume();
          res.on('end', () => resolve(res.statusCode ?? 0));
        },
      );
      req.on('error', () => resolve(0));
      if (r.body) req.write(r.body);
      req.end();
    });
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (performance.now() < end) {
        const r = make(i++);
        const s = performance.now();
        const status = await one(r);
        lat.push(performance.now() - s);
        if (!okStatus(status)) errors++;
      }
    }),
  );
  const secs = (performance.now() - t0) / 1000;
  agent.destroy();
  const sum = summarize(lat);
  return {
    concurrency,
    requests: lat.length,
    errors,
    seconds: round(secs),
    rps: round(lat.length / secs, 0),
    p50: sum.p50,
    p99: sum.p99,
  };
}

/** Saves `<name>.json` and `<name>.md` (a title, notes and markdown tables) under bench/results/. */
export function save(name: string, data: unknown, markdown: string): void {
  mkdirSync(RESULTS, { recursive: true });
  writeFileSync(join(RESULTS, `${name}.json`), JSON.stringify(data, null, 2) + '\n');
  writeFileSync(join(RESULTS, `${name}.md`), markdown.endsWith('\n') ? markdown : markdown + '\n');
  process.stdout.write(`saved bench/results/${name}.json and .md\n`);
}

export function table(headers: string[], rows: (string | number)[][]): string {
  const line = (cells: (string | number)[]) => `| ${cells.map(String).join(' | ')} |`;
  return [line(headers), line(headers.map(() => '---')), ...rows.map(line)].join('\n');
}

export interface Series {
  name: string;
  points: [number, number][];
}

/** A plain SVG line chart: x and y linear axes, one polyline per series, a legend. */
export function lineChart(title: string, xLabel: string, yLabel: string, series: Series[]): string {
  const W = 640;
  const H = 400;
  const m = { l: 70, r: 160, t: 40, b: 50 };
  const xs = series.flatMap((s) => s.points.map((p) => p[0]));
  const ys = series.flatMap((s) => s.points.map((p) => p[1]));
  const x0 = Math.min(0, ...xs);
  const x1 = Math.max(...xs, 1);
  const y1 = Math.max(...ys, 1) * 1.1;
  const px = (x: number) => m.l + ((x - x0) / (x1 - x0)) * (W - m.l - m.r);
  const py = (y: number) => H - m.b - (y / y1) * (H - m.t - m.b);
  const colors = ['#1f77b4', '#d62728', '#2ca02c', '#ff7f0e', '#9467bd', '#8c564b'];
  const ticks = (max: number) => Array.from({ length: 6 }, (_, i) => (max * i) / 5);
  const out = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" font-family="sans-serif" font-size="12">`,
    `<rect width="${W}" height="${H}" fill="white"/>`,
    `<text x="${W / 2 - m.r / 2}" y="22" text-anchor="middle" font-size="15">${esc(title)}</text>`,
    `<line x1="${m.l}" y1="${H - m.b}" x2="${W - m.r}" y2="${H - m.b}" stroke="black"/>`,
    `<line x1="${m.l}" y1="${m.t}" x2="${m.l}" y2="${H - m.b}" stroke="black"/>`,
    `<text x="${(m.l + W - m.r) / 2}" y="${H - 12}" text-anchor="middle">${esc(xLabel)}</text>`,
    `<text x="16" y="${(m.t + H - m.b) / 2}" text-anchor="middle" transform="rotate(-90 16 ${(m.t + H - m.b) / 2})">${esc(yLabel)}</text>`,
  ];
  for (const t of ticks(y1))
    out.push(
      `<line x1="${m.l}" y1="${py(t)}" x2="${W - m.r}" y2="${py(t)}" stroke="#eee"/>`,
      `<text x="${m.l - 6}" y="${py(t) + 4}" text-anchor="end">${fmt(t)}</text>`,
    );
  for (const t of [...new Set(xs)].sort((a, b) => a - b))
    out.push(`<text x="${px(t)}" y="${H - m.b + 16}" text-anchor="middle">${fmt(t)}</text>`);
  series.forEach((s, i) => {
    const c = colors[i % colors.length];
    const pts = s.points.map((p) => `${px(p[0])},${py(p[1])}`).join(' ');
    out.push(`<polyline fill="none" stroke="${c}" stroke-width="2" points="${pts}"/>`);
    for (const p of s.points) out.push(`<circle cx="${px(p[0])}" cy="${py(p[1])}" r="3" fill="${c}"/>`);
    out.push(
      `<rect x="${W - m.r + 12}" y="${m.t + i * 20}" width="12" height="12" fill="${c}"/>`,
      `<text x="${W - m.r + 30}" y="${m.t + i * 20 + 10}">${esc(s.name)}</text>`,
    );
  });
  out.push('</svg>');
  return out.join('\n');
}

export function saveSvg(name: string, svg: string): void {
  mkdirSync(RESULTS, { recursive: true });
  writeFileSync(join(RESULTS, `${name}.svg`), svg + '\n');
  process.stdout.write(`saved bench/results/${name}.svg\n`);
}

const fmt = (x: number) =>
  Math.abs(x) >= 100 ? x.toFixed(0) : Math.abs(x) >= 1 ? x.toFixed(1) : x.toFixed(2);
const esc = (s: string) => s.replace(/[<>&]/g, (c) => ({ '<': '&lt;', '>': '&gt;', '&': '&amp;' })[c]!);
