import { setTimeout as sleep } from 'node:timers/promises';
import { z } from 'zod';
import { instantQuery } from '../../servers/prometheus.ts';
import { waitUntil } from '../../process/wait.ts';
import { WhepError, watch } from '../../viewers/whep-client.ts';
import { defineStep, type PlacedViewer, type StepContext } from './step.ts';

/**
 * `- viewers: { count, rate }`: real WebRTC viewers (node-datachannel) join or
 * leave at `rate` per second until `count` are connected, then the fullest
 * port pool is sampled. Each joins through the tree's entry point, which
 * picks its egress node; the scenario only chooses who leaves.
 */
export const viewers = defineStep(
  z
    .object({
      count: z.number().int().min(0).max(10_000),
      /** Viewers joined or left per second. */
      rate: z.number().positive().max(1_000).default(10),
    })
    .strict(),
  async (ctx, { count, rate }) => {
    const gap = 1_000 / rate;
    while (ctx.viewers.length !== count) {
      const t = Date.now();
      if (ctx.viewers.length < count) await addViewer(ctx);
      else await removeViewer(ctx);
      const left = gap - (Date.now() - t);
      if (left > 0) await sleep(left);
    }
    const byNode: Record<string, number> = {};
    for (const v of ctx.viewers) byNode[v.node] = (byNode[v.node] ?? 0) + 1;
    await sleep(2_000); // a scrape or two
    await samplePool(ctx);
    ctx.event(
      `viewers: ${count} (${
        Object.entries(byNode)
          .map(([k, v]) => `${k}=${v}`)
          .join(' ') || 'none'
      }); max pool ${ctx.report.maxPool.at(-1)?.toFixed(0) ?? '?'}%`,
    );
  },
);

interface EgressInfo {
  id: string;
  url: string;
  draining: boolean;
}

export async function egressNodes(ctx: StepContext): Promise<EgressInfo[]> {
  const out: EgressInfo[] = [];
  for (const id of await ctx.topology.nodeIds('egress')) {
    const n = await ctx.topology.getNode(id);
    if (n) out.push({ id, url: `http://${n.host}:${n.httpPort}`, draining: n.draining });
  }
  return out;
}

/** The tree's entry point for a session: the injection node's WHEP URL, which redirects. */
export function entryWhepUrl(ctx: StepContext, session: string): string {
  return `${ctx.stack.nodes.find((n) => n.type === 'injection')!.url}/whep/${session}`;
}

/** The egress node whose HTTP origin answered a viewer. */
async function nodeAt(ctx: StepContext, answeredBy: string): Promise<string> {
  const origin = new URL(answeredBy).origin;
  return (await egressNodes(ctx)).find((n) => new URL(n.url).origin === origin)?.id ?? origin;
}

/** What a viewer received, added to the run's totals when it goes. */
function account(ctx: StepContext, v: PlacedViewer): void {
  const c = v.viewer.counts();
  for (const s of ['audio', 'video'] as const) {
    const t = ctx.report.media[s];
    t.packets += c[s].packets;
    t.expected += c[s].expected;
    t.lost += c[s].lost;
  }
}

/** Ends a viewer (DELETE on its resource) and counts what it received. */
export async function endViewer(ctx: StepContext, v: PlacedViewer): Promise<void> {
  const i = ctx.viewers.indexOf(v);
  if (i >= 0) ctx.viewers.splice(i, 1);
  account(ctx, v);
  await v.viewer.close();
}

/**
 * One try at a viewer of `session` through the entry point: placed and
 * connected, or refused (503: the shortest wait it was told, in seconds).
 */
export async function placeViewer(
  ctx: StepContext,
  session: string,
): Promise<{ placed: PlacedViewer } | { placed: null; retryAfterS: number | null }> {
  let viewer: PlacedViewer['viewer'];
  try {
    viewer = await watch(entryWhepUrl(ctx, session), { timeoutMs: 15_000, bindAddress: ctx.stack.localHost });
  } catch (err) {
    if (err instanceof WhepError && err.status === 503) return { placed: null, retryAfterS: err.retryAfterS };
    ctx.log(`viewer not placed: ${(err as Error).message}`);
    return { placed: null, retryAfterS: null };
  }
  const placed: PlacedViewer = { node: await nodeAt(ctx, viewer.answeredBy), viewer };
  ctx.viewers.push(placed);
  ctx.report.placed[placed.node] = (ctx.report.placed[placed.node] ?? 0) + 1;
  // Ended by its egress node (drained and removed, say): no longer a viewer of the run.
  void viewer.ended.then(() => {
    if (!ctx.viewers.includes(placed)) return;
    ctx.report.endedByServer++;
    ctx.viewers.splice(ctx.viewers.indexOf(placed), 1);
    account(ctx, placed);
  });
  return { placed };
}

/** Places one viewer, trying again (after its Retry-After) until it is in. */
async function addViewer(ctx: StepContext): Promise<void> {
  const session = ctx.sessions[ctx.viewers.length % Math.max(1, ctx.sessions.length)];
  if (!session) throw new Error('viewers: start a session first (start-session)');
  const deadline = Date.now() + 60_000;
  for (;;) {
    const r = await placeViewer(ctx, session);
    if (r.placed) return;
    if (Date.now() > deadline)
      throw new Error('viewers: no egress node took a viewer for 60 s (pools full, or the session not served)');
    await sleep((r.retryAfterS ?? 1) * 1_000);
  }
}

// Viewers leave the fullest node first, so as the entry point places the
// rest on the new nodes, the fullest pool falls.
async function removeViewer(ctx: StepContext): Promise<void> {
  const { viewers } = ctx;
  const on = (node: string) => viewers.filter((v) => v.node === node).length;
  let at = viewers.length - 1;
  for (let i = viewers.length - 1; i >= 0; i--) if (on(viewers[i]!.node) > on(viewers[at]!.node)) at = i;
  await endViewer(ctx, viewers[at]!);
}

/** Records the fullest pool; right after start Prometheus may not have scraped every egress node yet. */
async function samplePool(ctx: StepContext): Promise<void> {
  const { stack, report } = ctx;
  await waitUntil(
    'the port-pool utilisation series',
    async () => {
      const r = await instantQuery(
        stack.urls.prometheus,
        `max(media_tree_egress_port_pool_utilization_percent{tree_id="${stack.tree}"})`,
      );
      const v = Number(r.result[0]?.value[1]);
      if (!Number.isFinite(v)) return false;
      report.maxPool.push(v);
      return true;
    },
    { timeoutMs: 10_000, intervalMs: 500 },
  ).catch((err: Error) => ctx.log(`pool query: ${err.message}`));
}
