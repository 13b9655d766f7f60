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

/** Resolves after `ms` on `clock` (virtual time under a VirtualClock). */
export const sleep = (clock: Clock, ms: number): Promise<void> =>
  new Promise((resolve) => clock.setTimeout(resolve, ms));

/**
 * Runs `fn` every `ms` on `clock` (setInterval through the port): the next run is set before `fn` runs,
 * so a slow or throwing `fn` does not stop the schedule. `cancel()` stops it.
 */
export function every(clock: Clock, ms: number, fn: () => void): TimerHandle {
  let handle: TimerHandle | undefined;
  let stopped = false;
  const arm = () => {
    handle = clock.setTimeout(() => {
      if (stopped) return;
      arm();
      fn();
    }, ms);
  };
  arm();
  return {
    cancel() {
      stopped = true;
      handle?.cancel();
    },
  };
}

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
 * A clock whose time moves only when told: every timer due by the new time runs in order (by due time,
 * then by the order they were set). Timers sit in a binary heap, so firing one costs O(log n) and a lab
 * of a thousand sites with a few timers each stays cheap; a cancelled timer is dropped when it reaches
 * the top.
 */
export class VirtualClock implements Clock {
  private t: number;
  private seq = 0;
  private live = 0;
  private heap = new TimerHeap();
  constructor(start = 1_700_000_000_000) {
    this.t = start;
  }
  now(): number {
    return this.t;
  }
  setTimeout(fn: () => void, ms: number): TimerHandle {
    const timer: VirtualTimer = { at: this.t + Math.max(0, ms), seq: this.seq++, fn, live: true };
    this.heap.push(timer);
    this.live++;
    return {
      cancel: () => {
        if (!timer.live) return;
        timer.live = false;
        this.live--;
      },
    };
  }
  /** Runs every timer due within `ms` (including ones scheduled while running), then sets the time. */
  advance(ms: number): void {
    const end = this.t + ms;
    for (let next = this.nextLive(); next && next.at <= end; next = this.nextLive()) {
      this.heap.pop();
      next.live = false;
      this.live--;
      this.t = Math.max(this.t, next.at);
      next.fn();
    }
    this.t = end;
  }
  /** Runs timers until none is pending (or the limit of virtual ms passes). */
  runAll(limitMs = 3_600_000): void {
    const end = this.t + limitMs;
    for (let next = this.nextLive(); next && this.t < end; next = this.nextLive())
      this.advance(Math.max(0, next.at - this.t));
  }
  pending(): number {
    return this.live;
  }
  /** The earliest live timer, dropping cancelled ones from the top of the heap. */
  private nextLive(): VirtualTimer | undefined {
    let top = this.heap.peek();
    while (top && !top.live) {
      this.heap.pop();
      top = this.heap.peek();
    }
    return top;
  }
}

interface VirtualTimer {
  at: number;
  seq: number;
  fn: () => void;
  live: boolean;
}

/** A binary min-heap of timers ordered by (at, seq). */
class TimerHeap {
  private a: VirtualTimer[] = [];
  private static before(x: VirtualTimer, y: VirtualTimer): boolean {
    return x.at < y.at || (x.at === y.at && x.seq < y.seq);
  }
  peek(): VirtualTimer | undefined {
    return this.a[0];
  }
  push(x: VirtualTimer): void {
    const a = this.a;
    a.push(x);
    for (let i = a.length - 1; i > 0;) {
      const p = (i - 1) >> 1;
      if (!TimerHeap.before(a[i]!, a[p]!)) break;
      [a[i], a[p]] = [a[p]!, a[i]!];
      i = p;
    }
  }
  pop(): VirtualTimer | undefined {
    const a = this.a;
    const top = a[0];
    const last = a.pop();
    if (a.length > 0 && last) {
      a[0] = last;
      for (let i = 0; ;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < a.length && TimerHeap.before(a[l]!, a[m]!)) m = l;
        if (r < a.length && TimerHeap.before(a[r]!, a[m]!)) m = r;
        if (m === i) break;
        [a[i], a[m]] = [a[m]!, a[i]!];
        i = m;
      }
    }
    return top;
  }
}
