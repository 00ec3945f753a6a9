import type { Stream } from '../viewers/receiver.ts';

/** The egress bench's figures from its readings: CPU per viewer-minute, and what each viewer received of what was sent. */

export const DELIVERY_TARGET = 0.999;

/** CPU seconds a server used per viewer and minute of the window. */
export function cpuPerViewerMinute(cpuSeconds: number, viewers: number, windowMs: number): number {
  if (!(viewers > 0) || !(windowMs > 0)) throw new Error(`no viewers (${viewers}) or no window (${windowMs} ms)`);
  if (!(cpuSeconds >= 0)) throw new Error(`CPU seconds must be >= 0, got ${cpuSeconds}`);
  return cpuSeconds / (viewers * (windowMs / 60_000));
}

/** Packets per stream: sent into the server, or received by one viewer. */
export type Packets = Record<Stream, number>;

export interface Delivery {
  viewers: number;
  /** The lowest share of the sent packets a viewer received, per stream and over both. */
  min: Record<Stream | 'both', number>;
  /** Viewers below the target on either stream. */
  below: number;
}

/**
 * Per viewer and stream: packets received in the window over packets sent
 * into the server in it, both read at the same instants; what is in flight
 * at either edge (in the servers, or queued for the bench's event loop) is
 * off, so a share can pass 100 %. A viewer that received nothing counts as 0.
 */
export function delivery(
  sent: { before: Packets; after: Packets },
  viewers: Array<{ before: Packets; after: Packets }>,
  target = DELIVERY_TARGET,
): Delivery {
  const streams: Stream[] = ['audio', 'video'];
  const sentIn = (s: Stream) => sent.after[s] - sent.before[s];
  for (const s of streams) if (!(sentIn(s) > 0)) throw new Error(`no ${s} packets sent in the window`);
  const min = { audio: Infinity, video: Infinity, both: Infinity };
  let below = 0;
  for (const v of viewers) {
    let low = false;
    let got = 0;
    for (const s of streams) {
      const share = (v.after[s] - v.before[s]) / sentIn(s);
      min[s] = Math.min(min[s], share);
      got += v.after[s] - v.before[s];
      if (share < target) low = true;
    }
    min.both = Math.min(min.both, got / (sentIn('audio') + sentIn('video')));
    if (low) below++;
  }
  return { viewers: viewers.length, min, below };
}
