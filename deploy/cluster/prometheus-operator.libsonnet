// prometheus-operator objects from the same mixin: what kube-prometheus users
// load instead of rule files, scrape configs and alertmanager.yml.
//   PrometheusRule: kube-prometheus' addMixin shape (prometheusAlerts' groups,
//     then prometheusRules'), labelled as the operator's ruleSelector wants.
//   PodMonitors: the node apps, their node_exporter sidecars and the actuator,
//     relabelled to the jobs and target labels the rules read (as
//     deploy/prometheus.libsonnet does for file_sd and kubernetes_sd).
//   AlertmanagerConfig: component="scaling" to the actuator, the bearer token
//     from a Secret; timings and matchers as deploy/alertmanager.yml's.
local labels = import 'labels.libsonnet';

{
  local c = $._config,
  local k = c.kubernetes,
  local meta(name, extra={}) = {
    name: name,
    namespace: k.namespace,
    labels: { [labels.partOf]: 'canopy' } + extra,
  },
  local podLabel(l) = '__meta_kubernetes_pod_label_' + std.join('_', std.split(std.join('_', std.split(std.join('_', std.split(l, '.')), '/')), '-')),
  // The operator sets job to <namespace>/<monitor>, and adds container and
  // endpoint labels: the rules select by job, and an app series and its
  // node_exporter's must share their target labels but job and instance.
  local common(job) = [
    { targetLabel: 'job', replacement: job },
    { action: 'labeldrop', regex: 'container|endpoint' },
  ],
  local nodeLabels = [
    { sourceLabels: [podLabel(labels.tree)], targetLabel: 'tree_id' },
    { sourceLabels: [podLabel(labels.nodeType)], targetLabel: 'node_type' },
    { sourceLabels: ['__meta_kubernetes_pod_name'], targetLabel: 'node_id' },
    // A pod without a tree cannot be placed in any decision: leave it out.
    { sourceLabels: [podLabel(labels.tree)], regex: '.+', action: 'keep' },
  ],
  local podMonitor(name, job, selector, port, relabelings) = {
    apiVersion: 'monitoring.coreos.com/v1',
    kind: 'PodMonitor',
    metadata: meta(name),
    spec: {
      selector: selector,
      podMetricsEndpoints: [{ port: port, path: '/metrics', relabelings: common(job) + relabelings }],
    },
  },
  local nodeSelector(type) = { matchLabels: { [labels.partOf]: 'canopy', [labels.nodeType]: type } },

  prometheusOperator:: {
    prometheusRule: {
      apiVersion: 'monitoring.coreos.com/v1',
      kind: 'PrometheusRule',
      metadata: meta('canopy-rules', k.prometheusRuleLabels),
      spec: { groups: $.prometheusAlerts.groups + $.prometheusRules.groups },
    },

    podMonitors: [
      podMonitor('canopy-' + type, c.jobs[type], nodeSelector(type), 'metrics', nodeLabels)
      for type in ['injection', 'relay', 'egress']
    ] + [
      podMonitor(
        'canopy-node-exporter',
        c.jobs.nodeExporter,
        {
          matchLabels: { [labels.partOf]: 'canopy' },
          matchExpressions: [{ key: labels.nodeType, operator: 'In', values: ['injection', 'relay', 'egress'] }],
        },
        'node-metrics',
        nodeLabels,
      ),
      // Not a tree node: no tree_id on its targets (its series carry their own).
      podMonitor('canopy-actuator', c.actuatorJob, { matchLabels: { [labels.name]: c.actuatorJob } }, 'metrics', []),
    ],

    // As deploy/alertmanager.yml's actuator route and receiver (jsonnet
    // 0.18's std.parseYaml cannot read that file; the test compares them).
    local route = {
      matchers: [{ name: 'component', value: 'scaling', matchType: '=' }],
      group_by: ['tree_id', 'alertname'],
      group_wait: '10s',
      group_interval: '1m',
      repeat_interval: '1m',
    },
    alertmanagerConfig: {
      apiVersion: 'monitoring.coreos.com/v1alpha1',
      kind: 'AlertmanagerConfig',
      metadata: meta('canopy-scaling', k.alertmanagerConfigLabels),
      spec: {
        route: {
          receiver: 'canopy-actuator',
          matchers: route.matchers,
          groupBy: route.group_by,
          groupWait: route.group_wait,
          groupInterval: route.group_interval,
          repeatInterval: route.repeat_interval,
        },
        receivers: [{
          name: 'canopy-actuator',
          webhookConfigs: [{
            url: 'http://%s.%s.svc:%d/alerts' % [c.actuatorJob, k.namespace, k.actuator.port],
            sendResolved: true,
            maxAlerts: 0,
            httpConfig: {
              authorization: { type: 'Bearer', credentials: { name: k.actuator.tokenSecret, key: 'token' } },
            },
          }],
        }],
      },
    },
  },
}
