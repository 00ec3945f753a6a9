// Tree overview: one tree (or several) at a glance: audience, capacity,
// port pools, loss, relay pipelines and what the scaling loop did.
local metrics = import '../../rules/metrics.libsonnet';
local g = import 'grafana.libsonnet';

{
  local c = $._config,
  local actuator = $.actuatorMetrics,
  local r = $.recorded,
  local k = $.dashboardCommon,
  local byTree(name) = '%s{%s}' % [name, k.tree],

  grafanaDashboards+:: {
    'tree-overview.json': g.dashboard(
      c.dashboards.treeOverview.title,
      c.dashboards.treeOverview.uid,
      'Per tree: viewers, sessions, egress capacity, port pools, packet loss, RTP loss and jitter, relay forwarders, scale decisions and actuator actions.',
      [k.treeVariable],
      [
        g.row('Tree $tree_id'),
        g.stat('Viewers', 'short', [g.target(byTree(r.treeViewers), '{{tree_id}}')], 'Viewers on every egress node of the tree.'),
        g.stat('Active sessions', 'short', [g.target(byTree(r.treeSessions), '{{tree_id}}')], 'Live sessions at the injection node.'),
        g.stat('Egress nodes up', 'short', [g.target(byTree(r.treeEgressUp), '{{tree_id}}')], 'Egress apps answering scrapes.'),
        g.stat('Egress targets down', 'short', [g.target(byTree(r.treeEgressDown), '{{tree_id}}')], 'Egress targets (app or node_exporter) failing scrapes: scale-in waits while any is down.')
        + g.withThresholds([['green', null], ['red', 1]]),
        g.stat('Unhealthy egress nodes', 'short', [g.target(byTree(r.treeUnhealthy), '{{tree_id}}')], 'Egress nodes above %g%% CPU or memory (a critical scale-out reason).' % c.unhealthyPercent)
        + g.withThresholds([['green', null], ['red', 1]]),
        g.stat('Actuator subtrees', 'short', [g.target(byTree(actuator.subtrees.name), '{{tree_id}}')], 'Subtrees the actuator has added to the tree.'),

        g.row('Load and capacity'),
        g.timeseries('Viewers and sessions', 'short', [
          g.target(byTree(r.treeViewers), '{{tree_id}} viewers'),
          g.target(byTree(r.treeSessions), '{{tree_id}} sessions'),
        ], min=0),
        g.timeseries('Egress nodes', 'short', [
          g.target(byTree(r.treeEgressUp), '{{tree_id}} up'),
          g.target(byTree(r.treeEgressDown), '{{tree_id}} down'),
          g.target(byTree(r.treeUnhealthy), '{{tree_id}} unhealthy'),
        ], 'Egress nodes answering, failing and above the unhealthy threshold. Scale-in needs more than %d up and none down.' % c.egressBaselineNodes, min=0),
        g.gauge('Max port-pool utilisation', 'percent', [g.target(byTree(r.treePortPool), '{{tree_id}}')], 'The fullest egress port pool of the tree. Scale-out above %g%%, scale-in below %g%%.' % [c.portPoolScaleOutPercent, c.portPoolScaleInPercent], w=6, h=8)
        + g.withThresholds(k.portPoolSteps)
        + g.withLinks([k.runbook('MediaTreeScaleOut'), k.runbook('PortPoolExhaustion')]),
        g.timeseries('Port-pool utilisation per egress node', 'percent', [
          g.target('%s{%s, %s}' % [metrics.egress.portPoolUtilizationPercent, c.egressSelector, k.tree], '{{node_id}}'),
        ], w=18, min=0, max=100)
        + g.withThresholdLines(k.portPoolSteps)
        + g.withDataLinks([k.nodeDetailLink])
        + g.withLinks([k.runbook('PortPoolExhaustion')]),
        g.timeseries('Egress CPU (tree average over %s)' % c.cpuAverageWindow, 'percentunit', [g.target(byTree(r.treeEgressCpu), '{{tree_id}}')], 'Scale-out above %g%%, scale-in below %g%%.' % [c.cpuScaleOutPercent, c.cpuScaleInPercent], min=0, max=1)
        + g.withThresholdLines([['green', null], ['orange', c.cpuScaleOutPercent / 100], ['red', c.unhealthyPercent / 100]]),
        g.timeseries('Egress memory (fullest node)', 'percentunit', [g.target(byTree(r.treeEgressMemory), '{{tree_id}}')], 'Scale-in needs it below %g%%.' % c.memoryScaleInPercent, min=0, max=1)
        + g.withThresholdLines([['green', null], ['orange', c.memoryScaleOutPercent / 100], ['red', c.unhealthyPercent / 100]]),
        g.timeseries('Packet loss (received packets dropped)', 'pps', [
          g.target(byTree(r.treeDrops), '{{tree_id}} egress total'),
          g.target($.nodeExprs.drops(k.tree, '$__rate_interval'), '{{node_id}}'),
        ], 'Per node (all types) and the egress total of the tree. Scale-out above %g packets/s.' % c.droppedPacketsScaleOut, w=24, min=0)
        + g.withThresholdLines([['green', null], ['red', c.droppedPacketsScaleOut]])
        + g.withDataLinks([k.nodeDetailLink])
        + g.withLinks([k.runbook('PacketLoss'), k.runbook('MediaTreeScaleOut')]),
        g.timeseries('RTP loss', 'percentunit', [
          g.target(byTree(r.treeRtpLossRatio), '{{tree_id}} egress total'),
          g.target(byTree(r.nodeRtpLossRatio), '{{node_id}} {{stream_type}}'),
        ], 'Share of RTP packets that never reached each relay and egress node (RFC 3550), and the egress total: what viewers miss. Scale-out above %g%%.' % c.rtpLossScaleOutPercent, min=0)
        + g.withThresholdLines([['green', null], ['red', c.rtpLossScaleOutPercent / 100]])
        + g.withDataLinks([k.nodeDetailLink])
        + g.withLinks([k.runbook('MediaTreeRTPLoss'), k.runbook('MediaTreeScaleOut')]),
        g.timeseries('RTP jitter', 's', [
          g.target(byTree(r.treeRtpJitter), '{{tree_id}} worst egress'),
          g.target($.nodeExprs.jitter(k.tree), '{{node_id}} {{stream_type}}'),
        ], 'Interarrival jitter (RFC 3550 A.8) of the worst stream of each type at each relay and egress node.', min=0)
        + g.withThresholdLines([['green', null], ['red', c.rtpJitterAlertSeconds]])
        + g.withDataLinks([k.nodeDetailLink])
        + g.withLinks([k.runbook('MediaTreeRTPJitter')]),
        g.stateTimeline('Relay forwarder pipelines', 'none', [
          g.target('%s{%s, %s}' % [metrics.relay.forwarderState, c.relaySelector, k.tree], '{{node_id}} {{pipeline}}'),
        ], 'GStreamer state of each relay pipeline; anything but PLAYING for %s fires ForwarderPipelineDown.' % c.forDurations.forwarderPipelineDown)
        + g.withMappings(k.forwarderStates)
        + g.withDataLinks([k.nodeDetailLink])
        + g.withLinks([k.runbook('ForwarderPipelineDown')]),

        g.row('Scaling'),
        k.scaleAlertsPanel(),
        // The level-triggered actuator converges actual to desired: a gap that stays is a stuck loop.
        g.timeseries('Subtrees: desired and actual', 'short', [
          g.target(byTree(r.treeDesiredSubtrees), '{{tree_id}} desired'),
          g.target(byTree(actuator.subtrees.name), '{{tree_id}} actual'),
        ], 'Subtrees the sizing rules ask for (%d%% of the ports allocated, %d nodes a subtree) and the subtrees the actuator runs.' % [c.sizingTargetPortPoolPercent, c.subtreeEgressNodes], min=0)
        + { fieldConfig+: { defaults+: { custom+: { lineInterpolation: 'stepAfter' } } } },
        g.bars('Actuator actions', 'short', [
          g.target('sum by (%s, action, outcome) (increase(%s{%s}[$__rate_interval]))' % [c.treeLabel, actuator.actions.name, k.tree], '{{tree_id}} {{action}} {{outcome}}'),
        ], 'Scaling actions per interval, by outcome.')
        + g.withDataLinks([{ title: 'Actuator', url: '/d/%s?var-tree_id=${__field.labels.tree_id}&${__url_time_range}' % c.dashboards.actuator.uid }]),
        g.table('Firing alerts', 'none', [
          g.target('ALERTS{alertstate="firing", %s}' % k.tree, '{{alertname}}', instant=true, format='table'),
        ], 'Every alert of the rule pack firing now in the tree; runbooks in the panel links.', h=7)
        + { transformations: [{ id: 'organize', options: { excludeByName: { Time: true, Value: true, __name__: true, alertstate: true } } }] }
        + g.withLinks([g.link('Runbook', c.runbookURL)]),
      ],
      annotations=[
        k.scaleDecisionsAnnotation,
        g.annotation(
          'Actuator actions',
          'sum by (%s, action, outcome) (increase(%s{%s}[$__rate_interval])) > 0' % [c.treeLabel, actuator.actions.name, k.tree],
          '{{action}} {{outcome}}',
          'tree {{tree_id}}',
          'tree_id,action,outcome',
          'purple',
        ),
      ],
      links=k.links,
    ),
  },
}
