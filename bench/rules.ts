import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { parse } from 'yaml';
import { parseDuration } from '../process/duration.ts';
import { waitUntil } from '../process/wait.ts';
import { renderRulePack, toYaml } from '../rules/jsonnet.ts';
import { instantQuery, startPrometheus } from '../servers/prometheus.ts';
import type { BenchResult } from './result.ts';
import { rawSelectors } from './raw-selectors.ts';
import { remoteWrite } from './remote-write.ts';
import { type FleetShape, fleet, writeSeries } from './rules-data.ts';
import { seriesFloor } from './rules-floor.ts';
import { median } from './scrape.ts';
import { SEED_ALERT_RULES } from './seed-alerts.ts';
import { seedDecisionQueries } from './seed-queries.ts';

export interface RulesBenchOptions extends FleetShape {
  /** Run every point of SWEEP instead of the one fleet; RATIO is still the default fleet's. */
  sweep: boolean;
  /** Steady-state window of each side, wall seconds. */
  seconds: number;
  /** Wall seconds after a side is loaded before its window opens. */
  warmupSeconds: number;
  /** Every evaluation and query interval, both sides, is divided by this. */
  speedup: number;
  /** Minutes of history in the head before the sides run. */
  headMinutes: number;
}

/** The default fleet: what RATIO is measured on. */
export const DEFAULT_FLEET: FleetShape = { trees: 10, nodes: 1000, cores: 8 };

export const SWEEP: FleetShape[] = [1, 10, 100].flatMap((trees) =>
  [1000, 5000].flatMap((nodes) => [1, 8].map((cores) => ({ trees, nodes, cores }))),
);

/** The seed's DecisionEngine ran every 30 s, as its alert group did. */
const SEED_INTERVAL_SECONDS = 30;
const STEP_SECONDS = 15;
const ACTUATOR_GROUP = 'canopy.actuator';

interface PointResult {
  ratio: number;
  floorRatio: number;
}

/**
 * Prometheus CPU per minute of steady state, the seed's way against the
 * pack's, each side alone on the same head TSDB (fed through remote write,
 * one step every 15 s as scrapes would): first nothing (ingest only), then the
 * seed (its six DecisionEngine queries per tree through the HTTP API every
 * 30 s, plus its own alert group every 30 s), then the pack as shipped (its
 * groups at their production intervals, but the actuator's group, which is
 * timed on its own line). The cost of a side is its CPU above the idle phase.
 * Every interval of both sides is divided by --speedup, so a minute of wall
 * time holds that many minutes of evaluations; the data keeps its real 15 s
 * step, so each evaluation reads what production would.
 * RATIO = pack / seed at the default fleet (lower is better).
 */
export async function benchRules(o: RulesBenchOptions, log: (line: string) => void): Promise<BenchResult> {
  const shapes = o.sweep ? SWEEP : [{ trees: o.trees, nodes: o.nodes, cores: o.cores }];
  const isDefault = (s: FleetShape) =>
    s.trees === DEFAULT_FLEET.trees && s.nodes === DEFAULT_FLEET.nodes && s.cores === DEFAULT_FLEET.cores;
  const lines: string[] = [];
  let ratio = Number.NaN;
  for (const shape of shapes) {
    const r = await measurePoint(shape, o, log);
    const line = `point ${shape.trees} trees, ${shape.nodes} nodes, ${shape.cores} cores: pack/seed ${r.ratio.toFixed(3)}, pack/floor ${r.floorRatio.toFixed(2)}`;
    log(line);
    lines.push(line);
    if (!o.sweep || isDefault(shape)) ratio = r.ratio;
  }
  if (o.sweep) for (const l of lines) log(l);
  log('targets: pack/seed <= 0.3 at 10 trees, 1000 nodes, 8 cores; < 1 at every point; pack/floor <= 1.5');
  return { ratio };
}

