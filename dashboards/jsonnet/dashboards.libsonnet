// The dashboards (grafanaDashboards::) as a mixin fragment: `$` is the whole
// mixin (../../mixin.libsonnet), so _config and the recorded names come from
// the rule pack and one override reaches both.
(import 'actuator-metrics.libsonnet')
+ (import 'common.libsonnet')
+ (import 'tree-overview.libsonnet')
+ (import 'node-detail.libsonnet')
+ (import 'actuator.libsonnet')
