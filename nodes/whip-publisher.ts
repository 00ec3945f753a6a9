import ndc from 'node-datachannel';
import type { StreamType } from '../exporters/index.ts';
import { answerOffer } from './whep-peer.ts';
import { isRtcp } from './whep-rtcp.ts';
import type { ParsedOffer } from './whep-sdp.ts';

/**
 * One WHIP publisher's PeerConnection (libdatachannel through
 * node-datachannel): receive-only audio and video tracks answering the
 * publisher's offer in its own mids and payload types, its RTP handed to the
 * caller as it arrives (RTCP is the library's: an RtcpReceivingSession per
 * track sends the publisher receiver reports and, on request, a PLI).
 */

const STREAMS = ['audio', 'video'] as const;
/** A publisher not connected by then is given up (its session waits for another). */
export const PUBLISHER_CONNECT_TIMEOUT_MS = 15_000;
/**
 * A connected publisher that sends no RTP for this long is taken as gone: a
 * peer that vanished is otherwise noticed only when ICE consent expires, tens
 * of seconds later (a closing libdatachannel peer tells nothing). Opus sends
 * 50 packets a second, and even with DTX a packet every 400 ms.
 */
export const PUBLISHER_SILENCE_MS = 5_000;
/**
 * The most a publisher is asked to send (REMB, which the answer's VP8
 * offers): a browser otherwise bases its rate on losses alone. 2 Mbit/s is
 * room for 720p VP8; every viewer of the session gets what it sends.
 */
export const PUBLISHER_MAX_BITRATE = 2_000_000;

export type PublisherState = 'connected' | 'gone';

export interface WhipPublisherOptions {
  id: string;
  offerSdp: string;
  offer: ParsedOffer;
  /** The address its ICE binds; the answer advertises `advertise` instead when they differ. */
  bind: string;
  advertise: string;
  /** Each RTP packet of `stream` as the publisher sent it. */
  onRtp: (stream: StreamType, rtp: Buffer) => void;
  /** Connected once (ICE and DTLS up), then gone once (closed, failed, timed out). */
  onState: (s: PublisherState) => void;
}

export class WhipPublisher {
  private readonly pc: ndc.PeerConnection;
  private readonly tracks = {} as Record<StreamType, ndc.Track>;
  private connected = false;
  private gone = false;
  private connectTimer: NodeJS.Timeout | undefined;
  private silenceTimer: NodeJS.Timeout | undefined;
  private lastRtpAt = 0;
  private bitrateAsked = false;

  private constructor(private readonly o: WhipPublisherOptions) {
    this.pc = new ndc.PeerConnection(o.id, { iceServers: [], bindAddress: o.bind });
  }

  /** A publisher answering the offer; resolves with the answer SDP once gathering completes. */
  static async answer(o: WhipPublisherOptions): Promise<{ publisher: WhipPublisher; answer: string }> {
    const publisher = new WhipPublisher(o);
    try {
      return { publisher, answer: await publisher.negotiate() };
    } catch (err) {
      publisher.close();
      throw err;
    }
  }

  get id(): string {
    return this.o.id;
  }

  get isConnected(): boolean {
    return this.connected;
  }

  /** Asks the publisher for a keyframe (an RTCP PLI on the video track); false when it cannot be sent now. */
  requestKeyframe(): boolean {
    const v = this.tracks.video;
    if (!this.connected || this.gone || !v?.isOpen()) return false;
    try {
      return v.requestKeyframe();
    } catch {
      return false; // closing
    }
  }

  private askBitrate(): boolean {
    try {
      return this.tracks.video.requestBitrate(PUBLISHER_MAX_BITRATE);
    } catch {
      return false; // closing
    }
  }

  close(): void {
    clearTimeout(this.connectTimer);
    clearInterval(this.silenceTimer);
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
    // Tracks in the offer's own mids and payload types, before the offer: libdatachannel answers with them.
    for (const stream of STREAMS) {
      const want = o.offer[stream];
      const media = stream === 'video' ? new ndc.Video(want.mid, 'RecvOnly') : new ndc.Audio(want.mid, 'RecvOnly');
      if (media instanceof ndc.Video) media.addVP8Codec(want.pt);
      else media.addOpusCodec(want.pt);
      const track = pc.addTrack(media);
      track.setMediaHandler(new ndc.RtcpReceivingSession());
      track.onMessage((msg) => {
        if (this.gone || msg.length < 12 || msg[0]! >> 6 !== 2 || isRtcp(msg)) return;
        this.lastRtpAt = performance.now();
        // Once the publisher's video SSRC is known (a REMB names it); the library repeats it on each sender report.
        if (stream === 'video' && !this.bitrateAsked) this.bitrateAsked = this.askBitrate();
        o.onRtp(stream, msg);
      });
      this.tracks[stream] = track;
    }
    pc.onStateChange((state) => {
      if (state === 'connected' && !this.connected && !this.gone) {
        this.connected = true;
        clearTimeout(this.connectTimer);
        this.lastRtpAt = performance.now();
        this.silenceTimer = setInterval(() => {
          if (performance.now() - this.lastRtpAt > PUBLISHER_SILENCE_MS) this.close();
        }, 1_000);
        this.silenceTimer.unref();
        o.onState('connected');
      } else if (state === 'failed' || state === 'closed' || state === 'disconnected') this.close();
    });
    this.connectTimer = setTimeout(() => {
      if (!this.connected) this.close();
    }, PUBLISHER_CONNECT_TIMEOUT_MS);
    this.connectTimer.unref();
    return answerOffer(pc, o.offerSdp, o.bind, o.advertise);
  }
}
