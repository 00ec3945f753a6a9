import { z } from 'zod';
import { readSubtrees } from '../../topology/index.ts';
import { instantQuery } from '../../servers/prometheus.ts';
import { waitUntil } from '../../process/wait.ts';
import { duration } from '../../process/duration.ts';
import { defineStep, type StepContext } from './step.ts';

const alertWait = z
  .object({
    /** An alert of the rule pack (its tree's). */
    alert: z.string().regex(/^[A-Z][A-Za-z0-9]{2,39}$/, 'an alert name such as MediaTreeScaleOut'),
    state: z.enum(['firing', 'inactive']).default('firing'),
    /** Its labels must also match these (e.g. reason: packet_loss, node_id: egress-1). */
    labels: z.record(z.string().regex(/^[a-z_][a-z0-9_]*$/), z.string().regex(/^[A-Za-z0-9_.:-]*$/)).optional(),
    timeout: duration.default(120_000),
  })
  .strict();
const subtreesWait = z
  .object({ subtrees: z.number().int().min(0).max(100), timeout: duration.default(120_000) })
  .strict();

/** `- wait-for: { alert, state }` or `- wait-for: { subtrees }`; fails the run after `timeout`. */
export const waitFor = defineStep(z.union([alertWait, subtreesWait]), async (ctx, w) => {
  if ('alert' in w) await waitForAlert(ctx, w);
  else await waitForSubtrees(ctx, w);
});

/**
 * `firing` is met by an alert that has fired since the step before this one
 * started, even if it resolved since: a quick scale-out (the demo's forecast
 * fires while viewers still arrive) can resolve its alert before this step
 * begins. `inactive` is the state now. Prometheus' own record of its alerts
 * (ALERTS, one sample per evaluation) also gives when it first fired.
 */
async function waitForAlert(ctx: StepContext, w: z.output<typeof alertWait>): Promise<void> {
  const { stack, report } = ctx;
  const selector = `ALERTS{alertname="${w.alert}", alertstate="firing", tree_id="${stack.tree}"${Object.entries(
    w.labels ?? {},
  )
    .map(([k, v]) => `, ${k}="${v}"`)
    .join('')}}`;
  await waitUntil(
    `${w.alert} ${w.state}`,
    async () => {
      if (w.state === 'inactive') return (await instantQuery(stack.urls.prometheus, selector)).result.length === 0;
      const since = Math.ceil((Date.now() - ctx.previousStepAt) / 1000) + 1;
      const r = await instantQuery(stack.urls.prometheus, `min(min_over_time(timestamp(${selector})[${since}s:1s]))`);
      const first = Number(r.result[0]?.value[1]);
      if (!Number.isFinite(first)) return false;
      if (!report.firing[w.alert]) report.firing[w.alert] = Math.round(first * 1000);
      return true;
    },
    { timeoutMs: w.timeout, intervalMs: 500 },
  );
  ctx.event(`${w.alert}${w.labels ? JSON.stringify(w.labels) : ''} ${w.state}`);
}

// A subtree counts once the actuator recorded it and, for a scale-out, Prometheus scrapes every node of it.
async function waitForSubtrees(ctx: StepContext, w: z.output<typeof subtreesWait>): Promise<void> {
  const { stack, report } = ctx;
  await waitUntil(
    `${w.subtrees} subtree(s), scraped`,
    async () => {
      const subtrees = await readSubtrees(stack.redis, stack.tree, ctx.log);
      for (const [id, r] of subtrees) report.subtrees[id] = r.nodes;
      if (subtrees.size !== w.subtrees) return false;
      const current = [...subtrees.values()].flatMap((r) => r.nodes);
      if (current.length === 0) return true;
      const r = await instantQuery(stack.urls.prometheus, `up{job="media-tree-egress", tree_id="${stack.tree}"} == 1`);
      const up = new Set(r.result.map((x) => x.metric.node_id));
      if (!current.every((id) => up.has(id))) return false;
      for (const id of current) if (!report.scrapedUp.includes(id)) report.scrapedUp.push(id);
      return true;
    },
    { timeoutMs: w.timeout, intervalMs: 500 },
  );
  ctx.event(`subtrees: ${w.subtrees}`);
}
