// The one place for Canopy's selectors, thresholds, windows and durations.
// Override the monitoring-mixin way: (import 'mixin.libsonnet') + { _config+:: { ... } }.
{
  _config+:: {
    // Scrape jobs of deploy/prometheus.yml (docs/architecture.md contract).
    jobs: {
      nodeExporter: 'node-exporter',
      injection: 'media-tree-injection',
      relay: 'media-tree-relay',
      egress: 'media-tree-egress',
    },
    nodeExporterSelector: 'job="%s"' % self.jobs.nodeExporter,
    injectionSelector: 'job="%s"' % self.jobs.injection,
    relaySelector: 'job="%s"' % self.jobs.relay,
    egressSelector: 'job="%s"' % self.jobs.egress,
    // The actuator's own scrape job: not a tree node, so not in `jobs` (whose
    // targets need a tree_id and feed MediaTreeTargetDown and the tree lists).
    actuatorJob: 'canopy-actuator',
    actuatorSelector: 'job="%s"' % self.actuatorJob,

    treeLabel: 'tree_id',

    // Scaling thresholds: the seed's defaults, in percent as the seed states them.
    cpuScaleOutPercent: 70,
    cpuScaleInPercent: 20,
    memoryScaleOutPercent: 80,
    memoryScaleInPercent: 30,
    unhealthyPercent: 90,
    portPoolScaleOutPercent: 85,
    // What `port_pool` compares with it: 'tree' (every egress port of the
    // tree together) or 'fullest' (the fullest node's pool: the seed's, kept
    // as the surge bench's baseline; a tree stays "full" after a scale-out
    // while viewers stay where they joined).
    portPoolSignal: 'tree',
    portPoolScaleInPercent: 30,
    droppedPacketsScaleOut: 100,  // packets/s per tree
    // RTP lost on the way to a tree's egress nodes (RFC 3550: expected minus
    // received), in percent of expected: the other packet_loss signal, which
    // sees loss upstream of a node that its NIC counters never do.
    rtpLossScaleOutPercent: 2,
    // Scale in only while more egress nodes than this are up; also the
    // baseline the sizing counts subtrees beyond (rules/sizing.libsonnet).
    egressBaselineNodes: 8,

    // Sizing (rules/sizing.libsonnet), HPA-style: subtrees beyond the baseline
    // so that the tree's port pools would sit at this utilisation, under
    // portPoolScaleOutPercent so that a tree sized for its load stops firing.
    sizingTargetPortPoolPercent: 80,
    // Egress nodes in one subtree: the actuator's --subtree-size.
    subtreeEgressNodes: 2,
    // Never ask for more than this (the actuator's own bounds still apply).
    maxSubtrees: 10,

    // Predictive scale-out (reason="forecast"): predict_linear of the tree's
    // port-pool utilisation over forecastWindow, forecastProvisioningSeconds
    // plus forecastMarginSeconds ahead, above portPoolScaleOutPercent. Opt-in.
    forecastScaleOut: false,
    forecastWindow: '5m',
    // From a decision to a subtree serving viewers: alert `for`, routing,
    // provisioning, the first scrape of the new nodes.
    forecastProvisioningSeconds: 180,
    forecastMarginSeconds: 60,

    // Operational alert thresholds (the seed's alert rules).
    highCpuPercent: 80,
    highMemoryPercent: self.memoryScaleOutPercent,
    portPoolExhaustionPercent: self.portPoolScaleOutPercent,
    packetLossPerNode: self.droppedPacketsScaleOut,
    // One node's RTP from its parent, per stream type (MediaTreeRTPLoss, MediaTreeRTPJitter).
    rtpLossAlertPercent: self.rtpLossScaleOutPercent,
    // Interarrival jitter (RFC 3550 A.8) a WebRTC jitter buffer starts to feel.
    rtpJitterAlertSeconds: 0.03,
    // A session's publisher (WHIP or RTP ingest) sent no RTP for this long
    // (MediaTreePublisherStalled): well above a scrape interval, which the
    // last-packet time can lag by; below the injection's WHIP grace (30s) plus `for`.
    publisherStallSeconds: 30,

    // Windows.
    cpuRateWindow: '1m',
    cpuAverageWindow: '5m',
    dropRateWindow: '5m',
    // Short, so a loss shows within a minute of its start (the loss-detection bench).
    rtpRateWindow: '1m',

    // How long a condition holds before its alert fires.
    forDurations: {
      scaleOut: '2m',
      forecast: '2m',
      scaleIn: '15m',
      highCpu: '5m',
      highMemory: '5m',
      portPoolExhaustion: '2m',
      packetLoss: '3m',
      rtpLoss: '2m',
      rtpJitter: '2m',
      publisherStalled: '30s',
      forwarderPipelineDown: '1m',
      orphanMountpoints: '10m',
      targetDown: '2m',
      actuatorDown: '2m',
      actuatorActionsFailing: '0m',
      actuatorRejectingNotifications: '10m',
      actuatorUnavailable: '5m',
      actuatorStuck: '15m',
      actuatorScaleOutNotActing: '15m',
    },

    // The actuator's alerts (rules/actuator-alerts.libsonnet). Failed actions
    // stay alerting this long after the last one.
    actuatorFailuresWindow: '15m',
    // Webhook posts refused (rejected) or not recorded (unavailable) within
    // this window; rejections must go on for actuatorRejectingNotifications
    // (longer than the window, so one stray post never fires).
    actuatorNotificationsWindow: '5m',
    // An action in flight with no break for actuatorStuck: longer than the
    // longest action takes by default (scale-in: drain up to 10m, then removal).
    // Read as the minimum over this window, so one failed scrape does not
    // restart the clock (and a 0 does: the alert fires 15m to 20m after the
    // action started).
    actuatorGaugeWindow: '5m',
    // MediaTreeScaleOut firing for actuatorScaleOutNotActing with no scale-out
    // of that tree succeeding within this window.
    actuatorScaleOutWindow: '15m',

    // Evaluation interval of every rule group but the dashboards' one.
    ruleInterval: '30s',
    // Evaluation interval of what only dashboards and reports read (viewers total).
    dashboardRuleInterval: '1m',

    // %s is the alert name in lower case: the runbook's section anchors.
    runbookURL: 'https://github.com/canopy-media/canopy/blob/main/rules/runbook.md',
    runbookURLPattern: self.runbookURL + '#%s',

    // Grafana dashboards (dashboards/jsonnet/). Uids are fixed so links and
    // alerts' dashboard_url survive re-rendering and re-importing.
    local uid(name) = std.substr(std.md5('canopy-' + name), 0, 16),
    dashboards: {
      treeOverview: { uid: uid('tree-overview'), title: 'Canopy / Tree overview' },
      nodeDetail: { uid: uid('node-detail'), title: 'Canopy / Node detail' },
      actuator: { uid: uid('actuator'), title: 'Canopy / Actuator' },
    },
    // %s is a dashboard uid; alerts' dashboard_url appends the variables of
    // the alert's tree (and node), so the link opens on what fired.
    grafanaURL: 'http://localhost:3000',
    dashboardURLPattern: self.grafanaURL + '/d/%s',
    // Alerts about a whole tree (by component label) open Tree overview; the
    // others, but the actuator's, are about one node and open Node detail on it.
    treeAlertComponents: ['scaling', 'cleanup'],
    // Alerts about the actuator open the Actuator dashboard, on their tree
    // when they have one (all trees otherwise).
    actuatorAlertComponents: ['actuator'],
    // Port-pool panels: yellow from here (the seed's dashboard), red above
    // portPoolScaleOutPercent.
    portPoolWarningPercent: 70,
  },
}
