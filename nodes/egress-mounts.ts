import type { Logger } from 'pino';
import {
  type Collector,
  type EgressMetrics,
  forgetEgressSession,
  recordPortPool,
  setCounterTotal,
} from '../exporters/index.ts';
import { type ForwarderClient, ForwarderError } from '../forwarder/client.ts';
import type { SessionInfo, Topology } from '../topology/index.ts';
import type { MountpointBackend } from './mountpoints.ts';
import type { PortPool } from './port-pool.ts';

/** One live session on this node: its mountpoint's ports. */
export interface Mount {
  session: SessionInfo;
  audioPort: number;
  videoPort: number;
}

/** Where the forwarder sends a session's RTP: its mountpoint. */
export interface RtpAddress {
  host: string;
  audioPort: number;
  videoPort: number;
}

export interface EgressMountsOptions {
  nodeId: string;
  /** Where the mountpoints bind (the forwarder sends to them there). */
  mountpointHost: string;
  topo: Topology;
  pool: PortPool;
  backend: MountpointBackend;
  client: ForwarderClient;
  metrics: EgressMetrics;
  log: Logger;
  /** A session's mountpoint closes: its viewers end first. */
  onSessionClosed: (sessionId: string) => Promise<void>;
}

const mountDest = (sessionId: string) => `mp-${sessionId}`;

/**
 * The egress node's sessions: one mountpoint per live session (seed step 4b,
 * discoverExistingSessions) on pool ports, the forwarder's SSRC mapping to
 * it. Its WHEP viewers are `whep-viewers.ts`'s, fed from the mountpoint. Not
 * serialised itself: the caller runs every method on one queue.
 */
export class EgressMounts {
  private readonly mounts = new Map<string, Mount>();

  constructor(private readonly o: EgressMountsOptions) {}

  get size(): number {
    return this.mounts.size;
  }

  /** The sessions with an open mountpoint (this node can take their viewers). */
  sessionIds(): string[] {
    return [...this.mounts.keys()].sort();
  }

  get(sessionId: string): Mount | undefined {
    return this.mounts.get(sessionId);
  }

  /** `GET /sessions`: every mountpoint and the pool. */
  describe() {
    const { backend, pool } = this.o;
    return {
      sessions: [...this.mounts.values()].map((m) => ({
        sessionId: m.session.id,
        audioSsrc: m.session.audioSsrc,
        videoSsrc: m.session.videoSsrc,
        ports: { audio: m.audioPort, video: m.videoPort },
        viewers: backend.viewerCount(m.session.id),
        received: backend.received(m.session.id),
      })),
      pool: { min: pool.min, max: pool.max, allocated: pool.allocated, available: pool.available },
    };
  }

  /**
   * discoverExistingSessions() and its converse: mountpoints follow the live
   * sessions in Redis. `keepMissing` (shortly after Redis lost its data) opens
   * new ones but closes none: a missing session may only be not written again yet.
   */
  async reconcile(keepMissing = false): Promise<void> {
    const live = await this.o.topo.sessions();
    const liveIds = new Set(live.map((s) => s.id));
    if (!keepMissing) for (const m of [...this.mounts.values()]) if (!liveIds.has(m.session.id)) await this.close(m);
    for (const s of live) {
      const m = this.mounts.get(s.id);
      if (m && (m.session.audioSsrc !== s.audioSsrc || m.session.videoSsrc !== s.videoSsrc)) await this.close(m);
      if (!this.mounts.has(s.id)) {
        await this.open(s).catch((err) =>
          this.o.log.error({ session: s.id, err: (err as Error).message }, 'cannot open mountpoint'),
        );
      }
    }
  }

  /** At start-up: mountpoints for the live sessions. */
  async restore(): Promise<void> {
    await this.reconcile();
  }

  /** After a forwarder restart: every mountpoint mapping again. */
  async resyncForwarder(): Promise<void> {
    const have = new Set((await this.o.client.list()).map((d) => d.id));
    for (const m of this.mounts.values()) {
      if (!have.has(mountDest(m.session.id)))
        await this.addDest(mountDest(m.session.id), this.mountAddress(m), m.session);
    }
  }

