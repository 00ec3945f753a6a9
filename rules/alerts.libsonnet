// Alerts: the scaling decisions the actuator acts on, and the operational
// alerts for people. Precedence of scale-out reasons is the seed's: each
// reason fires only while no reason before it holds, so a tree has at most
// one MediaTreeScaleOut at a time.
local metrics = import 'metrics.libsonnet';

{
  local c = $._config,
  local r = $.recorded,
  local tree = c.treeLabel,
  local ratio(percent) = '%g' % (percent / 100),

  // [reason, urgency, condition, description]; order is precedence.
  local scaleOutReasons = [
    {
      reason: 'unhealthy_nodes',
      urgency: 'critical',
      condition: '%s > 0' % r.treeUnhealthy,
      description: '{{ $value }} egress node(s) of tree {{ $labels.tree_id }} are above %g%% CPU or memory.' % c.unhealthyPercent,
    },
    {
      reason: 'cpu',
      urgency: 'high',
      condition: '%s > %s' % [r.treeEgressCpu, ratio(c.cpuScaleOutPercent)],
      description: 'Egress CPU of tree {{ $labels.tree_id }} averages {{ $value | humanizePercentage }} over %s, above %g%%.' % [c.cpuAverageWindow, c.cpuScaleOutPercent],
    },
    // The whole tree's pools, not the fullest node's: viewers stay where
    // they joined, so the old nodes stay full after a scale-out.
    if c.portPoolSignal == 'tree' then {
      reason: 'port_pool',
      urgency: 'critical',
      condition: '%s > %s' % [r.treePortsUtilisation, ratio(c.portPoolScaleOutPercent)],
      description: 'The egress port pools of tree {{ $labels.tree_id }} are {{ $value | humanizePercentage }} allocated, above %g%%.' % c.portPoolScaleOutPercent,
    } else if c.portPoolSignal == 'fullest' then {
      reason: 'port_pool',
      urgency: 'critical',
      condition: '%s > %g' % [r.treePortPool, c.portPoolScaleOutPercent],
      description: 'The fullest egress port pool of tree {{ $labels.tree_id }} is at {{ $value | humanize }}%%, above %g%%.' % c.portPoolScaleOutPercent,
    } else error 'portPoolSignal: tree or fullest, not %s' % c.portPoolSignal,
    {
      // Two signals: drops at the egress NICs, and RTP that never reached
      // the egress nodes (lost upstream, where their NIC counters cannot see).
      reason: 'packet_loss',
      urgency: 'high',
      condition: '(\n  %s > %g\n  or\n  %s > %s\n)' % [r.treeDrops, c.droppedPacketsScaleOut, r.treeRtpLossRatio, ratio(c.rtpLossScaleOutPercent)],
      description: 'Egress nodes of tree {{ $labels.tree_id }} lose packets: {{ printf "%%.4g" $value }} (received packets dropped per second when above %g, else the share of RTP packets missed, above %g%%).' % [c.droppedPacketsScaleOut, c.rtpLossScaleOutPercent],
    },
  ] + (
    // Last: only a tree with no present need scales on a forecast.
    if c.forecastScaleOut then [{
      reason: 'forecast',
      urgency: 'high',
      condition: '%s / %s > %s' % [r.treePortsForecast, r.treePortsTotal, ratio(c.portPoolScaleOutPercent)],
      description: 'The egress port pools of tree {{ $labels.tree_id }} are forecast at {{ $value | humanizePercentage }} allocated in %ds (over %g%%), from their trend over %s.' % [c.forecastProvisioningSeconds + c.forecastMarginSeconds, c.portPoolScaleOutPercent, c.forecastWindow],
      'for': c.forDurations.forecast,
    }] else []
  ),

  // How many subtrees beyond the baseline the tree needs (sizing.libsonnet),
  // read by the actuator: empty when the sizing has no inputs.
  local desiredSubtrees =
    '{{ with printf "%s{%s=%%q}" $labels.%s | query }}{{ . | first | value | printf "%%.0f" }}{{ end }}' % [r.treeDesiredSubtrees, tree, tree],

  local anyOf(conditions) = std.join('\n  or\n  ', conditions),

  // A scale-out reason's expression: its condition unless an earlier one holds.
  local scaleOutExpr(i) =
    local own = scaleOutReasons[i].condition;
    if i == 0 then own
    else '%s\nunless on (%s) (\n  %s\n)' % [own, tree, anyOf([scaleOutReasons[j].condition for j in std.range(0, i - 1)])],

  local allScaleOut = anyOf([x.condition for x in scaleOutReasons]),

  // Evaluated in recording.libsonnet's group, right after their inputs.
  scalingAlerts:: [
    {
      alert: 'MediaTreeScaleOut',
      expr: scaleOutExpr(i) + '\n',
      'for': std.get(scaleOutReasons[i], 'for', c.forDurations.scaleOut),
      labels: {
        severity: 'warning',
        component: 'scaling',
        urgency: scaleOutReasons[i].urgency,
        reason: scaleOutReasons[i].reason,
      },
      annotations: {
        summary: 'A media tree needs more egress capacity.',
        description: scaleOutReasons[i].description,
        desired_subtrees: desiredSubtrees,
      },
    }
    for i in std.range(0, std.length(scaleOutReasons) - 1)
  ] + [
    {
      // Every input must be present: a missing series (exporter or
      // Prometheus outage) makes the `and` empty, so no scale-in.
      alert: 'MediaTreeScaleIn',
      expr: |||
        %(cpu)s < %(cpuIn)s
        and on (%(tree)s) %(pool)s < %(poolIn)g
        and on (%(tree)s) %(mem)s < %(memIn)s
        and on (%(tree)s) %(up)s > %(baseline)d
        and on (%(tree)s) %(down)s == 0
        unless on (%(tree)s) (
          %(scaleOut)s
        )
      ||| % {
        cpu: r.treeEgressCpu,
        cpuIn: ratio(c.cpuScaleInPercent),
        pool: r.treePortPool,
        poolIn: c.portPoolScaleInPercent,
        mem: r.treeEgressMemory,
        memIn: ratio(c.memoryScaleInPercent),
        up: r.treeEgressUp,
        baseline: c.egressBaselineNodes,
        down: r.treeEgressDown,
        tree: tree,
        scaleOut: std.strReplace(allScaleOut, '\n', '\n  '),
      },
      'for': c.forDurations.scaleIn,
      labels: { severity: 'info', component: 'scaling', urgency: 'low' },
      annotations: {
        summary: 'A media tree has more egress capacity than it needs.',
        description: 'Egress CPU of tree {{ $labels.tree_id }} averages {{ $value | humanizePercentage }}, with port pools below %g%%, memory below %g%% and more than %d egress nodes up.' % [c.portPoolScaleInPercent, c.memoryScaleInPercent, c.egressBaselineNodes],
      },
    },
  ],

  prometheusAlerts+:: {
    groups+: [
      {
        name: 'media-tree.operational',
        interval: c.ruleInterval,
        rules: [
          {
            alert: 'HighCPUUsage',
            expr: '%s > %s\n' % [r.nodeCpu, ratio(c.highCpuPercent)],
            'for': c.forDurations.highCpu,
            labels: { severity: 'warning', component: 'node' },
            annotations: {
              summary: 'A media tree node is short of CPU.',
              description: 'CPU of {{ $labels.node_type }} node {{ $labels.node_id }} (tree {{ $labels.tree_id }}) is {{ $value | humanizePercentage }}.',
            },
          },
          {
            alert: 'HighMemoryUsage',
            expr: '%s > %s\n' % [r.nodeMemoryHigh, ratio(c.highMemoryPercent)],
            'for': c.forDurations.highMemory,
            labels: { severity: 'warning', component: 'node' },
            annotations: {
              summary: 'A media tree node is short of memory.',
              description: 'Memory of {{ $labels.node_type }} node {{ $labels.node_id }} (tree {{ $labels.tree_id }}) is {{ $value | humanizePercentage }} used.',
            },
          },
          {
            alert: 'PortPoolExhaustion',
            expr: '%s{%s} > %g\n' % [metrics.egress.portPoolUtilizationPercent, c.egressSelector, c.portPoolExhaustionPercent],
            'for': c.forDurations.portPoolExhaustion,
            labels: { severity: 'critical', component: 'egress' },
            annotations: {
              summary: 'An egress node is running out of ports.',
              description: 'Port pool of egress node {{ $labels.node_id }} (tree {{ $labels.tree_id }}) is {{ $value | humanize }}% used.',
            },
          },
          {
            alert: 'PacketLoss',
            // From the raw series: the per-node rate feeds nothing else.
            expr: '(\n%s) > %g\n' % [$.nodeExprs.drops(''), c.packetLossPerNode],
            'for': c.forDurations.packetLoss,
            labels: { severity: 'warning', component: 'network' },
            annotations: {
              summary: 'A media tree node drops received packets.',
              description: '{{ $labels.node_type }} node {{ $labels.node_id }} (tree {{ $labels.tree_id }}) drops {{ $value | humanize }} packets/s.',
            },
          },
          {
            alert: 'MediaTreeRTPLoss',
            expr: '%s > %s\n' % [r.nodeRtpLossRatio, ratio(c.rtpLossAlertPercent)],
            'for': c.forDurations.rtpLoss,
            labels: { severity: 'warning', component: 'network' },
            annotations: {
              summary: 'RTP packets are lost on the way to a media tree node.',
              description: '{{ $labels.node_type }} node {{ $labels.node_id }} (tree {{ $labels.tree_id }}) misses {{ $value | humanizePercentage }} of its {{ $labels.stream_type }} RTP packets.',
            },
          },
          {
            alert: 'MediaTreeRTPJitter',
            // nodeExprs.jitter, each side filtered before the `or`: the same
            // alerts, and only the few streams above the threshold matched.
            expr: std.join('or\n', [
              'max without (ssrc) (%s{%s} > %g)\n' % [metrics[n[0]].rtpJitterSeconds, n[1], c.rtpJitterAlertSeconds]
              for n in [['egress', c.egressSelector], ['relay', c.relaySelector]]
            ]),
            'for': c.forDurations.rtpJitter,
            labels: { severity: 'warning', component: 'network' },
            annotations: {
              summary: 'RTP reaches a media tree node with high jitter.',
              description: '{{ $labels.stream_type }} RTP reaches {{ $labels.node_type }} node {{ $labels.node_id }} (tree {{ $labels.tree_id }}) with {{ $value | humanizeDuration }} of interarrival jitter.',
            },
          },
          {
            // The last packet's time, not a rate: a publisher that never sent anything stalls from its session's start.
            alert: 'MediaTreePublisherStalled',
            expr: 'time() - %s{%s} > %d\n' % [metrics.injection.publisherLastPacket, c.injectionSelector, c.publisherStallSeconds],
            'for': c.forDurations.publisherStalled,
            labels: { severity: 'warning', component: 'ingest' },
            annotations: {
              summary: "A session's publisher sends no media.",
              description: 'Session {{ $labels.session_id }} on injection {{ $labels.node_id }} (tree {{ $labels.tree_id }}) has had no RTP from its publisher for {{ $value | humanizeDuration }}.',
            },
          },
          {
            alert: 'ForwarderPipelineDown',
            expr: '%s{%s} < 3\n' % [metrics.relay.forwarderState, c.relaySelector],
            'for': c.forDurations.forwarderPipelineDown,
            labels: { severity: 'critical', component: 'relay' },
            annotations: {
              summary: 'A relay forwarder pipeline is not playing.',
              description: 'The {{ $labels.pipeline }} pipeline of relay {{ $labels.node_id }} (tree {{ $labels.tree_id }}) is in state {{ $value }} (3 is PLAYING).',
            },
          },
          {
            // Aggregated by tree first: injection and egress series never share a label set.
            alert: 'OrphanMountpoints',
            expr: |||
              sum by (%(tree)s) (%(mounts)s{%(egress)s}) > 0
              and on (%(tree)s)
              %(sessions)s == 0
            ||| % { tree: tree, mounts: metrics.egress.activeMountpoints, egress: c.egressSelector, sessions: r.treeSessions },
            'for': c.forDurations.orphanMountpoints,
            labels: { severity: 'info', component: 'cleanup' },
            annotations: {
              summary: 'Egress mountpoints exist without a live session.',
              description: '{{ $value }} mountpoints exist in tree {{ $labels.tree_id }} but its injection reports no active session.',
            },
          },
          {
            // A down target reports nothing, so the alerts above stay silent for it.
            alert: 'MediaTreeTargetDown',
            expr: '%s\n' % r.targetsDown,
            'for': c.forDurations.targetDown,
            labels: { severity: 'critical', component: 'monitoring' },
            annotations: {
              summary: 'A media tree scrape target is down.',
              description: 'Target {{ $labels.job }} of {{ $labels.node_type }} node {{ $labels.node_id }} (tree {{ $labels.tree_id }}) fails its scrapes.',
            },
          },
        ],
      },
    ],
  },
}
