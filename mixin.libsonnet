// Canopy as one monitoring mixin: _config, prometheusRules, prometheusAlerts,
// grafanaDashboards. Vendored with jsonnet-bundler:
//   (import 'canopy/mixin.libsonnet') + { _config+:: { portPoolScaleOutPercent: 80 } }
// One _config (rules/config.libsonnet) reaches every rule, alert, dashboard
// and the actuator's metric contract. The scaling alerts live in
// prometheusRules, in one group with their recording rules (see README).
(import 'rules/mixin.libsonnet')
+ (import 'dashboards/jsonnet/dashboards.libsonnet')
