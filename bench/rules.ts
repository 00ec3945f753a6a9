import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { renderRulePack, toYaml } from '../rules/jsonnet.ts';
import { instantQuery, startPrometheus } from '../servers/prometheus.ts';
import { waitUntil } from '../process/wait.ts';
import type { BenchResult } from './result.ts';
import { rawSelectors } from './raw-selectors.ts';
import { remoteWrite } from './remote-write.ts';
import { fleet, writeOpenMetrics, writeSeries } from './rules-data.ts';
import { median } from './scrape.ts';
import { seedDecisionQueries } from './seed-queries.ts';

export interface RulesBenchOptions {
  trees: number;
  nodes: number;
  minutes: number;
  /** The newest minutes of the history, sent to the head rather than backfilled into blocks. */
  headMinutes: number;
  evaluations: number;
  /** Rule group interval for the run: short so several evaluations happen quickly. */
  intervalSeconds: number;
}

const STEP_SECONDS = 15;

/**
 * The rule pack's cost per evaluation (sum over groups of
 * prometheus_rule_group_last_duration_seconds, median of several) against the
 * seed's six DecisionEngine queries for every tree through the HTTP API
 * (wall time per round, median of as many rounds), in one Prometheus.
 * RATIO = rule pack / seed queries (lower is better).
 *
 * The history is backfilled as blocks but for its newest minutes, which go to
 * the head through the remote-write receiver and keep arriving every 15 s
 * while the bench runs: in production every rule window reads the head, and
 * a window read across a block boundary costs two to three times more, which
 * made earlier runs depend on the time of day.
 */
