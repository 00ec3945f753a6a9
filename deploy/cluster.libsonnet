// Canopy for a cluster: the mixin (../mixin.libsonnet) plus the
// prometheus-operator objects (prometheusOperator::) and the Kubernetes
// manifests of the whole loop (kubernetes::), all from one _config:
//   (import 'canopy/deploy/cluster.libsonnet') + { _config+:: { kubernetes+: { namespace: 'live' } } }
(import '../mixin.libsonnet')
+ (import 'cluster/config.libsonnet')
+ (import 'cluster/prometheus-operator.libsonnet')
+ (import 'cluster/kubernetes.libsonnet')
