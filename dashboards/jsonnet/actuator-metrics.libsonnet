// The actuator's metrics: the contract the actuator issue (alertmanager-webhook/)
// must implement, exactly these names, types and labels. The dashboards read
// them from here and nowhere else.
//
// The actuator serves them on its own /metrics (port 9095), scraped as job
// `job`. Its target carries no tree_id label, so `tree_id` here is the
// actuator's own label (the tree an action is for), with no exported_* clash.
{
  job: 'canopy-actuator',

  // Webhook POSTs from Alertmanager, by outcome: accepted | rejected (bad
  // payload or auth). Counter.
  notifications: {
    name: 'canopy_actuator_notifications_total',
    type: 'counter',
    labels: ['outcome'],
  },
  // Scaling actions decided from alerts, by tree, action (scale_out |
  // scale_in) and outcome: succeeded | failed | skipped (lock held, duplicate
  // firing episode, dry run, paused, at a limit). Counter; every label
  // combination a tree can reach is exposed from its first action.
  actions: {
    name: 'canopy_actuator_actions_total',
    type: 'counter',
    labels: ['tree_id', 'action', 'outcome'],
  },
  // Every failed action once more, by reason: provision | topology | timeout
  // | drain | other. Counter.
  failures: {
    name: 'canopy_actuator_action_failures_total',
    type: 'counter',
    labels: ['tree_id', 'action', 'reason'],
  },
  // From the decision to the subtree serving (scale_out) or removed
  // (scale_in), for every action that ran. Histogram (seconds); buckets up to
  // at least 300 s.
  duration: {
    name: 'canopy_actuator_action_duration_seconds',
    type: 'histogram',
    labels: ['action', 'outcome'],
  },
  // Subtrees the actuator has provisioned and not removed, per tree. Gauge.
  subtrees: {
    name: 'canopy_actuator_subtrees',
    type: 'gauge',
    labels: ['tree_id'],
  },
  // Actions started and not yet finished, per tree. Gauge.
  inFlight: {
    name: 'canopy_actuator_actions_in_flight',
    type: 'gauge',
    labels: ['tree_id'],
  },
}
