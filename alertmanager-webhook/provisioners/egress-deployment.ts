/**
 * The one template of an egress Deployment: the Kubernetes provisioner builds
 * each subtree from it at run time, and `canopy render` builds the baseline
 * egress nodes of deploy/kubernetes/ from it (deploy/cluster/), so the two
 * cannot drift. A plain function of its parameters, no I/O.
 */
import type { V1Deployment, V1EnvVar } from '@kubernetes/client-node';

export const LABEL_PART_OF = 'app.kubernetes.io/part-of';
export const LABEL_MANAGED_BY = 'app.kubernetes.io/managed-by';
export const LABEL_TREE = 'canopy.media/tree-id';
export const LABEL_SUBTREE = 'canopy.media/subtree';
export const LABEL_NODE_TYPE = 'canopy.media/node-type';

/** Subtrees the actuator owns carry this; the baseline carries MANAGED_BY_MANIFESTS, so the actuator never lists (or removes) it. */
export const MANAGED_BY_ACTUATOR = 'canopy-actuator';
export const MANAGED_BY_MANIFESTS = 'canopy-manifests';

/** Ports the Prometheus kubernetes_sd jobs and the PodMonitors keep by name. */
export const METRICS_PORT = 7073;
export const NODE_METRICS_PORT = 9100;

/** After this the Deployment controller reports ProgressDeadlineExceeded. */
export const DEFAULT_PROGRESS_DEADLINE_SECONDS = 300;

export interface EgressDeploymentParams {
  namespace: string;
  tree: string;
  subtree: string;
  /** Relay slot the egress nodes attach to. */
  slot: string;
  replicas: number;
  image: string;
  nodeExporterImage: string;
  imagePullPolicy: 'Always' | 'IfNotPresent' | 'Never';
  progressDeadlineSeconds: number;
  /** Redis as the pods reach it: a URL, or a Secret key holding it. */
  redisUrl: string | { secretName: string; key: string };
  /** Extra environment (checked by the caller: never one of the provisioner's own). */
  env: Record<string, string>;
  managedBy: typeof MANAGED_BY_ACTUATOR | typeof MANAGED_BY_MANIFESTS;
}

export function deploymentName(subtree: string): string {
  return `egress-${subtree}`;
}

export function redisEnv(r: EgressDeploymentParams['redisUrl']): V1EnvVar {
  return typeof r === 'string'
    ? { name: 'CANOPY_REDIS_URL', value: r }
    : { name: 'CANOPY_REDIS_URL', valueFrom: { secretKeyRef: { name: r.secretName, key: r.key } } };
}

/** The Deployment of one subtree: what kubernetes_sd and the egress app need, nothing else. */
export function egressDeployment(p: EgressDeploymentParams): V1Deployment {
  const labels = {
    [LABEL_PART_OF]: 'canopy',
    [LABEL_MANAGED_BY]: p.managedBy,
    [LABEL_TREE]: p.tree,
    [LABEL_SUBTREE]: p.subtree,
    [LABEL_NODE_TYPE]: 'egress',
  };
  const env: V1EnvVar[] = [
    { name: 'CANOPY_TREE_ID', value: p.tree },
    { name: 'CANOPY_PARENT_SLOT', value: p.slot },
    // The pod name is the node id: Prometheus' node_id label comes from the pod name too.
    { name: 'CANOPY_NODE_ID', valueFrom: { fieldRef: { fieldPath: 'metadata.name' } } },
    // Relays send RTP to the address the egress records in Redis: the pod IP.
    { name: 'CANOPY_ADVERTISE_HOST', valueFrom: { fieldRef: { fieldPath: 'status.podIP' } } },
    redisEnv(p.redisUrl),
    { name: 'CANOPY_HTTP_PORT', value: String(METRICS_PORT) },
    { name: 'CANOPY_LISTEN_HOST', value: '0.0.0.0' },
    // RTP comes from relay pods, not from loopback.
    { name: 'CANOPY_FORWARDER_BIND', value: '0.0.0.0' },
    // WHEP viewers reach the pod IP: each viewer's PeerConnection binds it (one address, never every interface).
    { name: 'CANOPY_ICE_BIND', valueFrom: { fieldRef: { fieldPath: 'status.podIP' } } },
    ...Object.entries(p.env).map(([n, v]) => ({ name: n, value: v })),
  ];
  return {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name: deploymentName(p.subtree), namespace: p.namespace, labels },
    spec: {
      replicas: p.replicas,
      // Immutable once created; tree and subtree identify the pods uniquely.
      selector: { matchLabels: { [LABEL_TREE]: p.tree, [LABEL_SUBTREE]: p.subtree } },
      progressDeadlineSeconds: p.progressDeadlineSeconds,
      template: {
        // The pod labels are what Prometheus' kubernetes_sd (role: pod) and the PodMonitors key on.
        metadata: { labels },
        spec: {
          // The egress app leaves the topology cleanly on SIGTERM.
          terminationGracePeriodSeconds: 30,
          containers: [
            {
              name: 'egress',
              image: p.image,
              imagePullPolicy: p.imagePullPolicy,
              args: ['node', 'egress'],
              env,
              ports: [{ name: 'metrics', containerPort: METRICS_PORT, protocol: 'TCP' }],
              readinessProbe: {
                httpGet: { path: '/readyz', port: 'metrics' },
                periodSeconds: 5,
                failureThreshold: 3,
              },
              livenessProbe: {
                httpGet: { path: '/healthz', port: 'metrics' },
                initialDelaySeconds: 10,
                periodSeconds: 10,
                failureThreshold: 6,
              },
            },
            {
              name: 'node-exporter',
              image: p.nodeExporterImage,
              imagePullPolicy: p.imagePullPolicy,
              args: [`--web.listen-address=:${NODE_METRICS_PORT}`],
              ports: [{ name: 'node-metrics', containerPort: NODE_METRICS_PORT, protocol: 'TCP' }],
            },
          ],
        },
      },
    },
  };
}