async function measurePoint(shape: FleetShape, o: RulesBenchOptions, log: (l: string) => void): Promise<PointResult> {
  const dir = mkdtempSync(join(tmpdir(), 'canopy-bench-rules-'));
  const rulesDir = join(dir, 'rules');
  mkdirSync(rulesDir);
  let writer: NodeJS.Timeout | undefined;
  let sending: Promise<void> | undefined;
  const tag = `[${shape.trees}t ${shape.nodes}n ${shape.cores}c]`;
  try {
    const series = fleet(shape, STEP_SECONDS);
    const steps = (o.headMinutes * 60) / STEP_SECONDS + 1;
    const first = Math.floor(Date.now() / 1000) - (steps - 1) * STEP_SECONDS;
    const prom = await startPrometheus({
      dir,
      config: toYaml({
        // Not scaled: a subquery without a resolution steps by the global
        // evaluation interval, and the seed's [5m:] stepped by its 15 s.
        // Every group of both sides has its own (scaled) interval.
        global: { scrape_interval: `${STEP_SECONDS}s`, evaluation_interval: `${STEP_SECONDS}s` },
        rule_files: ['rules/*.yaml'],
      }),
      extraArgs: ['--web.enable-remote-write-receiver'],
    });
    try {
      const t0 = Date.now();
      // In batches of series, so a large fleet never makes one huge request.
      for (let i = 0; i < series.length; i += 2_000)
        await remoteWrite(prom.url, writeSeries(series.slice(i, i + 2_000), first, STEP_SECONDS, 0, steps));
      const newest = await instantQuery(prom.url, 'max(timestamp(media_tree_egress_active_viewers))');
      if (Number(newest.result[0]?.value[1]) !== first + (steps - 1) * STEP_SECONDS)
        throw new Error(`the remote-written head is not visible: newest sample at ${newest.result[0]?.value[1]}`);
      log(
        `${tag} fleet: ${series.length} series, ${o.headMinutes} min of history to the head through remote write in ${((Date.now() - t0) / 1000).toFixed(1)} s, then one step every ${STEP_SECONDS} s`,
      );
      let next = steps;
      writer = setInterval(() => {
        if (sending || (first + next * STEP_SECONDS) * 1000 > Date.now()) return;
        const k = next++;
        sending = remoteWrite(prom.url, writeSeries(series, first, STEP_SECONDS, k, k + 1))
          .catch((err: Error) => log(`remote write of step ${k} failed: ${err.message}`))
          .finally(() => (sending = undefined));
      }, 500);

      const ms = (s: number) => `${(s * 1000).toFixed(1)} ms`;
      const perMin = (c: number) => `${c.toFixed(3)} CPU-s/min`;
      const speed = o.speedup;

      // Ingest alone: what neither side is charged for.
      const idle = await measureCpu(prom.url, o);
      log(`${tag} idle (ingest only): ${perMin(idle.cpuPerMinute)}`);

      // The seed: its alert group, verbatim but for the interval, and its client's queries.
      writeFileSync(join(rulesDir, 'seed.yaml'), scaleIntervals(SEED_ALERT_RULES, o.speedup));
      await reload(prom.url, ['media_tree_alerts']);
      const client = seedClient(prom.url, shape.trees, (SEED_INTERVAL_SECONDS * 1000) / o.speedup);
      const seed = await measureCpu(prom.url, o);
      const rounds = await client.stop();
      await expectAlerts(prom.url, 'HighCPUUsage', 'component="scaling"');
      const seedNet = seed.cpuPerMinute - idle.cpuPerMinute;
      log(
        `${tag} seed: ${perMin(seed.cpuPerMinute)} at x${speed}, ${perMin(seedNet)} above idle = ${perMin(seedNet / speed)} of production`,
      );
      log(
        `${tag}   queries: ${6 * shape.trees} per round, ${ms(median(rounds.wall) / 1000)} wall median, ${ms(Math.max(...rounds.wall) / 1000)} max, ${rounds.wall.length} rounds of ${Math.floor(((o.seconds + o.warmupSeconds) * o.speedup) / SEED_INTERVAL_SECONDS)} scheduled, ${rounds.late} late (a late seed costs less per minute than it would: the ratio then favours the seed)`,
      );
      for (const [g, d] of seed.groups) log(`${tag}   group ${g}: ${ms(d)} per evaluation`);
      for (const [rule, d] of await ruleDurations(prom.url, 4, (SEED_INTERVAL_SECONDS * 1000) / o.speedup))
        log(`${tag}     rule ${rule}: ${ms(d)}`);

      // The pack as shipped, without the actuator's group.
      rmSync(join(rulesDir, 'seed.yaml'));
      const pack = renderRulePack();
      const packFiles = [pack.rules, pack.alerts].map((f) => withoutGroup(f, ACTUATOR_GROUP));
      for (const [i, f] of packFiles.entries())
        writeFileSync(join(rulesDir, `pack-${i}.yaml`), scaleIntervals(f, o.speedup));
      await reload(prom.url, groupNames(packFiles));
      const packed = await measureCpu(prom.url, o);
      await expectAlerts(prom.url, 'MediaTreeScaleOut', 'reason="unhealthy_nodes"');
      const packNet = packed.cpuPerMinute - idle.cpuPerMinute;
      log(
        `${tag} pack: ${perMin(packed.cpuPerMinute)} at x${speed}, ${perMin(packNet)} above idle = ${perMin(packNet / speed)} of production`,
      );
      let packEval = 0;
      for (const [g, d] of packed.groups) {
        log(`${tag}   group ${g}: ${ms(d)} per evaluation`);
        packEval += d;
      }
      for (const [rule, d] of await ruleDurations(prom.url, 4, (SEED_INTERVAL_SECONDS * 1000) / o.speedup))
        log(`${tag}     rule ${rule}: ${ms(d)}`);
      if (packed.missed > 0 || seed.missed > 0)
        log(
          `${tag}   missed group iterations: seed ${seed.missed}, pack ${packed.missed} (an evaluation outran its interval)`,
        );

      // The actuator's group on its own line: its inputs are the actuator's metrics, not the fleet's.
      writeFileSync(join(rulesDir, 'actuator.yaml'), scaleIntervals(onlyGroup(pack.alerts, ACTUATOR_GROUP), o.speedup));
      await reload(prom.url, [...groupNames(packFiles), ACTUATOR_GROUP]);
      const act = await groupDurations(prom.url, 2, (SEED_INTERVAL_SECONDS * 1000) / o.speedup);
      log(
        `${tag} actuator group ${ACTUATOR_GROUP}: ${ms(act.get(ACTUATOR_GROUP) ?? Number.NaN)} per evaluation (not in the ratio)`,
      );

      // The floor, with nothing else evaluating.
      for (const f of ['actuator.yaml', 'pack-0.yaml', 'pack-1.yaml']) rmSync(join(rulesDir, f));
      await reload(prom.url, []);
      const floor = await seriesFloor(prom.url, rawSelectors(packFiles), 5);
      log(
        `${tag} floor: ${floor.series} distinct raw series in ${floor.reads.length} reads (${floor.overlap} read twice), ${ms(floor.seconds)}; the pack's groups ${ms(packEval)} per evaluation`,
      );
      if (floor.series === 0) throw new Error('the floor found no series: the fleet is not visible');
      // Reported, not hidden: a negative ratio says this point was not measurable here.
      if (seedNet <= 0 || packNet <= 0)
        log(`${tag} a side cost nothing above idle: the window is too short for this fleet, or the machine too busy`);
      return { ratio: packNet / seedNet, floorRatio: packEval / floor.seconds };
    } finally {
      clearInterval(writer);
      await sending;
      await prom.child.stop();
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** The seed's client: every interval, each tree's six queries at once, trees in turn (DecisionEngine.evaluate()). */
function seedClient(url: string, trees: number, intervalMs: number) {
  const wall: number[] = [];
  let late = 0;
  let running = true;
  const loop = (async () => {
    while (running) {
      const started = performance.now();
      for (let t = 0; t < trees; t++) {
        const answers = await Promise.all(
          Object.values(seedDecisionQueries(`tree-${t}`)).map((q) => instantQuery(url, q)),
        );
        if (answers[0]!.result.length === 0) throw new Error(`the seed's CPU query saw nothing for tree-${t}`);
      }
      const took = performance.now() - started;
      wall.push(took);
      if (took > intervalMs) late++;
      else await sleep(intervalMs - took);
    }
  })();
  // Reported by stop(), not as an unhandled rejection.
  loop.catch(() => {});
  return {
    stop: async () => {
      running = false;
      await loop;
      return { wall, late };
    },
  };
}

/** CPU per wall minute over the window, after the warm-up, with each rule group's median duration meanwhile. */
async function measureCpu(url: string, o: RulesBenchOptions) {
  await sleep(o.warmupSeconds * 1000);
  const c0 = await cpuSeconds(url);
  const t0 = performance.now();
  const sampler = sampleGroups(url, 1000);
  await sleep(o.seconds * 1000);
  const c1 = await cpuSeconds(url);
  const minutes = (performance.now() - t0) / 60_000;
  const { groups, missed } = await sampler.stop();
  return { cpuPerMinute: (c1.cpu - c0.cpu) / minutes, groups, missed: missed - c0.missed };
}

async function metricsText(url: string): Promise<string> {
  return (await fetch(`${url}/metrics`, { signal: AbortSignal.timeout(10_000) })).text();
}

async function cpuSeconds(url: string): Promise<{ cpu: number; missed: number }> {
  const text = await metricsText(url);
  const cpu = /^process_cpu_seconds_total (\S+)$/m.exec(text);
  if (!cpu) throw new Error('Prometheus exposes no process_cpu_seconds_total');
  let missed = 0;
  for (const v of metricByGroup(text, 'prometheus_rule_group_iterations_missed_total').values()) missed += v;
  return { cpu: Number(cpu[1]), missed };
}

/** Polls each group's last duration, one value per new iteration, until stopped. */
function sampleGroups(url: string, everyMs: number) {
  const seen = new Map<string, { iterations: number; durations: number[] }>();
  let running = true;
  let missed = 0;
  const poll = async () => {
    const text = await metricsText(url);
    const iterations = metricByGroup(text, 'prometheus_rule_group_iterations_total');
    const durations = metricByGroup(text, 'prometheus_rule_group_last_duration_seconds');
    missed = 0;
    for (const v of metricByGroup(text, 'prometheus_rule_group_iterations_missed_total').values()) missed += v;
    for (const [group, it] of iterations) {
      const s = seen.get(group);
      if (!s) seen.set(group, { iterations: it, durations: [] });
      else if (it > s.iterations) {
        s.durations.push(durations.get(group) ?? 0);
        s.iterations = it;
      }
    }
  };
  const loop = (async () => {
    while (running) {
      await poll();
      await sleep(everyMs);
    }
  })();
  loop.catch(() => {});
  return {
    stop: async () => {
      running = false;
      await loop;
      const groups = new Map<string, number>();
      for (const [g, s] of seen) if (s.durations.length > 0) groups.set(g.split(';')[1]!, median(s.durations));
      return { groups, missed };
    },
  };
}

async function groupDurations(url: string, n: number, intervalMs: number): Promise<Map<string, number>> {
  const sampler = sampleGroups(url, Math.max(100, intervalMs / 4));
  await sleep(intervalMs * (n + 1));
  return (await sampler.stop()).groups;
}

/**
 * Each rule's median evaluation time over n evaluations (the rules API's
 * evaluationTime), read after a side's CPU window so the polling is not
 * charged to it: where a group's time goes.
 */
async function ruleDurations(url: string, n: number, intervalMs: number): Promise<Map<string, number>> {
  const seen = new Map<string, { last: string; times: number[] }>();
  const deadline = performance.now() + intervalMs * (n + 1);
  while (performance.now() < deadline) {
    const res = await fetch(`${url}/api/v1/rules`, { signal: AbortSignal.timeout(10_000) });
    const body = (await res.json()) as {
      data: {
        groups: Array<{
          name: string;
          rules: Array<{
            name: string;
            evaluationTime: number;
            lastEvaluation: string;
            labels?: Record<string, string>;
          }>;
        }>;
      };
    };
    for (const g of body.data.groups)
      for (const [i, r] of g.rules.entries()) {
        const key = `${g.name}/${i} ${r.name}${r.labels?.reason ? `{${r.labels.reason}}` : ''}`;
        const s = seen.get(key) ?? { last: '', times: [] };
        if (r.lastEvaluation !== s.last && s.last !== '') s.times.push(r.evaluationTime);
        s.last = r.lastEvaluation;
        seen.set(key, s);
      }
    await sleep(Math.max(100, intervalMs / 4));
  }
  const out = new Map<string, number>();
  for (const [k, s] of seen) if (s.times.length > 0) out.set(k, median(s.times));
  return out;
}

function metricByGroup(text: string, name: string): Map<string, number> {
  const out = new Map<string, number>();
  const re = new RegExp(`^${name}\\{rule_group="([^"]+)"\\} (\\S+)$`, 'gm');
  for (const m of text.matchAll(re)) out.set(m[1]!, Number(m[2]));
  return out;
}

/** Reloads the config and waits until exactly these rule groups are loaded. */
async function reload(url: string, groups: string[]): Promise<void> {
  const res = await fetch(`${url}/-/reload`, { method: 'POST', signal: AbortSignal.timeout(60_000) });
  if (!res.ok) throw new Error(`reload failed: ${res.status} ${await res.text()}`);
  const want = [...groups].sort().join(',');
  await waitUntil(
    `rule groups ${want || '(none)'}`,
    async () => {
      const body = (await (await fetch(`${url}/api/v1/rules`)).json()) as { data: { groups: Array<{ name: string }> } };
      return (
        body.data.groups
          .map((g) => g.name)
          .sort()
          .join(',') === want
      );
    },
    { timeoutMs: 30_000, intervalMs: 200 },
  );
}

/** Some alert of this name, as the side under test writes it, is in ALERTS: the side did decide something. */
async function expectAlerts(url: string, alertname: string, matcher: string): Promise<void> {
  const r = await instantQuery(url, `count(ALERTS{alertname="${alertname}", ${matcher}})`);
  if (!(Number(r.result[0]?.value[1]) > 0)) throw new Error(`no ${alertname} in ALERTS: the hot nodes fired nothing`);
}

interface RuleFile {
  groups: Array<{ name: string; interval?: string; rules: unknown[] }>;
}

/**
 * Every group's interval divided by `speedup`; a group without one gets the
 * global evaluation interval's, scaled, written out (the global one stays
 * real: it is also the seed's subquery resolution).
 */
export function scaleIntervals(file: string, speedup: number): string {
  const f = parse(file) as RuleFile;
  for (const g of f.groups) {
    g.interval ??= `${STEP_SECONDS}s`;
    const ms = parseDuration(g.interval);
    if (ms === null) throw new Error(`group ${g.name}: interval ${g.interval} is not a duration`);
    g.interval = `${Math.max(1, Math.round(ms / speedup))}ms`;
  }
  return toYaml(f);
}

function withoutGroup(file: string, name: string): string {
  const f = parse(file) as RuleFile;
  return toYaml({ groups: f.groups.filter((g) => g.name !== name) });
}

function onlyGroup(file: string, name: string): string {
  const f = parse(file) as RuleFile;
  return toYaml({ groups: f.groups.filter((g) => g.name === name) });
}

function groupNames(files: string[]): string[] {
  return files.flatMap((f) => (parse(f) as RuleFile).groups.map((g) => g.name));
}
