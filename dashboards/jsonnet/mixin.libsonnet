// The rule pack plus its dashboards (grafanaDashboards::), one mixin: override
// _config once and both follow.
(import '../../rules/mixin.libsonnet')
+ (import 'common.libsonnet')
+ (import 'tree-overview.libsonnet')
+ (import 'node-detail.libsonnet')
+ (import 'actuator.libsonnet')
