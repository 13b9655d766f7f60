/**
 * @module A site's settings, checked once at start-up: every number in range, every choice one of
 * its values, all problems named together. A setting like `--heartbeat-ms abc` or `0` must stop the
 * site with a message, not flood the fabric with hundreds of heartbeats a second (issue 13, item 7).
 */
import type { SiteConfig } from './config.ts';

/** [min, max] of each numeric setting, and what it is for the message. */
const RANGES: { key: keyof SiteConfig; min: number; max: number; what: string }[] = [
  { key: 'port', min: 0, max: 65535, what: 'the HTTP port' },
  { key: 'heartbeatMs', min: 10, max: 60_000, what: 'ms between heartbeats' },
  { key: 'downAfterMs', min: 50, max: 600_000, what: 'ms without a heartbeat before a peer is down' },
  { key: 'forwardTimeoutMs', min: 100, max: 300_000, what: 'ms a forwarded request may take' },
  { key: 'tokenTtlSeconds', min: 1, max: 30 * 86_400, what: 'token lifetime in seconds' },
  { key: 'passwordHashCost', min: 10, max: 20, what: 'log2 of the scrypt cost' },
];

const CHOICES: { key: keyof SiteConfig; values: readonly string[] }[] = [
  { key: 'logLevel', values: ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] },
  { key: 'trust', values: ['open', 'admitted'] },
  { key: 'liveness', values: ['broadcast', 'gossip'] },
  { key: 'metricsAccess', values: ['local', 'admin', 'open'] },
];

/** Throws one Error naming every setting that is out of range or not one of its values. */
export function checkSettings(config: SiteConfig): void {
  const bad: string[] = [];
  for (const r of RANGES) {
    const v = config[r.key];
    if (typeof v !== 'number' || !Number.isInteger(v) || v < r.min || v > r.max)
      bad.push(`${r.key} (${r.what}) must be an integer from ${r.min} to ${r.max}, not ${JSON.stringify(v)}`);
  }
  for (const c of CHOICES) {
    const v = config[c.key];
    if (typeof v !== 'string' || !c.values.includes(v))
      bad.push(`${c.key} must be one of ${c.values.join(', ')}, not ${JSON.stringify(v)}`);
  }
  if (bad.length === 0 && config.downAfterMs < 2 * config.heartbeatMs)
    bad.push(
      `downAfterMs (${config.downAfterMs}) must be at least twice heartbeatMs (${config.heartbeatMs})`,
    );
  if (bad.length > 0) throw new Error(`invalid settings: ${bad.join('; ')}`);
}
