import { randomBytes } from 'node:crypto';
import type { Logger } from 'pino';
import { type EgressMetrics, recordViewerReport, type StreamType } from '../exporters/index.ts';
import type { KeyframeReason, SessionInfo, Topology } from '../topology/index.ts';
import { HttpError } from './common.ts';
import type { MountpointBackend } from './mountpoints.ts';
import type { PortPool } from './port-pool.ts';
import { WhepPeer } from './whep-peer.ts';
import type { ParsedOffer } from './whep-sdp.ts';

/** Seconds a viewer refused for a full port pool is told to wait (Retry-After) before trying again. */
export const POOL_FULL_RETRY_AFTER_S = 2;

export interface WhepViewersOptions {
  nodeId: string;
  topo: Topology;
  pool: PortPool;
  /** Keeps the per-session count of connected viewers (the active-viewers gauge). */
  backend: MountpointBackend;
  metrics: EgressMetrics;
  log: Logger;
  /** Where each PeerConnection binds, and the address its answer advertises. */
  iceBind: string;
  advertise: string;
  /** An offer whose peer has not connected by then is ended and its port returned. */
  connectTimeoutMs: number;
  /** Packets kept per track for NACKed resends; 0 turns NACK handling off. */
  nackBuffer: number;
  /** A viewer of `s` sent a PLI or FIR about its video. */
  onKeyframeRequest: (s: SessionInfo, reason: KeyframeReason) => void;
}

interface Viewer {
  id: string;
  sessionId: string;
  port: number;
  peer: WhepPeer;
  reaper: NodeJS.Timeout | undefined;
}

/**
 * The egress node's WHEP viewers: one PeerConnection each on a pool port,
 * recorded in Redis (`viewers:{node}`) while it holds the port, fed the
 * session's RTP. A viewer counts once connected and is gone, port and record
 * returned, when it closes, fails, stops answering consent checks, never
 * connects, is DELETEd or its session ends.
 */
export class WhepViewers {
  private readonly byId = new Map<string, Viewer>();
  private readonly bySession = new Map<string, Set<Viewer>>();

  constructor(private readonly o: WhepViewersOptions) {}

  get size(): number {
    return this.byId.size;
  }

  /** A viewer of `s` answering `offerSdp`: the answer and the viewer's id; all or nothing. */
  async add(s: SessionInfo, offerSdp: string, offer: ParsedOffer): Promise<{ id: string; answer: string }> {
    const { pool, topo, nodeId, log } = this.o;
    const port = pool.take(1)?.[0];
    if (port === undefined)
      // A WHEP client tries again then: room comes with a scale-out, or as viewers leave.
      throw new HttpError(
        503,
        'port pool exhausted: no port left for a new viewer',
        { allocated: pool.allocated, size: pool.size },
        { 'Retry-After': String(POOL_FULL_RETRY_AFTER_S) },
      );
    const id = `v-${randomBytes(8).toString('hex')}`;
    let v: Viewer | undefined;
    try {
      await topo.putViewer(nodeId, { id, sessionId: s.id, poolPort: port });
      const { peer, answer } = await WhepPeer.answer({
        id,
        offerSdp,
        offer,
        ssrc: { audio: s.audioSsrc, video: s.videoSsrc },
        port,
        bind: this.o.iceBind,
        advertise: this.o.advertise,
        nackBuffer: this.o.nackBuffer,
        onState: (state) => (state === 'connected' ? this.connected(id) : void this.drop(id, 'gone')),
        onReport: (r) => recordViewerReport(this.o.metrics.viewerQuality, r),
        onNack: (stream, n) => this.o.metrics.viewerQuality.nackedPackets.inc({ stream_type: stream }, n),
        onKeyframeRequest: (reason) => this.o.onKeyframeRequest(s, reason),
      });
      v = { id, sessionId: s.id, port, peer, reaper: undefined };
      v.reaper = setTimeout(() => void this.drop(id, 'never connected'), this.o.connectTimeoutMs);
      v.reaper.unref();
      this.byId.set(id, v);
      const set = this.bySession.get(s.id) ?? new Set<Viewer>();
      this.bySession.set(s.id, set);
      set.add(v);
      return { id, answer };
    } catch (err) {
      if (!v) {
        pool.release(port);
        await topo.removeViewer(nodeId, id).catch(() => {});
      }
      log.warn({ viewer: id, err: (err as Error).message }, 'cannot answer a WHEP offer');
      if (err instanceof HttpError) throw err;
      throw new HttpError(503, `cannot answer the offer: ${(err as Error).message}`, undefined, {
        'Retry-After': String(POOL_FULL_RETRY_AFTER_S),
      });
    }
  }

