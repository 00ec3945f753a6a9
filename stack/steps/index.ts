import { kill, redisFlush, restart, start, stop } from './components.ts';
import { clear, impair } from './impair.ts';
import { sleepStep } from './sleep.ts';
import { startSession } from './start-session.ts';
import type { StepKind } from './step.ts';
import { surge } from './surge.ts';
import { viewers } from './viewers.ts';
import { waitFor } from './wait-for.ts';

export type {
  PlacedViewer,
  ScenarioEvent,
  ScenarioReport,
  StepContext,
  StepKind,
  SurgeReport,
  SurgeSample,
} from './step.ts';

/**
 * Every step kind a scenario may use, keyed by the name it has in a scenario
 * file. To add one: a module here exporting `defineStep(schema, run)`, and a
 * line below.
 */
export const STEPS = {
  'start-session': startSession,
  viewers,
  'wait-for': waitFor,
  sleep: sleepStep,
  surge,
  impair,
  clear,
  kill,
  restart,
  stop,
  start,
  'redis-flush': redisFlush,
} satisfies Record<string, StepKind>;
