import { type InjectionMetrics, PUBLISHER_STATE, type StreamType } from '../exporters/index.ts';
import { StreamStats } from '../viewers/stream-stats.ts';
import { CLOCK_RATE } from './whep-peer.ts';

/**
 * What a session's publisher sends in, as the injection's publisher metrics:
 * packets and bytes, loss and jitter (RFC 3550, measured on the publisher's
 * own sequence numbers and timestamps, before they are rewritten), datagrams
 * dropped as not the session's, the WHIP connection's state and the time of
 * the last packet (what the stall alert reads). Loss adds up over the
 * session's publishers: a new one starts new statistics.
 */

/** The last-packet gauge is written at most this often (it is read per scrape). */
const LAST_PACKET_EVERY_MS = 500;

export class PublisherHealth {
  private stats = { audio: new StreamStats(CLOCK_RATE.audio), video: new StreamStats(CLOCK_RATE.video) };
  /** Lost by earlier publishers, and the counter's value so far. */
  private readonly lostBefore = { audio: 0, video: 0 };
  private readonly lostShown = { audio: 0, video: 0 };
  private lastShownMs = 0;

  constructor(
    private readonly m: InjectionMetrics,
    private readonly sessionId: string,
    startedAtMs: number,
  ) {
    const s = { session_id: sessionId };
    for (const t of ['audio', 'video'] as const) {
      const l = { ...s, stream_type: t };
      m.publisherPacketsReceived.inc(l, 0);
      m.publisherBytesReceived.inc(l, 0);
      m.publisherPacketsLost.inc(l, 0);
      m.publisherPacketsDropped.inc(l, 0);
    }
    m.publisherLastPacket.set(s, startedAtMs / 1000);
  }

  /** One of the publisher's RTP packets, as it sent it. */
  onPacket(t: StreamType, rtp: Buffer, nowMs = Date.now()): void {
    const l = { session_id: this.sessionId, stream_type: t };
    this.m.publisherPacketsReceived.inc(l);
    this.m.publisherBytesReceived.inc(l, rtp.length);
    const st = this.stats[t];
    st.onRtp(rtp);
    // Cumulative loss may shrink when a late packet comes: the counter keeps its highest value.
    const lost = this.lostBefore[t] + st.lost;
    if (lost > this.lostShown[t]) {
      this.m.publisherPacketsLost.inc(l, lost - this.lostShown[t]);
      this.lostShown[t] = lost;
    }
    this.m.publisherJitterSeconds.set(l, st.jitterS);
    if (nowMs - this.lastShownMs >= LAST_PACKET_EVERY_MS) {
      this.lastShownMs = nowMs;
      this.m.publisherLastPacket.set({ session_id: this.sessionId }, nowMs / 1000);
    }
  }

  dropped(t: StreamType): void {
    this.m.publisherPacketsDropped.inc({ session_id: this.sessionId, stream_type: t });
  }

  /** Another publisher takes over: its sequence numbers start statistics of their own. */
  newPublisher(): void {
    for (const t of ['audio', 'video'] as const) {
      this.lostBefore[t] += this.stats[t].lost;
      this.stats[t] = new StreamStats(CLOCK_RATE[t]);
    }
  }

  state(s: keyof typeof PUBLISHER_STATE): void {
    this.m.publisherState.set({ session_id: this.sessionId }, PUBLISHER_STATE[s]);
  }
}
