import type { z } from 'zod';
import type { Topology } from '../../topology/index.ts';
import type { Viewer } from '../../viewers/whep-client.ts';
import type { Stack } from '../stack.ts';

/** What a run saw: the e2e test's evidence, the CLI's summary. */
export interface ScenarioReport {
  events: ScenarioEvent[];
  /** Alert name -> first time seen firing (ms since epoch). */
  firing: Record<string, number>;
  /** Every subtree the actuator recorded during the run, with its nodes. */
  subtrees: Record<string, string[]>;
  /** Node ids of subtrees that Prometheus scraped with up == 1. */
  scrapedUp: string[];
  /** Viewer placements: node id -> how many viewers were ever placed there. */
  placed: Record<string, number>;
  /** Max port-pool utilisation (the recorded series) sampled after each viewers step. */
  maxPool: number[];
  /** What the viewers received, summed per stream as each one went (RFC 3550 counts of the viewer). */
  media: Record<'audio' | 'video', { packets: number; expected: number; lost: number }>;
  /** Viewers their egress node ended (drained and removed, say) rather than the scenario. */
  endedByServer: number;
  /** Nodes an `impair` step impaired: when, and what its loss rule dropped (set by `clear`). */
  impaired?: Record<string, { at: number; dropped: number }>;
  /** What a surge step saw. */
  surge?: SurgeReport;
}

/** A surge's viewers: refused (a 503 from every node) and served later, and its timeline. */
export interface SurgeReport {
  /** 503s from every node, retries included. */
  refusals: number;
  /** Viewers refused at least once. */
  refusedViewers: number;
  /** Of those, served on a later try. */
  servedAfterRefusal: number;
  /** Tries that got past the entry point but whose WebRTC set-up failed (tried again). */
  setupFailures: number;
  /** Still waiting at the step's timeout: never served. */
  gaveUp: number;
  timeline: SurgeSample[];
  /** When the last viewer left. */
  leftAt?: number;
}

/** One second of a surge: viewers in and waiting, the tree's egress ports, subtrees recorded. */
export interface SurgeSample {
  at: number;
  placed: number;
  waiting: number;
  /** Ports allocated and in all pools, non-draining egress nodes. */
  allocated: number;
  ports: number;
  subtrees: number;
}

export interface ScenarioEvent {
  at: number;
  what: string;
}

/** A connected WebRTC viewer and the egress node the entry point sent it to. */
export interface PlacedViewer {
  node: string;
  viewer: Viewer;
}

/** What every step of one run shares: the stack, Redis through topology/, the run's state and its report. */
export interface StepContext {
  stack: Stack;
  topology: Topology;
  report: ScenarioReport;
  /** Records an event in the report and logs it. */
  event(what: string): void;
  log(line: string): void;
  /** Prints a line for the user as it is (`whep: <url>`, `player: <url>`). */
  announce(line: string): void;
  /** Session ids started so far, in order. */
  sessions: string[];
  /** Viewers connected and not yet gone. */
  viewers: PlacedViewer[];
  /** When the step before the running one started (ms; the scenario's start for the first). */
  previousStepAt: number;
}

/**
 * One kind of scenario step: the schema of the value under its key in a
 * scenario file (`- <kind>: <value>`) and what running it does.
 */
export interface StepKind<S extends z.ZodType = z.ZodType> {
  schema: S;
  run(ctx: StepContext, args: z.output<S>): Promise<void>;
}

export function defineStep<S extends z.ZodType>(
  schema: S,
  run: (ctx: StepContext, args: z.output<S>) => Promise<void>,
): StepKind<S> {
  return { schema, run };
}
