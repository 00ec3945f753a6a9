// The operational alerts: each firing just above its threshold after its
// `for`, and silent just below.
local lib = import 'lib.libsonnet';

local node(tree, id, type) = { tree_id: tree, node_id: id, node_type: type };
local expect(alert, labels, description, summary) = {
  exp_labels: labels,
  exp_annotations: {
    summary: summary,
    description: description,
    runbook_url: lib.runbook(alert),
    dashboard_url: if labels.component == 'cleanup' then lib.treeDashboard(labels.tree_id) else lib.nodeDashboard(labels),
  },
};

lib.file([
  {
    name: 'HighCPUUsage: a node above 80 % for 5m, any node type',
    input_series:
      lib.nodeExporter('t', 'egress-1', 'egress', busy=0.8125)
      + lib.nodeExporter('t', 'egress-2', 'egress', busy=0.78125)
      + lib.nodeExporter('t', 'relay-1', 'relay', busy=0.875),
    local summary = 'A media tree node is short of CPU.',
    alert_rule_test: [
      { alertname: 'HighCPUUsage', eval_time: '5m', exp_alerts: [] },
      {
        alertname: 'HighCPUUsage',
        eval_time: '5m30s',
        exp_alerts: [
          expect('HighCPUUsage', lib.target('t', 'egress-1', 'egress', 'node-exporter', 9100) { severity: 'warning', component: 'node' }, 'CPU of egress node egress-1 (tree t) is 81.25%.', summary),
          expect('HighCPUUsage', lib.target('t', 'relay-1', 'relay', 'node-exporter', 9100) { severity: 'warning', component: 'node' }, 'CPU of relay node relay-1 (tree t) is 87.5%.', summary),
        ],
      },
    ],
  },
  {
    name: 'HighMemoryUsage: a node above 80 % for 5m',
    input_series:
      lib.nodeExporter('t', 'egress-1', 'egress', mem=0.8125)
      + lib.nodeExporter('t', 'egress-2', 'egress', mem=0.78125),
    alert_rule_test: [
      { alertname: 'HighMemoryUsage', eval_time: '4m30s', exp_alerts: [] },
      {
        alertname: 'HighMemoryUsage',
        eval_time: '5m',
        exp_alerts: [expect('HighMemoryUsage', lib.target('t', 'egress-1', 'egress', 'node-exporter', 9100) { severity: 'warning', component: 'node' }, 'Memory of egress node egress-1 (tree t) is 81.25% used.', 'A media tree node is short of memory.')],
      },
    ],
  },
  {
    name: 'PortPoolExhaustion: above 85 % for 2m, per egress node',
    input_series:
      lib.egressApp('t', 'egress-1', pool=86)
      + lib.egressApp('t', 'egress-2', pool=85),
    alert_rule_test: [
      { alertname: 'PortPoolExhaustion', eval_time: '1m30s', exp_alerts: [] },
      {
        alertname: 'PortPoolExhaustion',
        eval_time: '2m',
        exp_alerts: [expect(
          'PortPoolExhaustion',
          lib.target('t', 'egress-1', 'egress', 'media-tree-egress', 7073) { severity: 'critical', component: 'egress' },
          'Port pool of egress node egress-1 (tree t) is 86% used.',
          'An egress node is running out of ports.',
        )],
      },
    ],
  },
  {
    // 2.625 and 2.5 of 128 packets/s: 2.05 % and 1.95 %, either side of 2 %.
    name: 'MediaTreeRTPLoss: a stream of a relay or egress node missing over 2 % of its RTP for 2m',
    input_series:
      lib.rtp('t', 'egress-1', 'egress', 'video', expected=128, lost=2.625)
      + lib.rtp('t', 'egress-1', 'egress', 'audio', ssrc='99', expected=64, lost=0)
      + lib.rtp('t', 'egress-2', 'egress', 'video', expected=128, lost=2.5)
      + lib.rtp('t', 'relay-1', 'relay', 'audio', ssrc='99', expected=128, lost=2.625),
    local summary = 'RTP packets are lost on the way to a media tree node.',
    local labels(id, type, port, streamType) = lib.target('t', id, type, 'media-tree-' + type, port) { stream_type: streamType, severity: 'warning', component: 'network' },
    alert_rule_test: [
      // The 1m rate exists from 30s; `for: 2m` ends at 2m30s.
      { alertname: 'MediaTreeRTPLoss', eval_time: '2m', exp_alerts: [] },
      {
        alertname: 'MediaTreeRTPLoss',
        eval_time: '2m30s',
        exp_alerts: [
          expect('MediaTreeRTPLoss', labels('egress-1', 'egress', 7073, 'video'), 'egress node egress-1 (tree t) misses 2.051% of its video RTP packets.', summary),
          expect('MediaTreeRTPLoss', labels('relay-1', 'relay', 7071, 'audio'), 'relay node relay-1 (tree t) misses 2.051% of its audio RTP packets.', summary),
        ],
      },
    ],
  },
  {
    name: 'MediaTreeRTPLoss: resolves when the loss stops; no stream, no ratio',
    input_series: [
      lib.series('media_tree_egress_rtp_packets_expected_total', lib.target('t', 'egress-1', 'egress', 'media-tree-egress', 7073) { stream_type: 'video', ssrc: '1' }, '1000+1920x40 2920x120'),
      lib.series('media_tree_egress_rtp_packets_lost_total', lib.target('t', 'egress-1', 'egress', 'media-tree-egress', 7073) { stream_type: 'video', ssrc: '1' }, '0+96x40 3840x120'),
    ],
    alert_rule_test: [
      { alertname: 'MediaTreeRTPLoss', eval_time: '8m', exp_alerts: [expect('MediaTreeRTPLoss', lib.target('t', 'egress-1', 'egress', 'media-tree-egress', 7073) { stream_type: 'video', severity: 'warning', component: 'network' }, 'egress node egress-1 (tree t) misses 5% of its video RTP packets.', 'RTP packets are lost on the way to a media tree node.')] },
      { alertname: 'MediaTreeRTPLoss', eval_time: '15m', exp_alerts: [] },
    ],
    promql_expr_test: [
      // The stream stopped: nothing expected, so no ratio at all (not NaN, not 0).
      { expr: 'node_id:media_tree_rtp_packets_lost:ratio_rate1m', eval_time: '15m', exp_samples: [] },
    ],
  },
  {
    // 31.25 ms and 29.3 ms, either side of 30 ms.
    name: 'MediaTreeRTPJitter: the worst stream of a type above 30 ms for 2m',
    input_series:
      lib.rtp('t', 'egress-1', 'egress', 'video', ssrc='1', jitter=0.03125)
      + lib.rtp('t', 'egress-1', 'egress', 'video', ssrc='2', jitter=0.001)
      + lib.rtp('t', 'egress-2', 'egress', 'video', jitter=0.029296875),
    alert_rule_test: [
      { alertname: 'MediaTreeRTPJitter', eval_time: '1m30s', exp_alerts: [] },
      {
        alertname: 'MediaTreeRTPJitter',
        eval_time: '2m',
        exp_alerts: [expect('MediaTreeRTPJitter', lib.target('t', 'egress-1', 'egress', 'media-tree-egress', 7073) { stream_type: 'video', severity: 'warning', component: 'network' }, 'video RTP reaches egress node egress-1 (tree t) with 31.25ms of interarrival jitter.', 'RTP reaches a media tree node with high jitter.')],
      },
    ],
  },
  {
    name: 'PacketLoss: a node dropping over 100 pkt/s (loopback excluded) for 3m',
    input_series:
      lib.nodeExporter('t', 'egress-1', 'egress', drops=101)
      + lib.nodeExporter('t', 'egress-2', 'egress', drops=99, loDrops=5000),
    alert_rule_test: [
      // The 5m rate reaches its full value at 5m; `for: 3m` ends at 8m.
      { alertname: 'PacketLoss', eval_time: '7m30s', exp_alerts: [] },
      {
        alertname: 'PacketLoss',
        eval_time: '8m',
        exp_alerts: [expect('PacketLoss', lib.target('t', 'egress-1', 'egress', 'node-exporter', 9100) { severity: 'warning', component: 'network' }, 'egress node egress-1 (tree t) drops 101 packets/s.', 'A media tree node drops received packets.')],
      },
    ],
  },
  {
    // Last packets at 120 s for sess-1; sess-2's publisher keeps sending.
    name: "MediaTreePublisherStalled: no RTP from a session's publisher for over 30 s, for 30s",
    local t = lib.target('t', 'injection-1', 'injection', 'media-tree-injection', 7070),
    local last = 'media_tree_injection_publisher_last_packet_timestamp_seconds',
    input_series: [
      lib.series(last, t { session_id: 'sess-1' }, '0+15x8 120x30'),
      lib.series(last, t { session_id: 'sess-2' }, '0+15x38'),
    ],
    alert_rule_test: [
      // 60 s without media at 3m: pending.
      { alertname: 'MediaTreePublisherStalled', eval_time: '3m', exp_alerts: [] },
      {
        alertname: 'MediaTreePublisherStalled',
        eval_time: '3m30s',
        exp_alerts: [expect(
          'MediaTreePublisherStalled',
          t { session_id: 'sess-1', severity: 'warning', component: 'ingest' },
          'Session sess-1 on injection injection-1 (tree t) has had no RTP from its publisher for 1m 30s.',
          "A session's publisher sends no media.",
        )],
      },
    ],
  },
  {
    name: 'ForwarderPipelineDown: a pipeline out of PLAYING for 1m',
    input_series:
      lib.relay('t', 'relay-1', videoState='3x20 2x140')
      + lib.relay('t', 'relay-2'),
    alert_rule_test: [
      // '3x20' is 21 samples: state 2 from 5m15s, pending at 5m30s, firing 1m later.
      { alertname: 'ForwarderPipelineDown', eval_time: '6m', exp_alerts: [] },
      {
        alertname: 'ForwarderPipelineDown',
        eval_time: '6m30s',
        exp_alerts: [expect(
          'ForwarderPipelineDown',
          lib.target('t', 'relay-1', 'relay', 'media-tree-relay', 7071) { pipeline: 'video', severity: 'critical', component: 'relay' },
          'The video pipeline of relay relay-1 (tree t) is in state 2 (3 is PLAYING).',
          'A relay forwarder pipeline is not playing.',
        )],
      },
    ],
  },
  {
    name: 'OrphanMountpoints: mountpoints in a tree whose injection has no session, for 10m',
    input_series:
      lib.egressApp('orphaned', 'egress-1', mounts=1)
      + lib.egressApp('orphaned', 'egress-2', mounts=1)
      + lib.injection('orphaned', 'injection-1', sessions=0)
      + lib.egressApp('live', 'egress-3', mounts=1)
      + lib.injection('live', 'injection-2', sessions=1)
      // No injection series at all: not an orphan, a down target.
      + lib.egressApp('headless', 'egress-4', mounts=1),
    alert_rule_test: [
      { alertname: 'OrphanMountpoints', eval_time: '9m30s', exp_alerts: [] },
      {
        alertname: 'OrphanMountpoints',
        eval_time: '10m',
        exp_alerts: [expect(
          'OrphanMountpoints',
          { tree_id: 'orphaned', severity: 'info', component: 'cleanup' },
          '2 mountpoints exist in tree orphaned but its injection reports no active session.',
          'Egress mountpoints exist without a live session.',
        )],
      },
    ],
  },
  {
    name: 'MediaTreeTargetDown: a down relay, whose forwarder state vanished with it',
    input_series:
      lib.relay('t', 'relay-1', up='1x20 0x140', audioState='3x20 stale', videoState='3x20 stale')
      + lib.nodeExporter('t', 'relay-1', 'relay'),
    alert_rule_test: [
      // Down from 5m15s, pending at 5m30s, firing 2m later.
      { alertname: 'MediaTreeTargetDown', eval_time: '7m', exp_alerts: [] },
      {
        alertname: 'MediaTreeTargetDown',
        eval_time: '7m30s',
        exp_alerts: [expect(
          'MediaTreeTargetDown',
          lib.target('t', 'relay-1', 'relay', 'media-tree-relay', 7071) { severity: 'critical', component: 'monitoring' },
          'Target media-tree-relay of relay node relay-1 (tree t) fails its scrapes.',
          'A media tree scrape target is down.',
        )],
      },
      // The seed's alert stays silent here: that is why the target alert exists.
      { alertname: 'ForwarderPipelineDown', eval_time: '7m30s', exp_alerts: [] },
    ],
  },
])
