import { createSocket, type Socket } from 'node:dgram';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse } from 'yaml';
import { z } from 'zod';
import { Topology } from '../topology/index.ts';
import { stackShapeSchema } from './demo-config.ts';
import type { Stack } from './stack.ts';
import { type ScenarioReport, type StepContext, STEPS, type StepKind } from './steps/index.ts';

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
): Promise<ScenarioReport> {
  const report: ScenarioReport = {
    events: [],
    firing: {},
    subtrees: {},
    scrapedUp: [],
    placed: {},
    maxPool: [],
    impaired: {},
  };
  // One local receiver for every viewer: the RTP a viewer gets lands here.
  const audio = await bindUdp(stack.localHost);
  const video = await bindUdp(stack.localHost);
  let received = 0;
  for (const s of [audio, video]) s.on('message', () => received++);
  const ctx: StepContext = {
    stack,
    topology: new Topology(stack.redis, stack.tree, (msg, detail) => log(`${msg} ${JSON.stringify(detail ?? {})}`)),
    report,
    event: (what) => {
      report.events.push({ at: Date.now(), what });
      log(what);
    },
    log,
    sessions: [],
    viewers: [],
    receiver: { host: stack.localHost, audioPort: audio.address().port, videoPort: video.address().port },
  };

  try {
    ctx.event(`scenario ${scenario.name}: ${scenario.steps.length} steps`);
    for (const s of scenario.steps) {
      const [kind, args] = Object.entries(s)[0] as [StepName, unknown];
      await (STEPS[kind] as StepKind).run(ctx, args);
    }
    ctx.event(`scenario ${scenario.name} done (viewers received ${received} RTP packets)`);
  } finally {
    for (const s of [audio, video]) s.close();
  }
  return report;
}

function bindUdp(host: string): Promise<Socket & { address(): { port: number } }> {
  return new Promise((resolve, reject) => {
    const s = createSocket('udp4');
    s.once('error', reject);
    s.bind(0, host, () => resolve(s as Socket & { address(): { port: number } }));
  });
}
