/**
 * @module Merges the points of several `bench/federation.ts --scale` runs (bench/results/
 * federation-scale-<tag>.json) into one table and one SVG per metric against N, one line per liveness
 * mode. An argument `tag:label` draws that run's points as their own line named `label` (a before/after
 * comparison of one mode). Usage: node --import tsx bench/federation-scale-plot.ts modes 1000:gossip-paced
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { lineChart, saveSvg, table } from './lib/report.ts';

interface Point {
  sites: number;
  liveness: string;
  startupSeconds: number;
  startupCpuSeconds?: number;
  gaveUp?: string;
  idle?: { messagesPerSitePerSecond: number; bytesPerSitePerSecond: number; cpuMsPerSitePerSecond: number };
  propagation?: { max: number; p50: number; reached: number; of: number };
  perChange?: { pushBytesPerSite: number; allBytesPerSite: number };
  heapMbPerSite?: number;
}

const RESULTS = join(import.meta.dirname, 'results');
const tags = process.argv.slice(2);
const points: Point[] = tags.flatMap((arg) => {
  const [t, label] = arg.split(':');
  const { points } = JSON.parse(readFileSync(join(RESULTS, `federation-scale-${t}.json`), 'utf8')) as {
    points: Point[];
  };
  return label ? points.map((p) => ({ ...p, liveness: label })) : points;
});
const modes = [...new Set(points.map((p) => p.liveness))];
const measured = points.filter((p) => p.idle);
const metric = (file: string, title: string, unit: string, get: (p: Point) => number | undefined) =>
  saveSvg(
    `federation-scale-${file}`,
    lineChart(
      title,
      'sites (N)',
      unit,
      modes.map((m) => ({
        name: m,
        points: measured
          .filter((p) => p.liveness === m && get(p) !== undefined)
          .sort((a, b) => a.sites - b.sites)
          .map((p) => [p.sites, get(p)!] as [number, number]),
      })),
    ),
  );
metric('startup', 'Start-up and convergence of N sites', 's', (p) => p.startupSeconds);
metric('startup-cpu', 'CPU of the start-up and convergence of N sites', 'CPU s', (p) => p.startupCpuSeconds);
metric(
  'idle-messages',
  'Idle messages per site per second',
  'messages/s',
  (p) => p.idle?.messagesPerSitePerSecond,
);
metric('idle-bytes', 'Idle bytes per site per second', 'bytes/s', (p) => p.idle?.bytesPerSitePerSecond);
metric('idle-cpu', 'Idle CPU per site', 'CPU ms per s', (p) => p.idle?.cpuMsPerSitePerSecond);
metric('propagation', 'A new user reaches every site (max)', 'ms', (p) => p.propagation?.max);
metric(
  'bytes-per-change',
  'Bytes per change per receiving site (all traffic)',
  'bytes',
  (p) => p.perChange?.allBytesPerSite,
);
metric('heap', 'Heap per site (after gc)', 'MB', (p) => p.heapMbPerSite);
console.log(
  table(
    [
      'liveness',
      'N',
      'start-up s',
      'start-up CPU s',
      'idle msg/site/s',
      'idle bytes/site/s',
      'idle CPU ms/site/s',
      'new user at all sites p50 / max ms',
      'push / all bytes per change per site',
      'heap MB/site',
    ],
    points
      .sort((a, b) => a.sites - b.sites || a.liveness.localeCompare(b.liveness))
      .map((p) =>
        p.idle
          ? [
              p.liveness,
              p.sites,
              p.startupSeconds,
              p.startupCpuSeconds ?? '-',
              p.idle.messagesPerSitePerSecond,
              p.idle.bytesPerSitePerSecond,
              p.idle.cpuMsPerSitePerSecond,
              `${p.propagation!.p50} / ${p.propagation!.max} (${p.propagation!.reached}/${p.propagation!.of})`,
              `${p.perChange!.pushBytesPerSite} / ${p.perChange!.allBytesPerSite}`,
              p.heapMbPerSite!,
            ]
          : [
              p.liveness,
              p.sites,
              `${p.startupSeconds} (gave up: ${p.gaveUp})`,
              '-',
              '-',
              '-',
              '-',
              '-',
              '-',
              '-',
            ],
      ),
  ),
);
