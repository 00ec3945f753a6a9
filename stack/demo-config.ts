import { z } from 'zod';
import { SCALING_POLICIES } from '../alertmanager-webhook/decide.ts';

/**
 * The one place where the local stack's compressed timings and its
 * one-machine threshold overrides live. Production values stay in
 * rules/config.libsonnet (the seed's). Read by stack/ and by the time-to-scale
 * bench (bench/time-to-scale.ts), which measures the loop at these timings.
 */
export const DEMO = {
  tree: 'tree-1',
  /** Prometheus global scrape and evaluation interval. */
  scrapeInterval: '1s',
  evaluationInterval: '1s',
  /**
   * `_config` overrides of the rule pack.
   *
   * Every node of the local stack runs on this one machine, so its CPU and
   * memory are the machine's, whatever else the machine is doing (a CI run
   * of the other tests, say). The demo therefore scales on the port pool
   * only: the CPU/memory/unhealthy thresholds are moved out of reach (100 %)
   * and the scale-in conditions on CPU and memory always hold. The port-pool
   * thresholds (85 / 30 %) stay the seed's.
   */
  rules: {
    ruleInterval: '1s',
    // The report and the progress line read the viewers total, recorded in the slower dashboards group.
    dashboardRuleInterval: '1s',
    cpuScaleOutPercent: 100,
    cpuScaleInPercent: 100,
    memoryScaleInPercent: 100,
    unhealthyPercent: 100,
    // Scale in only while more egress nodes than the stack's baseline are up
    // (the sizing's baseline too; stackRules() sets it from the shape).
    egressBaselineNodes: 2,
    // Predictive scale-out is on in the demo, over a window and a horizon
    // at the demo's timescale (a subtree serves within about 10 s here).
    forecastScaleOut: true,
    forecastWindow: '30s',
    forecastProvisioningSeconds: 8,
    forecastMarginSeconds: 4,
    // The stream-quality alerts at the demo's timescale too (the fault scenarios wait for them).
    forDurations: { scaleOut: '5s', forecast: '5s', scaleIn: '10s', rtpLoss: '5s', rtpJitter: '5s' },
  },
  /**
   * How often Prometheus re-sends a firing alert to Alertmanager (its
   * --rules.alert.resend-delay, 1m by default): Alertmanager's copy of the
   * desired_subtrees annotation is at most this old.
   */
  alertResendDelay: '1s',
  alertmanager: { groupWait: '1s', groupInterval: '2s', repeatInterval: '3s' },
  /** Flags of `canopy actuator` in the stack. */
  actuator: {
    scaling: 'level',
    maxStepSubtrees: 4,
    subtreeSize: 2,
    /** Ports in each new egress node's pool (the local provisioner's default). */
    subtreePoolSize: 100,
    maxSubtrees: 4,
    scaleOutCooldown: '2s',
    scaleInStabilisation: '5s',
    protectNewSubtree: '5s',
    drainTimeout: '10s',
    readyTimeout: '60s',
    reconcileInterval: '10s',
    lockTtl: '10s',
  },
  /** The baseline tree: one injection, relays, egress nodes on relay slots. */
  topology: {
    injectionSlots: 1,
    relays: 1,
    /** At least the actuator's maximum plus the baseline's slot (the stack raises it to that). */
    relaySlots: 5,
    egressNodes: 2,
    /** Ports in each baseline egress pool: small, so a few viewers cross 85 %. */
    egressPoolSize: 20,
    /** The injection's source: real VP8 + Opus, so what the stack carries is what a viewer decodes. */
    source: 'encoded',
  },
} as const;

/**
 * What a scenario may set of the stack (its `stack:` block): the baseline's
 * shape and the actuator's bounds and policy. Unset fields keep DEMO's.
 */
export const stackShapeSchema = z
  .object({
    /** Baseline egress nodes (on relay-1-s0); also the rules' baseline. */
    egressNodes: z.number().int().min(1).max(16),
    /** Ports in each baseline egress pool. */
    egressPoolSize: z.number().int().min(4).max(1_000),
    /** Egress nodes per subtree the actuator adds. */
    subtreeSize: z.number().int().min(1).max(8),
    /** Ports in each of their pools. */
    subtreePoolSize: z.number().int().min(4).max(1_000),
    /** The actuator's per-tree maximum (relay slots follow: one each, plus the baseline's). */
    maxSubtrees: z.number().int().min(0).max(16),
    maxStepSubtrees: z.number().int().min(1).max(16),
    scaling: z.enum(SCALING_POLICIES),
    /**
     * Each node (and its node_exporter) in a network namespace of its own on
     * a bridge, so its link can be impaired and its NIC counters are its own
     * (`canopy stack --netns`; needs root, ip, nft and tc).
     */
    netns: z.boolean(),
  })
  .partial()
  .strict();
export type StackShape = z.infer<typeof stackShapeSchema>;

/** DEMO's shape with a scenario's `stack:` block over it. */
export function resolveShape(over: StackShape = {}): Required<StackShape> {
  const a = DEMO.actuator;
  const t = DEMO.topology;
  return {
    egressNodes: t.egressNodes,
    egressPoolSize: t.egressPoolSize,
    subtreeSize: a.subtreeSize,
    subtreePoolSize: a.subtreePoolSize,
    maxSubtrees: a.maxSubtrees,
    maxStepSubtrees: a.maxStepSubtrees,
    scaling: a.scaling,
    netns: false,
    ...over,
  };
}

/** DEMO.rules with the sizing's baseline, subtree size and bound taken from a shape. */
export function stackRules(shape: Required<StackShape>): Record<string, unknown> {
  return {
    ...DEMO.rules,
    egressBaselineNodes: shape.egressNodes,
    subtreeEgressNodes: shape.subtreeSize,
    maxSubtrees: shape.maxSubtrees,
  };
}

/** DEMO.rules as the body of a Jsonnet `_config+:: { ... }` object. */
export function rulesOverrides(rules: Record<string, unknown> = stackRules(resolveShape())): string {
  return Object.entries(rules)
    .map(([k, v]) => (v && typeof v === 'object' ? `${k}+: ${JSON.stringify(v)}` : `${k}: ${JSON.stringify(v)}`))
    .join(', ');
}
