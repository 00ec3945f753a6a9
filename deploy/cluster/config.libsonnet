// The cluster's settings, in the mixin's one _config (beside the rule pack's
// selectors and thresholds): namespace, images, sizes, and who may reach the
// actuator. Override them with the rest:
//   (import 'canopy/deploy/cluster.libsonnet') + { _config+:: { kubernetes+: { namespace: 'live' } } }
{
  _config+:: {
    kubernetes: {
      namespace: 'media',
      // One tree per namespace: its StatefulSets are named by node type.
      treeId: 'tree-1',
      images: {
        // Its entrypoint must be the `canopy` command (args `node ...`, `actuator ...`).
        canopy: 'ghcr.io/canopy-media/canopy:0.1.0',
        nodeExporter: 'quay.io/prometheus/node-exporter:v1.5.0',
        redis: 'docker.io/library/redis:7.0',
      },
      imagePullPolicy: 'IfNotPresent',
      // Redis with persistence in the namespace, or an external one (url).
      redis: {
        url: null,
        storage: '1Gi',
        storageClassName: null,
      },
      injection: { replicas: 1, slots: 1 },
      relay: { replicas: 1, slots: 4 },
      // Baseline egress nodes, on the first relay's first slot; the actuator
      // adds subtrees beside them.
      egress: { replicas: 2 },
      actuator: {
        replicas: 2,
        port: 9095,
        subtreeSize: 16,
        maxSubtrees: 4,
        // Secret holding the bearer token Alertmanager sends (key `token`).
        tokenSecret: 'canopy-actuator-token',
      },
      resources: {
        node: { requests: { cpu: '250m', memory: '256Mi' }, limits: { memory: '512Mi' } },
        nodeExporter: { requests: { cpu: '20m', memory: '32Mi' }, limits: { memory: '64Mi' } },
        actuator: { requests: { cpu: '50m', memory: '128Mi' }, limits: { memory: '256Mi' } },
        redis: { requests: { cpu: '100m', memory: '256Mi' }, limits: { memory: '512Mi' } },
      },
      // Prometheus and Alertmanager pods (kube-prometheus' labels): the only
      // ones the actuator's NetworkPolicy lets in.
      monitoring: {
        namespace: 'monitoring',
        prometheusPodLabels: { 'app.kubernetes.io/name': 'prometheus' },
        alertmanagerPodLabels: { 'app.kubernetes.io/name': 'alertmanager' },
      },
      // The operator picks PrometheusRules and AlertmanagerConfigs by label:
      // kube-prometheus' defaults; kube-prometheus-stack wants release: <name>.
      prometheusRuleLabels: { prometheus: 'k8s', role: 'alert-rules' },
      alertmanagerConfigLabels: {},
    },
  },
}
