import type { Scaling } from '../alertmanager-webhook/decide.ts';
import { actuatorFamilies } from '../exporters/index.ts';
import { evalJsonnet } from '../rules/jsonnet.ts';
import { rangeQuery } from '../servers/prometheus.ts';
import { resolveShape, type StackShape } from '../stack/demo-config.ts';
import { loadScenario, runScenario, type ScenarioReport } from '../stack/scenario.ts';
import { startStack } from '../stack/stack.ts';
import { releaseWebRtc } from '../viewers/whep-client.ts';
import type { BenchResult } from './result.ts';

/** The rule pack's `_config` before sizing (the actuator's `--scaling episode` is the rest of it). */
export const BEFORE_SIZING = { portPoolSignal: 'fullest', forecastScaleOut: false };

/** What one policy did with the surge. */
export interface SurgeFigures {
  scaling: Scaling;
  refusedViewers: number;
  refusals: number;
  gaveUp: number;
  /** From demand first above the scale-out threshold to room for the whole peak; null: never. */
  timeToCapacityS: number | null;
  peakSubtrees: number;
  /** Fewest subtrees keeping the peak below the scale-out threshold, and merely fitting it. */
  neededSubtrees: number;
  fitSubtrees: number;
  /** From the last viewer leaving to no subtree; null: not within the scenario. */
  returnToBaselineS: number | null;
  /** desired/actual subtrees whenever either changed, seconds from the start. */
  sizes: Array<[number, number | null, number]>;
}

/**
 * The `surge` scenario on a fresh local stack, once as the loop was before
 * sizing (the actuator's episode policy, one subtree per firing episode, on
 * the fullest node's pool, no forecast) and once with sizing, the forecast
 * and the level policy, in the same run. RATIO = viewers refused with the level
 * policy / with the episode policy (target <= 0.2), with no more than one
 * subtree at the peak over what it needed.
 */
export async function benchSurge(log: (l: string) => void): Promise<BenchResult> {
  const scenario = loadScenario('surge');
  const threshold = (evalJsonnet("(import 'mixin.libsonnet')._config.portPoolScaleOutPercent") as number) / 100;
  const results: SurgeFigures[] = [];
  for (const scaling of ['episode', 'level'] as const) {
    const shape = resolveShape({ ...scenario.stack, scaling });
    // The baseline is the loop before sizing, rules included: the fullest
    // node's pool as the trigger, no forecast.
    const stack = await startStack({ shape, rules: scaling === 'episode' ? BEFORE_SIZING : {} });
    const startedAt = Date.now();
    try {
      const report = await runScenario(stack, scenario);
      const sizes = await sizesOverTime(stack.urls.prometheus, startedAt, Date.now());
      results.push(figures(scaling, report, shape, threshold, startedAt, sizes));
    } finally {
      await stack.stop();
    }
    const f = results.at(-1)!;
    const s = (v: number | null) => (v === null ? 'never' : `${v.toFixed(1)} s`);
    log(
      `${f.scaling}: viewers refused ${f.refusedViewers} (${f.refusals} refusals, ${f.gaveUp} gave up), time to capacity ${s(f.timeToCapacityS)}, subtrees at the peak ${f.peakSubtrees} against ${f.neededSubtrees} needed below ${threshold * 100}% (${f.fitSubtrees} to fit), back to baseline ${s(f.returnToBaselineS)} after the last viewer left`,
    );
    log(`${f.scaling}: desired/actual subtrees: ${f.sizes.map(([t, d, a]) => `+${t}s ${d ?? '-'}/${a}`).join(', ')}`);
  }
  // The runs' viewers are closed: let the command exit.
  releaseWebRtc();

  const [episode, level] = results as [SurgeFigures, SurgeFigures];
  const overshoot = level.peakSubtrees - level.neededSubtrees;
  log(`level over what the peak needed: ${overshoot} subtree(s) (target: at most 1)`);
  return { ratio: level.refusedViewers / episode.refusedViewers };
}

/** The surge's figures from its report and timeline. */
export function figures(
  scaling: Scaling,
  r: ScenarioReport,
  shape: Required<StackShape>,
  threshold: number,
  startedAt: number,
  sizes: SurgeFigures['sizes'],
): SurgeFigures {
  const s = r.surge;
  if (!s) throw new Error('the surge scenario ran no surge step');
  const peakViewers = Math.max(...s.timeline.map((x) => x.placed + x.waiting));
  // Ports a peak needs on `n` subtrees: a viewer 1, a node's mountpoint 2.
  const fits = (n: number, share: number) => {
    const nodes = shape.egressNodes + n * shape.subtreeSize;
    const ports = shape.egressNodes * shape.egressPoolSize + n * shape.subtreeSize * shape.subtreePoolSize;
    return peakViewers + 2 * nodes <= share * ports;
  };
  const fewest = (share: number) => {
    let n = 0;
    while (!fits(n, share) && n < 1_000) n++;
    return n;
  };
  const crossed = s.timeline.find((x) => x.ports > 0 && (x.allocated + x.waiting) / x.ports > threshold);
  // Room for every viewer of the peak not yet in.
  const room = crossed
    ? s.timeline.find((x) => x.at >= crossed.at && x.ports - x.allocated >= peakViewers - x.placed)
    : undefined;
  const back = r.events.find((e) => s.leftAt !== undefined && e.at >= s.leftAt && e.what === 'subtrees: 0');
  return {
    scaling,
    refusedViewers: s.refusedViewers,
    refusals: s.refusals,
    gaveUp: s.gaveUp,
    timeToCapacityS: crossed && room ? (room.at - crossed.at) / 1000 : null,
    peakSubtrees: Math.max(...s.timeline.map((x) => x.subtrees)),
    neededSubtrees: fewest(threshold),
    fitSubtrees: fewest(1),
    returnToBaselineS: back && s.leftAt !== undefined ? (back.at - s.leftAt) / 1000 : null,
    sizes: sizes.map(([t, d, a]) => [Math.round((t - startedAt) / 1000), d, a]),
  };
}

/** The rules' desired subtrees and the actuator's, whenever either changed. */
async function sizesOverTime(
  prometheus: string,
  startMs: number,
  endMs: number,
): Promise<Array<[number, number | null, number]>> {
  const r = evalJsonnet("(import 'mixin.libsonnet').recorded") as Record<string, string>;
  const start = Math.floor(startMs / 1000);
  const end = Math.ceil(endMs / 1000);
  const series = async (q: string) =>
    new Map(
      ((await rangeQuery(prometheus, q, start, end, 1))[0]?.values ?? []).map(([t, v]) => [t, Number(v)] as const),
    );
  const desired = await series(`max(${r.treeDesiredSubtrees})`);
  const actual = await series(`sum(${actuatorFamilies.subtrees.name})`);
  const out: Array<[number, number | null, number]> = [];
  for (let t = start; t <= end; t++) {
    const d = desired.get(t) ?? null;
    const a = actual.get(t);
    if (a === undefined) continue;
    const last = out.at(-1);
    if (!last || last[1] !== d || last[2] !== a) out.push([t * 1000, d, a]);
  }
  return out;
}
