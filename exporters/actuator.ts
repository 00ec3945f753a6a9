import { Histogram } from 'prom-client';
import { createFamilies, type Families } from './families.ts';
import { createNodeRegistry, type NodeRegistry, type NodeRegistryOptions } from './registry.ts';

/** The actuator's own families (not a tree node, so tree_id is an exposed label here). */
export const actuatorFamilies = {
  notifications: {
    name: 'canopy_actuator_notifications_total',
    help: 'Alertmanager notifications by how POST /alerts answered (recorded, ignored, invalid, unauthorized, too_large, unavailable)',
    type: 'counter',
    labelNames: ['result'],
  },
  actions: {
    name: 'canopy_actuator_actions_total',
    help: 'Scaling actions and decisions by kind (scale-out, scale-in, none, recovery) and result (done, failed, skipped, dry-run, rolled-back)',
    type: 'counter',
    labelNames: ['kind', 'result'],
  },
  subtrees: {
    name: 'canopy_actuator_subtrees',
    help: 'Egress subtrees the actuator runs per tree',
    type: 'gauge',
    labelNames: ['tree_id'],
  },
  duplicates: {
    name: 'canopy_actuator_duplicates_suppressed_total',
    help: 'Scaling requests of a firing episode already acted on (Alertmanager repeats, retries, HA peers)',
    type: 'counter',
    labelNames: [],
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
  actionDuration: Histogram<'kind' | 'result'>;
};

export function createActuatorMetrics(options?: NodeRegistryOptions): ActuatorMetrics {
  const node = createNodeRegistry('actuator', options);
  const actionDuration = new Histogram({
    name: ACTION_DURATION_METRIC,
    help: 'Duration of scaling actions, from decision to topology written or rolled back',
    labelNames: ['kind', 'result'],
    buckets: [0.5, 1, 2, 5, 10, 20, 30, 60, 120, 300],
    registers: [node.registry],
  });
  return { node, actionDuration, ...createFamilies(actuatorFamilies, node.registry) };
}
