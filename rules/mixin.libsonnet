// Canopy's rule pack as a monitoring mixin: _config, prometheusRules, prometheusAlerts.
local withRunbooks(mixin) = mixin {
  local c = self._config,
  prometheusAlerts+:: {
    groups: [
      g {
        rules: [
          // Ours only, and never over an explicit runbook_url.
          if std.objectHas(rule, 'alert') && !std.objectHas(std.get(rule, 'annotations', {}), 'runbook_url') then
            rule { annotations+: { runbook_url: c.runbookURLPattern % std.asciiLower(rule.alert) } }
          else rule
          for rule in g.rules
        ],
      }
      for g in super.groups
    ],
  },
};

withRunbooks(
  (import 'config.libsonnet') +
  (import 'recording.libsonnet') +
  (import 'alerts.libsonnet')
)
