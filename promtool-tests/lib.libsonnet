// Builders of synthetic series for `promtool test rules`. Samples every 15 s;
// counters start high, as real ones do, so rate() extrapolates normally.
// std.toString, not '%g': jsonnet 0.18's %g costs a millisecond a call and
// overflows on 0. Inputs are chosen exact in binary, so they print exactly.
local num(x) = std.toString(x);
local metrics = import '../rules/metrics.libsonnet';
local actuatorMetrics = metrics.actuator;

{
  step:: 15,
  samples:: 4 * 40,  // 40 minutes

  // Plain concatenation in the hot paths: jsonnet 0.18's std.format is slow.
  selector(labels):: '{' + std.join(', ', [k + '="' + labels[k] + '"' for k in std.objectFields(labels)]) + '}',
  series(name, labels, values):: { series: name + $.selector(labels), values: values },

  // `x` constant for `n` samples, or a promtool values string as given.
  gauge(x, n=$.samples):: if std.isString(x) then x else num(x) + 'x' + n,
  // A counter growing by `perSecond` per second.
  counter(perSecond, n=$.samples, start=1000000):: num(start) + '+' + num(perSecond * $.step) + 'x' + n,

  target(tree, id, type, job, port):: {
    job: job,
    instance: id + ':' + port,
    tree_id: tree,
    node_id: id,
    node_type: type,
  },

  // node_exporter series of one node. `busy` is the busy ratio of every core
  // unless `coreBusy` lists it per core.
  nodeExporter(tree, id, type, busy=0.25, cores=2, coreBusy=null, mem=0.25, drops=0, loDrops=0, up=1, n=$.samples)::
    local t = $.target(tree, id, type, 'node-exporter', 9100);
    local perCore = if coreBusy != null then coreBusy else [busy for _ in std.range(1, cores)];
    local memTotal = 1073741824;
    std.flattenArrays([
      [
        $.series('node_cpu_seconds_total', t { cpu: std.toString(i), mode: 'idle' }, $.counter(1 - perCore[i], n)),
        $.series('node_cpu_seconds_total', t { cpu: std.toString(i), mode: 'user' }, $.counter(perCore[i], n)),
      ]
      for i in std.range(0, std.length(perCore) - 1)
    ]) + [
      $.series('node_memory_MemTotal_bytes', t, $.gauge(memTotal, n)),
      $.series('node_memory_MemAvailable_bytes', t, $.gauge((1 - mem) * memTotal, n)),
      $.series('node_network_receive_drop_total', t { device: 'eth0' }, $.counter(drops, n)),
      // Loopback drops never count.
      $.series('node_network_receive_drop_total', t { device: 'lo' }, $.counter(loDrops, n)),
      $.series('up', t, $.gauge(up, n)),
    ],

  // A promtool values string of 'AxN', 'A', '_xN' and 'stale' tokens with
  // each number A mapped by f (allocated and available ports from a percentage).
  mapValues(values, f)::
    std.join(' ', [
      local parts = std.split(tok, 'x');
      if parts[0] == '_' || tok == 'stale' then tok
      else std.join('x', [num(f(std.parseJson(parts[0])))] + parts[1:])
      for tok in std.split(values, ' ')
    ]),

  // The egress app's series. `pool` is the utilisation in percent of a
  // `poolSize`-port pool (allocated and available follow from it).
  egressApp(tree, id, pool=50, viewers=10, mounts=1, up=1, poolSize=100, n=$.samples)::
    local t = $.target(tree, id, 'egress', 'media-tree-egress', 7073);
    local ports(f) = if std.isString(pool) then $.mapValues(pool, f) else $.gauge(f(pool), n);
    [
      $.series('media_tree_egress_port_pool_utilization_percent', t, $.gauge(pool, n)),
      $.series(metrics.egress.portPoolAllocated, t, ports(function(p) p * poolSize / 100)),
      $.series(metrics.egress.portPoolAvailable, t, ports(function(p) poolSize - p * poolSize / 100)),
      $.series('media_tree_egress_active_viewers', t { session_id: 'sess-1' }, $.gauge(viewers, n)),
      $.series('media_tree_egress_active_mountpoints', t, $.gauge(mounts, n)),
      $.series('up', t, $.gauge(up, n)),
    ],

  // A whole egress node: node_exporter and app.
  egress(tree, id, busy=0.25, mem=0.25, drops=0, pool=50, viewers=10, mounts=1, n=$.samples)::
    $.nodeExporter(tree, id, 'egress', busy=busy, mem=mem, drops=drops, n=n)
    + $.egressApp(tree, id, pool=pool, viewers=viewers, mounts=mounts, n=n),

  // `count` egress nodes named <tree>-egress-<i>, all alike.
  egressFleet(tree, count, busy=0.125, mem=0.125, drops=0, pool=10, viewers=1, n=$.samples)::
    std.flattenArrays([
      $.egress(tree, '%s-egress-%d' % [tree, i], busy=busy, mem=mem, drops=drops, pool=pool, viewers=viewers, n=n)
      for i in std.range(1, count)
    ]),

  injection(tree, id, sessions=1, up=1, n=$.samples)::
    local t = $.target(tree, id, 'injection', 'media-tree-injection', 7070);
    [
      $.series('media_tree_injection_active_sessions', t { room_id: 'all' }, $.gauge(sessions, n)),
      $.series('up', t, $.gauge(up, n)),
    ],

  relay(tree, id, audioState=3, videoState=3, up=1, n=$.samples)::
    local t = $.target(tree, id, 'relay', 'media-tree-relay', 7071);
    [
      $.series('media_tree_relay_forwarder_state', t { pipeline: 'audio' }, $.gauge(audioState, n)),
      $.series('media_tree_relay_forwarder_state', t { pipeline: 'video' }, $.gauge(videoState, n)),
      $.series('up', t, $.gauge(up, n)),
    ],

  // RTP receive quality (RFC 3550) of one stream at a relay or egress node:
  // `expected` and `lost` packets per second, jitter in seconds.
  rtp(tree, id, type, streamType='video', ssrc='1234', expected=128, lost=0, jitter=0.001, n=$.samples)::
    local port = { relay: 7071, egress: 7073 }[type];
    local t = $.target(tree, id, type, 'media-tree-' + type, port) { stream_type: streamType, ssrc: ssrc };
    local m = metrics[type];
    [
      $.series(m.rtpPacketsExpected, t, $.counter(expected, n)),
      $.series(m.rtpPacketsLost, t, $.counter(lost, n)),
      $.series(m.rtpJitterSeconds, t, $.gauge(jitter, n)),
    ],

  // The actuator's own target: no tree_id (its series carry their own).
  actuatorTarget(instance='actuator-1:9095'):: { job: 'canopy-actuator', instance: instance },
  // `started`: its process_start_time_seconds (the tests' time 0 is the
  // epoch), an hour before the data by default.
  actuatorUp(up=1, instance='actuator-1:9095', started=-3600, n=$.samples)::
    [
      $.series('up', $.actuatorTarget(instance), $.gauge(up, n)),
      $.series('process_start_time_seconds', $.actuatorTarget(instance), $.gauge(started, n)),
    ],
  // Its families, each given as a promtool values string (or a constant).
  // Labelled counters appear at their first increment, at 1: '_x20 1x140'.
  actuatorNotifications(outcome, values, instance='actuator-1:9095', n=$.samples)::
    [$.series(actuatorMetrics.notifications, $.actuatorTarget(instance) { outcome: outcome }, $.gauge(values, n))],
  actuatorActions(tree, action, outcome, values, instance='actuator-1:9095', n=$.samples)::
    [$.series(actuatorMetrics.actions, $.actuatorTarget(instance) { tree_id: tree, action: action, outcome: outcome }, $.gauge(values, n))],
  actuatorFailures(tree, action, reason, values, instance='actuator-1:9095', n=$.samples)::
    [$.series(actuatorMetrics.failures, $.actuatorTarget(instance) { tree_id: tree, action: action, reason: reason }, $.gauge(values, n))],
  actuatorInFlight(tree, values, instance='actuator-1:9095', n=$.samples)::
    [$.series(actuatorMetrics.inFlight, $.actuatorTarget(instance) { tree_id: tree }, $.gauge(values, n))],

  runbook(alert):: 'https://github.com/canopy-media/canopy/blob/main/rules/runbook.md#' + std.asciiLower(alert),

  // Spelled out, not read from the config: the uids are a contract (links and
  // bookmarks rely on them), so a change must show up here.
  treeDashboard(tree):: 'http://localhost:3000/d/f4b4cbe434e6e83d?var-tree_id=' + tree,
  // The actuator's alerts: on their tree, or on every tree ($__all) without one.
  actuatorDashboard(tree=null):: 'http://localhost:3000/d/2ef6f1a3d7b13565?var-tree_id=' + (if tree == null then '$__all' else tree),
  nodeDashboard(labels):: 'http://localhost:3000/d/cb6b23c004e46f1f?var-tree_id=%(tree_id)s&var-node_type=%(node_type)s&var-node_id=%(node_id)s' % labels,

  // Firing alerts named `alert` (any other labels): a subset check, since
  // exp_labels must otherwise list every label.
  firing(alert, extra=''):: 'ALERTS{alertname="%s", alertstate="firing"%s}' % [alert, extra],

  file(tests, rules='../rules/media-tree-rules.yaml'):: {
    rule_files: [rules, '../rules/media-tree-alerts.yaml'],
    evaluation_interval: '30s',
    group_eval_order: ['media-tree.sizing', 'media-tree.scaling', 'media-tree.stream-quality', 'media-tree.operational', 'canopy.actuator'],
    tests: [{ interval: '15s' } + t for t in tests],
  },
}
