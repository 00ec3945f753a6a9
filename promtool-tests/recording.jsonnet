// Every recording rule, on one tree of mixed nodes and on a tree with failures.
local lib = import 'lib.libsonnet';
// The per-node drop rate and RTP jitter the dashboards read and PacketLoss and MediaTreeRTPJitter compute.
local nodeExprs = (import '../rules/mixin.libsonnet').nodeExprs;

local mixedTree =
  lib.egress('tree-a', 'egress-1', busy=0.25, mem=0.25, drops=40, pool=60, viewers=10)
  + lib.nodeExporter('tree-a', 'egress-2', 'egress', coreBusy=[1, 0, 0, 0, 0, 0, 0, 0], mem=0.5, drops=20, loDrops=1000)
  + lib.egressApp('tree-a', 'egress-2', pool=20, viewers=5)
  + lib.nodeExporter('tree-a', 'relay-1', 'relay', busy=0.75, drops=80)
  + lib.injection('tree-a', 'injection-1', sessions=3)
  // Another tree, so every per-tree rule is seen to keep trees apart.
  + lib.egress('tree-b', 'egress-9', busy=0.5, mem=0.125, pool=5, viewers=7);

local sample(labels, value) = { labels: labels, value: value };

lib.file([
  {
    name: 'RTP quality: per node and stream type (streams summed, worst jitter), per tree from egress nodes only',
    input_series:
      lib.rtp('tree-q', 'egress-1', 'egress', 'video', ssrc='1', expected=128, lost=4, jitter=0.0078125)
      + lib.rtp('tree-q', 'egress-1', 'egress', 'video', ssrc='2', expected=128, lost=0, jitter=0.015625)
      + lib.rtp('tree-q', 'egress-2', 'egress', 'video', ssrc='1', expected=256, lost=8, jitter=0.001953125)
      + lib.rtp('tree-q', 'relay-1', 'relay', 'video', ssrc='1', expected=128, lost=64, jitter=0.5),
    local egress(id) = '{job="media-tree-egress", instance="%s:7073", tree_id="tree-q", node_type="egress", node_id="%s", stream_type="video"}' % [id, id],
    promql_expr_test: [
      {
        expr: 'node_id:media_tree_rtp_packets_lost:ratio_rate1m',
        eval_time: '5m',
        exp_samples: [
          sample('node_id:media_tree_rtp_packets_lost:ratio_rate1m' + egress('egress-1'), 0.015625),
          sample('node_id:media_tree_rtp_packets_lost:ratio_rate1m' + egress('egress-2'), 0.03125),
          sample('node_id:media_tree_rtp_packets_lost:ratio_rate1m{job="media-tree-relay", instance="relay-1:7071", tree_id="tree-q", node_type="relay", node_id="relay-1", stream_type="video"}', 0.5),
        ],
      },
      {
        // Per node and stream type, as MediaTreeRTPJitter and the dashboards compute it.
        expr: nodeExprs.jitter('node_type="egress"'),
        eval_time: '5m',
        exp_samples: [
          sample(egress('egress-1'), 0.015625),
          sample(egress('egress-2'), 0.001953125),
        ],
      },
      // (4 + 8) / (256 + 256): the relay's 50 % is not the viewers' loss.
      { expr: 'tree_id:media_tree_egress_rtp_packets_lost:ratio_rate1m', eval_time: '5m', exp_samples: [sample('tree_id:media_tree_egress_rtp_packets_lost:ratio_rate1m{tree_id="tree-q"}', 0.0234375)] },
      { expr: 'tree_id:media_tree_egress_rtp_jitter_seconds:max', eval_time: '5m', exp_samples: [sample('tree_id:media_tree_egress_rtp_jitter_seconds:max{tree_id="tree-q"}', 0.015625)] },
    ],
  },
  {
    name: 'recording rules on healthy trees',
    input_series: mixedTree,
    promql_expr_test: [
      {
        expr: 'node_id:media_tree_node_cpu_utilisation:ratio_irate',
        eval_time: '10m',
        exp_samples: [
          sample('node_id:media_tree_node_cpu_utilisation:ratio_irate{job="node-exporter", instance="egress-1:9100", tree_id="tree-a", node_type="egress", node_id="egress-1"}', 0.25),
          // One busy core of eight is an eighth of the node, not an unhealthy node.
          sample('node_id:media_tree_node_cpu_utilisation:ratio_irate{job="node-exporter", instance="egress-2:9100", tree_id="tree-a", node_type="egress", node_id="egress-2"}', 0.125),
          sample('node_id:media_tree_node_cpu_utilisation:ratio_irate{job="node-exporter", instance="relay-1:9100", tree_id="tree-a", node_type="relay", node_id="relay-1"}', 0.75),
          sample('node_id:media_tree_node_cpu_utilisation:ratio_irate{job="node-exporter", instance="egress-9:9100", tree_id="tree-b", node_type="egress", node_id="egress-9"}', 0.5),
        ],
      },
      {
        // Per node, every node type (the tree rules, the exceptions and the dashboards read it).
        expr: 'node_id:media_tree_node_memory_utilisation:ratio{tree_id="tree-a"}',
        eval_time: '10m',
        exp_samples: [
          sample('node_id:media_tree_node_memory_utilisation:ratio{job="node-exporter", instance="egress-1:9100", tree_id="tree-a", node_type="egress", node_id="egress-1"}', 0.25),
          sample('node_id:media_tree_node_memory_utilisation:ratio{job="node-exporter", instance="egress-2:9100", tree_id="tree-a", node_type="egress", node_id="egress-2"}', 0.5),
          sample('node_id:media_tree_node_memory_utilisation:ratio{job="node-exporter", instance="relay-1:9100", tree_id="tree-a", node_type="relay", node_id="relay-1"}', 0.25),
        ],
      },
      {
        // Recorded only above 80 %: no node of these trees is.
        expr: 'node_id:media_tree_node_memory_utilisation:ratio_high',
        eval_time: '10m',
        exp_samples: [],
      },
      {
        // Recorded only for failing targets: none here.
        expr: 'instance:media_tree_up:down',
        eval_time: '10m',
        exp_samples: [],
      },
      {
        // Loopback excluded; per node, every node type (PacketLoss and the dashboards).
        expr: nodeExprs.drops('tree_id="tree-a"'),
        eval_time: '10m',
        exp_samples: [
          sample('{job="node-exporter", instance="egress-1:9100", tree_id="tree-a", node_type="egress", node_id="egress-1"}', 40),
          sample('{job="node-exporter", instance="egress-2:9100", tree_id="tree-a", node_type="egress", node_id="egress-2"}', 20),
          sample('{job="node-exporter", instance="relay-1:9100", tree_id="tree-a", node_type="relay", node_id="relay-1"}', 80),
        ],
      },
      {
        // Egress nodes only: the busy relay does not count.
        expr: 'tree_id:media_tree_egress_cpu_utilisation:avg_ratio_avg5m',
        eval_time: '10m',
        exp_samples: [
          sample('tree_id:media_tree_egress_cpu_utilisation:avg_ratio_avg5m{tree_id="tree-a"}', 0.1875),
          sample('tree_id:media_tree_egress_cpu_utilisation:avg_ratio_avg5m{tree_id="tree-b"}', 0.5),
        ],
      },
      {
        expr: 'tree_id:media_tree_egress_memory_utilisation:max_ratio',
        eval_time: '10m',
        exp_samples: [
          sample('tree_id:media_tree_egress_memory_utilisation:max_ratio{tree_id="tree-a"}', 0.5),
          sample('tree_id:media_tree_egress_memory_utilisation:max_ratio{tree_id="tree-b"}', 0.125),
        ],
      },
      {
        expr: 'tree_id:media_tree_egress_port_pool_utilization_percent:max',
        eval_time: '10m',
        exp_samples: [
          sample('tree_id:media_tree_egress_port_pool_utilization_percent:max{tree_id="tree-a"}', 60),
          sample('tree_id:media_tree_egress_port_pool_utilization_percent:max{tree_id="tree-b"}', 5),
        ],
      },
      {
        // The seed's total viewers query, answerable per tree thanks to the target label.
        expr: 'tree_id:media_tree_egress_active_viewers:sum',
        eval_time: '10m',
        exp_samples: [
          sample('tree_id:media_tree_egress_active_viewers:sum{tree_id="tree-a"}', 15),
          sample('tree_id:media_tree_egress_active_viewers:sum{tree_id="tree-b"}', 7),
        ],
      },
      {
        // Egress interfaces only, loopback excluded.
        expr: 'tree_id:media_tree_egress_network_receive_drop:sum_rate5m',
        eval_time: '10m',
        exp_samples: [
          sample('tree_id:media_tree_egress_network_receive_drop:sum_rate5m{tree_id="tree-a"}', 60),
          sample('tree_id:media_tree_egress_network_receive_drop:sum_rate5m{tree_id="tree-b"}', 0),
        ],
      },
      {
        expr: 'tree_id:media_tree_injection_active_sessions:sum',
        eval_time: '10m',
        exp_samples: [sample('tree_id:media_tree_injection_active_sessions:sum{tree_id="tree-a"}', 3)],
      },
      {
        expr: 'tree_id:media_tree_egress_nodes_up:count',
        eval_time: '10m',
        exp_samples: [
          sample('tree_id:media_tree_egress_nodes_up:count{tree_id="tree-a"}', 2),
          sample('tree_id:media_tree_egress_nodes_up:count{tree_id="tree-b"}', 1),
        ],
      },
      {
        // Zero, not absent, when every egress target answers.
        expr: 'tree_id:media_tree_egress_targets_down:count',
        eval_time: '10m',
        exp_samples: [
          sample('tree_id:media_tree_egress_targets_down:count{tree_id="tree-a"}', 0),
          sample('tree_id:media_tree_egress_targets_down:count{tree_id="tree-b"}', 0),
        ],
      },
      {
        expr: 'tree_id:media_tree_egress_unhealthy_nodes:count',
        eval_time: '10m',
        exp_samples: [
          sample('tree_id:media_tree_egress_unhealthy_nodes:count{tree_id="tree-a"}', 0),
          sample('tree_id:media_tree_egress_unhealthy_nodes:count{tree_id="tree-b"}', 0),
        ],
      },
    ],
  },
  {
    name: 'recording rules on a tree with failing nodes',
    input_series:
      // CPU just above 90 %, memory just above 90 %, both (counted once), and one just below.
      lib.egress('tree-c', 'egress-1', busy=0.90625)
      + lib.egress('tree-c', 'egress-2', mem=0.90625)
      + lib.egress('tree-c', 'egress-3', busy=0.96875, mem=0.96875)
      + lib.egress('tree-c', 'egress-4', busy=0.875, mem=0.875)
      // The app of egress-5 is down; the node_exporter of egress-6 is down.
      + lib.nodeExporter('tree-c', 'egress-5', 'egress')
      + lib.egressApp('tree-c', 'egress-5', up=0)
      + lib.nodeExporter('tree-c', 'egress-6', 'egress', up=0)
      + lib.egressApp('tree-c', 'egress-6'),
    promql_expr_test: [
      {
        expr: 'tree_id:media_tree_egress_unhealthy_nodes:count',
        eval_time: '10m',
        exp_samples: [sample('tree_id:media_tree_egress_unhealthy_nodes:count{tree_id="tree-c"}', 3)],
      },
      {
        expr: 'tree_id:media_tree_egress_nodes_up:count',
        eval_time: '10m',
        exp_samples: [sample('tree_id:media_tree_egress_nodes_up:count{tree_id="tree-c"}', 5)],
      },
      {
        expr: 'tree_id:media_tree_egress_targets_down:count',
        eval_time: '10m',
        exp_samples: [sample('tree_id:media_tree_egress_targets_down:count{tree_id="tree-c"}', 2)],
      },
      {
        // Every node above 80 %, the lowest threshold reading it (HighMemoryUsage; unhealthy is 90 %).
        expr: 'node_id:media_tree_node_memory_utilisation:ratio_high',
        eval_time: '10m',
        exp_samples: [
          sample('node_id:media_tree_node_memory_utilisation:ratio_high{job="node-exporter", instance="egress-2:9100", tree_id="tree-c", node_type="egress", node_id="egress-2"}', 0.90625),
          sample('node_id:media_tree_node_memory_utilisation:ratio_high{job="node-exporter", instance="egress-3:9100", tree_id="tree-c", node_type="egress", node_id="egress-3"}', 0.96875),
          sample('node_id:media_tree_node_memory_utilisation:ratio_high{job="node-exporter", instance="egress-4:9100", tree_id="tree-c", node_type="egress", node_id="egress-4"}', 0.875),
        ],
      },
      {
        // Each failing target, app or node_exporter, with its labels; value 0.
        expr: 'instance:media_tree_up:down',
        eval_time: '10m',
        exp_samples: [
          sample('instance:media_tree_up:down{job="media-tree-egress", instance="egress-5:7073", tree_id="tree-c", node_type="egress", node_id="egress-5"}', 0),
          sample('instance:media_tree_up:down{job="node-exporter", instance="egress-6:9100", tree_id="tree-c", node_type="egress", node_id="egress-6"}', 0),
        ],
      },
    ],
  },
])
