// Canopy's rule pack as a monitoring mixin: _config, prometheusRules, prometheusAlerts.
// Links applied to our alerts only, never over an explicit annotation: a
// runbook_url into rules/runbook.md and a dashboard_url opening the dashboard
// of the alert's tree (tree alerts), the Actuator dashboard (the actuator's
// alerts: on their tree, or on every tree when they have none) or the node
// (the others) with its variables set.
local withLinks(mixin) = mixin {
  local c = self._config,
  local treeVars = 'var-tree_id={{ $labels.tree_id }}',
  local nodeVars = treeVars + '&var-node_type={{ $labels.node_type }}&var-node_id={{ $labels.node_id }}',
  local treeOrAll = 'var-tree_id={{ with $labels.tree_id }}{{ . }}{{ else }}$__all{{ end }}',
  local dashboardURL(rule) =
    if std.member(c.treeAlertComponents, rule.labels.component)
    then (c.dashboardURLPattern % c.dashboards.treeOverview.uid) + '?' + treeVars
    else if std.member(c.actuatorAlertComponents, rule.labels.component)
    then (c.dashboardURLPattern % c.dashboards.actuator.uid) + '?' + treeOrAll
    else (c.dashboardURLPattern % c.dashboards.nodeDetail.uid) + '?' + nodeVars,
  local links(rule) =
    local a = std.get(rule, 'annotations', {});
    (if std.objectHas(a, 'runbook_url') then {} else { runbook_url: c.runbookURLPattern % std.asciiLower(rule.alert) })
    + (if std.objectHas(a, 'dashboard_url') then {} else { dashboard_url: dashboardURL(rule) }),
  local linked(groups) = [
    g {
      rules: [
        if std.objectHas(rule, 'alert') then rule { annotations+: links(rule) } else rule
        for rule in g.rules
      ],
    }
    for g in groups
  ],
  // The scaling alerts live in prometheusRules, beside their inputs.
  prometheusRules+:: { groups: linked(super.groups) },
  prometheusAlerts+:: { groups: linked(super.groups) },
};

withLinks(
  (import 'config.libsonnet') +
  (import 'recording.libsonnet') +
  (import 'sizing.libsonnet') +
  (import 'alerts.libsonnet') +
  (import 'actuator-alerts.libsonnet')
)
