/**
 * @module The reconcile loop of the site's data plane (level-based, as a Kubernetes controller): a
 * change only kicks it; each pass reads the rows, computes the desired state and lets the data plane
 * converge, so a lost kick costs latency, never correctness. Passes never overlap: a kick during a
 * pass runs one more pass after it. Runs at start and every `everyMs` on the site's clock.
 */
import type { Clock, Logger, TimerHandle } from '../../../core/ports.ts';
import type { DataPlane, DesiredState } from './dataplane.ts';

export class DataPlaneLoop {
  private running: Promise<void> | undefined;
  private again = false;
  private timer: TimerHandle | undefined;
  private stopped = false;
  /** Passes done (tests and metrics). */
  passes = 0;

  constructor(
    readonly plane: DataPlane,
    private readonly want: () => DesiredState,
    private readonly clock: Clock,
    private readonly log: Logger,
    private readonly everyMs: number,
  ) {}

  /** The first pass, then one every `everyMs`. */
  async start(): Promise<void> {
    this.stopped = false;
    await this.converge();
    this.schedule();
  }

  private schedule(): void {
    if (this.stopped || this.plane.name === 'none') return;
    this.timer = this.clock.setTimeout(() => {
      void this.converge().finally(() => this.schedule());
    }, this.everyMs);
  }

  /** Asks for a pass soon (a port was bound or unbound); never throws. */
  kick(): void {
    if (this.plane.name === 'none' || this.stopped) return;
    this.clock.setTimeout(() => void this.converge(), 0);
  }

  /** One pass (or waits for the one running and runs another after it); resolves when the host matches the rows. */
  converge(): Promise<void> {
    if (this.running) {
      this.again = true; // the running pass loops once more, after this kick
      return this.running;
    }
    this.running = (async () => {
      try {
        do {
          this.again = false;
          await this.plane.reconcile(this.want());
          this.passes++;
        } while (this.again);
      } catch (e) {
        this.log.warn({ err: (e as Error).message }, 'data plane reconcile failed (retried next pass)');
      } finally {
        this.running = undefined;
      }
    })();
    return this.running;
  }

  stop(): void {
    this.stopped = true;
    this.timer?.cancel();
  }
}
