// MediaTreeScaleIn: only with every input present and low, above the baseline
// of 8 egress nodes, and never while a scale-out reason holds.
local lib = import 'lib.libsonnet';

local scaleIn(tree, cpu) = {
  exp_labels: { severity: 'info', component: 'scaling', urgency: 'low', tree_id: tree },
  exp_annotations: {
    summary: 'A media tree has more egress capacity than it needs.',
    description: 'Egress CPU of tree %s averages %s, with port pools below 30%%, memory below 30%% and more than 8 egress nodes up.' % [tree, cpu],
    runbook_url: lib.runbook('MediaTreeScaleIn'),
    dashboard_url: lib.treeDashboard(tree),
  },
};

// Ends every series after `n` samples, as when a target vanishes, and turns
// `up` to 0 unless the target is gone from service discovery too.
local vanish(series, n, upStays) = [
  if std.startsWith(s.series, 'up{') then
    (if upStays then s { values: '1x%d 0x%d' % [n, lib.samples] } else s { values: '1x%d stale' % n })
  else s { values: std.split(s.values, 'x')[0] + 'x%d stale' % n }
  for s in series
];

local quiet(tree, count) = lib.egressFleet(tree, count, busy=0.125, mem=0.125, pool=10);

lib.file([
  {
    name: 'nine quiet egress nodes: fires after 15m; eight: never',
    input_series: quiet('tree-9', 9) + quiet('tree-8', 8),
    alert_rule_test: [
      // CPU exists from 30s, so `for: 15m` ends at 15m30s.
      { alertname: 'MediaTreeScaleIn', eval_time: '15m', exp_alerts: [] },
      { alertname: 'MediaTreeScaleIn', eval_time: '15m30s', exp_alerts: [scaleIn('tree-9', '12.5%')] },
      { alertname: 'MediaTreeScaleIn', eval_time: '39m', exp_alerts: [scaleIn('tree-9', '12.5%')] },
    ],
  },
  {
    name: 'each scale-in threshold just above blocks it; just below lets it fire',
    input_series:
      lib.egressFleet('cpu-above', 9, busy=0.21875, mem=0.125, pool=10)
      + lib.egressFleet('cpu-below', 9, busy=0.1875, mem=0.125, pool=10)
      + lib.egressFleet('pool-at', 9, busy=0.125, mem=0.125, pool=30)
      + lib.egressFleet('pool-below', 9, busy=0.125, mem=0.125, pool=29.5)
      + lib.egressFleet('mem-above', 9, busy=0.125, mem=0.3125, pool=10)
      + lib.egressFleet('mem-below', 9, busy=0.125, mem=0.28125, pool=10),
    alert_rule_test: [
      {
        alertname: 'MediaTreeScaleIn',
        eval_time: '20m',
        exp_alerts: [
          scaleIn('cpu-below', '18.75%'),
          scaleIn('mem-below', '12.5%'),
          scaleIn('pool-below', '12.5%'),
        ],
      },
    ],
  },
  {
    name: 'missing inputs never scale in',
    input_series:
      // No egress app series (no port pool, no up for the app).
      std.flattenArrays([lib.nodeExporter('no-app', 'no-app-egress-%d' % i, 'egress', busy=0.125, mem=0.125) for i in std.range(1, 9)])
      // No node_exporter series (no CPU, no memory).
      + std.flattenArrays([lib.egressApp('no-node', 'no-node-egress-%d' % i, pool=10) for i in std.range(1, 9)]),
    alert_rule_test: [{ alertname: 'MediaTreeScaleIn', eval_time: '39m', exp_alerts: [] }],
  },
  {
    name: 'one egress target down blocks scale-in, although nine others are up and quiet',
    input_series:
      quiet('tree-d', 9)
      + lib.nodeExporter('tree-d', 'tree-d-egress-10', 'egress', busy=0.125, mem=0.125)
      + lib.egressApp('tree-d', 'tree-d-egress-10', pool=10, up=0),
    alert_rule_test: [{ alertname: 'MediaTreeScaleIn', eval_time: '30m', exp_alerts: [] }],
  },
  {
    name: 'a scale-out reason blocks scale-in',
    input_series: lib.egressFleet('tree-lossy', 9, busy=0.125, mem=0.125, pool=10, drops=12),
    alert_rule_test: [
      { alertname: 'MediaTreeScaleIn', eval_time: '30m', exp_alerts: [] },
    ],
    promql_expr_test: [
      {
        expr: lib.firing('MediaTreeScaleOut', ', reason="packet_loss"'),
        eval_time: '30m',
        exp_samples: [{
          labels: 'ALERTS{alertname="MediaTreeScaleOut", alertstate="firing", component="scaling", reason="packet_loss", severity="warning", tree_id="tree-lossy", urgency="high"}',
          value: 1,
        }],
      },
    ],
  },
  {
    name: 'a tree whose exporters vanish (targets down) stops scaling in at once',
    // Quiet long enough to fire at 15m30s, then every scrape fails from 20m.
    input_series: vanish(quiet('tree-gone', 9), 80, true),
    alert_rule_test: [
      { alertname: 'MediaTreeScaleIn', eval_time: '19m30s', exp_alerts: [scaleIn('tree-gone', '12.5%')] },
      { alertname: 'MediaTreeScaleIn', eval_time: '20m30s', exp_alerts: [] },
      { alertname: 'MediaTreeScaleIn', eval_time: '39m', exp_alerts: [] },
    ],
    promql_expr_test: [
      {
        // Every one of the 18 targets is reported down instead.
        expr: 'count(%s)' % lib.firing('MediaTreeTargetDown'),
        eval_time: '25m',
        exp_samples: [{ labels: '{}', value: 18 }],
      },
    ],
  },
  {
    name: 'a tree whose targets leave service discovery stops scaling in at once',
    input_series: vanish(quiet('tree-removed', 9), 80, false),
    alert_rule_test: [
      { alertname: 'MediaTreeScaleIn', eval_time: '19m30s', exp_alerts: [scaleIn('tree-removed', '12.5%')] },
      { alertname: 'MediaTreeScaleIn', eval_time: '20m30s', exp_alerts: [] },
      { alertname: 'MediaTreeScaleIn', eval_time: '39m', exp_alerts: [] },
    ],
  },
])
