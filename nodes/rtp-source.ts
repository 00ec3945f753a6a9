import { createSocket, type Socket } from 'node:dgram';
import type { StreamType } from '../exporters/index.ts';

/**
 * The built-in broadcaster: realistic RTP for tests and the local stack.
 * Audio ~50 packets/s of 160 bytes (20 ms Opus-like frames), video ~250
 * packets/s of 1,000-1,200 bytes. Packets are paced by elapsed time, so a late
 * timer sends the ones it owes rather than drifting.
 */

export interface RtpTarget {
  id: string;
  host: string;
  audioPort: number;
  videoPort: number;
}

export interface RtpSourceOptions {
  audioSsrc: number;
  videoSsrc: number;
  audioPps?: number;
  videoPps?: number;
  /** Wait before the first packet (lets a test attach viewers first). */
  delayMs?: number;
  /** Stop generating after this long; the session stays live. */
  durationMs?: number;
  targets: () => RtpTarget[];
  /** Called for each datagram handed to the kernel for one target. */
  onSent: (stream: StreamType, bytes: number) => void;
  onError?: (err: Error) => void;
}

const TICK_MS = 10;
const CLOCK = { audio: 48_000, video: 90_000 } as const;
const PT = { audio: 111, video: 96 } as const;

export class RtpSource {
  private readonly sock: Socket;
  private timer: NodeJS.Timeout | undefined;
  private startedAt = 0;
  private readonly sent = { audio: 0, video: 0 };
  private readonly seq = { audio: Math.floor(Math.random() * 65536), video: Math.floor(Math.random() * 65536) };
  private readonly pps: Record<StreamType, number>;
  private readonly ssrc: Record<StreamType, number>;

  constructor(private readonly o: RtpSourceOptions) {
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

  /** Packets generated so far per stream (each sent to every target). */
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
    const targets = this.o.targets();
    for (const t of ['audio', 'video'] as const) {
      const owed = Math.floor((elapsed * this.pps[t]) / 1000) - this.sent[t];
      for (let i = 0; i < owed; i++) this.emit(t, targets);
    }
  }

  private emit(t: StreamType, targets: RtpTarget[]): void {
    const n = this.sent[t]++;
    const size = t === 'audio' ? 160 : 1000 + ((n * 37) % 201);
    const b = Buffer.alloc(size, 0x5a);
    b[0] = 0x80;
    b[1] = PT[t] | (t === 'video' && n % 10 === 9 ? 0x80 : 0); // marker closes a "frame" of 10 packets
    b.writeUInt16BE(this.seq[t]++ & 0xffff, 2);
    this.seq[t] &= 0xffff;
    b.writeUInt32BE(Math.floor((n * CLOCK[t]) / this.pps[t]) >>> 0, 4);
    b.writeUInt32BE(this.ssrc[t] >>> 0, 8);
    for (const target of targets) {
      this.sock.send(b, t === 'audio' ? target.audioPort : target.videoPort, target.host, (err) => {
        if (err) this.o.onError?.(err);
        else this.o.onSent(t, size);
      });
    }
  }

  stop(): void {
    clearTimeout(this.timer);
    clearInterval(this.timer);
    this.timer = undefined;
    this.sock.close();
  }
}
