// MediaTreeScaleOut: each reason at its threshold and its `for` boundary, and
// the seed's order of precedence between reasons.
local lib = import 'lib.libsonnet';

// `desired`: the sizing's subtrees beyond the baseline of 8 egress nodes
// (sizing.jsonnet tests it); 0 for these small trees.
local scaleOut(tree, reason, urgency, description, desired='0') = {
  exp_labels: {
    severity: 'warning',
    component: 'scaling',
    tree_id: tree,
    reason: reason,
    urgency: urgency,
  },
  exp_annotations: {
    summary: 'A media tree needs more egress capacity.',
    description: description,
    runbook_url: lib.runbook('MediaTreeScaleOut'),
    dashboard_url: lib.treeDashboard(tree),
    desired_subtrees: desired,
  },
};

local lossDescription(tree, v) = 'Egress nodes of tree %s lose packets: %s (received packets dropped per second when above 100, else the share of RTP packets missed, above 2%%).' % [tree, v];
local poolDescription(tree, v) = 'The egress port pools of tree %s are %s allocated, above 85%%.' % [tree, v];

lib.file([
  {
    // The tree's pools together: (87.5 + 84) / 200 ports; 85 of 100 is not above.
    name: 'port pool: fires above 85 % of the ports of the tree after 2m, not at 85 %',
    input_series:
      lib.egress('tree-hot', 'egress-1', pool=87.5)
      + lib.egress('tree-hot', 'egress-2', pool=84)
      + lib.egress('tree-edge', 'egress-3', pool=85),
    alert_rule_test: [
      // Pending from the first evaluation at 0s; `for: 2m` not yet over.
      { alertname: 'MediaTreeScaleOut', eval_time: '1m30s', exp_alerts: [] },
      {
        alertname: 'MediaTreeScaleOut',
        eval_time: '2m',
        exp_alerts: [scaleOut('tree-hot', 'port_pool', 'critical', poolDescription('tree-hot', '85.75%'))],
      },
      {
        alertname: 'MediaTreeScaleOut',
        eval_time: '30m',
        exp_alerts: [scaleOut('tree-hot', 'port_pool', 'critical', poolDescription('tree-hot', '85.75%'))],
      },
    ],
  },
  {
    // After a scale-out the old nodes stay full (viewers stay where they
    // joined) while the new ones fill: the tree has room, so no port_pool.
    name: 'port pool: full old nodes beside empty new ones are not a full tree',
    input_series:
      lib.egress('tree-grown', 'egress-1', pool=95)
      + lib.egress('tree-grown', 'egress-2', pool=95)
      + lib.egress('tree-grown', 'egress-3', pool=10)
      + lib.egress('tree-grown', 'egress-4', pool=10),
    alert_rule_test: [{ alertname: 'MediaTreeScaleOut', eval_time: '10m', exp_alerts: [] }],
  },
  {
    name: 'port pool: resolves when the pool drains',
    input_series:
      lib.egress('tree-x', 'egress-1', pool='90x40 50x120'),
    alert_rule_test: [
      {
        alertname: 'MediaTreeScaleOut',
        eval_time: '5m',
        exp_alerts: [scaleOut('tree-x', 'port_pool', 'critical', poolDescription('tree-x', '90%'))],
      },
      { alertname: 'MediaTreeScaleOut', eval_time: '12m', exp_alerts: [] },
    ],
  },
  {
    name: 'cpu: fires above 70 % after 2m, not at 68.75 %',
    input_series:
      lib.egress('tree-hot', 'egress-1', busy=0.71875)
      + lib.egress('tree-hot', 'egress-2', busy=0.71875)
      + lib.egress('tree-cool', 'egress-3', busy=0.6875),
    alert_rule_test: [
      // CPU exists from 30s (rate needs two samples), so `for` ends at 2m30s.
      { alertname: 'MediaTreeScaleOut', eval_time: '2m', exp_alerts: [] },
      {
        alertname: 'MediaTreeScaleOut',
        eval_time: '2m30s',
        exp_alerts: [scaleOut('tree-hot', 'cpu', 'high', 'Egress CPU of tree tree-hot averages 71.88% over 5m, above 70%.')],
      },
      {
        alertname: 'MediaTreeScaleOut',
        eval_time: '20m',
        exp_alerts: [scaleOut('tree-hot', 'cpu', 'high', 'Egress CPU of tree tree-hot averages 71.88% over 5m, above 70%.')],
      },
    ],
  },
  {
    name: 'unhealthy nodes: one egress node above 90 % CPU fires although the average is low',
    input_series:
      lib.egress('tree-u', 'egress-1', busy=0.90625)
      + lib.egress('tree-u', 'egress-2', busy=0.125)
      + lib.egress('tree-u', 'egress-3', busy=0.125)
      // 87.5 % on every node of another tree: not unhealthy, and a high average.
      + lib.egress('tree-v', 'egress-4', busy=0.875, mem=0.875),
    alert_rule_test: [
      { alertname: 'MediaTreeScaleOut', eval_time: '2m', exp_alerts: [] },
      {
        alertname: 'MediaTreeScaleOut',
        eval_time: '2m30s',
        exp_alerts: [
          scaleOut('tree-u', 'unhealthy_nodes', 'critical', '1 egress node(s) of tree tree-u are above 90% CPU or memory.'),
          scaleOut('tree-v', 'cpu', 'high', 'Egress CPU of tree tree-v averages 87.5% over 5m, above 70%.'),
        ],
      },
    ],
  },
  {
    name: 'unhealthy nodes: memory above 90 % on one node',
    input_series:
      lib.egress('tree-m', 'egress-1', mem=0.90625)
      + lib.egress('tree-m', 'egress-2', mem=0.25),
    alert_rule_test: [
      { alertname: 'MediaTreeScaleOut', eval_time: '1m30s', exp_alerts: [] },
      {
        alertname: 'MediaTreeScaleOut',
        eval_time: '2m',
        exp_alerts: [scaleOut('tree-m', 'unhealthy_nodes', 'critical', '1 egress node(s) of tree tree-m are above 90% CPU or memory.')],
      },
    ],
  },
  {
    name: 'one busy core of eight is not an unhealthy node',
    input_series:
      lib.nodeExporter('tree-k', 'egress-1', 'egress', coreBusy=[1, 0, 0, 0, 0, 0, 0, 0])
      + lib.egressApp('tree-k', 'egress-1', pool=50),
    alert_rule_test: [
      { alertname: 'MediaTreeScaleOut', eval_time: '10m', exp_alerts: [] },
      { alertname: 'HighCPUUsage', eval_time: '10m', exp_alerts: [] },
    ],
  },
  {
    name: 'packet loss: fires above 100 pkt/s per tree once the 5m rate sees it, not at 99',
    input_series:
      lib.egress('tree-l', 'egress-1', drops=60)
      + lib.egress('tree-l', 'egress-2', drops=41)
      + lib.egress('tree-ok', 'egress-3', drops=99),
    alert_rule_test: [
      // The 5m rate reaches its full value at 5m; `for: 2m` ends at 7m.
      { alertname: 'MediaTreeScaleOut', eval_time: '6m30s', exp_alerts: [] },
      {
        alertname: 'MediaTreeScaleOut',
        eval_time: '7m',
        exp_alerts: [scaleOut('tree-l', 'packet_loss', 'high', lossDescription('tree-l', '101'))],
      },
    ],
  },
  {
    // Tree ratio = lost / expected over all its egress nodes: 5.25 of 256 pkt/s is 2.05 %, 5 of 256 is 1.95 %.
    name: 'packet loss: RTP loss above 2 % of what the egress nodes of a tree expect, not at 1.95 %',
    input_series:
      lib.egress('tree-r', 'egress-1') + lib.rtp('tree-r', 'egress-1', 'egress', expected=128, lost=5.25)
      + lib.egress('tree-r', 'egress-2') + lib.rtp('tree-r', 'egress-2', 'egress', expected=128, lost=0)
      + lib.egress('tree-ok', 'egress-3') + lib.rtp('tree-ok', 'egress-3', 'egress', expected=128, lost=2.5)
      + lib.egress('tree-ok', 'egress-4') + lib.rtp('tree-ok', 'egress-4', 'egress', expected=128, lost=2.5)
      // A relay's loss is its own, not what the tree's viewers get.
      + lib.egress('tree-rl', 'egress-5') + lib.rtp('tree-rl', 'egress-5', 'egress', expected=128, lost=0)
      + lib.rtp('tree-rl', 'relay-1', 'relay', expected=128, lost=64),
    alert_rule_test: [
      // The 1m rate exists from 30s; `for: 2m` ends at 2m30s.
      { alertname: 'MediaTreeScaleOut', eval_time: '2m', exp_alerts: [] },
      {
        alertname: 'MediaTreeScaleOut',
        eval_time: '2m30s',
        exp_alerts: [scaleOut('tree-r', 'packet_loss', 'high', lossDescription('tree-r', '0.02051'))],
      },
    ],
  },
  {
    name: 'packet loss: NIC drops and RTP loss together are one packet_loss alert (valued by the drops)',
    input_series:
      lib.egress('tree-b', 'egress-1', drops=200) + lib.rtp('tree-b', 'egress-1', 'egress', expected=128, lost=64),
    alert_rule_test: [
      {
        alertname: 'MediaTreeScaleOut',
        eval_time: '10m',
        exp_alerts: [scaleOut('tree-b', 'packet_loss', 'high', lossDescription('tree-b', '200'))],
      },
    ],
    promql_expr_test: [
      { expr: 'count by (tree_id) (%s) > 1' % lib.firing('MediaTreeScaleOut'), eval_time: '10m', exp_samples: [] },
    ],
  },
  {
    name: 'precedence: unhealthy before cpu before port pool before packet loss',
    input_series:
      // All four reasons hold: unhealthy wins.
      lib.egress('tree-1', 'egress-1', busy=0.96875, pool=90, drops=200)
      + lib.egress('tree-1', 'egress-2', busy=0.75, pool=90)
      // CPU, port pool and loss hold: cpu wins.
      + lib.egress('tree-2', 'egress-3', busy=0.75, pool=90, drops=200)
      // Port pool and loss hold: port pool wins.
      + lib.egress('tree-3', 'egress-4', pool=90, drops=200),
    alert_rule_test: [
      {
        alertname: 'MediaTreeScaleOut',
        eval_time: '10m',
        exp_alerts: [
          scaleOut('tree-1', 'unhealthy_nodes', 'critical', '1 egress node(s) of tree tree-1 are above 90% CPU or memory.'),
          scaleOut('tree-2', 'cpu', 'high', 'Egress CPU of tree tree-2 averages 75% over 5m, above 70%.'),
          scaleOut('tree-3', 'port_pool', 'critical', poolDescription('tree-3', '90%')),
        ],
      },
    ],
    promql_expr_test: [
      {
        // Never two scale-out reasons for one tree at once.
        expr: 'count by (tree_id) (%s) > 1' % lib.firing('MediaTreeScaleOut'),
        eval_time: '10m',
        exp_samples: [],
      },
    ],
  },
  {
    name: 'no data, no scale-out',
    input_series: lib.injection('tree-empty', 'injection-1', sessions=0),
    alert_rule_test: [{ alertname: 'MediaTreeScaleOut', eval_time: '20m', exp_alerts: [] }],
  },
])
