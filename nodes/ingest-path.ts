import { createSocket, type Socket } from 'node:dgram';
import { STREAM_TYPES, type StreamType } from '../exporters/index.ts';
import type { PublisherHealth } from './publisher-health.ts';
import { fanOut, PAYLOAD_TYPE, type RtpSourceOptions } from './rtp-source.ts';
import { RtpRewriter } from './rtp-rewrite.ts';
import { CLOCK_RATE } from './whep-peer.ts';

/**
 * What a session's publisher sends, on its way to the children: measured as
 * the publisher sent it (health), rewritten to the session's SSRC, payload
 * type and continuous numbering, then fanned out and counted as the built-in
 * sources' packets are. WHIP and plain RTP ingest share it.
 */
export class IngestPath {
  private readonly out: Socket;
  private readonly rewriters: Record<StreamType, RtpRewriter>;
  private readonly sent = { audio: 0, video: 0 };

  constructor(
    private readonly o: RtpSourceOptions,
    readonly health: PublisherHealth,
  ) {
    this.out = createSocket('udp4');
    this.out.on('error', (err) => o.onError?.(err));
    const ssrc = { audio: o.audioSsrc, video: o.videoSsrc };
    this.rewriters = {
      audio: new RtpRewriter(ssrc.audio, PAYLOAD_TYPE.audio, CLOCK_RATE.audio),
      video: new RtpRewriter(ssrc.video, PAYLOAD_TYPE.video, CLOCK_RATE.video),
    };
  }

  /** Another publisher (or a restarted sender) takes over from the next packet. */
  newPublisher(): void {
    for (const t of STREAM_TYPES) this.rewriters[t].rebase();
    this.health.newPublisher();
  }

  /** One RTP packet of the publisher's (version 2, at least a header: the caller checked). */
  push(t: StreamType, rtp: Buffer): void {
    this.health.onPacket(t, rtp);
    this.sent[t]++;
    fanOut(this.out, t, this.rewriters[t].rewrite(rtp), this.o);
  }

  generated(): Record<StreamType, number> {
    return { ...this.sent };
  }

  close(): void {
    this.out.close();
  }
}

/** True for a datagram that can be RTP media: version 2, a full header, not RTCP (RFC 5761). */
export function isRtpMedia(b: Buffer): boolean {
  if (b.length < 12 || b[0]! >> 6 !== 2) return false;
  const pt = b[1]! & 0x7f;
  return pt < 64 || pt > 95;
}
