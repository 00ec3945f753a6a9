// Sizing (rules/sizing.libsonnet) with the default _config: target 80 % of
// the ports, subtrees of 2 egress nodes beyond a baseline of 8, at most 10.
// Pools of 100 ports unless said otherwise, so `pool` is also ports allocated.
local lib = import 'lib.libsonnet';

local n = 4 * 12;  // 12 minutes of samples
local sample(name, tree, value) = { labels: '%s{tree_id="%s"}' % [name, tree], value: value };
local desired = 'tree_id:media_tree_egress_subtrees_desired:ceil';
local allocated = 'tree_id:media_tree_egress_port_pool_allocated:sum';
local total = 'tree_id:media_tree_egress_port_pool_size:sum';
local ratio = 'tree_id:media_tree_egress_port_pool_utilisation:ratio';
local perNode = 'tree_id:media_tree_egress_viewers_per_node:ratio';

// `pools`: one egress app per entry, its utilisation in percent.
local tree(name, pools, viewers=1, poolSize=100) = std.flattenArrays([
  lib.egressApp(name, '%s-egress-%d' % [name, i], pool=pools[i], viewers=viewers, poolSize=poolSize, n=n)
  for i in std.range(0, std.length(pools) - 1)
]);
local alike(count, pool) = [pool for _ in std.range(1, count)];

lib.file([
  {
    // 960 of 1000 ports: 10 nodes * 0.96 / 0.8 = 12 nodes exactly, so 2
    // subtrees beyond 8; one port more needs 12.01 nodes: a third subtree.
    name: 'exact values, and ceil only past a whole number of nodes',
    input_series:
      tree('tree-s', alike(10, 96), viewers=3)
      + tree('tree-t', alike(9, 96) + [97]),
    promql_expr_test: [
      { expr: allocated, eval_time: '5m', exp_samples: [sample(allocated, 'tree-s', 960), sample(allocated, 'tree-t', 961)] },
      { expr: total, eval_time: '5m', exp_samples: [sample(total, 'tree-s', 1000), sample(total, 'tree-t', 1000)] },
      { expr: ratio, eval_time: '5m', exp_samples: [sample(ratio, 'tree-s', 0.96), sample(ratio, 'tree-t', 0.961)] },
      { expr: perNode + '{tree_id="tree-s"}', eval_time: '5m', exp_samples: [sample(perNode, 'tree-s', 3)] },
      { expr: desired, eval_time: '5m', exp_samples: [sample(desired, 'tree-s', 2), sample(desired, 'tree-t', 3)] },
    ],
  },
  {
    // 30 full nodes would need 38; 2 quiet ones need none beyond the baseline.
    name: 'bounded to 0 .. maxSubtrees',
    input_series: tree('tree-big', alike(30, 100)) + tree('tree-small', [10, 10]),
    promql_expr_test: [
      { expr: desired, eval_time: '5m', exp_samples: [sample(desired, 'tree-big', 10), sample(desired, 'tree-small', 0)] },
    ],
  },
  {
    // 8 old nodes at 95 %, a new subtree at 10 %: 780 of 1000 ports, 9.75
    // nodes at 80 %, so the 1 subtree it has; the tree is not above 85 %,
    // so no port_pool scale-out although its fullest pool is.
    name: 'a tree whose new nodes are empty while its old ones are full',
    input_series: tree('tree-g', alike(8, 95) + [10, 10]),
    promql_expr_test: [
      { expr: ratio, eval_time: '5m', exp_samples: [sample(ratio, 'tree-g', 0.78)] },
      { expr: desired, eval_time: '5m', exp_samples: [sample(desired, 'tree-g', 1)] },
      {
        expr: 'tree_id:media_tree_egress_port_pool_utilization_percent:max',
        eval_time: '5m',
        exp_samples: [sample('tree_id:media_tree_egress_port_pool_utilization_percent:max', 'tree-g', 95)],
      },
    ],
    alert_rule_test: [{ alertname: 'MediaTreeScaleOut', eval_time: '5m', exp_alerts: [] }],
  },
  {
    // 900 of 1000 ports: 11.25 nodes, 2 subtrees beyond 8, in the annotation
    // the actuator converges to.
    name: 'the scale-out alert carries the size',
    input_series: tree('tree-hot', alike(10, 90)),
    alert_rule_test: [
      {
        alertname: 'MediaTreeScaleOut',
        eval_time: '5m',
        exp_alerts: [{
          exp_labels: { severity: 'warning', component: 'scaling', tree_id: 'tree-hot', reason: 'port_pool', urgency: 'critical' },
          exp_annotations: {
            summary: 'A media tree needs more egress capacity.',
            description: 'The egress port pools of tree tree-hot are 90% allocated, above 85%.',
            runbook_url: lib.runbook('MediaTreeScaleOut'),
            dashboard_url: lib.treeDashboard('tree-hot'),
            desired_subtrees: '2',
          },
        }],
      },
    ],
  },
  {
    name: 'absent inputs give no size: no egress app, an empty pool',
    input_series:
      lib.nodeExporter('tree-noapp', 'egress-1', 'egress', n=n)
      + tree('tree-nopool', [0, 0], poolSize=0),
    promql_expr_test: [
      { expr: allocated + '{tree_id="tree-noapp"}', eval_time: '5m', exp_samples: [] },
      // No ports at all: a total of 0, no ratio, no size (never +Inf clamped to 10).
      { expr: total, eval_time: '5m', exp_samples: [sample(total, 'tree-nopool', 0)] },
      { expr: ratio, eval_time: '5m', exp_samples: [] },
      { expr: desired, eval_time: '5m', exp_samples: [] },
    ],
  },
  {
    // Stale-marked at 5m (a failed scrape): from then on the vanished node
    // counts for nothing, and a tree whose every node vanished has no size.
    name: 'stale inputs count for nothing',
    input_series:
      tree('tree-half', ['90x20 stale', 90])
      + tree('tree-gone', ['90x20 stale', '90x20 stale']),
    promql_expr_test: [
      { expr: allocated, eval_time: '4m', exp_samples: [sample(allocated, 'tree-half', 180), sample(allocated, 'tree-gone', 180)] },
      { expr: allocated, eval_time: '6m', exp_samples: [sample(allocated, 'tree-half', 90)] },
      { expr: total, eval_time: '6m', exp_samples: [sample(total, 'tree-half', 100)] },
      { expr: desired, eval_time: '6m', exp_samples: [sample(desired, 'tree-half', 0)] },
    ],
  },
])
