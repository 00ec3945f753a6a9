import { randomInt } from 'node:crypto';
import ndc from 'node-datachannel';
import { fullIntraRequest, genericNack, pictureLossIndication, receiverReport, StreamStats } from './stream-stats.ts';
import { vp8KeyframeStart } from './vp8.ts';

/**
 * A WHEP viewer on node-datachannel (draft-ietf-wish-whep): offers to receive
 * VP8 and Opus, POSTs the offer (following a 307 from a tree's entry point),
 * applies the answer, counts what arrives per stream (loss from the sequence
 * numbers) and the VP8 keyframes, sends a receiver report a second and, if
 * asked, NACKs gaps and asks for a keyframe as a browser does;
 * `close()` DELETEs its resource. It binds 127.0.0.1 only: it is for tests,
 * load and benchmarks on this machine.
 */

export type Stream = 'audio' | 'video';
const STREAMS: Stream[] = ['audio', 'video'];
const CLOCK: Record<Stream, number> = { audio: 48_000, video: 90_000 };
/** The payload types this viewer offers (the egress rewrites to them if its source differs). */
export const OFFER_PT: Record<Stream, number> = { audio: 111, video: 96 };
const RR_EVERY_MS = 1_000;
/** While video comes and no keyframe has, a browser asks again this often (Chromium: about 200 ms). */
export const KEYFRAME_ASK_EVERY_MS = 200;

export interface WatchOptions {
  /** Give up on the POST, or on connecting, after this long (each). */
  timeoutMs?: number;
  /** Send generic NACKs for gaps (the egress resends from its buffer). */
  nack?: boolean;
  /**
   * Ask for a keyframe with RTCP PLI or FIR when video arrives before any
   * keyframe (again every KEYFRAME_ASK_EVERY_MS until one comes), as a
   * browser's decoder does; default: never ask.
   */
  keyframeRequests?: 'pli' | 'fir';
  /** Test-only loss on the last hop: a packet this returns true for is dropped as if never received. */
  dropIncoming?: (stream: Stream, rtp: Buffer) => boolean;
  /** Extra request headers (e.g. Authorization). */
  headers?: Record<string, string>;
  /**
   * The local address ICE binds and offers (default 127.0.0.1). A stack with a
   * network per node passes its gateway, which the nodes' namespaces reach.
   */
  bindAddress?: string;
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

/** A refused or failed WHEP request: the status, the Retry-After if any, the body's error. */
export class WhepError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly retryAfterS: number | null = null,
  ) {
    super(message);
  }
}

/** VP8 keyframes seen, and times from performance.now(). */
export interface KeyframeCounts {
  /** Keyframes that started arriving (their first packet). */
  count: number;
  /** When the WHEP POST went out. */
  postedAt: number;
  /** When ICE and DTLS were up. */
  connectedAt: number;
  /** The first keyframe's first packet; null until one came. */
  firstAt: number | null;
  /** PLIs or FIRs sent. */
  requestsSent: number;
}

export interface Viewer {
  /** The viewer's resource (absolute URL), what DELETE ends. */
  readonly location: string;
  /** The URL that answered (after any 307). */
  readonly answeredBy: string;
  counts(): Record<Stream, StreamCounts>;
  keyframes(): KeyframeCounts;
  /** Resolves when the PeerConnection closes or fails (the egress ended it, or consent was lost). */
  readonly ended: Promise<string>;
  /** DELETE the resource (unless `{ sendDelete: false }`: a viewer that vanishes) and close. */
  close(opts?: { sendDelete?: boolean }): Promise<void>;
}

/**
 * Watches the session at `url` (`.../whep/<session>`); resolves once ICE and
 * DTLS are connected. A connection that fails to set up (libdatachannel now and
 * then refuses an answer: "remote candidate without ICE transport") is tried
 * once more with a new offer, as a WHEP player would; the failed resource was
 * DELETEd. A refusal by the server (WhepError) is not retried.
 */
