import ndc from 'node-datachannel';
import type { StreamType } from '../exporters/index.ts';
import { advertiseCandidates, type ParsedOffer } from './whep-sdp.ts';
import type { KeyframeReason } from '../topology/index.ts';
import { isRtcp, parseRtcp, type ReportBlock, roundTripS, senderReport } from './whep-rtcp.ts';

/**
 * One WHEP viewer's PeerConnection (libdatachannel through node-datachannel):
 * send-only audio and video tracks answering the viewer's offer on one pool
 * port, the session's RTP forwarded as it arrives (the payload type rewritten
 * to the one the viewer's offer gave the codec), a sender report a second so
 * the viewer's receiver reports measure the round trip, and those reports,
 * NACK counts and keyframe requests handed to the caller. libdatachannel
 * leaves PLI and FIR to us: node-datachannel exposes no PLI handler, and the
 * handlers it does chain (RtcpNackResponder) pass every RTCP packet on to
 * the track's onMessage.
 */

const STREAMS = ['audio', 'video'] as const;
/** Clock rates of the payloads the injection sends (RFC 7587, RFC 7741). */
export const CLOCK_RATE: Record<StreamType, number> = { audio: 48_000, video: 90_000 };
const SR_EVERY_MS = 1_000;
const GATHER_TIMEOUT_MS = 5_000;

export type PeerState = 'connected' | 'gone';

export interface ViewerReport {
  stream: StreamType;
  fractionLost: number;
  jitterS: number;
  rttS: number | null;
}

export interface WhepPeerOptions {
  id: string;
  offerSdp: string;
  offer: ParsedOffer;
  /** The session's SSRCs: the answer announces them, the RTP keeps them. */
  ssrc: Record<StreamType, number>;
  /** The pool port this viewer's ICE and media use (one port: bundled, rtcp-mux). */
  port: number;
  /** The address it binds; the answer advertises `advertise` instead when they differ. */
  bind: string;
  advertise: string;
  /** NACKed packets resent from the last ones sent (RtcpNackResponder). */
  nackBuffer: number;
  /** Connected once (ICE and DTLS up), then gone once (closed, failed, consent lost). */
  onState: (s: PeerState) => void;
  onReport: (r: ViewerReport) => void;
  onNack: (stream: StreamType, packets: number) => void;
  /** A PLI or FIR about our video stream (one call per request, not rate-limited here). */
  onKeyframeRequest: (reason: KeyframeReason) => void;
}

interface Sending {
  track: ndc.Track;
  pt: number;
  packets: number;
  octets: number;
  lastTs: number;
}

export class WhepPeer {
  private readonly pc: ndc.PeerConnection;
  private readonly out = {} as Record<StreamType, Sending>;
  private srTimer: NodeJS.Timeout | undefined;
  private connected = false;
  private gone = false;

  private constructor(private readonly o: WhepPeerOptions) {
    this.pc = new ndc.PeerConnection(o.id, {
      iceServers: [],
      bindAddress: o.bind,
      portRangeBegin: o.port,
      portRangeEnd: o.port,
    });
  }

  /** A peer answering the offer; resolves with the answer SDP once gathering completes. */
  static async answer(o: WhepPeerOptions): Promise<{ peer: WhepPeer; answer: string }> {
    const peer = new WhepPeer(o);
    try {
      return { peer, answer: await peer.negotiate() };
    } catch (err) {
      peer.close();
      throw err;
    }
  }

  get isConnected(): boolean {
    return this.connected;
  }

  /** RTP packets handed to each track so far. */
  sent(): Record<StreamType, number> {
    return { audio: this.out.audio?.packets ?? 0, video: this.out.video?.packets ?? 0 };
  }

  /** One RTP packet of the session to this viewer; dropped until the tracks are open. */
  forward(stream: StreamType, rtp: Buffer): void {
    const s = this.out[stream];
    if (!s || !this.connected || !s.track.isOpen()) return;
    let pkt = rtp;
    if ((rtp[1]! & 0x7f) !== s.pt) {
      // Packets are shared by every viewer: rewrite a copy.
      pkt = Buffer.from(rtp);
      pkt[1] = (rtp[1]! & 0x80) | s.pt;
    }
    try {
      if (!s.track.sendMessageBinary(pkt)) return;
    } catch {
      return; // the track closed between the check and the send
    }
    s.packets++;
    s.octets += pkt.length - 12;
    s.lastTs = pkt.readUInt32BE(4);
  }

