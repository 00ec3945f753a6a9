import { randomInt } from 'node:crypto';
import ndc from 'node-datachannel';
import { type ReceiveOptions, Receiver, type Stream, type StreamCounts } from './receiver.ts';
import { withTimeout } from './whep-client.ts';

/**
 * A viewer for servers that offer (Janus 1.1.2's streaming plugin: `watch`
 * brings its offer, `start` takes the answer): node-datachannel answers the
 * server's SDP, every offered track is received by `receiver.ts` as the WHEP
 * viewer receives its own, so both kinds of server get the same viewers. The
 * signalling is the caller's. It binds one address (`bindAddress`), as the
 * WHEP viewer does.
 */

export interface AnswerOptions extends ReceiveOptions {
  /** The local address ICE binds and offers. */
  bindAddress: string;
  /** Which stream each offered media section (by its mid) carries. */
  streamOfMid: Record<string, Stream>;
  /** Gathering, and then connecting, each within this. */
  timeoutMs?: number;
}

export interface AnsweringViewer {
  /** The SDP answer, every candidate in it (no trickle). */
  readonly answer: string;
  /** Resolves once ICE and DTLS are up; rejects when the connection fails or times out. */
  connected(): Promise<void>;
  counts(): Record<Stream, StreamCounts>;
  /** Resolves when the PeerConnection closes or fails. */
  readonly ended: Promise<string>;
  close(): void;
}

/** Answers `offer`; resolves with the answer once gathering is complete. */
export async function answerOffer(offer: string, o: AnswerOptions): Promise<AnsweringViewer> {
  const timeoutMs = o.timeoutMs ?? 10_000;
  const pc = new ndc.PeerConnection(`viewer-${randomInt(1 << 30)}`, { iceServers: [], bindAddress: o.bindAddress });
  const receiver = new Receiver(o);
  let closed = false;
  let endedWith: (why: string) => void = () => {};
  const ended = new Promise<string>((r) => {
    endedWith = r;
  });
  const close = (why = 'closed') => {
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
    const up = new Promise<void>((resolve, reject) => {
      pc.onStateChange((st) => {
        if (st === 'connected') resolve();
        if (st === 'failed' || st === 'closed' || st === 'disconnected') {
          reject(new Error(`PeerConnection ${st}`));
          close(st);
        }
      });
    });
    up.catch(() => {});
    pc.onTrack((track) => {
      const s = o.streamOfMid[track.mid()];
      if (s) receiver.attach(s, track);
    });
    const gathered = new Promise<void>((resolve) => {
      pc.onGatheringStateChange((st) => {
        if (st === 'complete') resolve();
      });
    });
    // The answer is made here (auto-negotiation); it is complete once gathering is.
    pc.setRemoteDescription(offer, 'offer');
    if (pc.gatheringState() !== 'complete') await withTimeout(gathered, timeoutMs, 'ICE gathering');
    const d = pc.localDescription();
    if (d?.type !== 'answer') throw new Error('no local answer');
    let connecting: Promise<void> | undefined;
    return {
      answer: d.sdp,
      connected: () => {
        connecting ??= withTimeout(up, timeoutMs, 'ICE and DTLS to connect').then(() => receiver.startReports());
        return connecting;
      },
      counts: () => receiver.counts(),
      ended,
      close: () => close(),
    };
  } catch (err) {
    close('failed');
    throw err;
  }
}
