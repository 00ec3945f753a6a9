/**
 * The baseline egress nodes of deploy/kubernetes/ come from the Kubernetes
 * provisioner's own template: deploy/cluster/kubernetes.jsonnet lists
 * `{ egressDeployment: <parameters> }`, and `canopy render` expands it here.
 * The parameters come from a config file a user may edit: checked with zod.
 */
import { z } from 'zod';
import {
  DEFAULT_PROGRESS_DEADLINE_SECONDS,
  egressDeployment,
  LABEL_MANAGED_BY,
  LABEL_NODE_TYPE,
  LABEL_PART_OF,
  LABEL_SUBTREE,
  LABEL_TREE,
  MANAGED_BY_MANIFESTS,
} from '../alertmanager-webhook/provisioners/egress-deployment.ts';
import { ID_PATTERN } from '../topology/ids.ts';

const id = z.string().regex(ID_PATTERN);

const Params = z
  .object({
    namespace: id,
    tree: id,
    subtree: id,
    slot: id,
    replicas: z.number().int().min(0).max(1000),
    image: z.string().min(1),
    nodeExporterImage: z.string().min(1),
    imagePullPolicy: z.enum(['Always', 'IfNotPresent', 'Never']),
    redisUrl: z.string().regex(/^rediss?:\/\/\S+$/),
  })
  .strict();

/** Replaces every `{ egressDeployment: params }` in a list of objects by the Deployment the provisioner would make. */
export function expandEgressTemplates(docs: unknown[]): unknown[] {
  return docs.map((d) => {
    if (typeof d !== 'object' || d === null || !('egressDeployment' in d)) return d;
    const r = Params.safeParse((d as { egressDeployment: unknown }).egressDeployment);
    if (!r.success) throw new Error(`bad egress baseline parameters: ${z.prettifyError(r.error)}`);
    // A plain tree (no shared objects), so the YAML has no anchors.
    return JSON.parse(
      JSON.stringify(
        egressDeployment({
          ...r.data,
          // As the provisioner's defaults (the actuator passes no other).
          progressDeadlineSeconds: DEFAULT_PROGRESS_DEADLINE_SECONDS,
          env: {},
          managedBy: MANAGED_BY_MANIFESTS,
        }),
      ),
    ) as unknown;
  });
}

/** The pod label keys, for deploy/cluster/labels.libsonnet. */
export function podLabelKeys(): Record<string, string> {
  return {
    partOf: LABEL_PART_OF,
    name: 'app.kubernetes.io/name',
    managedBy: LABEL_MANAGED_BY,
    tree: LABEL_TREE,
    subtree: LABEL_SUBTREE,
    nodeType: LABEL_NODE_TYPE,
  };
}
