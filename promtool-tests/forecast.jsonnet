// Predictive scale-out (reason="forecast"), on the pack with
// forecastScaleOut on: predict_linear of the tree's ports allocated over 5m,
// 180 + 60 s ahead, above 85 % of its ports. Pools of 128 ports, so every
// ratio is exact in binary.
local lib = import 'lib.libsonnet';

local forecast = 'tree_id:media_tree_egress_port_pool_allocated:predict_linear5m';
local desired = 'tree_id:media_tree_egress_subtrees_desired:ceil';
local sample(name, tree, value) = { labels: '%s{tree_id="%s"}' % [name, tree], value: value };

// `count` egress apps of 128 ports whose allocation starts at `start` ports
// and changes by `step` ports every 15 s, for `n` samples, then `tail`.
local fleet(tree, count, start, step, n=lib.samples, tail='') = std.flattenArrays([
  local t = lib.target(tree, '%s-egress-%d' % [tree, i], 'egress', 'media-tree-egress', 7073);
  local series(from, by) = '%d%s%dx%d%s' % [from, if by < 0 then '-' else '+', std.abs(by), n, tail];
  [
    lib.series('media_tree_egress_port_pool_allocated', t, series(start, step)),
    lib.series('media_tree_egress_port_pool_available', t, series(128 - start, -step)),
    lib.series('up', t, lib.gauge(1)),
  ]
  for i in std.range(1, count)
]);

local forecastAlert(tree, value) = {
  exp_labels: { severity: 'warning', component: 'scaling', tree_id: tree, reason: 'forecast', urgency: 'high' },
  exp_annotations: {
    summary: 'A media tree needs more egress capacity.',
    description: 'The egress port pools of tree %s are forecast at %s allocated in 240s (over 85%%), from their trend over 5m.' % [tree, value],
    runbook_url: lib.runbook('MediaTreeScaleOut'),
    dashboard_url: lib.treeDashboard(tree),
    desired_subtrees: '2',
  },
};

lib.file(rules='forecast-rules.yaml', tests=[
  {
    // 64 of 128 ports, one more each 15 s, on 10 nodes: utilisation 0.5 +
    // t/32 (t in minutes), forecast 160 ports (0.125) above it. It crosses
    // 85 % between 7m (1080 of 1280 ports) and 7m30s (1100), fires 2m later,
    // and gives way to port_pool once the tree itself is above 85 % (from 11m30s).
    name: 'a rising load: forecast before the pools fill, port_pool after',
    input_series: fleet('tree-up', 10, 64, 1),
    promql_expr_test: [
      { expr: forecast, eval_time: '7m', exp_samples: [sample(forecast, 'tree-up', 1080)] },
      { expr: forecast, eval_time: '7m30s', exp_samples: [sample(forecast, 'tree-up', 1100)] },
      // Sized for the forecast: 1100 ports * 10 nodes / (1280 * 0.8) = 10.7
      // nodes, 2 subtrees, where the 940 ports now allocated need 1.
      { expr: desired, eval_time: '7m30s', exp_samples: [sample(desired, 'tree-up', 2)] },
    ],
    alert_rule_test: [
      { alertname: 'MediaTreeScaleOut', eval_time: '9m', exp_alerts: [] },
      { alertname: 'MediaTreeScaleOut', eval_time: '9m30s', exp_alerts: [forecastAlert('tree-up', '92.19%')] },
      // At 11m30s the tree is at 0.859375 itself: port_pool (pending) holds, forecast yields.
      { alertname: 'MediaTreeScaleOut', eval_time: '11m30s', exp_alerts: [] },
    ],
  },
  {
    // 108 of 128 ports (84.4 %), flat; and a load falling from there.
    name: 'a flat and a falling load: no forecast',
    input_series: fleet('tree-flat', 10, 108, 0) + fleet('tree-down', 10, 108, -1),
    promql_expr_test: [
      { expr: forecast + '{tree_id="tree-flat"}', eval_time: '10m', exp_samples: [sample(forecast, 'tree-flat', 1080)] },
      // 10 * (108 - 40) = 680 ports now, 520 forecast: below now, so the size is the present one.
      { expr: forecast + '{tree_id="tree-down"}', eval_time: '10m', exp_samples: [sample(forecast, 'tree-down', 520)] },
      { expr: desired, eval_time: '10m', exp_samples: [sample(desired, 'tree-flat', 2), sample(desired, 'tree-down', 0)] },
    ],
    alert_rule_test: [
      { alertname: 'MediaTreeScaleOut', eval_time: '5m', exp_alerts: [] },
      { alertname: 'MediaTreeScaleOut', eval_time: '20m', exp_alerts: [] },
    ],
  },
  {
    // A burst: 8 ports more every 15 s. At 1m the forecast is 2240 ports (1.75
    // times the 1280 there are); the size counts the tree full at most: 10 /
    // 0.8 = 12.5 nodes, 3 subtrees (not 7 from 2240).
    name: 'a burst is sized for the tree full at most',
    input_series: std.flattenArrays([
      local t = lib.target('tree-burst', 'tree-burst-egress-%d' % i, 'egress', 'media-tree-egress', 7073);
      [
        lib.series('media_tree_egress_port_pool_allocated', t, '64+8x6 112x100'),
        lib.series('media_tree_egress_port_pool_available', t, '64-8x6 16x100'),
      ]
      for i in std.range(1, 10)
    ]),
    promql_expr_test: [
      { expr: forecast, eval_time: '1m', exp_samples: [sample(forecast, 'tree-burst', 2240)] },
      { expr: desired, eval_time: '1m', exp_samples: [sample(desired, 'tree-burst', 3)] },
    ],
  },
  {
    // Rising, then stale-marked at 5m: samples of the window remain, but no
    // forecast is made for a tree that reports nothing now.
    name: 'no forecast from a window of old samples',
    input_series: fleet('tree-gone', 1, 64, 1, n=20, tail=' stale'),
    promql_expr_test: [
      { expr: forecast, eval_time: '4m', exp_samples: [sample(forecast, 'tree-gone', 96)] },
      { expr: forecast, eval_time: '6m', exp_samples: [] },
    ],
  },
])
