import { createSocket, type Socket } from 'node:dgram';
import { STREAM_TYPES, type StreamType } from '../exporters/index.ts';
import { IngestPath, isRtpMedia } from './ingest-path.ts';
import type { PublisherHealth } from './publisher-health.ts';
import type { RtpSource, RtpSourceOptions } from './rtp-source.ts';

/**
 * Plain RTP ingest: a session's media arrives on two UDP ports (Opus on the
 * audio port, VP8 on the video port) from any sender, GStreamer or ffmpeg,
 * with the SSRCs the session declared; anything else that arrives there
 * (another SSRC, RTCP, not RTP) is dropped and counted. Nobody can be asked
 * for a keyframe: the sender must send them periodically. A pause longer than
 * RESTART_GAP_MS is taken as a restarted sender (new sequence numbers), so
 * numbering runs on across it.
 */

const RESTART_GAP_MS = 2_000;

export interface IngestPorts {
  audioPort: number;
  videoPort: number;
}

export class RtpIngestSource implements RtpSource {
  private readonly socks: Record<StreamType, Socket>;
  private readonly path: IngestPath;
  private readonly ssrc: Record<StreamType, number>;
  private accepting = false;
  private lastAt = 0;

  private constructor(o: RtpSourceOptions, health: PublisherHealth) {
    this.path = new IngestPath(o, health);
    this.ssrc = { audio: o.audioSsrc >>> 0, video: o.videoSsrc >>> 0 };
    this.socks = { audio: createSocket('udp4'), video: createSocket('udp4') };
    for (const t of STREAM_TYPES) {
      this.socks[t].on('error', (err) => o.onError?.(err));
      this.socks[t].on('message', (m) => this.onDatagram(t, m));
    }
  }

  /** Binds the ports (0: any free one) on `bind`; rejects, nothing left open, when one is taken. */
  static async open(
    o: RtpSourceOptions,
    health: PublisherHealth,
    bind: string,
    ports: IngestPorts,
  ): Promise<RtpIngestSource> {
    const s = new RtpIngestSource(o, health);
    try {
      for (const t of STREAM_TYPES)
        await new Promise<void>((resolve, reject) => {
          s.socks[t].once('error', reject);
          s.socks[t].bind(t === 'audio' ? ports.audioPort : ports.videoPort, bind, () => {
            s.socks[t].off('error', reject);
            resolve();
          });
        });
    } catch (err) {
      await s.stop();
      throw err;
    }
    return s;
  }

  /** The ports bound (the ones picked when 0 was asked for). */
  ports(): IngestPorts {
    return { audioPort: this.socks.audio.address().port, videoPort: this.socks.video.address().port };
  }

  start(): void {
    this.accepting = true;
  }

  generated(): Record<StreamType, number> {
    return this.path.generated();
  }

  private onDatagram(t: StreamType, m: Buffer): void {
    if (!this.accepting) return;
    if (!isRtpMedia(m) || m.readUInt32BE(8) !== this.ssrc[t]) {
      this.path.health.dropped(t);
      return;
    }
    const now = performance.now();
    if (this.lastAt !== 0 && now - this.lastAt > RESTART_GAP_MS) this.path.newPublisher();
    this.lastAt = now;
    this.path.push(t, m);
  }

  async stop(): Promise<void> {
    this.accepting = false;
    for (const t of STREAM_TYPES)
      try {
        this.socks[t].close();
      } catch {
        /* never bound */
      }
    this.path.close();
  }
}
