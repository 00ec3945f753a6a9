// The actuator's metrics as its dashboard reads them: names from
// exporters/actuator.ts (through the generated metrics.libsonnet), types and
// labels as the actuator exposes them. The dashboards read them from here.
//
// The actuator serves them on its own /metrics (port 9095), scraped as job
// `job` (_config.actuatorJob of the mixin this fragment is part of, so an
// override reaches it). Its target carries no tree_id label, so `tree_id`
// here is the actuator's own label (the tree an action is for), with no
// exported_* clash.
local names = (import '../../rules/metrics.libsonnet').actuator;

{
  actuatorMetrics:: {
    job: $._config.actuatorJob,

    // Webhook POSTs from Alertmanager, by outcome: accepted | rejected (bad
    // payload, token or size) | unavailable (Redis down, 503). Counter.
    notifications: {
      name: names.notifications,
      type: 'counter',
      labels: ['outcome'],
    },
    // Scaling actions decided from alerts, by tree, action (scale_out |
    // scale_in) and outcome: succeeded | failed | skipped (lock held, duplicate
    // firing episode, dry run, paused, at a limit). Counter; every label
    // combination a tree can reach is exposed from its first action.
    actions: {
      name: names.actions,
      type: 'counter',
      labels: ['tree_id', 'action', 'outcome'],
    },
    // Every failed action once more, by reason: provision | topology | timeout
    // | drain | other. Counter.
    failures: {
      name: names.failures,
      type: 'counter',
      labels: ['tree_id', 'action', 'reason'],
    },
    // From the decision to the subtree serving (scale_out) or removed
    // (scale_in), for every action that ran. Histogram (seconds); buckets up to
    // at least 300 s.
    duration: {
      name: names.duration,
      type: 'histogram',
      labels: ['action', 'outcome'],
    },
    // Subtrees the actuator has provisioned and not removed, per tree. Gauge.
    subtrees: {
      name: names.subtrees,
      type: 'gauge',
      labels: ['tree_id'],
    },
    // Actions started and not yet finished, per tree. Gauge.
    inFlight: {
      name: names.inFlight,
      type: 'gauge',
      labels: ['tree_id'],
    },
  },
}
