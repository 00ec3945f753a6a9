// Recording rules: every input of a scaling decision, per node and per tree.
// CPU is per node (the seed computed it per core), and every series is
// selected by the target labels service discovery sets, never by exposed ones.
//
// What a rule costs is paid every interval in Prometheus CPU (docs/benchmarks.md).
// Measured per rule, writing a sample is cheap and computing one is not: the
// memory ratio (a division matching two series per node) costs several times
// a read of a recorded series, so per node CPU and memory are recorded once
// and read by the tree rules; the per-node alerts and the unhealthy count read
// the few nodes above their lowest threshold (`_high`). Drops, the port pool
// and RTP quality are read raw where they are needed: recording them per node
// cost more (writes and the reads of the recordings) than it saved.
//
// They share one group with the scaling alerts (alerts.libsonnet's
// scalingAlerts): rules of a group run in order within one evaluation, so a
// scrape reaches a decision in one evaluation instead of one per group.
local metrics = import 'metrics.libsonnet';

{
  local c = $._config,
  local egress = 'node_type="egress"',

  // Recorded names: alerts and dashboards use these, not their expressions.
  recorded:: {
    nodeCpu: 'node_id:media_tree_node_cpu_utilisation:ratio_irate',
    nodeMemory: 'node_id:media_tree_node_memory_utilisation:ratio',
    // Only nodes above memoryHighRatio, the lowest per-node threshold that reads it.
    nodeMemoryHigh: 'node_id:media_tree_node_memory_utilisation:ratio_high',
    // Targets of the tree jobs failing their scrapes (up == 0), all jobs: read once.
    targetsDown: 'instance:media_tree_up:down',
    treeEgressCpu: 'tree_id:media_tree_egress_cpu_utilisation:avg_ratio_avg%s' % c.cpuAverageWindow,
    treeEgressMemory: 'tree_id:media_tree_egress_memory_utilisation:max_ratio',
    treePortPool: 'tree_id:%s:max' % metrics.egress.portPoolUtilizationPercent,
    treeViewers: 'tree_id:%s:sum' % metrics.egress.activeViewers,
    treeDrops: 'tree_id:media_tree_egress_network_receive_drop:sum_rate%s' % c.dropRateWindow,
    treeSessions: 'tree_id:%s:sum' % metrics.injection.activeSessions,
    treeEgressUp: 'tree_id:media_tree_egress_nodes_up:count',
    treeEgressDown: 'tree_id:media_tree_egress_targets_down:count',
    treeUnhealthy: 'tree_id:media_tree_egress_unhealthy_nodes:count',
    // RTP receive quality (RFC 3550) of relay and egress nodes, per stream type.
    nodeRtpLossRatio: 'node_id:media_tree_rtp_packets_lost:ratio_rate%s' % c.rtpRateWindow,
    treeRtpLossRatio: 'tree_id:media_tree_egress_rtp_packets_lost:ratio_rate%s' % c.rtpRateWindow,
    treeRtpJitter: 'tree_id:media_tree_egress_rtp_jitter_seconds:max',
  },
  local r = self.recorded,

  // Per-node expressions the rules and the dashboards share; `sel` narrows them.
  nodeExprs:: {
    memory(sel):: |||
      1 - (
        %(avail)s{%(ne)s%(sel)s}
        /
        %(total)s{%(ne)s%(sel)s}
      )
    ||| % { avail: 'node_memory_MemAvailable_bytes', total: 'node_memory_MemTotal_bytes', ne: c.nodeExporterSelector, sel: if sel == '' then '' else ', ' + sel },
    // Dashboards pass their own window ($__rate_interval).
    drops(sel, window=c.dropRateWindow):: |||
      sum without (device) (
        rate(node_network_receive_drop_total{%(ne)s%(sel)s, device!="lo"}[%(w)s])
      )
    ||| % { ne: c.nodeExporterSelector, sel: if sel == '' then '' else ', ' + sel, w: window },
    // The worst stream of each type, relay and egress (MediaTreeRTPJitter and the dashboards).
    jitter(sel):: |||
      max without (ssrc) (%(egressFamily)s{%(egress)s%(sel)s})
      or
      max without (ssrc) (%(relayFamily)s{%(relay)s%(sel)s})
    ||| % {
      egressFamily: metrics.egress.rtpJitterSeconds,
      relayFamily: metrics.relay.rtpJitterSeconds,
      egress: c.egressSelector,
      relay: c.relaySelector,
      sel: if sel == '' then '' else ', ' + sel,
    },
  },
  local x = self.nodeExprs,
  local memoryHighRatio = std.min(c.highMemoryPercent, c.unhealthyPercent) / 100,

  // Per node first: the per-tree rules below read these.
  nodeRecordings:: [
    {
      // Busy share of the whole node, not of one core. irate: exact from
      // a new target's second scrape, where rate()'s extrapolation over a
      // short first window reads a fresh node as busy (false scale-outs
      // right after a scale-out); the tree average smooths it over 5m.
      record: r.nodeCpu,
      expr: |||
        1 - avg without (cpu, mode) (
          irate(node_cpu_seconds_total{%(ne)s, mode="idle"}[%(w)s])
        )
      ||| % { ne: c.nodeExporterSelector, w: c.cpuRateWindow },
    },
    {
      // Used share of memory; the tree's fullest node and the exceptions below read it.
      record: r.nodeMemory,
      expr: x.memory(''),
    },
    {
      // HighMemoryUsage and the unhealthy count read this, not every node's memory.
      record: r.nodeMemoryHigh,
      expr: '%s > %g' % [r.nodeMemory, memoryHighRatio],
    },
    {
      // up read once for every tree job: the targets-down count and
      // MediaTreeTargetDown read this instead (as a rule, 0 kept: `== 0` filters).
      record: r.targetsDown,
      expr: 'up{job=~"%s"} == 0\n' % std.join('|', [c.jobs[j] for j in std.objectFields(c.jobs)]),
    },
  ],

  treeRecordings:: [
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
      record: r.treeDrops,
      expr: |||
        sum by (%(tree)s) (
          rate(node_network_receive_drop_total{%(ne)s, %(egress)s, device!="lo"}[%(w)s])
        )
      ||| % { tree: c.treeLabel, ne: c.nodeExporterSelector, egress: egress, w: c.dropRateWindow },
    },
    {
      // What the tree's viewers get: RTP lost on the way to its egress nodes.
      // From the raw series: per-node recordings cost more than they save here.
      record: r.treeRtpLossRatio,
      expr: |||
        sum by (%(tree)s) (rate(%(lost)s{%(egress)s}[%(w)s]))
        /
        (sum by (%(tree)s) (rate(%(expected)s{%(egress)s}[%(w)s])) > 0)
      ||| % { tree: c.treeLabel, lost: metrics.egress.rtpPacketsLost, expected: metrics.egress.rtpPacketsExpected, egress: c.egressSelector, w: c.rtpRateWindow },
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
        count by (%(tree)s) (%(down)s{%(egress)s})
        or on (%(tree)s)
        0 * %(up)s
      ||| % { tree: c.treeLabel, egress: egress, down: r.targetsDown, up: r.treeEgressUp },
    },
    {
      // The seed's unhealthy test (CPU or memory above 90 %), per node; a
      // node above both counts once (`or` matches label sets, names aside).
      record: r.treeUnhealthy,
      expr: |||
        count by (%(tree)s) (
          %(cpu)s{%(egress)s} > %(limit)g
          or
          %(mem)s{%(egress)s} > %(limit)g
        )
        or on (%(tree)s)
        0 * %(up)s
      ||| % { tree: c.treeLabel, cpu: r.nodeCpu, mem: r.nodeMemoryHigh, egress: egress, limit: c.unhealthyPercent / 100, up: r.treeEgressUp },
    },
  ],

  // What feeds no decision, only dashboards and reports: evaluated less often.
  dashboardRecordings:: [
    {
      record: r.treeViewers,
      expr: 'sum by (%s) (%s{%s})' % [c.treeLabel, metrics.egress.activeViewers, c.egressSelector],
    },
    {
      // The worst egress stream of the tree (MediaTreeRTPJitter reads each node's itself).
      record: r.treeRtpJitter,
      expr: 'max by (%s) (%s{%s})' % [c.treeLabel, metrics.egress.rtpJitterSeconds, c.egressSelector],
    },
  ],

  // Read by MediaTreeRTPLoss and the dashboards, by no scaling decision.
  streamQualityRecordings:: [
    {
      // Per SSRC in the exposition, summed per stream type (sessions come and
      // go); no ratio while nothing is expected (no stream), rather than NaN.
      record: r.nodeRtpLossRatio,
      expr: std.join('or\n', [
        |||
          sum without (ssrc) (rate(%(lost)s{%(sel)s}[%(w)s]))
          /
          (sum without (ssrc) (rate(%(expected)s{%(sel)s}[%(w)s])) > 0)
        ||| % { lost: metrics[n[0]].rtpPacketsLost, expected: metrics[n[0]].rtpPacketsExpected, sel: n[1], w: c.rtpRateWindow }
        for n in [['egress', c.egressSelector], ['relay', c.relaySelector]]
      ]),
    },
  ],

  prometheusRules+:: {
    groups+: [
      {
        name: 'media-tree.scaling',
        interval: c.ruleInterval,
        rules: $.nodeRecordings + $.treeRecordings + $.scalingAlerts,
      },
      {
        name: 'media-tree.stream-quality',
        interval: c.ruleInterval,
        rules: $.streamQualityRecordings,
      },
      {
        name: 'media-tree.dashboards',
        interval: c.dashboardRuleInterval,
        rules: $.dashboardRecordings,
      },
    ],
  },
}