  /** After Redis lost its data: every viewer holding a port here, recorded again. */
  async recordAll(): Promise<void> {
    const { topo, nodeId } = this.o;
    for (const v of this.byId.values())
      await topo.putViewer(nodeId, { id: v.id, sessionId: v.sessionId, poolPort: v.port });
  }

  /** `GET /sessions`: a session's viewers, whether connected, and the RTP sent to each. */
  describe(sessionId: string) {
    return [...(this.bySession.get(sessionId) ?? [])].map((v) => ({
      id: v.id,
      port: v.port,
      connected: v.peer.isConnected,
      sent: v.peer.sent(),
    }));
  }

  has(sessionId: string, id: string): boolean {
    return this.byId.get(id)?.sessionId === sessionId;
  }

  /** One RTP packet of a session to each of its connected viewers. */
  forward(sessionId: string, stream: StreamType, rtp: Buffer): void {
    const set = this.bySession.get(sessionId);
    if (set) for (const v of set) v.peer.forward(stream, rtp);
  }

  /** Ends a viewer (DELETE, gone, reaped); false when there was none. */
  async drop(id: string, why: string): Promise<boolean> {
    const v = this.byId.get(id);
    if (!v) return false;
    this.byId.delete(id);
    this.bySession.get(v.sessionId)?.delete(v);
    if (this.bySession.get(v.sessionId)?.size === 0) this.bySession.delete(v.sessionId);
    if (v.reaper) clearTimeout(v.reaper);
    const wasConnected = v.peer.isConnected;
    v.peer.close();
    this.o.backend.viewerLeft(v.sessionId, v.id);
    this.o.pool.release(v.port);
    await this.o.topo
      .removeViewer(this.o.nodeId, v.id)
      .catch((err) => this.o.log.warn({ viewer: v.id, err: err.message }, 'cannot remove the viewer record'));
    this.o.log.info({ viewer: v.id, session: v.sessionId, port: v.port, why, wasConnected }, 'viewer left');
    return true;
  }

  /** Every viewer of a session that ended. */
  async endSession(sessionId: string): Promise<void> {
    for (const v of [...(this.bySession.get(sessionId) ?? [])]) await this.drop(v.id, 'session ended');
  }

  /**
   * At start-up: the records an earlier run left. Their PeerConnections died
   * with that process, so their ports are free in this one's pool; the records
   * go, and the viewers come back through WHEP as new ones.
   */
  async forgetDead(): Promise<number> {
    const { topo, nodeId, log } = this.o;
    const dead = await topo.viewers(nodeId);
    for (const v of dead) await topo.removeViewer(nodeId, v.id);
    if (dead.length) log.info({ viewers: dead.length }, 'removed the records of viewers of the previous run');
    return dead.length;
  }

  async closeAll(why: string): Promise<void> {
    for (const id of [...this.byId.keys()]) await this.drop(id, why);
  }

  private connected(id: string): void {
    const v = this.byId.get(id);
    if (!v) return;
    if (v.reaper) clearTimeout(v.reaper);
    v.reaper = undefined;
    this.o.backend.viewerJoined(v.sessionId, v.id);
    this.o.log.info({ viewer: v.id, session: v.sessionId, port: v.port }, 'viewer connected');
  }
}
