// Node detail: resources, network, disk and RTP of chosen nodes, and the
// node apps' own gauges by node type.
local metrics = import '../../rules/metrics.libsonnet';
local g = import 'grafana.libsonnet';
local ne = import 'node-exporter.libsonnet';

{
  local c = $._config,
  local r = $.recorded,
  local k = $.dashboardCommon,
  local sel = k.node,
  local host = '%s, %s' % [c.nodeExporterSelector, sel],
  local rateOf(name, extra, by) = 'sum by (%s) (rate(%s{%s}[$__rate_interval]))' % [by, name, extra],
  // Histograms of the viewers' receiver reports (no per-viewer label): a quantile and the mean per node and stream.
  local viewerSel = '%s, %s' % [c.egressSelector, sel],
  local viewerQuantile(q, name) = 'histogram_quantile(%g, %s)' % [q, rateOf(name + '_bucket', viewerSel, 'node_id, stream_type, le')],
  local viewerMean(name) = '%s / %s' % [rateOf(name + '_sum', viewerSel, 'node_id, stream_type'), rateOf(name + '_count', viewerSel, 'node_id, stream_type')],

  // RTP of the three apps, one target each: [name, selector, verb].
  local rtp(kind) = [
    [metrics.injection['rtp%sSent' % kind], c.injectionSelector, 'sent'],
    [metrics.relay['rtp%sForwarded' % kind], c.relaySelector, 'forwarded'],
    [metrics.egress['rtp%sReceived' % kind], c.egressSelector, 'received'],
  ],

  grafanaDashboards+:: {
    'node-detail.json': g.dashboard(
      c.dashboards.nodeDetail.title,
      c.dashboards.nodeDetail.uid,
      'Per node: CPU, memory, network, disk, RTP by stream type and the node apps of each type.',
      [k.treeVariable, k.nodeTypeVariable, k.nodeIdVariable],
      [
        g.row('Resources'),
        g.timeseries('CPU', 'percentunit', [g.target('%s{%s}' % [r.nodeCpu, sel], '{{node_id}}')], 'Busy share of each node, all cores together.', min=0, max=1)
        + g.withThresholdLines([['green', null], ['yellow', c.cpuScaleOutPercent / 100], ['orange', c.highCpuPercent / 100], ['red', c.unhealthyPercent / 100]])
        + g.withLinks([k.runbook('HighCPUUsage')]),
        g.timeseries('Memory', 'percentunit', [g.target('%s{%s}' % [r.nodeMemory, sel], '{{node_id}}')], 'Used share of memory (MemAvailable).', min=0, max=1)
        + g.withThresholdLines([['green', null], ['orange', c.highMemoryPercent / 100], ['red', c.unhealthyPercent / 100]])
        + g.withLinks([k.runbook('HighMemoryUsage')]),
        g.timeseries('Network receive / transmit', 'Bps', [
          g.target(rateOf(ne.receiveBytes, host + ', device!="lo"', 'node_id'), '{{node_id}} receive'),
          g.target(rateOf(ne.transmitBytes, host + ', device!="lo"', 'node_id'), '{{node_id}} transmit'),
        ], 'Bytes/s on every interface but loopback; transmit on the right axis.', min=0)
        + g.withRightAxis('/ transmit$/'),
        g.timeseries('Received packets dropped', 'pps', [g.target($.nodeExprs.drops(sel, '$__rate_interval'), '{{node_id}}')], 'PacketLoss fires above %g packets/s for %s.' % [c.packetLossPerNode, c.forDurations.packetLoss], min=0)
        + g.withThresholdLines([['green', null], ['red', c.packetLossPerNode]])
        + g.withLinks([k.runbook('PacketLoss')]),
        g.timeseries('Disk space used', 'percentunit', [
          g.target('1 - %s{%s, %s} / %s{%s, %s}' % [ne.filesystemAvail, host, 'fstype!~"tmpfs|ramfs|squashfs"', ne.filesystemSize, host, 'fstype!~"tmpfs|ramfs|squashfs"'], '{{node_id}} {{mountpoint}}'),
        ], min=0, max=1)
        + g.withThresholdLines([['green', null], ['orange', 0.8], ['red', 0.9]]),
        g.timeseries('Disk read / write', 'Bps', [
          g.target(rateOf(ne.diskReadBytes, host, 'node_id'), '{{node_id}} read'),
          g.target(rateOf(ne.diskWrittenBytes, host, 'node_id'), '{{node_id}} write'),
        ], 'All block devices; write on the right axis.', min=0)
        + g.withRightAxis('/ write$/'),

        g.row('RTP by stream type'),
        g.timeseries('RTP packets', 'pps', [
          g.target(rateOf(x[0], '%s, %s' % [x[1], sel], 'node_id, stream_type'), '{{node_id}} {{stream_type}} %s' % x[2])
          for x in rtp('Packets')
        ], 'Injection: sent; relay: forwarded; egress: received.', min=0),
        g.timeseries('RTP bitrate', 'bps', [
          g.target('8 * ' + rateOf(x[0], '%s, %s' % [x[1], sel], 'node_id, stream_type'), '{{node_id}} {{stream_type}} %s' % x[2])
          for x in rtp('Bytes')
        ], 'Payload plus RTP headers, in bits/s.', min=0),
        g.timeseries('RTP loss', 'percentunit', [
          g.target('%s{%s}' % [r.nodeRtpLossRatio, sel], '{{node_id}} {{stream_type}}'),
        ], 'Relay and egress: share of the RTP packets from the parent that never arrived (RFC 3550: expected from the highest sequence number, minus received), over %s. MediaTreeRTPLoss fires above %g%% for %s.' % [c.rtpRateWindow, c.rtpLossAlertPercent, c.forDurations.rtpLoss], min=0)
        + g.withThresholdLines([['green', null], ['red', c.rtpLossAlertPercent / 100]])
        + g.withLinks([k.runbook('MediaTreeRTPLoss')]),
        g.timeseries('RTP jitter', 's', [
          g.target($.nodeExprs.jitter(sel), '{{node_id}} {{stream_type}}'),
        ], 'Relay and egress: interarrival jitter (RFC 3550 A.8) of the worst stream of each type. MediaTreeRTPJitter fires above %gs for %s.' % [c.rtpJitterAlertSeconds, c.forDurations.rtpJitter], min=0)
        + g.withThresholdLines([['green', null], ['red', c.rtpJitterAlertSeconds]])
        + g.withLinks([k.runbook('MediaTreeRTPJitter')]),

        g.row('What viewers report'),
        g.timeseries('Viewer loss', 'percentunit', [
          g.target(viewerQuantile(0.95, metrics.egress.viewerFractionLost), '{{node_id}} {{stream_type}} p95'),
          g.target(viewerMean(metrics.egress.viewerFractionLost), '{{node_id}} {{stream_type}} mean'),
        ], "Egress: fraction lost in the WHEP viewers' RTCP receiver reports, one observation a report (about 1/s per viewer).", w=8, min=0),
        g.timeseries('Viewer jitter', 's', [
          g.target(viewerQuantile(0.95, metrics.egress.viewerJitter), '{{node_id}} {{stream_type}} p95'),
          g.target(viewerMean(metrics.egress.viewerJitter), '{{node_id}} {{stream_type}} mean'),
        ], 'Egress: interarrival jitter the viewers report (RFC 3550 A.8).', w=8, min=0),
        g.timeseries('Viewer round trip', 's', [
          g.target(viewerQuantile(0.95, metrics.egress.viewerRtt), '{{node_id}} {{stream_type}} p95'),
          g.target(viewerMean(metrics.egress.viewerRtt), '{{node_id}} {{stream_type}} mean'),
        ], "Egress: round trip to the viewers, from their receiver reports against the node's sender reports.", w=8, min=0),

        g.row('Node apps'),
        g.stateTimeline('Scrape targets', 'none', [g.target('up{%s}' % sel, '{{node_id}} {{job}}')], 'App and node_exporter of each node; a down target reports nothing else.', w=12)
        + g.withMappings(g.valueMappings({ '0': ['down', 'red'], '1': ['up', 'green'] }))
        + g.withLinks([k.runbook('MediaTreeTargetDown')]),
        g.stateTimeline('Relay forwarder pipelines', 'none', [
          g.target('%s{%s, %s}' % [metrics.relay.forwarderState, c.relaySelector, sel], '{{node_id}} {{pipeline}}'),
        ], w=12)
        + g.withMappings(k.forwarderStates)
        + g.withLinks([k.runbook('ForwarderPipelineDown')]),
        g.timeseries('Egress viewers', 'short', [
          g.target('sum by (node_id) (%s{%s, %s})' % [metrics.egress.activeViewers, c.egressSelector, sel], '{{node_id}}'),
        ], w=8, min=0),
        g.timeseries('Egress port pool', 'percent', [
          g.target('%s{%s, %s}' % [metrics.egress.portPoolUtilizationPercent, c.egressSelector, sel], '{{node_id}}'),
        ], w=8, min=0, max=100)
        + g.withThresholdLines(k.portPoolSteps)
        + g.withLinks([k.runbook('PortPoolExhaustion')]),
        g.timeseries('Egress mountpoints', 'short', [
          g.target('%s{%s, %s}' % [metrics.egress.activeMountpoints, c.egressSelector, sel], '{{node_id}}'),
        ], w=8, min=0),
        g.timeseries('Injection sessions', 'short', [
          g.target('sum by (node_id) (%s{%s, %s})' % [metrics.injection.activeSessions, c.injectionSelector, sel], '{{node_id}}'),
        ], w=8, min=0),
        g.timeseries('Injection children', 'short', [
          g.target('%s{%s, %s}' % [metrics.injection.childrenCount, c.injectionSelector, sel], '{{node_id}}'),
        ], w=8, min=0),
        g.timeseries('Relay destinations', 'short', [
          g.target('%s{%s, %s}' % [metrics.relay.destinationsCount, c.relaySelector, sel], '{{node_id}} {{stream_type}}'),
        ], w=8, min=0),
      ],
      annotations=[k.scaleDecisionsAnnotation],
      links=k.links,
    ),
  },
}
