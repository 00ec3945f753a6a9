// `canopy render` writes these files into deploy/, as YAML.
local prometheus = import 'prometheus.libsonnet';

{
  'prometheus.yml': prometheus.new(sd='file'),
  'prometheus-kubernetes.yml': prometheus.new(
    sd='kubernetes',
    ruleFiles=['/etc/prometheus/rules/media-tree-rules.yaml', '/etc/prometheus/rules/media-tree-alerts.yaml'],
    alertmanagers=['alertmanager.monitoring.svc:9093'],
  ),
}
