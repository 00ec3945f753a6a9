// prometheus.yml for a Canopy tree, in two service-discovery flavours:
//   file: file_sd target files (the local stack and plain hosts);
//   kubernetes: pods labelled canopy.media/tree-id, canopy.media/node-type.
// Target labels tree_id, node_id, node_type are set here, once, for every
// node job. The actuator's job (canopy-actuator) is no tree node: its targets
// carry no tree_id (its series have their own, per action).
local rulesConfig = (import '../rules/config.libsonnet')._config;

{
  new(
    sd='file',
    scrapeInterval='15s',
    evaluationInterval='15s',
    ruleFiles=['../rules/media-tree-rules.yaml', '../rules/media-tree-alerts.yaml'],
    targetsDir='targets',
    alertmanagers=['127.0.0.1:9093'],
    jobs=rulesConfig.jobs,
    actuatorJob=rulesConfig.actuatorJob,
  )::
    assert sd == 'file' || sd == 'kubernetes' : 'sd must be file or kubernetes';

    local fileJob(name, extra={}) = {
      job_name: name,
      file_sd_configs: [{ files: ['%s/%s/*.json' % [targetsDir, name]] }],
      relabel_configs: [
        // A target without a tree cannot be placed in any decision: leave it out.
        { source_labels: ['tree_id'], regex: '.+', action: 'keep' },
        // node_id defaults to the target's host, node_type to node_id's prefix (the seed's scheme).
        { source_labels: ['node_id', '__address__'], regex: ';([^:]+):.*', target_label: 'node_id', replacement: '$1' },
        { source_labels: ['node_type', 'node_id'], regex: ';(injection|relay|egress)-.*', target_label: 'node_type', replacement: '$1' },
      ],
    } + extra;

    local podLabel(l) = '__meta_kubernetes_pod_label_canopy_media_' + l;
    local podJob(name, portName) = {
      job_name: name,
      kubernetes_sd_configs: [{ role: 'pod' }],
      relabel_configs: [
        { source_labels: [podLabel('tree_id')], regex: '.+', action: 'keep' },
        { source_labels: ['__meta_kubernetes_pod_container_port_name'], regex: portName, action: 'keep' },
        { source_labels: [podLabel('tree_id')], target_label: 'tree_id' },
        { source_labels: [podLabel('node_type')], target_label: 'node_type' },
        { source_labels: ['__meta_kubernetes_pod_name'], target_label: 'node_id' },
        { source_labels: ['__meta_kubernetes_namespace'], target_label: 'namespace' },
      ],
    };
    // The actuator: file_sd targets/<job>/*.json with no tree_id needed, or
    // its pods (app.kubernetes.io/name=<job>) on their port named `metrics`.
    local actuator =
      if sd == 'file' then {
        job_name: actuatorJob,
        file_sd_configs: [{ files: ['%s/%s/*.json' % [targetsDir, actuatorJob]] }],
      } else {
        job_name: actuatorJob,
        kubernetes_sd_configs: [{ role: 'pod' }],
        relabel_configs: [
          { source_labels: ['__meta_kubernetes_pod_label_app_kubernetes_io_name'], regex: actuatorJob, action: 'keep' },
          { source_labels: ['__meta_kubernetes_pod_container_port_name'], regex: 'metrics', action: 'keep' },
          { source_labels: ['__meta_kubernetes_namespace'], target_label: 'namespace' },
          { source_labels: ['__meta_kubernetes_pod_name'], target_label: 'pod' },
        ],
      };

    local appJob(jobName, nodeType) =
      if sd == 'file' then fileJob(jobName)
      else podJob(jobName, 'metrics') {
        relabel_configs+: [{ source_labels: [podLabel('node_type')], regex: nodeType, action: 'keep' }],
      };

    {
      global: {
        scrape_interval: scrapeInterval,
        evaluation_interval: evaluationInterval,
        external_labels: { system: 'canopy' },
      },
      rule_files: ruleFiles,
      alerting: {
        alertmanagers: [{ static_configs: [{ targets: alertmanagers }] }],
      },
      scrape_configs: [
        if sd == 'file' then fileJob(jobs.nodeExporter) else podJob(jobs.nodeExporter, 'node-metrics'),
        appJob(jobs.injection, 'injection'),
        appJob(jobs.relay, 'relay'),
        appJob(jobs.egress, 'egress'),
        actuator,
      ] + (
        // Optional jobs: they scrape nothing until targets are listed.
        if sd == 'file' then [
          { job_name: 'cadvisor', file_sd_configs: [{ files: ['%s/cadvisor/*.json' % targetsDir] }] },
          { job_name: 'redis', file_sd_configs: [{ files: ['%s/redis/*.json' % targetsDir] }] },
        ] else [
          {
            // kubelet's built-in cAdvisor, through the API server.
            job_name: 'cadvisor',
            scheme: 'https',
            metrics_path: '/metrics/cadvisor',
            kubernetes_sd_configs: [{ role: 'node' }],
            authorization: { credentials_file: '/var/run/secrets/kubernetes.io/serviceaccount/token' },
            tls_config: { ca_file: '/var/run/secrets/kubernetes.io/serviceaccount/ca.crt' },
          },
          {
            job_name: 'redis',
            kubernetes_sd_configs: [{ role: 'service' }],
            relabel_configs: [
              { source_labels: ['__meta_kubernetes_service_label_app_kubernetes_io_name'], regex: 'redis-exporter', action: 'keep' },
            ],
          },
        ]
      ),
    },
}
