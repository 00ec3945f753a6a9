import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { renderRulePack, toYaml } from '../stack/jsonnet.ts';
import { instantQuery, startPrometheus } from '../stack/prometheus.ts';
import { waitUntil } from '../stack/wait.ts';
import type { BenchResult } from './result.ts';
import { writeFleet } from './rules-data.ts';
import { median } from './scrape.ts';
import { seedDecisionQueries } from './seed-queries.ts';

export interface RulesBenchOptions {
  trees: number;
  nodes: number;
  minutes: number;
  evaluations: number;
  /** Rule group interval for the run: short so several evaluations happen quickly. */
  intervalSeconds: number;
}

/**
 * The rule pack's cost per evaluation (sum over groups of
 * prometheus_rule_group_last_duration_seconds, median of several) against the
 * seed's six DecisionEngine queries for every tree (sum of Prometheus' own
 * evalTotalTime, median of as many rounds), on one backfilled TSDB in one
 * Prometheus. RATIO = rule pack / seed queries (lower is better).
 */
export async function benchRules(o: RulesBenchOptions, log: (line: string) => void): Promise<BenchResult> {
  const dir = mkdtempSync(join(tmpdir(), 'canopy-bench-rules-'));
  try {
    const now = Math.floor(Date.now() / 1000);
    const om = join(dir, 'fleet.om');
    let t0 = Date.now();
    const { series, samples } = await writeFleet(om, {
      trees: o.trees,
      nodesPerTree: Math.ceil(o.nodes / o.trees),
      historySeconds: o.minutes * 60,
      // History ends now: Prometheus refuses rule results older than its
      // newest block, so a backfill into the future would silently drop them.
      // Rate windows keep finding samples for 45 s, which the run stays within.
      futureSeconds: 0,
      stepSeconds: 15,
      now,
    });
    log(`fleet: ${o.nodes} egress nodes in ${o.trees} trees, ${series} series, ${samples} samples (${o.minutes} min of history at 15 s), written in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
    t0 = Date.now();
    execFileSync('promtool', ['tsdb', 'create-blocks-from', 'openmetrics', '--quiet', om, join(dir, 'data')], { stdio: ['ignore', 'ignore', 'pipe'] });
    rmSync(om);
    log(`backfill: promtool tsdb create-blocks-from openmetrics in ${((Date.now() - t0) / 1000).toFixed(1)} s`);

    // The rule pack as shipped, but for the group interval.
    const pack = renderRulePack(`ruleInterval: '${o.intervalSeconds}s'`);
    writeFileSync(join(dir, 'rules.yaml'), pack.rules);
    writeFileSync(join(dir, 'alerts.yaml'), pack.alerts);
    const prom = await startPrometheus({
      dir,
      config: toYaml({
        // 15 s as in production: it sets the resolution of the seed's subquery.
        global: { scrape_interval: '15s', evaluation_interval: '15s' },
        rule_files: ['rules.yaml', 'alerts.yaml'],
      }),
    });
    try {
      const rulesCost = await ruleGroupCost(prom.url, o.evaluations, o.intervalSeconds, log);
      await logCostliestRules(prom.url, log);
      // The recorded series must exist, or the groups were timed doing nothing.
      const recorded = await instantQuery(prom.url, 'tree_id:media_tree_egress_cpu_utilisation:avg_ratio_avg5m');
      if (recorded.result.length !== o.trees) {
        throw new Error(`the rule pack recorded ${recorded.result.length} trees of ${o.trees}: its results were not stored`);
      }

      const rounds: number[] = [];
      const wall: number[] = [];
      let seriesSeen = 0;
      for (let round = 0; round < o.evaluations + 2; round++) {
        let evalSeconds = 0;
        const started = performance.now();
        for (let t = 0; t < o.trees; t++) {
          // As DecisionEngine.evaluate(): the six queries of a tree at once, trees in turn.
          const answers = await Promise.all(
            Object.entries(seedDecisionQueries(`tree-${t}`)).map(async ([name, q]) => ({ name, r: await instantQuery(prom.url, q, { stats: 'all' }) })),
          );
          for (const { name, r } of answers) {
            const timings = (r.stats as { timings?: { evalTotalTime?: number } } | undefined)?.timings;
            if (typeof timings?.evalTotalTime !== 'number') throw new Error(`no query stats for ${name}`);
            evalSeconds += timings.evalTotalTime;
            if (round === 0) seriesSeen += r.result.length;
          }
        }
        // The first two rounds warm caches, as the rule groups' first evaluations do.
        if (round >= 2) {
          rounds.push(evalSeconds);
          wall.push((performance.now() - started) / 1000);
        }
      }
      if (seriesSeen === 0) throw new Error('the seed queries returned nothing: the backfill is not visible');
      const seedCost = median(rounds);
      const ms = (s: number) => `${(s * 1000).toFixed(2)} ms`;
      log(`rule pack: ${ms(rulesCost)} per evaluation of every group (median of ${o.evaluations})`);
      const seedWall = median(wall);
      log(`seed queries: ${ms(seedWall)} per round of ${6 * o.trees} queries through the HTTP API, the seed's way (median of ${rounds.length}); of which ${ms(seedCost)} Prometheus evaluation`);
      log(`rule pack / seed queries: ${(rulesCost / seedWall).toFixed(3)} against HTTP API time (the RATIO), ${(rulesCost / seedCost).toFixed(3)} against evaluation time alone`);
      log(`target: rule pack <= 0.2x the seed's queries`);
      return { ratio: rulesCost / seedWall };
    } finally {
      await prom.child.stop();
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Median over `n` evaluations (after two warm-ups) of the summed last durations of every rule group. */
async function ruleGroupCost(url: string, n: number, intervalSeconds: number, log: (l: string) => void): Promise<number> {
  const seen = new Map<string, { iterations: number; durations: number[] }>();
  await waitUntil(
    `${n} evaluations of every rule group`,
    async () => {
      const text = await (await fetch(`${url}/metrics`, { signal: AbortSignal.timeout(5_000) })).text();
      const iterations = metricByGroup(text, 'prometheus_rule_group_iterations_total');
      const durations = metricByGroup(text, 'prometheus_rule_group_last_duration_seconds');
      for (const [group, it] of iterations) {
        const s = seen.get(group) ?? { iterations: 0, durations: [] };
        if (it > s.iterations && it > 2) s.durations.push(durations.get(group) ?? 0);
        s.iterations = it;
        seen.set(group, s);
      }
      return seen.size > 0 && [...seen.values()].every((s) => s.durations.length >= n);
    },
    { timeoutMs: (n + 6) * intervalSeconds * 1000 + 60_000, intervalMs: 250 },
  );
  let total = 0;
  for (const [group, s] of seen) {
    const m = median(s.durations.slice(0, n));
    log(`  group ${group.split(';')[1]}: ${(m * 1000).toFixed(2)} ms`);
    total += m;
  }
  return total;
}

function metricByGroup(text: string, name: string): Map<string, number> {
  const out = new Map<string, number>();
  const re = new RegExp(`^${name}\\{rule_group="([^"]+)"\\} (\\S+)$`, 'gm');
  for (const m of text.matchAll(re)) out.set(m[1]!, Number(m[2]));
  return out;
}

/** Where the pack's time goes: the five costliest rules of the last evaluation. */
async function logCostliestRules(url: string, log: (l: string) => void): Promise<void> {
  const res = await fetch(`${url}/api/v1/rules`, { signal: AbortSignal.timeout(5_000) });
  const body = (await res.json()) as { data: { groups: Array<{ rules: Array<{ name: string; evaluationTime: number; labels?: Record<string, string> }> }> } };
  const rules = body.data.groups.flatMap((g) => g.rules);
  rules.sort((a, b) => b.evaluationTime - a.evaluationTime);
  for (const r of rules.slice(0, 5)) {
    log(`  costliest: ${(r.evaluationTime * 1000).toFixed(2)} ms ${r.name}${r.labels?.reason ? ` (${r.labels.reason})` : ''}`);
  }
}
