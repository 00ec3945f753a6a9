// `canopy render` writes these into deploy/grafana/dashboards/ for Grafana's
// file provisioning: datasource as the `datasource` template variable.
(import '../../mixin.libsonnet').grafanaDashboards
