/**
 * @module The ports that service logic is written against: clock, ids, logger. Real implementations
 * live here too (they are tiny); the lab swaps in a virtual clock.
 */
import { randomUUID } from 'node:crypto';

export type TimerHandle = { cancel(): void };

export interface Clock {
  /** Milliseconds since the epoch (virtual in the lab). */
  now(): number;
  setTimeout(fn: () => void, ms: number): TimerHandle;
}

export interface Ids {
  uuid(): string;
}

export interface Logger {
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
  debug(obj: object, msg?: string): void;
  child(bindings: object): Logger;
}

export const systemClock: Clock = {
  now: () => Date.now(),
  setTimeout(fn, ms) {
    // Not unref'd: a pending timer is in-flight work (a message on a modelled WAN link, a heartbeat of a
    // running site); sites cancel theirs when they close.
    const t = setTimeout(fn, ms);
    return { cancel: () => clearTimeout(t) };
  },
};

export const randomIds: Ids = { uuid: () => randomUUID() };

/** Keystone ids are 32 hex characters (uuid4().hex); Nova, Glance, Neutron, Cinder use dashed UUIDs. */
export const hexId = (ids: Ids): string => ids.uuid().replaceAll('-', '');

export const silentLogger: Logger = {
  info() {},
  warn() {},
  error() {},
  debug() {},
  child() {
    return silentLogger;
  },
};

/**
 * A clock whose time moves only when told: every timer due by the new time runs in order.
 * Used by the lab and by tests of the WAN model, so that a 50 ms link costs no real time.
 */
export class VirtualClock implements Clock {
  private t: number;
  private seq = 0;
  private timers: { at: number; seq: number; fn: () => void; live: boolean }[] = [];
  constructor(start = 1_700_000_000_000) {
    this.t = start;
  }
  now(): number {
    return this.t;
  }
  setTimeout(fn: () => void, ms: number): TimerHandle {
    const timer = { at: this.t + Math.max(0, ms), seq: this.seq++, fn, live: true };
    this.timers.push(timer);
    return { cancel: () => void (timer.live = false) };
  }
  /** Runs every timer due within `ms` (including ones scheduled while running), then sets the time. */
  advance(ms: number): void {
    const end = this.t + ms;
    for (;;) {
      let next: (typeof this.timers)[number] | undefined;
      for (const x of this.timers)
        if (x.live && x.at <= end && (!next || x.at < next.at || (x.at === next.at && x.seq < next.seq)))
          next = x;
      if (!next) break;
      next.live = false;
      this.t = Math.max(this.t, next.at);
      next.fn();
      this.timers = this.timers.filter((x) => x.live);
    }
    this.t = end;
  }
  /** Runs timers until none is pending (or the limit of virtual ms passes). */
  runAll(limitMs = 3_600_000): void {
    const end = this.t + limitMs;
    while (this.timers.some((x) => x.live) && this.t < end) {
      const next = Math.min(...this.timers.filter((x) => x.live).map((x) => x.at));
      this.advance(Math.max(0, next - this.t));
    }
  }
  pending(): number {
    return this.timers.filter((x) => x.live).length;
  }
}
