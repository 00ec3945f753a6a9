import { DatasetWatch } from '../topology/index.ts';
import type { NodeBase } from './lifecycle.ts';

/** Long enough for every node to notice a loss and write its part again (each checks every 3-5 s). */
export const LOSS_GRACE_MS = 30_000;

/**
 * Notices that Redis lost this node's data and has the node write it again.
 * Two signs, checked at each resync: the dataset epoch changed (a FLUSHALL or
 * a restart without the data, whether or not our connection dropped), or our
 * own record is gone (a restore from an old snapshot keeps the epoch). While
 * nothing is lost, it remembers the slot we are attached to, since a node the
 * actuator attached was never told its parent. A restore that fails (the
 * parent's slot not back yet) is tried again at the next check.
 */
export class Presence {
  private readonly dataset: DatasetWatch;
  private pending = false;
  /** The slot this node was attached to when last seen in Redis. */
  parent: string | null;
  private lostAt = Number.NEGATIVE_INFINITY;

  constructor(
    private readonly b: NodeBase,
    /** The node's `REREGISTRATIONS_METRIC` counter. */
    private readonly reregistrations: { inc(): void },
    initialParent?: string,
  ) {
    this.dataset = new DatasetWatch(b.redis);
    this.parent = initialParent ?? null;
  }

  /**
   * For a while after a loss, what is missing from Redis may be another node's
   * not yet written again (sessions, children): a node keeps serving it
   * rather than tearing it down (relay destinations, mountpoints, RTP to children).
   */
  recentlyLost(): boolean {
    return Date.now() - this.lostAt < LOSS_GRACE_MS;
  }

  /** At start-up, before the first registration. */
  begin(): Promise<void> {
    return this.dataset.begin();
  }

  /** True when Redis had lost our data and `restore` has just written it again. */
  async check(restore: (parent: string | null) => Promise<void>): Promise<boolean> {
    const { topo, c, log, state } = this.b;
    // A node leaving removes its own record: that is no loss to undo.
    if (state.stopping) return false;
    if (!this.pending) {
      const [changed, me, parent] = await Promise.all([
        this.dataset.changed(),
        topo.getNode(c.nodeId),
        topo.parentOf(c.nodeId),
      ]);
      if (!changed && me) {
        this.parent = parent;
        return false;
      }
      log.warn(
        { epochChanged: changed, recordGone: !me, parent: this.parent },
        'Redis lost our data: registering again',
      );
      this.pending = true;
      this.lostAt = Date.now();
    }
    await restore(this.parent);
    this.pending = false;
    this.reregistrations.inc();
    log.info({ parent: this.parent }, 're-registered after Redis lost its data');
    return true;
  }
}
