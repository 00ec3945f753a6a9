// Actuator: what the scaling loop received, did, how long it took and how it
// failed. The metric names are the contract in actuator-metrics.libsonnet.
local g = import 'grafana.libsonnet';

{
  local c = $._config,
  local a = $.actuatorMetrics,
  local r = $.recorded,
  local k = $.dashboardCommon,
  local byTree(name) = '%s{%s}' % [name, k.tree],
  local quantile(q) = g.target(
    'histogram_quantile(%g, sum by (le, action) (rate(%s_bucket[$__rate_interval])))' % [q, a.duration.name],
    'p%d {{action}}' % (q * 100),
  ),

  grafanaDashboards+:: {
    'actuator.json': g.dashboard(
      c.dashboards.actuator.title,
      c.dashboards.actuator.uid,
      'The actuator (Alertmanager webhook to subtrees): notifications, actions, durations, failures and subtrees per tree. Metric contract: dashboards/jsonnet/actuator-metrics.libsonnet.',
      [k.treeVariable],
      [
        g.row('Now'),
        g.stat('Actuator up', 'none', [g.target('up{%s}' % c.actuatorSelector, '{{instance}}')], 'Its own scrape target (job %s).' % c.actuatorJob)
        + g.withMappings(g.valueMappings({ '0': ['down', 'red'], '1': ['up', 'green'] })),
        g.stat('Subtrees', 'short', [g.target('sum(%s)' % byTree(a.subtrees.name), 'subtrees')], 'Subtrees the actuator has added, selected trees together.'),
        g.stat('Actions in flight', 'short', [g.target('sum(%s)' % byTree(a.inFlight.name), 'in flight')]),
        g.stat('Actions in range', 'short', [g.target('sum(increase(%s[$__range]))' % byTree(a.actions.name), 'actions')]),
        g.stat('Failures in range', 'short', [g.target('sum(increase(%s[$__range]))' % byTree(a.failures.name), 'failures')])
        + g.withThresholds([['green', null], ['red', 1]]),
        g.stat('Notifications rejected in range', 'short', [g.target('sum(increase(%s{outcome="rejected"}[$__range]))' % a.notifications.name, 'rejected')], 'Webhook posts refused: bad payload or credentials.')
        + g.withThresholds([['green', null], ['orange', 1]]),

        g.row('Loop'),
        g.timeseries('Notifications', 'reqps', [
          g.target('sum by (outcome) (rate(%s[$__rate_interval]))' % a.notifications.name, '{{outcome}}'),
        ], "Alertmanager's webhook posts, by outcome. Alertmanager resends a group every group_interval.", min=0),
        k.scaleAlertsPanel(),
        g.bars('Actions', 'short', [
          g.target('sum by (%s, action, outcome) (increase(%s[$__rate_interval]))' % [c.treeLabel, byTree(a.actions.name)], '{{tree_id}} {{action}} {{outcome}}'),
        ], 'Per interval, by tree, action and outcome.')
        + g.withDataLinks([k.treeOverviewLink]),
        g.bars('Failures', 'short', [
          g.target('sum by (%s, action, reason) (increase(%s[$__rate_interval]))' % [c.treeLabel, byTree(a.failures.name)], '{{tree_id}} {{action}} {{reason}}'),
        ], 'Failed actions by reason.')
        + g.withDataLinks([k.treeOverviewLink]),
        g.timeseries('Action duration', 's', [quantile(0.5), quantile(0.95)], 'From the decision to the subtree serving (scale-out) or removed (scale-in).', min=0),
        g.timeseries('Subtrees and egress nodes per tree', 'short', [
          g.target(byTree(a.subtrees.name), '{{tree_id}} subtrees'),
          g.target(byTree(r.treeEgressUp), '{{tree_id}} egress nodes up'),
        ], 'What the actuator provisioned against what Prometheus sees answering.', min=0)
        + g.withDataLinks([k.treeOverviewLink]),
      ],
      annotations=[k.scaleDecisionsAnnotation],
      links=k.links,
    ),
  },
}
