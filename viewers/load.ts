import { setTimeout as sleep } from 'node:timers/promises';
import { type Stream, type Viewer, WhepError, watch } from './whep-client.ts';

/**
 * `canopy viewers`: N node-datachannel viewers of one WHEP URL (a tree's
 * entry point, which redirects each to an egress node), started at a steady
 * rate, kept for a while, then ended (DELETE). What they received is summed
 * per stream; where they were sent is counted per answering node.
 */

export interface LoadOptions {
  /** `.../whep/<session>`: the tree's entry point or one egress node. */
  whep: string;
  count: number;
  /** Viewers started per second. */
  rate: number;
  /** How long the viewers stay once the last one has been started. */
  durationMs: number;
  /** Per viewer: the POST, and then connecting, each within this. */
  timeoutMs?: number;
  /** A line of progress (a viewer failed, say). */
  log?: (line: string) => void;
}

export interface StreamTotals {
  packets: number;
  expected: number;
  lost: number;
}

export interface LoadResult {
  connected: number;
  failed: number;
  /** Failure reasons (`503`, `timeout`, ...) and how many. */
  failures: Record<string, number>;
  /** Connected viewers per answering origin (the egress node the entry point chose). */
  byNode: Record<string, number>;
  /** Viewers that the other side ended before the duration was up. */
  endedEarly: number;
  streams: Record<Stream, StreamTotals>;
}

const reasonOf = (err: unknown): string =>
  err instanceof WhepError ? String(err.status) : /timed out/.test((err as Error).message) ? 'timeout' : 'error';

export async function runViewers(o: LoadOptions): Promise<LoadResult> {
  const log = o.log ?? (() => {});
  const viewers: Viewer[] = [];
  const result: LoadResult = {
    connected: 0,
    failed: 0,
    failures: {},
    byNode: {},
    endedEarly: 0,
    streams: { audio: { packets: 0, expected: 0, lost: 0 }, video: { packets: 0, expected: 0, lost: 0 } },
  };
  let done = false;
  const starting: Promise<void>[] = [];
  const t0 = Date.now();
  for (let i = 0; i < o.count; i++) {
    const due = t0 + (i * 1_000) / o.rate;
    if (due > Date.now()) await sleep(due - Date.now());
    starting.push(
      watch(o.whep, { timeoutMs: o.timeoutMs ?? 10_000 }).then(
        (v) => {
          viewers.push(v);
          result.connected++;
          const origin = new URL(v.answeredBy).origin;
          result.byNode[origin] = (result.byNode[origin] ?? 0) + 1;
          void v.ended.then(() => {
            if (!done) result.endedEarly++;
          });
        },
        (err: unknown) => {
          result.failed++;
          const why = reasonOf(err);
          result.failures[why] = (result.failures[why] ?? 0) + 1;
          log(`viewer ${i + 1} failed: ${(err as Error).message}`);
        },
      ),
    );
  }
  await Promise.all(starting);
  await sleep(o.durationMs);
  done = true;
  for (const v of viewers) {
    const c = v.counts();
    for (const s of ['audio', 'video'] as const) {
      result.streams[s].packets += c[s].packets;
      result.streams[s].expected += c[s].expected;
      result.streams[s].lost += c[s].lost;
    }
  }
  await Promise.all(viewers.map((v) => v.close().catch(() => {})));
  return result;
}

export { releaseWebRtc } from './whep-client.ts';

/** The lines `canopy viewers` prints. */
export function formatResult(r: LoadResult, count: number): string[] {
  const pct = (lost: number, expected: number) => (expected > 0 ? ((100 * lost) / expected).toFixed(3) : '0.000');
  const lines = [
    `connected: ${r.connected} of ${count}`,
    `failed: ${r.failed}${
      r.failed
        ? ` (${Object.entries(r.failures)
            .map(([k, v]) => `${k}: ${v}`)
            .join(', ')})`
        : ''
    }`,
  ];
  for (const [node, n] of Object.entries(r.byNode).sort()) lines.push(`egress ${node}: ${n}`);
  if (r.endedEarly) lines.push(`ended by the server before the end: ${r.endedEarly}`);
  for (const s of ['audio', 'video'] as const) {
    const t = r.streams[s];
    lines.push(`${s}: packets ${t.packets}, expected ${t.expected}, lost ${t.lost} (${pct(t.lost, t.expected)} %)`);
  }
  return lines;
}
