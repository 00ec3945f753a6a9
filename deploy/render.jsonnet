// `canopy render` writes these files into deploy/.
local prometheus = import 'prometheus.libsonnet';
local yaml(x) = std.manifestYamlDoc(x, indent_array_in_object=true, quote_keys=false) + '\n';

{
  'prometheus.yml': yaml(prometheus.new(sd='file')),
  'prometheus-kubernetes.yml': yaml(prometheus.new(
    sd='kubernetes',
    ruleFiles=['/etc/prometheus/rules/media-tree-rules.yaml', '/etc/prometheus/rules/media-tree-alerts.yaml'],
    alertmanagers=['alertmanager.monitoring.svc:9093'],
  )),
}
