import { randomInt } from 'node:crypto';
import type ndc from 'node-datachannel';
import { fullIntraRequest, genericNack, pictureLossIndication, receiverReport, StreamStats } from './stream-stats.ts';
import { vp8KeyframeStart } from './vp8.ts';

/**
 * What a viewer does with the tracks it receives, whoever offered them: counts
 * each stream's RTP (loss from the sequence numbers), keeps the sender
 * reports' times and the VP8 keyframes, sends a receiver report a second per
 * stream and, if asked, NACKs gaps and asks for a keyframe as a browser does. The WHEP client (viewer offers) and the benchmark's Janus viewer
 * (server offers) share it, so both cost the servers the same RTCP.
 */

export type Stream = 'audio' | 'video';
export const STREAMS: Stream[] = ['audio', 'video'];
const CLOCK: Record<Stream, number> = { audio: 48_000, video: 90_000 };
const RR_EVERY_MS = 1_000;
/** While video comes and no keyframe has, a browser asks again this often (Chromium: about 200 ms). */
export const KEYFRAME_ASK_EVERY_MS = 200;

export interface ReceiveOptions {
  /** Send generic NACKs for gaps (the sender resends from its buffer). */
  nack?: boolean;
  /** Test-only loss on the last hop: a packet this returns true for is dropped as if never received. */
  dropIncoming?: (stream: Stream, rtp: Buffer) => boolean;
  /**
   * Ask for a keyframe with RTCP PLI or FIR when video arrives before any
   * keyframe (again every KEYFRAME_ASK_EVERY_MS until one comes), as a
   * browser's decoder does; default: never ask.
   */
  keyframeRequests?: 'pli' | 'fir';
}

/** VP8 keyframes seen; times from performance.now(). */
export interface KeyframesSeen {
  /** Keyframes that started arriving (their first packet). */
  count: number;
  /** The first keyframe's first packet; null until one came. */
  firstAt: number | null;
  /** PLIs or FIRs sent. */
  requestsSent: number;
}

export interface StreamCounts {
  ssrc: number | null;
  packets: number;
  bytes: number;
  /** Expected from the sequence numbers (first to highest seen). */
  expected: number;
  lost: number;
  duplicates: number;
  jitterS: number;
  /** NACKs sent, and packets they asked for. */
  nacksSent: number;
}

export class Receiver {
  private readonly mySsrc = randomInt(1, 2 ** 31);
  private readonly stats = { audio: new StreamStats(CLOCK.audio), video: new StreamStats(CLOCK.video) };
  private readonly nacks = { audio: 0, video: 0 };
  private readonly tracks: Partial<Record<Stream, ndc.Track>> = {};
  private timer: NodeJS.Timeout | undefined;
  private readonly kf: KeyframesSeen = { count: 0, firstAt: null, requestsSent: 0 };
  private lastAskAt = -Infinity;
  private firSeq = 0;

  constructor(private readonly o: ReceiveOptions = {}) {}

  /** Counts what arrives on `track` as `s`. */
  attach(s: Stream, track: ndc.Track): void {
    this.tracks[s] = track;
    track.onMessage((msg) => {
      if (msg.length < 8 || msg[0]! >> 6 !== 2) return;
      const pt = msg[1]!;
      if (pt >= 192 && pt <= 223) return this.onRtcp(msg);
      if (this.o.dropIncoming?.(s, msg)) return;
      const st = this.stats[s];
      const duplicates = st.duplicates;
      const missing = st.onRtp(msg);
      // A packet seen again (a NACKed resend) does not start a keyframe twice.
      if (s === 'video' && st.duplicates === duplicates) this.onVideo(msg);
      if (this.o.nack && missing.length && st.ssrc !== null) {
        this.nacks[s]++;
        this.send(s, genericNack(this.mySsrc, st.ssrc, missing));
      }
    });
  }

  /** Receiver reports from now on, one a second per stream. */
  startReports(): void {
    this.timer = setInterval(() => {
      for (const s of STREAMS) {
        const block = this.stats[s].reportBlock();
        if (block) this.send(s, receiverReport(this.mySsrc, block));
      }
    }, RR_EVERY_MS);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
  }

  counts(): Record<Stream, StreamCounts> {
    const out = {} as Record<Stream, StreamCounts>;
    for (const s of STREAMS) {
      const x = this.stats[s];
      out[s] = {
        ssrc: x.ssrc,
        packets: x.packets,
        bytes: x.bytes,
        expected: x.expected,
        lost: x.lost,
        duplicates: x.duplicates,
        jitterS: x.jitterS,
        nacksSent: this.nacks[s],
      };
    }
    return out;
  }

  keyframes(): KeyframesSeen {
    return { ...this.kf };
  }

  private onVideo(rtp: Buffer): void {
    if (vp8KeyframeStart(rtp)) {
      this.kf.count++;
      this.kf.firstAt ??= performance.now();
      return;
    }
    if (this.kf.firstAt !== null || !this.o.keyframeRequests) return;
    const now = performance.now();
    if (now - this.lastAskAt < KEYFRAME_ASK_EVERY_MS) return;
    this.lastAskAt = now;
    const media = rtp.readUInt32BE(8);
    if (this.o.keyframeRequests === 'pli') this.send('video', pictureLossIndication(this.mySsrc, media));
    else {
      // A FIR names its stream only in its FCI, which libdatachannel 0.24 does not read to pick a track:
      // sent compound after a receiver report about the stream, as RFC 3550 6.1 has it, it arrives.
      const block = this.stats.video.reportBlock();
      const fir = fullIntraRequest(this.mySsrc, media, this.firSeq++);
      this.send('video', block ? Buffer.concat([receiverReport(this.mySsrc, block), fir]) : fir);
    }
    this.kf.requestsSent++;
  }

  private send(s: Stream, rtcp: Buffer): void {
    try {
      const t = this.tracks[s];
      if (t?.isOpen()) t.sendMessageBinary(rtcp);
    } catch {
      /* closing */
    }
  }

  private onRtcp(b: Buffer): void {
    // Sender reports (possibly compound): keep their NTP middle bits for LSR/DLSR.
    for (let off = 0; off + 28 <= b.length; ) {
      const len = (b.readUInt16BE(off + 2) + 1) * 4;
      if (b[off + 1] === 200) {
        const ssrc = b.readUInt32BE(off + 4);
        const mid = ((b.readUInt32BE(off + 8) & 0xffff) << 16) | (b.readUInt32BE(off + 12) >>> 16);
        for (const s of STREAMS) if (this.stats[s].ssrc === ssrc) this.stats[s].onSenderReport(mid >>> 0);
      }
      off += len;
    }
  }
}
