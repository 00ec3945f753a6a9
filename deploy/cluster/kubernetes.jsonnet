// `canopy render` writes these into deploy/kubernetes/ (a list is one
// multi-document YAML file; the prefixes give `kubectl apply -f` its order).
// The baseline egress Deployment comes from the provisioner's template: the
// `egressDeployment` entry holds its parameters and canopy render expands it.
local cluster = import '../cluster.libsonnet';
local k = cluster.kubernetes;

{
  '00-namespace.yaml': k.namespace,
  '10-redis.yaml': k.redis,
  '20-injection.yaml': k.injection,
  '30-relay.yaml': k.relay,
  '40-egress.yaml': [{ egressDeployment: cluster.egressBaseline }],
  '50-actuator.yaml': k.actuator,
}
