// `canopy render` writes these into dashboards/import/ for Grafana's UI import
// (and grafana.com): datasource as the DS_PROMETHEUS input.
local g = import 'grafana.libsonnet';
local d = (import '../../mixin.libsonnet').grafanaDashboards;

{ [f]: g.forImport(d[f]) for f in std.objectFields(d) }
