import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse } from 'yaml';
import { z } from 'zod';
import { Topology } from '../topology/index.ts';
import { stackShapeSchema } from './demo-config.ts';
import type { Stack } from './stack.ts';
import { type ScenarioReport, type StepContext, STEPS, type StepKind } from './steps/index.ts';
import { endViewer } from './steps/viewers.ts';

export type { ScenarioEvent, ScenarioReport, SurgeReport, SurgeSample } from './steps/index.ts';

export const SCENARIOS_DIR = fileURLToPath(new URL('./scenarios/', import.meta.url));

type Steps = typeof STEPS;
type StepName = keyof Steps;
/** One step of a scenario file: `{ <kind>: <value> }`, the value as its kind's schema parses it. */
type Step = { [K in StepName]: { [P in K]: z.output<Steps[K]['schema']> } }[StepName];

// Each step is an object with exactly one key, the step's kind.
const step = z.union(
  Object.entries(STEPS).map(([kind, s]) => z.object({ [kind]: s.schema }).strict()),
) as unknown as z.ZodType<Step>;

export const scenarioSchema = z
  .object({
    name: z.string().min(1),
    description: z.string().optional(),
    /** The stack this scenario runs on: baseline shape, the actuator's bounds and policy. */
    stack: stackShapeSchema.optional(),
    steps: z.array(step).min(1),
  })
  .strict();
export type Scenario = z.infer<typeof scenarioSchema>;

/** Reads and validates a scenario: a name in stack/scenarios/ or a path to a YAML file. */
export function loadScenario(nameOrPath: string): Scenario {
  const path =
    nameOrPath.endsWith('.yaml') || nameOrPath.endsWith('.yml') || nameOrPath.includes('/')
      ? nameOrPath
      : join(SCENARIOS_DIR, `${nameOrPath}.yaml`);
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch {
    throw new Error(`scenario ${nameOrPath}: no such file ${path}`);
  }
  return parseScenario(text, path);
}

export function parseScenario(text: string, where = 'scenario'): Scenario {
  let raw: unknown;
  try {
    raw = parse(text);
  } catch (err) {
    throw new Error(`${where}: not YAML: ${(err as Error).message}`);
  }
  const r = scenarioSchema.safeParse(raw);
  if (!r.success) {
    const why = r.error.issues.map((i) => `${i.path.join('.') || '(top)'}: ${i.message}`).join('; ');
    throw new Error(`${where}: invalid scenario: ${why}`);
  }
  return r.data;
}

/** Runs a scenario against a started stack, step by step. Throws when a step fails (a wait-for times out). */
export async function runScenario(
  stack: Stack,
  scenario: Scenario,
  log: (line: string) => void = () => {},
  announce: (line: string) => void = () => {},
): Promise<ScenarioReport> {
  const report: ScenarioReport = {
    events: [],
    firing: {},
    subtrees: {},
    scrapedUp: [],
    placed: {},
    maxPool: [],
    media: { audio: { packets: 0, expected: 0, lost: 0 }, video: { packets: 0, expected: 0, lost: 0 } },
    endedByServer: 0,
    impaired: {},
  };
  const ctx: StepContext = {
    stack,
    topology: new Topology(stack.redis, stack.tree, (msg, detail) => log(`${msg} ${JSON.stringify(detail ?? {})}`)),
    report,
    event: (what) => {
      report.events.push({ at: Date.now(), what });
      log(what);
    },
    log,
    announce,
    sessions: [],
    viewers: [],
    previousStepAt: Date.now(),
  };

  try {
    ctx.event(`scenario ${scenario.name}: ${scenario.steps.length} steps`);
    for (const s of scenario.steps) {
      const [kind, args] = Object.entries(s)[0] as [StepName, unknown];
      const at = Date.now();
      await (STEPS[kind] as StepKind).run(ctx, args);
      ctx.previousStepAt = at;
    }
  } finally {
    // Viewers a scenario leaves connected go with it.
    await Promise.all([...ctx.viewers].map((v) => endViewer(ctx, v).catch(() => {})));
  }
  const { audio, video } = report.media;
  ctx.event(
    `scenario ${scenario.name} done (viewers received ${audio.packets} audio and ${video.packets} video RTP packets, ` +
      `lost ${audio.lost} and ${video.lost})`,
  );
  return report;
}
