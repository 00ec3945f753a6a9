import { createSocket, type Socket } from 'node:dgram';
import type { StreamType } from '../exporters/index.ts';
import { fanOut, PAYLOAD_TYPE, type RtpSource, type RtpSourceOptions } from './rtp-source.ts';

/**
 * `--source synthetic`: RTP at exact raw rates for tests and benchmarks that
 * count packets. Audio `audioPps` packets/s of 160 bytes, video `videoPps`
 * packets/s of 1,000-1,200 bytes; the payloads are filler, nothing decodes
 * them. Packets are paced by elapsed time, so a late timer sends the ones it
 * owes rather than drifting.
 */

export interface SyntheticSourceOptions extends RtpSourceOptions {
  audioPps?: number;
  videoPps?: number;
}

const TICK_MS = 10;
const CLOCK = { audio: 48_000, video: 90_000 } as const;

export class SyntheticSource implements RtpSource {
  private readonly sock: Socket;
  private timer: NodeJS.Timeout | undefined;
  private startedAt = 0;
  private readonly sent = { audio: 0, video: 0 };
  private readonly seq = { audio: Math.floor(Math.random() * 65536), video: Math.floor(Math.random() * 65536) };
  private readonly pps: Record<StreamType, number>;
  private readonly ssrc: Record<StreamType, number>;

  constructor(private readonly o: SyntheticSourceOptions) {
    this.sock = createSocket('udp4');
    this.sock.on('error', (err) => o.onError?.(err));
    this.pps = { audio: o.audioPps ?? 50, video: o.videoPps ?? 250 };
    this.ssrc = { audio: o.audioSsrc, video: o.videoSsrc };
  }

  start(): void {
    const begin = () => {
      this.startedAt = Date.now();
      this.timer = setInterval(() => this.tick(), TICK_MS);
    };
    if (this.o.delayMs) this.timer = setTimeout(begin, this.o.delayMs);
    else begin();
  }

  generated(): Record<StreamType, number> {
    return { ...this.sent };
  }

  private tick(): void {
    let elapsed = Date.now() - this.startedAt;
    if (this.o.durationMs !== undefined && elapsed >= this.o.durationMs) {
      elapsed = this.o.durationMs;
      clearInterval(this.timer);
      this.timer = undefined;
    }
    for (const t of ['audio', 'video'] as const) {
      const owed = Math.floor((elapsed * this.pps[t]) / 1000) - this.sent[t];
      for (let i = 0; i < owed; i++) this.emit(t);
    }
  }

  private emit(t: StreamType): void {
    const n = this.sent[t]++;
    const size = t === 'audio' ? 160 : 1000 + ((n * 37) % 201);
    const b = Buffer.alloc(size, 0x5a);
    b[0] = 0x80;
    b[1] = PAYLOAD_TYPE[t] | (t === 'video' && n % 10 === 9 ? 0x80 : 0); // marker closes a "frame" of 10 packets
    b.writeUInt16BE(this.seq[t]++ & 0xffff, 2);
    this.seq[t] &= 0xffff;
    b.writeUInt32BE(Math.floor((n * CLOCK[t]) / this.pps[t]) >>> 0, 4);
    b.writeUInt32BE(this.ssrc[t] >>> 0, 8);
    fanOut(this.sock, t, b, this.o);
  }

  async stop(): Promise<void> {
    clearTimeout(this.timer);
    clearInterval(this.timer);
    this.timer = undefined;
    this.sock.close();
  }
}
