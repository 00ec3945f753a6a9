import type { Socket } from 'node:dgram';
import type { StreamType } from '../exporters/index.ts';

/**
 * What the injection's built-in sources share: the targets they send to, the
 * options a session gives them, the payload types, and the fan-out that sends
 * one packet to every target and counts each datagram the kernel took.
 */

export interface RtpTarget {
  id: string;
  host: string;
  audioPort: number;
  videoPort: number;
}

/** `--source`: `encoded` (GStreamer VP8 + Opus, what a browser decodes) or `synthetic` (exact raw rates). */
export const SOURCE_KINDS = ['encoded', 'synthetic'] as const;
export type SourceKind = (typeof SOURCE_KINDS)[number];

/** The session's payload types, as a WHEP answer will name them. */
export const PAYLOAD_TYPE = { audio: 111, video: 96 } as const;

export interface RtpSourceOptions {
  audioSsrc: number;
  videoSsrc: number;
  /** Wait before the first packet (lets a test attach viewers first). */
  delayMs?: number;
  /** Stop generating after this long; the session stays live. */
  durationMs?: number;
  targets: () => RtpTarget[];
  /** Called for each datagram handed to the kernel for one target. */
  onSent: (stream: StreamType, bytes: number) => void;
  onError?: (err: Error) => void;
}

export interface RtpSource {
  start(): void;
  /** Packets generated so far per stream (each sent to every target). */
  generated(): Record<StreamType, number>;
  stop(): Promise<void>;
  requestKeyframe?(): void;
}

/** Sends one RTP packet of stream `t` to every target from `sock`. */
export function fanOut(sock: Socket, t: StreamType, packet: Buffer, o: RtpSourceOptions): void {
  for (const target of o.targets()) {
    sock.send(packet, t === 'audio' ? target.audioPort : target.videoPort, target.host, (err) => {
      if (err) o.onError?.(err);
      else o.onSent(t, packet.length);
    });
  }
}
