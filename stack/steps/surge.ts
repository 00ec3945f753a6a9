import { setTimeout as sleep } from 'node:timers/promises';
import { z } from 'zod';
import { duration } from '../../process/duration.ts';
import { readSubtrees } from '../../topology/index.ts';
import { defineStep, type StepContext, type SurgeReport, type SurgeSample } from './step.ts';
import { egressNodes, endViewer, placeViewer } from './viewers.ts';

/** Retry-After when a refusal named none (a node that was not ready, say). */
const DEFAULT_RETRY_S = 2;
/** Placement tries under way at once. */
const MAX_TRIES = 8;
/** How often the timeline is sampled. */
const SAMPLE_MS = 1_000;

/**
 * `- surge: { viewers, rate, hold, leaveRate, timeout }`: real WebRTC viewers
 * arrive at `rate` per second until `viewers` want in, each placed by the
 * tree's entry point; one refused (503: no node has room) tries again after
 * the Retry-After it was given, as a WHEP client does, while the others keep
 * arriving; one whose WebRTC set-up failed tries again too (counted apart).
 * Once every viewer is in, they stay `hold`, then leave at `leaveRate` per second, first come first gone: nobody is moved. Viewers
 * still waiting `timeout` after the last arrival give up (counted).
 */
export const surge = defineStep(
  z
    .object({
      viewers: z.number().int().min(1).max(5_000),
      rate: z.number().positive().max(100),
      hold: duration.default(10_000),
      leaveRate: z.number().positive().max(1_000).default(10),
      timeout: duration.default(180_000),
    })
    .strict(),
  async (ctx, s) => {
    const session = ctx.sessions[0];
    if (!session) throw new Error('surge: start a session first (start-session)');
    const stats: SurgeReport = {
      refusals: 0,
      refusedViewers: 0,
      servedAfterRefusal: 0,
      setupFailures: 0,
      gaveUp: 0,
      timeline: [],
    };
    ctx.report.surge = stats;
    // Waiting viewers: when each may try next, whether it was ever refused, and
    // whether a try is under way. Tries run side by side (as real viewers
    // arrive independently), up to MAX_TRIES at once: one at a time, a WebRTC
    // set-up of a second or more on loaded cores made the queue, not the tree,
    // the bottleneck.
    const waiting: Array<{ next: number; refused: boolean; trying: boolean }> = [];
    const tries = new Set<Promise<void>>();
    let arrived = 0;
    const startedAt = Date.now();
    let nextSample = startedAt;
    const sample = async () => {
      if (Date.now() < nextSample) return;
      nextSample += SAMPLE_MS;
      stats.timeline.push(await snapshot(ctx, waiting.length));
    };
    const tryOne = async (v: (typeof waiting)[number]) => {
      const r = await placeViewer(ctx, session);
      v.trying = false;
      if (r.placed) {
        waiting.splice(waiting.indexOf(v), 1);
        if (v.refused) stats.servedAfterRefusal++;
        return;
      }
      if (r.retryAfterS === null) stats.setupFailures++;
      else {
        stats.refusals++;
        if (!v.refused) stats.refusedViewers++;
        v.refused = true;
      }
      v.next = Date.now() + (r.retryAfterS ?? DEFAULT_RETRY_S) * 1_000;
    };
    const arrivalsDone = () => arrived >= s.viewers;
    let lastArrival = startedAt;
    while (!arrivalsDone() || waiting.length > 0) {
      const now = Date.now();
      // Arrivals due by now join the queue (they try at once).
      while (!arrivalsDone() && startedAt + (arrived * 1_000) / s.rate <= now) {
        waiting.push({ next: now, refused: false, trying: false });
        arrived++;
        lastArrival = now;
      }
      for (const v of waiting) {
        if (tries.size >= MAX_TRIES) break;
        if (v.trying || v.next > now) continue;
        v.trying = true;
        const t = tryOne(v).finally(() => tries.delete(t));
        tries.add(t);
      }
      await sample();
      if (arrivalsDone() && Date.now() - lastArrival > s.timeout) {
        // Tries under way finish (placed, or not); whoever is still waiting then gave up.
        await Promise.all(tries);
        stats.gaveUp = waiting.splice(0).length;
        break;
      }
      await sleep(20);
    }
    ctx.event(
      `surge: ${s.viewers - stats.gaveUp} viewers in, ${stats.refusedViewers} refused at first (${stats.refusals} refusals, ${stats.setupFailures} set-ups failed)` +
        (stats.gaveUp ? `, ${stats.gaveUp} gave up after ${s.timeout / 1000} s` : ', all served'),
    );
    for (const until = Date.now() + s.hold; Date.now() < until; await sleep(100)) await sample();
    const gap = 1_000 / s.leaveRate;
    while (ctx.viewers.length > 0) {
      await endViewer(ctx, ctx.viewers[0]!);
      await sample();
      await sleep(gap);
    }
    stats.leftAt = Date.now();
    ctx.event('surge: every viewer left');
  },
);

/** Ports wanted and ports there are, on every non-draining egress node, and the subtrees recorded. */
async function snapshot(ctx: StepContext, waiting: number): Promise<SurgeSample> {
  let allocated = 0;
  let ports = 0;
  for (const n of (await egressNodes(ctx)).filter((e) => !e.draining)) {
    const res = await fetch(`${n.url}/sessions`, { signal: AbortSignal.timeout(2_000) }).catch(() => null);
    const body = (await res?.json().catch(() => null)) as { pool?: { allocated: number; available: number } } | null;
    if (!body?.pool) continue;
    allocated += body.pool.allocated;
    ports += body.pool.allocated + body.pool.available;
  }
  const subtrees = (await readSubtrees(ctx.stack.redis, ctx.stack.tree, ctx.log)).size;
  return { at: Date.now(), placed: ctx.viewers.length, waiting, allocated, ports, subtrees };
}
