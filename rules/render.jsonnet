// `canopy render` writes these files into rules/, as YAML.
local mixin = import 'mixin.libsonnet';

{
  'media-tree-rules.yaml': mixin.prometheusRules,
  'media-tree-alerts.yaml': mixin.prometheusAlerts,
}