  close(): void {
    if (this.srTimer) clearInterval(this.srTimer);
    this.srTimer = undefined;
    const wasGone = this.gone;
    this.gone = true;
    try {
      this.pc.close();
    } catch {
      /* already closed */
    }
    if (!wasGone) this.o.onState('gone');
  }

  private async negotiate(): Promise<string> {
    const { o, pc } = this;
    // Tracks in the offer's own mids, before the offer: libdatachannel then answers with them.
    for (const stream of STREAMS) {
      const want = o.offer[stream];
      const media = stream === 'video' ? new ndc.Video(want.mid, 'SendOnly') : new ndc.Audio(want.mid, 'SendOnly');
      if (media instanceof ndc.Video) media.addVP8Codec(want.pt);
      else media.addOpusCodec(want.pt);
      media.addSSRC(o.ssrc[stream] >>> 0, 'canopy', 'canopy', stream);
      const track = pc.addTrack(media);
      if (o.nackBuffer > 0) track.setMediaHandler(new ndc.RtcpNackResponder(o.nackBuffer));
      track.onMessage((msg) => this.onRtcp(stream, msg));
      this.out[stream] = { track, pt: want.pt, packets: 0, octets: 0, lastTs: 0 };
    }
    pc.onStateChange((state) => {
      if (state === 'connected' && !this.connected && !this.gone) {
        this.connected = true;
        this.srTimer = setInterval(() => this.sendReports(), SR_EVERY_MS);
        this.srTimer.unref();
        o.onState('connected');
      } else if (state === 'failed' || state === 'closed' || state === 'disconnected') this.close();
    });
    return answerOffer(pc, o.offerSdp, o.bind, o.advertise);
  }

  private sendReports(): void {
    for (const stream of STREAMS) {
      const s = this.out[stream];
      if (!s.track.isOpen()) continue;
      try {
        s.track.sendMessageBinary(senderReport(this.o.ssrc[stream], s.lastTs, s.packets, s.octets));
      } catch {
        /* closing */
      }
    }
  }

  private onRtcp(stream: StreamType, msg: Buffer): void {
    if (!isRtcp(msg)) return;
    const got = parseRtcp(msg);
    if (got.nacked) this.o.onNack(stream, got.nacked);
    for (const k of got.keyframes) if (k.ssrc === this.o.ssrc.video >>> 0) this.o.onKeyframeRequest(k.reason);
    for (const r of got.reports) {
      const which = reportStream(r, this.o.ssrc);
      if (!which) continue;
      this.o.onReport({
        stream: which,
        fractionLost: r.fractionLost,
        jitterS: r.jitter / CLOCK_RATE[which],
        rttS: roundTripS(r),
      });
    }
  }
}

/**
 * Applies a remote offer to `pc` (its tracks already added) and resolves with
 * the answer once ICE gathering completes (no trickle ICE: the answer has
 * every candidate), `advertise` in place of the bound address.
 */
export async function answerOffer(
  pc: ndc.PeerConnection,
  offerSdp: string,
  bind: string,
  advertise: string,
): Promise<string> {
  // The timer goes on every way out: a rejection nobody awaits (setRemoteDescription threw, or
  // gathering was complete at once) would end the whole node as an unhandled rejection.
  let timer: NodeJS.Timeout | undefined;
  const gathered = new Promise<void>((resolve, reject) => {
    timer = setTimeout(() => reject(new Error('ICE gathering did not complete')), GATHER_TIMEOUT_MS);
    // It may fire twice: the first settles.
    pc.onGatheringStateChange((s) => {
      if (s === 'complete') resolve();
    });
  });
  try {
    pc.setRemoteDescription(offerSdp, 'offer');
    if (pc.gatheringState() !== 'complete') await gathered;
  } finally {
    clearTimeout(timer);
  }
  const local = pc.localDescription();
  if (local?.type !== 'answer') throw new Error('no answer from the WebRTC stack');
  return advertiseCandidates(local.sdp, bind, advertise);
}

/** Which of our streams a report block is about (bundled: either track may carry it). */
function reportStream(r: ReportBlock, ssrc: Record<StreamType, number>): StreamType | null {
  if (r.ssrc === ssrc.audio >>> 0) return 'audio';
  if (r.ssrc === ssrc.video >>> 0) return 'video';
  return null;
}