export async function watch(url: string, opts: WatchOptions = {}): Promise<Viewer> {
  try {
    return await watchOnce(url, opts);
  } catch (err) {
    if (err instanceof WhepError || !/libdatachannel|PeerConnection failed/.test((err as Error).message)) throw err;
    return watchOnce(url, opts);
  }
}

async function watchOnce(url: string, opts: WatchOptions): Promise<Viewer> {
  const timeoutMs = opts.timeoutMs ?? 10_000;
  const pc = new ndc.PeerConnection(`viewer-${randomInt(1 << 30)}`, {
    iceServers: [],
    bindAddress: opts.bindAddress ?? '127.0.0.1',
  });
  const mySsrc = randomInt(1, 2 ** 31);
  const stats = { audio: new StreamStats(CLOCK.audio), video: new StreamStats(CLOCK.video) };
  const nacks = { audio: 0, video: 0 };
  const tracks = {} as Record<Stream, ndc.Track>;
  const kf: KeyframeCounts = { count: 0, postedAt: 0, connectedAt: 0, firstAt: null, requestsSent: 0 };
  let lastAskAt = -Infinity;
  let firSeq = 0;
  let timer: NodeJS.Timeout | undefined;
  let closed = false;
  let endedWith: (why: string) => void = () => {};
  const ended = new Promise<string>((r) => {
    endedWith = r;
  });
  const shut = (why: string) => {
    if (closed) return;
    closed = true;
    if (timer) clearInterval(timer);
    try {
      pc.close();
    } catch {
      /* already */
    }
    endedWith(why);
  };

  try {
    const video = new ndc.Video('0', 'RecvOnly');
    video.addVP8Codec(OFFER_PT.video);
    const audio = new ndc.Audio('1', 'RecvOnly');
    audio.addOpusCodec(OFFER_PT.audio);
    tracks.video = pc.addTrack(video);
    tracks.audio = pc.addTrack(audio);
    for (const s of STREAMS)
      tracks[s].onMessage((msg) => {
        if (msg.length < 8 || msg[0]! >> 6 !== 2) return;
        const pt = msg[1]!;
        if (pt >= 192 && pt <= 223) return onRtcp(msg);
        if (opts.dropIncoming?.(s, msg)) return;
        const duplicates = stats[s].duplicates;
        const missing = stats[s].onRtp(msg);
        // A packet seen again (a NACKed resend) does not start a keyframe twice.
        if (s === 'video' && stats[s].duplicates === duplicates) onVideo(msg);
        if (opts.nack && missing.length && stats[s].ssrc !== null) {
          nacks[s]++;
          send(s, genericNack(mySsrc, stats[s].ssrc!, missing));
        }
      });
    const connected = new Promise<void>((resolve, reject) => {
      pc.onStateChange((st) => {
        if (st === 'connected') resolve();
        if (st === 'failed' || st === 'closed' || st === 'disconnected') {
          reject(new Error(`PeerConnection ${st}`));
          shut(st);
        }
      });
    });
    connected.catch(() => {});
    const offer = await localOffer(pc, timeoutMs);

    kf.postedAt = performance.now();
    const res = await fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/sdp', ...opts.headers },
      body: offer,
      redirect: 'follow',
      signal: AbortSignal.timeout(timeoutMs),
    });
    const body = await res.text();
    if (res.status !== 201) {
      let msg = body;
      try {
        msg = (JSON.parse(body) as { error?: string }).error ?? body;
      } catch {
        /* not JSON */
      }
      const after = Number(res.headers.get('retry-after'));
      throw new WhepError(res.status, `WHEP ${res.status}: ${msg}`, Number.isFinite(after) && after > 0 ? after : null);
    }
    const loc = res.headers.get('location');
    if (!loc) throw new WhepError(res.status, 'WHEP 201 without Location');
    const location = new URL(loc, res.url).toString();
    const viewer: Viewer = {
      location,
      answeredBy: res.url,
      ended,
      counts: () => {
        const out = {} as Record<Stream, StreamCounts>;
        for (const s of STREAMS) {
          const x = stats[s];
          out[s] = {
            ssrc: x.ssrc,
            packets: x.packets,
            bytes: x.bytes,
            expected: x.expected,
            lost: x.lost,
            duplicates: x.duplicates,
            jitterS: x.jitterS,
            nacksSent: nacks[s],
          };
        }
        return out;
      },
      keyframes: () => ({ ...kf }),
      close: async ({ sendDelete = true } = {}) => {
        if (sendDelete && !closed) {
          const r = await fetch(location, { method: 'DELETE', signal: AbortSignal.timeout(5_000) }).catch(() => null);
          await r?.arrayBuffer().catch(() => {});
        }
        shut('closed');
      },
    };
    try {
      pc.setRemoteDescription(body, 'answer');
      await withTimeout(connected, timeoutMs, 'ICE and DTLS to connect');
      kf.connectedAt = performance.now();
    } catch (err) {
      await viewer.close();
      throw err;
    }
    timer = setInterval(() => {
      for (const s of STREAMS) {
        const block = stats[s].reportBlock();
        if (block) send(s, receiverReport(mySsrc, block));
      }
    }, RR_EVERY_MS);
    timer.unref();
    return viewer;
  } catch (err) {
    shut('failed');
    throw err;
  }

  function send(s: Stream, rtcp: Buffer): void {
    try {
      if (tracks[s].isOpen()) tracks[s].sendMessageBinary(rtcp);
    } catch {
      /* closing */
    }
  }

  function onVideo(rtp: Buffer): void {
    if (vp8KeyframeStart(rtp)) {
      kf.count++;
      kf.firstAt ??= performance.now();
      return;
    }
    if (kf.firstAt !== null || !opts.keyframeRequests) return;
    const now = performance.now();
    if (now - lastAskAt < KEYFRAME_ASK_EVERY_MS) return;
    lastAskAt = now;
    const media = rtp.readUInt32BE(8);
    if (opts.keyframeRequests === 'pli') send('video', pictureLossIndication(mySsrc, media));
    else {
      // A FIR names its stream only in its FCI, which libdatachannel 0.24 does not read to pick a track:
      // sent compound after a receiver report about the stream, as RFC 3550 6.1 has it, it arrives.
      const block = stats.video.reportBlock();
      const fir = fullIntraRequest(mySsrc, media, firSeq++);
      send('video', block ? Buffer.concat([receiverReport(mySsrc, block), fir]) : fir);
    }
    kf.requestsSent++;
  }

  function onRtcp(b: Buffer): void {
    // Sender reports (possibly compound): keep their NTP middle bits for LSR/DLSR.
    for (let off = 0; off + 28 <= b.length; ) {
      const len = (b.readUInt16BE(off + 2) + 1) * 4;
      if (b[off + 1] === 200) {
        const ssrc = b.readUInt32BE(off + 4);
        const mid = ((b.readUInt32BE(off + 8) & 0xffff) << 16) | (b.readUInt32BE(off + 12) >>> 16);
        for (const s of STREAMS) if (stats[s].ssrc === ssrc) stats[s].onSenderReport(mid >>> 0);
      }
      off += len;
    }
  }
}

/**
 * Ends node-datachannel's threads once a process is done with WebRTC: after
 * its PeerConnections have connected and closed, they keep Node's event loop
 * alive, and a command would never exit. No viewer can be made afterwards.
 */
export function releaseWebRtc(): void {
  ndc.cleanup();
}

async function localOffer(pc: ndc.PeerConnection, timeoutMs: number): Promise<string> {
  const gathered = new Promise<void>((resolve) => {
    pc.onGatheringStateChange((s) => {
      if (s === 'complete') resolve();
    });
  });
  pc.setLocalDescription();
  if (pc.gatheringState() !== 'complete') await withTimeout(gathered, timeoutMs, 'ICE gathering');
  const d = pc.localDescription();
  if (!d) throw new Error('no local offer');
  return d.sdp;
}

function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let t: NodeJS.Timeout | undefined;
  return Promise.race([
    p,
    new Promise<T>((_, reject) => {
      t = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms);
    }),
  ]).finally(() => clearTimeout(t));
}
