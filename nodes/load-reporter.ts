import type { Logger } from 'pino';
import type { EgressLoad, Topology } from '../topology/index.ts';

/** How often a ready egress node refreshes its load record, and how long one lives without a refresh. */
export const LOAD_EVERY_MS = 1_000;
export const LOAD_TTL_MS = 5_000;

export interface LoadReporterOptions {
  topo: Topology;
  nodeId: string;
  /** The node's load now, or null when it is not ready (the record is then removed). */
  read: () => Promise<Omit<EgressLoad, 'at'> | null>;
  log: Logger;
}

/**
 * Keeps an egress node's load record (topology/egress-load.ts) current for the
 * tree's entry point: written at once when the pool changes (`poke`, several
 * pokes in flight make one more write, not many) and every second as a
 * heartbeat; removed when the node is not ready or stops.
 */
export class LoadReporter {
  private running: Promise<void> | null = null;
  private again = false;
  private timer: NodeJS.Timeout | null = null;
  private stopped = false;
  private failing = false;

  constructor(private readonly o: LoadReporterOptions) {}

  start(): void {
    this.timer ??= setInterval(() => this.poke(), LOAD_EVERY_MS);
    this.poke();
  }

  poke(): void {
    if (this.stopped) return;
    if (this.running) {
      this.again = true;
      return;
    }
    this.running = this.write().finally(() => {
      this.running = null;
      if (this.again) {
        this.again = false;
        this.poke();
      }
    });
  }

  /** No more writes; the record goes at once (viewers stop being sent here). */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
    await this.running;
    await this.o.topo.clearEgressLoad(this.o.nodeId).catch(() => {});
  }

  private async write(): Promise<void> {
    const { topo, nodeId, log } = this.o;
    try {
      const load = await this.o.read();
      if (this.stopped) return;
      if (load) await topo.putEgressLoad(nodeId, load, LOAD_TTL_MS);
      else await topo.clearEgressLoad(nodeId);
      if (this.failing) log.info('load record written again');
      this.failing = false;
    } catch (err) {
      // Redis away: the record expires by itself, and the next heartbeat tries again.
      if (!this.failing) log.warn({ err: (err as Error).message }, 'cannot write the load record');
      this.failing = true;
    }
  }
}
