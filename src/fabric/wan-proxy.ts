/**
 * @module A small TCP proxy that puts a WAN between real processes: one-way delay on every chunk,
 * a bandwidth cap, and partitions (existing connections are cut and new ones refused). The kernel
 * here has no netem, so tests and the lab put one of these in front of each inter-site link (for
 * example each route between two nats-servers).
 */
import net from 'node:net';

export interface WanProxyOptions {
  listenPort: number;
  targetHost: string;
  targetPort: number;
  /** One-way delay added to every chunk, each direction, ms. */
  latencyMs?: number;
  /** Bytes per second each way; 0 = unlimited. */
  bandwidthBps?: number;
}

export class WanProxy {
  private server: net.Server;
  private conns = new Set<net.Socket>();
  private opts: Required<WanProxyOptions>;
  private cut = false;
  readonly stats = { connections: 0, refused: 0, bytes: 0 };

  private constructor(opts: WanProxyOptions) {
    this.opts = { latencyMs: 0, bandwidthBps: 0, ...opts };
    this.server = net.createServer((client) => this.accept(client));
  }

  static async start(opts: WanProxyOptions): Promise<WanProxy> {
    const p = new WanProxy(opts);
    await new Promise<void>((resolve, reject) => {
      p.server.once('error', reject);
      p.server.listen(opts.listenPort, '127.0.0.1', () => resolve());
    });
    return p;
  }

  get port(): number {
    return (this.server.address() as net.AddressInfo).port;
  }

  setLatency(ms: number): void {
    this.opts.latencyMs = ms;
  }
  setBandwidth(bps: number): void {
    this.opts.bandwidthBps = bps;
  }

  /** Cuts every open connection and refuses new ones until heal(). */
  partition(): void {
    this.cut = true;
    for (const c of this.conns) c.destroy();
    this.conns.clear();
  }
  heal(): void {
    this.cut = false;
  }
  get partitioned(): boolean {
    return this.cut;
  }

  private accept(client: net.Socket): void {
    if (this.cut) {
      this.stats.refused++;
      client.destroy();
      return;
    }
    this.stats.connections++;
    const upstream = net.connect(this.opts.targetPort, this.opts.targetHost);
    this.conns.add(client);
    this.conns.add(upstream);
    const close = () => {
      client.destroy();
      upstream.destroy();
      this.conns.delete(client);
      this.conns.delete(upstream);
    };
    client.on('error', close).on('close', close);
    upstream.on('error', close).on('close', close);
    this.pipe(client, upstream);
    this.pipe(upstream, client);
  }

  /** Copies from -> to, each chunk after the one-way delay and its transmission time, in order. */
  private pipe(from: net.Socket, to: net.Socket): void {
    let busyUntil = 0;
    let lastAt = 0;
    from.on('data', (chunk: Buffer) => {
      this.stats.bytes += chunk.length;
      const now = Date.now();
      const tx = this.opts.bandwidthBps > 0 ? (chunk.length * 1000) / this.opts.bandwidthBps : 0;
      const start = Math.max(now, busyUntil);
      busyUntil = start + tx;
      lastAt = Math.max(busyUntil + this.opts.latencyMs, lastAt);
      const delay = lastAt - now;
      if (delay <= 0) to.write(chunk);
      else setTimeout(() => !to.destroyed && to.write(chunk), delay);
    });
  }

  async close(): Promise<void> {
    this.partition();
    await new Promise<void>((r) => this.server.close(() => r()));
  }
}
