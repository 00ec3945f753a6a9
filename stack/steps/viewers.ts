import { setTimeout as sleep } from 'node:timers/promises';
import { z } from 'zod';
import { instantQuery } from '../../servers/prometheus.ts';
import { waitUntil } from '../../process/wait.ts';
import { defineStep, type PlacedViewer, type StepContext } from './step.ts';

/**
 * `- viewers: { count, rate }`: viewers join or leave at `rate` per second
 * until `count` are placed, then the fullest port pool is sampled.
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
      if (ctx.viewers.length < count) await addViewer(ctx);
      else await removeViewer(ctx);
      await sleep(gap);
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

const placedOn = (ctx: StepContext, node: string) => ctx.viewers.filter((v) => v.node === node).length;

/**
 * One try at placing a viewer on the least-loaded egress node that takes it,
 * as a WHEP load balancer would. Refused by every node: the shortest
 * Retry-After they answered (seconds), or null when none said.
 */
export async function placeViewer(
  ctx: StepContext,
  session: string,
): Promise<{ placed: PlacedViewer } | { placed: null; retryAfterS: number | null }> {
  const candidates = (await egressNodes(ctx))
    .filter((n) => !n.draining)
    .sort((a, b) => placedOn(ctx, a.id) - placedOn(ctx, b.id) || a.id.localeCompare(b.id));
  let retryAfterS: number | null = null;
  for (const n of candidates) {
    const res = await fetch(`${n.url}/whep/${session}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(ctx.receiver),
      signal: AbortSignal.timeout(5_000),
    }).catch(() => null);
    await res?.arrayBuffer();
    if (res?.status === 201) {
      const placed = { node: n.id, location: `${n.url}${res.headers.get('location')}` };
      ctx.viewers.push(placed);
      ctx.report.placed[n.id] = (ctx.report.placed[n.id] ?? 0) + 1;
      return { placed };
    }
    const after = Number(res?.headers.get('retry-after'));
    if (res?.status === 503 && Number.isFinite(after) && after > 0)
      retryAfterS = retryAfterS === null ? after : Math.min(retryAfterS, after);
  }
  return { placed: null, retryAfterS };
}

/** Places one viewer, trying again until a node takes it. */
async function addViewer(ctx: StepContext): Promise<void> {
  const session = ctx.sessions[ctx.viewers.length % Math.max(1, ctx.sessions.length)];
  if (!session) throw new Error('viewers: start a session first (start-session)');
  await waitUntil(
    'an egress node to take a viewer (pools full, or the session not yet there)',
    async () => (await placeViewer(ctx, session)).placed !== null,
    { timeoutMs: 30_000, intervalMs: 500 },
  );
}

// Viewers leave the fullest node first, so as the load balancer places the
// rest on the new nodes, the fullest pool falls.
async function removeViewer(ctx: StepContext): Promise<void> {
  const { viewers } = ctx;
  let at = viewers.length - 1;
  for (let i = viewers.length - 1; i >= 0; i--)
    if (placedOn(ctx, viewers[i]!.node) > placedOn(ctx, viewers[at]!.node)) at = i;
  const [v] = viewers.splice(at, 1);
  const res = await fetch(v!.location, { method: 'DELETE', signal: AbortSignal.timeout(5_000) }).catch(() => null);
  await res?.arrayBuffer();
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
