// Recording rules: every input of a scaling decision, per node and per tree.
// CPU is per node (the seed computed it per core), and every series is
// selected by the target labels service discovery sets, never by exposed ones.
local metrics = import 'metrics.libsonnet';

{
  local c = $._config,
  local by = std.join(', ', c.nodeLabels),
  local egress = 'node_type="egress"',

  // Recorded names: alerts and dashboards use these, not their expressions.
  recorded:: {
    nodeCpu: 'node_id:media_tree_node_cpu_utilisation:ratio_rate%s' % c.cpuRateWindow,
    nodeMemory: 'node_id:media_tree_node_memory_utilisation:ratio',
    treeEgressCpu: 'tree_id:media_tree_egress_cpu_utilisation:avg_ratio_avg%s' % c.cpuAverageWindow,
    treeEgressMemory: 'tree_id:media_tree_egress_memory_utilisation:max_ratio',
    treePortPool: 'tree_id:%s:max' % metrics.egress.portPoolUtilizationPercent,
    treeViewers: 'tree_id:%s:sum' % metrics.egress.activeViewers,
    treeDrops: 'tree_id:media_tree_egress_network_receive_drop:sum_rate%s' % c.dropRateWindow,
    treeSessions: 'tree_id:%s:sum' % metrics.injection.activeSessions,
    treeEgressUp: 'tree_id:media_tree_egress_nodes_up:count',
    treeEgressDown: 'tree_id:media_tree_egress_targets_down:count',
    treeUnhealthy: 'tree_id:media_tree_egress_unhealthy_nodes:count',
  },
  local r = self.recorded,

  prometheusRules+:: {
    groups+: [
      {
        name: 'media-tree.node.rules',
        interval: c.ruleInterval,
        rules: [
          {
            // Busy share of the whole node, not of one core. Idle time over
            // all time: both rates share one extrapolation, so a new target's
            // first short window does not read as a busy node.
            record: r.nodeCpu,
            expr: |||
              1 - (
                sum by (%(by)s) (rate(node_cpu_seconds_total{%(ne)s, mode="idle"}[%(w)s]))
                /
                sum by (%(by)s) (rate(node_cpu_seconds_total{%(ne)s}[%(w)s]))
              )
            ||| % { by: by, ne: c.nodeExporterSelector, w: c.cpuRateWindow },
          },
          {
            record: r.nodeMemory,
            expr: |||
              1 - (
                sum by (%(by)s) (node_memory_MemAvailable_bytes{%(ne)s})
                /
                sum by (%(by)s) (node_memory_MemTotal_bytes{%(ne)s})
              )
            ||| % { by: by, ne: c.nodeExporterSelector },
          },
        ],
      },
      {
        name: 'media-tree.tree.rules',
        interval: c.ruleInterval,
        rules: [
          {
            // The seed's avg_over_time subquery, meant per node, on the recorded series.
            record: r.treeEgressCpu,
            expr: |||
              avg by (%(tree)s) (
                avg_over_time(%(cpu)s{%(egress)s}[%(w)s])
              )
            ||| % { tree: c.treeLabel, cpu: r.nodeCpu, egress: egress, w: c.cpuAverageWindow },
          },
          {
            record: r.treeEgressMemory,
            expr: 'max by (%s) (%s{%s})' % [c.treeLabel, r.nodeMemory, egress],
          },
          {
            record: r.treePortPool,
            expr: 'max by (%s) (%s{%s})' % [c.treeLabel, metrics.egress.portPoolUtilizationPercent, c.egressSelector],
          },
          {
            record: r.treeViewers,
            expr: 'sum by (%s) (%s{%s})' % [c.treeLabel, metrics.egress.activeViewers, c.egressSelector],
          },
          {
            record: r.treeDrops,
            expr: |||
              sum by (%(tree)s) (
                rate(node_network_receive_drop_total{%(ne)s, %(egress)s, device!="lo"}[%(w)s])
              )
            ||| % { tree: c.treeLabel, ne: c.nodeExporterSelector, egress: egress, w: c.dropRateWindow },
          },
          {
            record: r.treeSessions,
            expr: 'sum by (%s) (%s{%s})' % [c.treeLabel, metrics.injection.activeSessions, c.injectionSelector],
          },
          {
            // Egress nodes whose app answers scrapes.
            record: r.treeEgressUp,
            expr: 'count by (%s) (up{%s} == 1)' % [c.treeLabel, c.egressSelector],
          },
          {
            // Egress targets (app or node_exporter) failing their scrapes; 0 when
            // all answer, so "no data" and "nothing down" are told apart.
            record: r.treeEgressDown,
            expr: |||
              count by (%(tree)s) (up{%(egressApp)s} == 0 or up{%(ne)s, %(egress)s} == 0)
              or on (%(tree)s)
              0 * %(up)s
            ||| % { tree: c.treeLabel, egressApp: c.egressSelector, ne: c.nodeExporterSelector, egress: egress, up: r.treeEgressUp },
          },
          {
            // The seed's unhealthy test (CPU or memory above 90 %), per node.
            record: r.treeUnhealthy,
            expr: |||
              count by (%(tree)s) (
                %(cpu)s{%(egress)s} > %(limit)g
                or
                %(mem)s{%(egress)s} > %(limit)g
              )
              or on (%(tree)s)
              0 * %(up)s
            ||| % { tree: c.treeLabel, cpu: r.nodeCpu, mem: r.nodeMemory, egress: egress, limit: c.unhealthyPercent / 100, up: r.treeEgressUp },
          },
        ],
      },
    ],
  },
}