export async function benchRules(o: RulesBenchOptions, log: (line: string) => void): Promise<BenchResult> {
  if (o.headMinutes >= o.minutes)
    throw new Error(`--head-minutes (${o.headMinutes}) must be below --minutes (${o.minutes})`);
  const dir = mkdtempSync(join(tmpdir(), 'canopy-bench-rules-'));
  let writer: NodeJS.Timeout | undefined;
  let sending: Promise<void> | undefined;
  try {
    const now = Math.floor(Date.now() / 1000);
    const first = now - o.minutes * 60;
    const steps = (o.minutes * 60) / STEP_SECONDS + 1;
    const headFrom = steps - (o.headMinutes * 60) / STEP_SECONDS;
    const series = fleet(o.trees, Math.ceil(o.nodes / o.trees), STEP_SECONDS);
    const om = join(dir, 'fleet.om');
    let t0 = Date.now();
    const samples = await writeOpenMetrics(om, series, first, STEP_SECONDS, 0, headFrom);
    log(
      `fleet: ${o.nodes} egress nodes in ${o.trees} trees, ${series.length} series; ${o.minutes} min of history at ${STEP_SECONDS} s, the first ${o.minutes - o.headMinutes} min (${samples} samples) written in ${((Date.now() - t0) / 1000).toFixed(1)} s`,
    );
    t0 = Date.now();
    execFileSync('promtool', ['tsdb', 'create-blocks-from', 'openmetrics', '--quiet', om, join(dir, 'data')], {
      stdio: ['ignore', 'ignore', 'pipe'],
    });
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
      extraArgs: ['--web.enable-remote-write-receiver'],
    });
    try {
      t0 = Date.now();
      // In batches of series, so a large fleet never makes one huge request.
      for (let i = 0; i < series.length; i += 2_000)
        await remoteWrite(prom.url, writeSeries(series.slice(i, i + 2_000), first, STEP_SECONDS, headFrom, steps));
      // The head must hold the newest step, or the rules would read only blocks.
      const newest = await instantQuery(prom.url, 'max(timestamp(media_tree_egress_active_viewers))');
      if (Number(newest.result[0]?.value[1]) !== first + (steps - 1) * STEP_SECONDS) {
        throw new Error(
          `the remote-written head is not visible: newest sample at ${newest.result[0]?.value[1] ?? 'none'}`,
        );
      }
      log(
        `head: the last ${o.headMinutes} min through remote write in ${((Date.now() - t0) / 1000).toFixed(1)} s, then one step every ${STEP_SECONDS} s`,
      );
      // Live data: each step is sent once its time has come, as scrapes would add it.
      let next = steps;
      writer = setInterval(() => {
        if (sending || (first + next * STEP_SECONDS) * 1000 > Date.now()) return;
        const k = next++;
        sending = remoteWrite(prom.url, writeSeries(series, first, STEP_SECONDS, k, k + 1))
          .catch((err: Error) => log(`remote write of step ${k} failed: ${err.message}`))
          .finally(() => (sending = undefined));
      }, 500);

      const rulesCost = await ruleGroupCost(prom.url, o.evaluations, o.intervalSeconds, log);
      await logCostliestRules(prom.url, log);
      // The recorded series must exist, or the groups were timed doing nothing.
      const recorded = await instantQuery(prom.url, 'tree_id:media_tree_egress_cpu_utilisation:avg_ratio_avg5m');
      if (recorded.result.length !== o.trees) {
        throw new Error(
          `the rule pack recorded ${recorded.result.length} trees of ${o.trees}: its results were not stored`,
        );
      }

      // Wall time without query stats (the seed asked for none), then
      // Prometheus' own evaluation time with them, in as many rounds.
      const wall: number[] = [];
      const evaluation: number[] = [];
      let seriesSeen = 0;
      for (const stats of [false, true]) {
        for (let round = 0; round < o.evaluations + 2; round++) {
          let evalSeconds = 0;
          const started = performance.now();
          for (let t = 0; t < o.trees; t++) {
            // As DecisionEngine.evaluate(): the six queries of a tree at once, trees in turn.
            const answers = await Promise.all(
              Object.entries(seedDecisionQueries(`tree-${t}`)).map(async ([name, q]) => ({
                name,
                r: await instantQuery(prom.url, q, stats ? { stats: 'all' } : {}),
              })),
            );
            for (const { name, r } of answers) {
              if (round === 0 && !stats) seriesSeen += r.result.length;
              if (stats) evalSeconds += evalTotalTime(r, name);
            }
          }
          // The first two rounds warm caches, as the rule groups' first evaluations do.
          if (round < 2) continue;
          if (stats) evaluation.push(evalSeconds);
          else wall.push((performance.now() - started) / 1000);
        }
      }
      if (seriesSeen === 0) throw new Error('the seed queries returned nothing: the fleet is not visible');

      // What the pack cannot do without: each distinct raw selector of its
      // rules read once, timed by the same engine, before any rule writes.
      const selectors = rawSelectors([pack.rules, pack.alerts]);
      const reads: number[] = [];
      const perSelector = new Map<string, number[]>(selectors.map((sel) => [sel, []]));
      for (let round = 0; round < o.evaluations + 2; round++) {
        let seconds = 0;
        for (const sel of selectors) {
          const r = await instantQuery(prom.url, sel, { stats: 'all' });
          const took = evalTotalTime(r, sel);
          seconds += took;
          if (round >= 2) perSelector.get(sel)!.push(took);
        }
        if (round >= 2) reads.push(seconds);
      }

      const seedWall = median(wall);
      const seedEval = median(evaluation);
      const rawReads = median(reads);
      const ms = (s: number) => `${(s * 1000).toFixed(2)} ms`;
      log(`rule pack: ${ms(rulesCost)} per evaluation of every group (median of ${o.evaluations})`);
      log(
        `seed queries: ${ms(seedWall)} per round of ${6 * o.trees} queries through the HTTP API, the seed's way (median of ${wall.length}); ${ms(seedEval)} of Prometheus evaluation in a round with query stats`,
      );
      log(
        `raw reads: the pack's ${selectors.length} distinct raw selectors, each read once, ${ms(rawReads)} of evaluation (${(rawReads / seedWall).toFixed(3)}x the seed's round), before any rule computes or writes`,
      );
      const costliest = [...perSelector].map(([sel, t]) => [sel, median(t)] as const).sort((a, b) => b[1] - a[1]);
      for (const [sel, t] of costliest.slice(0, 5)) log(`  raw read: ${ms(t)} ${sel}`);
      log(
        `rule pack / seed queries: ${(rulesCost / seedWall).toFixed(3)} against HTTP API time (the RATIO), ${(rulesCost / seedEval).toFixed(3)} against evaluation time alone`,
      );
      log(`target: rule pack <= 0.2x the seed's queries`);
      return { ratio: rulesCost / seedWall };
    } finally {
      clearInterval(writer);
      // A step still in flight reports before Prometheus goes, never after RATIO.
      await sending;
      await prom.child.stop();
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Median over `n` evaluations (after two warm-ups from the call on) of the summed last durations of every rule group. */
async function ruleGroupCost(
  url: string,
  n: number,
  intervalSeconds: number,
  log: (l: string) => void,
): Promise<number> {
  // Counted from now, when the head holds the fleet: evaluations before it read no current data.
  const seen = new Map<string, { start: number; iterations: number; durations: number[] }>();
  await waitUntil(
    `${n} evaluations of every rule group`,
    async () => {
      const text = await (await fetch(`${url}/metrics`, { signal: AbortSignal.timeout(5_000) })).text();
      const iterations = metricByGroup(text, 'prometheus_rule_group_iterations_total');
      const durations = metricByGroup(text, 'prometheus_rule_group_last_duration_seconds');
      for (const [group, it] of iterations) {
        const s = seen.get(group) ?? { start: it, iterations: it, durations: [] };
        // Two warm-ups on the current data, then one duration per new evaluation.
        if (it > s.iterations && it > s.start + 2) s.durations.push(durations.get(group) ?? 0);
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

/** Prometheus' own evaluation time of a query asked with stats=all. */
function evalTotalTime(r: { stats?: unknown }, what: string): number {
  const took = (r.stats as { timings?: { evalTotalTime?: number } } | undefined)?.timings?.evalTotalTime;
  if (typeof took !== 'number') throw new Error(`no query stats for ${what}`);
  return took;
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
  const body = (await res.json()) as {
    data: {
      groups: Array<{ rules: Array<{ name: string; evaluationTime: number; labels?: Record<string, string> }> }>;
    };
  };
  const rules = body.data.groups.flatMap((g) => g.rules);
  rules.sort((a, b) => b.evaluationTime - a.evaluationTime);
  for (const r of rules.slice(0, 5)) {
    log(
      `  costliest: ${(r.evaluationTime * 1000).toFixed(2)} ms ${r.name}${r.labels?.reason ? ` (${r.labels.reason})` : ''}`,
    );
  }
}
