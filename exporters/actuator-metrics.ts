import { Histogram } from 'prom-client';
import { createFamilies, type Families } from './families.ts';
import { createNodeRegistry, type NodeRegistry, type NodeRegistryOptions } from './registry.ts';

/**
 * The actuator's own families: the contract its dashboard reads
 * (dashboards/jsonnet/actuator-metrics.libsonnet takes the names from here).
 * The actuator is not a tree node, so tree_id is its own label here.
 */
export const actuatorFamilies = {
  notifications: {
    name: 'canopy_actuator_notifications_total',
    help: 'Alertmanager webhook posts by outcome: accepted (recorded or nothing to do), rejected (bad payload, token or size), unavailable (Redis down: 503, retried)',
    type: 'counter',
    labelNames: ['outcome'],
  },
  actions: {
    name: 'canopy_actuator_actions_total',
    help: 'Scaling actions by tree, action (scale_out, scale_in) and outcome (succeeded, failed, skipped)',
    type: 'counter',
    labelNames: ['tree_id', 'action', 'outcome'],
  },
  failures: {
    name: 'canopy_actuator_action_failures_total',
    help: 'Failed actions by tree, action and reason (provision, timeout, topology, drain, other)',
    type: 'counter',
    labelNames: ['tree_id', 'action', 'reason'],
  },
  subtrees: {
    name: 'canopy_actuator_subtrees',
    help: 'Egress subtrees the actuator runs, per tree',
    type: 'gauge',
    labelNames: ['tree_id'],
  },
  inFlight: {
    name: 'canopy_actuator_actions_in_flight',
    help: 'Actions started and not finished, per tree',
    type: 'gauge',
    labelNames: ['tree_id'],
  },
  duplicates: {
    name: 'canopy_actuator_duplicates_suppressed_total',
    help: 'Scaling requests of a firing episode already acted on (Alertmanager repeats, retries, HA peers)',
    type: 'counter',
    labelNames: [],
  },
  subtreesRebuilt: {
    name: 'canopy_actuator_subtrees_rebuilt_total',
    help: 'Subtree records written again from what the provisioner runs, after Redis lost its data, per tree',
    type: 'counter',
    labelNames: ['tree_id'],
  },
  lockContention: {
    name: 'canopy_actuator_lock_contention_total',
    help: 'Times a tree was locked by another actuator replica when this one wanted it',
    type: 'counter',
    labelNames: [],
  },
} as const;

export const ACTION_DURATION_METRIC = 'canopy_actuator_action_duration_seconds';

export type ActuatorMetrics = Families<typeof actuatorFamilies> & {
  node: NodeRegistry;
  actionDuration: Histogram<'action' | 'outcome'>;
};

export function createActuatorMetrics(options?: NodeRegistryOptions): ActuatorMetrics {
  const node = createNodeRegistry('actuator', options);
  const actionDuration = new Histogram({
    name: ACTION_DURATION_METRIC,
    help: 'Seconds from the decision to the subtree serving (scale_out) or removed (scale_in)',
    labelNames: ['action', 'outcome'],
    buckets: [0.5, 1, 2, 5, 10, 20, 30, 60, 120, 300, 600],
    registers: [node.registry],
  });
  return { node, actionDuration, ...createFamilies(actuatorFamilies, node.registry) };
}