  /** The node's own state and the forwarder's per-SSRC quality, at each scrape. */
  collectors(): Collector[] {
    const { metrics, pool, backend, client } = this.o;
    return [
      {
        name: 'egress_state',
        collect: () => {
          metrics.activeMountpoints.set(this.mounts.size);
          recordPortPool(metrics, pool.allocated, pool.available);
          for (const m of this.mounts.values()) {
            metrics.activeViewers.set({ session_id: m.session.id }, backend.viewerCount(m.session.id));
            const got = backend.received(m.session.id);
            if (!got) continue;
            for (const t of ['audio', 'video'] as const) {
              const labels = {
                stream_type: t,
                ssrc: String(t === 'audio' ? m.session.audioSsrc : m.session.videoSsrc),
              };
              setCounterTotal(metrics.rtpPacketsReceived, labels, got[t].packets);
              setCounterTotal(metrics.rtpBytesReceived, labels, got[t].bytes);
            }
          }
        },
      },
      // RTP quality where the session's streams enter this node: the forwarder's per-SSRC counts.
      // An unreachable forwarder leaves the last values (a drop to 0 would read as a counter reset).
      {
        name: 'forwarder_stream_quality',
        collect: async () => {
          const st = await client.stats();
          if (!st.reachable) return;
          // Only the streams of open mountpoints: the forwarder keeps a stream in STATS for a while after its
          // session ends, and an ended session's series must stay gone (forgetEgressSession).
          const live = new Set<number>();
          for (const m of this.mounts.values()) live.add(m.session.audioSsrc).add(m.session.videoSsrc);
          for (const t of ['audio', 'video'] as const) {
            metrics.streamQuality.record(
              t,
              st[t].streams.filter((q) => live.has(q.ssrc)),
            );
          }
        },
      },
    ];
  }

  /** Seed step 4b for one session: ports from the pool, a mountpoint, the SSRC -> mountpoint mapping. */
  private async open(s: SessionInfo): Promise<void> {
    const { pool, backend, log } = this.o;
    const ports = pool.take(2);
    if (!ports) {
      log.error(
        { session: s.id, allocated: pool.allocated, size: pool.size },
        'port pool exhausted: no mountpoint for this session',
      );
      return;
    }
    const [audioPort, videoPort] = ports as [number, number];
    try {
      await backend.create({ sessionId: s.id, audioSsrc: s.audioSsrc, videoSsrc: s.videoSsrc, audioPort, videoPort });
    } catch (err) {
      pool.release(audioPort, videoPort);
      throw err;
    }
    const m: Mount = { session: s, audioPort, videoPort };
    try {
      await this.addDest(mountDest(s.id), this.mountAddress(m), s);
    } catch (err) {
      await backend.destroy(s.id);
      pool.release(audioPort, videoPort);
      throw err;
    }
    this.mounts.set(s.id, m);
    log.info(
      { session: s.id, audioPort, videoPort, audioSsrc: s.audioSsrc, videoSsrc: s.videoSsrc },
      'mountpoint opened',
    );
  }

  private async close(m: Mount): Promise<void> {
    await this.o.onSessionClosed(m.session.id);
    await this.o.client
      .remove(mountDest(m.session.id))
      .catch((err) => this.o.log.warn({ session: m.session.id, err: err.message }, 'mountpoint REMOVE failed'));
    await this.o.backend.destroy(m.session.id);
    this.o.pool.release(m.audioPort, m.videoPort);
    this.mounts.delete(m.session.id);
    forgetEgressSession(this.o.metrics, {
      sessionId: m.session.id,
      audioSsrc: m.session.audioSsrc,
      videoSsrc: m.session.videoSsrc,
    });
    this.o.log.info({ session: m.session.id }, 'mountpoint closed');
  }

  private mountAddress(m: Mount): RtpAddress {
    return { host: this.o.mountpointHost, audioPort: m.audioPort, videoPort: m.videoPort };
  }

  private async addDest(id: string, to: RtpAddress, s: SessionInfo): Promise<void> {
    try {
      await this.o.client.add({
        id,
        host: to.host,
        audioPort: to.audioPort,
        videoPort: to.videoPort,
        audioSsrc: s.audioSsrc,
        videoSsrc: s.videoSsrc,
      });
    } catch (err) {
      // Already there (an earlier attempt, or a resync racing us): same mapping, nothing to do.
      if (!(err instanceof ForwarderError && /duplicate/.test(err.message))) throw err;
    }
  }
}
