// Kubernetes manifests for the whole loop, from the mixin's one _config
// (_config.kubernetes for namespace, images, sizes): Redis (persistent, or
// external), injection and relay as StatefulSets (pod names are stable node
// ids, so a restarted relay keeps its slots), the baseline egress nodes, and
// the actuator with everything it needs to run as two replicas.
//
// The baseline egress Deployment is not built here: `canopy render` builds it
// with the Kubernetes provisioner's own template (egress-deployment.ts) from
// `egressBaseline`'s parameters, so subtrees and baseline cannot drift.
local labels = import 'labels.libsonnet';

{
  local c = $._config,
  local k = c.kubernetes,
  local ns = k.namespace,
  local partOf = { [labels.partOf]: 'canopy' },
  local meta(name, extra={}) = { name: name, namespace: ns, labels: partOf + extra },
  local redisUrl = if k.redis.url != null then k.redis.url else 'redis://redis.%s.svc:6379' % ns,

  // Non-root, read-only root file system, no privilege: every container.
  local podSecurity = {
    runAsNonRoot: true,
    runAsUser: 10001,
    runAsGroup: 10001,
    fsGroup: 10001,
    seccompProfile: { type: 'RuntimeDefault' },
  },
  local containerSecurity = {
    allowPrivilegeEscalation: false,
    readOnlyRootFilesystem: true,
    capabilities: { drop: ['ALL'] },
  },
  local tmp = { name: 'tmp', emptyDir: {} },
  local tmpMount = { name: 'tmp', mountPath: '/tmp' },
  local env(vars) = [
    if std.isObject(vars[n]) then { name: n, valueFrom: vars[n] } else { name: n, value: vars[n] }
    for n in std.objectFields(vars)
  ],
  local probes(port) = {
    readinessProbe: { httpGet: { path: '/readyz', port: port }, periodSeconds: 5, failureThreshold: 3 },
    livenessProbe: { httpGet: { path: '/healthz', port: port }, initialDelaySeconds: 10, periodSeconds: 10, failureThreshold: 6 },
  },
  local nodeExporter = {
    name: 'node-exporter',
    image: k.images.nodeExporter,
    imagePullPolicy: k.imagePullPolicy,
    args: ['--web.listen-address=:9100'],
    ports: [{ name: 'node-metrics', containerPort: 9100, protocol: 'TCP' }],
    resources: k.resources.nodeExporter,
    securityContext: containerSecurity,
  },

  // A node app (injection or relay) as a StatefulSet: the pod name is the
  // node id, so its slots and children survive a restart.
  local nodeStatefulSet(type, port, replicas, extraEnv, udp) =
    local l = partOf { [labels.tree]: k.treeId, [labels.nodeType]: type };
    [
      {
        apiVersion: 'v1',
        kind: 'Service',
        metadata: meta(type, l),
        spec: {
          clusterIP: 'None',
          selector: l,
          ports: [{ name: 'metrics', port: port, targetPort: 'metrics', protocol: 'TCP' }],
        },
      },
      {
        apiVersion: 'apps/v1',
        kind: 'StatefulSet',
        metadata: meta(type, l),
        spec: {
          serviceName: type,
          replicas: replicas,
          podManagementPolicy: 'Parallel',
          selector: { matchLabels: l },
          template: {
            metadata: { labels: l },
            spec: {
              securityContext: podSecurity,
              terminationGracePeriodSeconds: 30,
              volumes: [tmp],
              containers: [
                {
                  name: type,
                  image: k.images.canopy,
                  imagePullPolicy: k.imagePullPolicy,
                  args: ['node', type],
                  env: env({
                    CANOPY_NODE_ID: { fieldRef: { fieldPath: 'metadata.name' } },
                    CANOPY_ADVERTISE_HOST: { fieldRef: { fieldPath: 'status.podIP' } },
                    CANOPY_TREE_ID: k.treeId,
                    CANOPY_REDIS_URL: redisUrl,
                    CANOPY_HTTP_PORT: std.toString(port),
                    CANOPY_LISTEN_HOST: '0.0.0.0',
                  } + extraEnv),
                  ports: [{ name: 'metrics', containerPort: port, protocol: 'TCP' }] + udp,
                  resources: k.resources.node,
                  securityContext: containerSecurity,
                  volumeMounts: [tmpMount],
                } + probes('metrics'),
                nodeExporter,
              ],
            },
          },
        },
      },
    ],
  local forwarderPorts = [
    { name: 'rtp-audio', containerPort: 5002, protocol: 'UDP' },
    { name: 'rtp-video', containerPort: 5004, protocol: 'UDP' },
  ],

  local actuatorLabels = partOf { [labels.name]: c.actuatorJob },
  local actuatorRole = {
    apiVersion: 'rbac.authorization.k8s.io/v1',
    kind: 'Role',
    metadata: meta(c.actuatorJob),
    // What the Kubernetes provisioner calls, and nothing else (the
    // fake-cluster test records its calls and checks them against this).
    rules: [
      { apiGroups: ['apps'], resources: ['deployments'], verbs: ['get', 'list', 'create', 'delete'] },
      { apiGroups: [''], resources: ['pods'], verbs: ['list'] },
    ],
  },
  local tokenDir = '/etc/canopy/token',

  // The Kubernetes provisioner's parameters for the baseline egress nodes:
  // the same image, node_exporter and Redis as the actuator passes it.
  egressBaseline:: {
    namespace: ns,
    tree: k.treeId,
    subtree: 'baseline',
    slot: 'relay-0-s0',
    replicas: k.egress.replicas,
    image: k.images.canopy,
    nodeExporterImage: k.images.nodeExporter,
    imagePullPolicy: k.imagePullPolicy,
    redisUrl: redisUrl,
  },

  kubernetes:: {
    namespace: [{ apiVersion: 'v1', kind: 'Namespace', metadata: { name: ns, labels: partOf } }],

    redis: if k.redis.url != null then [] else
      local l = partOf { [labels.name]: 'redis' };
      [
        {
          apiVersion: 'v1',
          kind: 'Service',
          metadata: meta('redis', l),
          spec: { selector: l, ports: [{ name: 'redis', port: 6379, targetPort: 'redis', protocol: 'TCP' }] },
        },
        {
          apiVersion: 'apps/v1',
          kind: 'StatefulSet',
          metadata: meta('redis', l),
          spec: {
            serviceName: 'redis',
            replicas: 1,
            selector: { matchLabels: l },
            template: {
              metadata: { labels: l },
              spec: {
                securityContext: podSecurity,
                containers: [{
                  name: 'redis',
                  image: k.images.redis,
                  imagePullPolicy: k.imagePullPolicy,
                  // Append-only file with fsync every second: a restart loses at most 1 s.
                  args: ['--appendonly', 'yes', '--appendfsync', 'everysec', '--dir', '/data', '--save', ''],
                  ports: [{ name: 'redis', containerPort: 6379, protocol: 'TCP' }],
                  readinessProbe: { exec: { command: ['redis-cli', 'ping'] }, periodSeconds: 5 },
                  livenessProbe: { tcpSocket: { port: 'redis' }, initialDelaySeconds: 10, periodSeconds: 10 },
                  resources: k.resources.redis,
                  securityContext: containerSecurity,
                  volumeMounts: [{ name: 'data', mountPath: '/data' }],
                }],
              },
            },
            volumeClaimTemplates: [{
              metadata: { name: 'data', labels: l },
              spec: {
                accessModes: ['ReadWriteOnce'],
                resources: { requests: { storage: k.redis.storage } },
              } + (if k.redis.storageClassName != null then { storageClassName: k.redis.storageClassName } else {}),
            }],
          },
        },
      ],

    injection: nodeStatefulSet('injection', 7070, k.injection.replicas, { CANOPY_SLOTS: std.toString(k.injection.slots) }, []),

    relay: nodeStatefulSet('relay', 7071, k.relay.replicas, {
      CANOPY_SLOTS: std.toString(k.relay.slots),
      CANOPY_PARENT_SLOT: 'injection-0-s0',
      CANOPY_FORWARDER_BIND: '0.0.0.0',
    }, forwarderPorts),

    actuator: [
      {
        apiVersion: 'v1',
        kind: 'ServiceAccount',
        metadata: meta(c.actuatorJob, actuatorLabels),
        automountServiceAccountToken: true,
      },
      actuatorRole { metadata+: { labels+: actuatorLabels } },
      {
        apiVersion: 'rbac.authorization.k8s.io/v1',
        kind: 'RoleBinding',
        metadata: meta(c.actuatorJob, actuatorLabels),
        roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: c.actuatorJob },
        subjects: [{ kind: 'ServiceAccount', name: c.actuatorJob, namespace: ns }],
      },
      {
        // Rendered empty (no secret in git): fill it once with kubectl patch
        // (docs/cluster.md), which a later apply of these files leaves alone.
        // The actuator refuses a missing token or one under 24 characters.
        apiVersion: 'v1',
        kind: 'Secret',
        metadata: meta(k.actuator.tokenSecret, actuatorLabels),
        type: 'Opaque',
      },
      {
        apiVersion: 'v1',
        kind: 'Service',
        metadata: meta(c.actuatorJob, actuatorLabels),
        spec: {
          selector: actuatorLabels,
          ports: [{ name: 'metrics', port: k.actuator.port, targetPort: 'metrics', protocol: 'TCP' }],
        },
      },
      {
        apiVersion: 'apps/v1',
        kind: 'Deployment',
        metadata: meta(c.actuatorJob, actuatorLabels),
        spec: {
          replicas: k.actuator.replicas,
          selector: { matchLabels: actuatorLabels },
          template: {
            metadata: { labels: actuatorLabels },
            spec: {
              serviceAccountName: c.actuatorJob,
              securityContext: podSecurity,
              // Replicas on different nodes when the cluster has several.
              topologySpreadConstraints: [{
                maxSkew: 1,
                topologyKey: 'kubernetes.io/hostname',
                whenUnsatisfiable: 'ScheduleAnyway',
                labelSelector: { matchLabels: actuatorLabels },
              }],
              volumes: [
                tmp,
                { name: 'token', secret: { secretName: k.actuator.tokenSecret } },
                { name: 'targets', emptyDir: {} },
              ],
              containers: [{
                name: 'actuator',
                image: k.images.canopy,
                imagePullPolicy: k.imagePullPolicy,
                args: [
                  'actuator',
                  '--provisioner=kubernetes',
                  '--namespace=' + ns,
                  '--image=' + $.egressBaseline.image,
                  '--node-exporter-image=' + $.egressBaseline.nodeExporterImage,
                  '--listen-host=0.0.0.0',
                  '--port=%d' % k.actuator.port,
                  '--token-file=%s/token' % tokenDir,
                  // Pods are found by the PodMonitors; the file_sd files it
                  // writes anyway go to a scratch volume.
                  '--targets-dir=/var/lib/canopy/targets',
                  '--subtree-size=%d' % k.actuator.subtreeSize,
                  '--max-subtrees=%d' % k.actuator.maxSubtrees,
                ],
                env: env({ CANOPY_REDIS_URL: $.egressBaseline.redisUrl }),
                ports: [{ name: 'metrics', containerPort: k.actuator.port, protocol: 'TCP' }],
                resources: k.resources.actuator,
                securityContext: containerSecurity,
                volumeMounts: [
                  tmpMount,
                  { name: 'token', mountPath: tokenDir, readOnly: true },
                  { name: 'targets', mountPath: '/var/lib/canopy/targets' },
                ],
              } + probes('metrics')],
            },
          },
        },
      },
      {
        apiVersion: 'policy/v1',
        kind: 'PodDisruptionBudget',
        metadata: meta(c.actuatorJob, actuatorLabels),
        spec: { minAvailable: 1, selector: { matchLabels: actuatorLabels } },
      },
      {
        // Its one port serves the webhook and /metrics: only Alertmanager
        // (the webhook) and Prometheus (the scrape) may connect; the bearer
        // token keeps Prometheus, or anything else that got in, off /alerts.
        apiVersion: 'networking.k8s.io/v1',
        kind: 'NetworkPolicy',
        metadata: meta(c.actuatorJob, actuatorLabels),
        spec: {
          podSelector: { matchLabels: actuatorLabels },
          policyTypes: ['Ingress'],
          ingress: [{
            from: [
              {
                namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': k.monitoring.namespace } },
                podSelector: { matchLabels: k.monitoring[who] },
              }
              for who in ['alertmanagerPodLabels', 'prometheusPodLabels']
            ],
            ports: [{ port: 'metrics', protocol: 'TCP' }],
          }],
        },
      },
    ],
  },
}
