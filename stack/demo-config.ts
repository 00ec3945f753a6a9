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
    // Scale in only while more egress nodes than the stack's baseline are up.
    egressBaselineNodes: 2,
    forDurations: { scaleOut: '5s', scaleIn: '10s' },
  },
  alertmanager: { groupWait: '1s', groupInterval: '2s', repeatInterval: '3s' },
  /** Flags of `canopy actuator` in the stack. */
  actuator: {
    subtreeSize: 2,
    maxSubtrees: 1,
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
    relaySlots: 4,
    egressNodes: 2,
    /** Ports in each baseline egress pool: small, so a few viewers cross 85 %. */
    egressPoolSize: 20,
    /** The injection's source: real VP8 + Opus, so what the stack carries is what a viewer decodes. */
    source: 'encoded',
  },
} as const;

/** DEMO.rules as the body of a Jsonnet `_config+:: { ... }` object. */
export function rulesOverrides(rules: Record<string, unknown> = DEMO.rules): string {
  return Object.entries(rules)
    .map(([k, v]) => (v && typeof v === 'object' ? `${k}+: ${JSON.stringify(v)}` : `${k}: ${JSON.stringify(v)}`))
    .join(', ');
}
