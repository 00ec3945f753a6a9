import { randomInt } from 'node:crypto';
import ndc from 'node-datachannel';
import { type KeyframesSeen, type ReceiveOptions, Receiver, type Stream, type StreamCounts } from './receiver.ts';

/**
 * A WHEP viewer on node-datachannel (draft-ietf-wish-whep): offers to receive
 * VP8 and Opus, POSTs the offer (following a 307 from a tree's entry point),
 * applies the answer, counts what arrives per stream (`receiver.ts`: loss
 * from the sequence numbers, keyframes, a receiver report a second, NACKs and
 * keyframe requests if asked);
 * `close()` DELETEs its resource. It binds 127.0.0.1 only: it is for tests,
 * load and benchmarks on this machine.
 */

export { KEYFRAME_ASK_EVERY_MS, type Stream, type StreamCounts } from './receiver.ts';
/** Set-ups libdatachannel fails are tried this many times in all. */
const SETUP_ATTEMPTS = 3;
/** The payload types this viewer offers (the egress rewrites to them if its source differs). */
export const OFFER_PT: Record<Stream, number> = { audio: 111, video: 96 };

export interface WatchOptions extends ReceiveOptions {
  /** Give up on the POST, or on connecting, after this long (each). */
  timeoutMs?: number;
  /** Extra request headers (e.g. Authorization). */
  headers?: Record<string, string>;
  /**
   * The local address ICE binds and offers (default 127.0.0.1). A stack with a
   * network per node passes its gateway, which the nodes' namespaces reach.
   */
  bindAddress?: string;
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
export interface KeyframeCounts extends KeyframesSeen {
  /** When the WHEP POST went out. */
  postedAt: number;
  /** When ICE and DTLS were up. */
  connectedAt: number;
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
 * again with a new offer, up to SETUP_ATTEMPTS in all, as a WHEP player would; the failed resource was
 * DELETEd. A refusal by the server (WhepError) is not retried.
 */
export async function watch(url: string, opts: WatchOptions = {}): Promise<Viewer> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await watchOnce(url, opts);
    } catch (err) {
      if (err instanceof WhepError || !/libdatachannel|PeerConnection failed/.test((err as Error).message)) throw err;
      // On two loaded cores a second set-up failed now and then too.
      if (attempt >= SETUP_ATTEMPTS) throw err;
    }
  }
}

async function watchOnce(url: string, opts: WatchOptions): Promise<Viewer> {
  const timeoutMs = opts.timeoutMs ?? 10_000;
  const pc = new ndc.PeerConnection(`viewer-${randomInt(1 << 30)}`, {
    iceServers: [],
    bindAddress: opts.bindAddress ?? '127.0.0.1',
  });
  const receiver = new Receiver(opts);
  const times = { postedAt: 0, connectedAt: 0 };
  let closed = false;
  let endedWith: (why: string) => void = () => {};
  const ended = new Promise<string>((r) => {
    endedWith = r;
  });
  const shut = (why: string) => {
    if (closed) return;
    closed = true;
    receiver.stop();
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
    receiver.attach('video', pc.addTrack(video));
    receiver.attach('audio', pc.addTrack(audio));
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

    times.postedAt = performance.now();
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
      counts: () => receiver.counts(),
      keyframes: () => ({ ...receiver.keyframes(), ...times }),
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
      times.connectedAt = performance.now();
    } catch (err) {
      await viewer.close();
      throw err;
    }
    receiver.startReports();
    return viewer;
  } catch (err) {
    shut('failed');
    throw err;
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

export function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let t: NodeJS.Timeout | undefined;
  return Promise.race([
    p,
    new Promise<T>((_, reject) => {
      t = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms);
    }),
  ]).finally(() => clearTimeout(t));
}
