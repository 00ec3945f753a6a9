// `canopy render` writes these files into rules/ (jsonnet -S -m rules).
local mixin = import 'mixin.libsonnet';
local yaml(x) = std.manifestYamlDoc(x, indent_array_in_object=true, quote_keys=false) + '\n';

{
  'media-tree-rules.yaml': yaml(mixin.prometheusRules),
  'media-tree-alerts.yaml': yaml(mixin.prometheusAlerts),
}
