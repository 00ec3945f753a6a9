import { collectDefaultMetrics, Counter, Registry } from 'prom-client';
import type { NodeType } from './labels.ts';

const LINT_FAILING_DEFAULTS = [
  'nodejs_active_handles_total',
  'nodejs_active_requests_total',
  'nodejs_active_resources_total',
];

export const COLLECT_FAILURES_METRIC = 'media_tree_exporter_collect_failures_total';

/** Work done at scrape time before the families are read (e.g. a forwarder's STATS). */
export interface Collector {
  readonly name: string;
  collect(): Promise<void> | void;
}

export interface NodeRegistry {
  readonly nodeType: NodeType | 'actuator';
  readonly registry: Registry;
  readonly collectors: Collector[];
  /** Counts collectors and families that failed or timed out during a scrape. */
  readonly collectFailures: Counter<'collector'>;
}

export interface NodeRegistryOptions {
  /** prom-client's process and Node.js metrics; on by default as in the seed. */
  defaultMetrics?: boolean;
}

export function createNodeRegistry(nodeType: NodeType | 'actuator', options: NodeRegistryOptions = {}): NodeRegistry {
  const registry = new Registry();
  if (options.defaultMetrics ?? true) {
    collectDefaultMetrics({ register: registry });
    // Gauges named *_total fail promtool's lint; each is the sum of its
    // per-type twin (nodejs_active_handles{type}), so nothing is lost.
    for (const name of LINT_FAILING_DEFAULTS) registry.removeSingleMetric(name);
  }
  const collectFailures = new Counter({
    name: COLLECT_FAILURES_METRIC,
    help: 'Collectors or metric families that failed or timed out during a scrape; the scrape answered without them',
    labelNames: ['collector'],
    registers: [registry],
  });
  return { nodeType, registry, collectors: [], collectFailures };
}

export const REREGISTRATIONS_METRIC = 'media_tree_node_reregistrations_total';

/** A node app's count of times it found Redis had lost its data and wrote what it owns again. */
export function createReregistrations(node: NodeRegistry): Counter {
  return new Counter({
    name: REREGISTRATIONS_METRIC,
    help: 'Times this node found Redis had lost its data (FLUSHALL, restart without it) and registered again what it owns: its record, links, slots, sessions, viewers',
    registers: [node.registry],
  });
}
