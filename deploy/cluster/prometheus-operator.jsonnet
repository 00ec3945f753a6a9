// `canopy render` writes these into deploy/prometheus-operator/ (a list is
// one multi-document YAML file).
local p = (import '../cluster.libsonnet').prometheusOperator;

{
  'prometheus-rule.yaml': p.prometheusRule,
  'pod-monitors.yaml': p.podMonitors,
  'alertmanager-config.yaml': p.alertmanagerConfig,
}
