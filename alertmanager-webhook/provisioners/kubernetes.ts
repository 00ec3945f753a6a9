/**
 * The Kubernetes provisioner: one Deployment of egress pods per subtree, on
 * `@kubernetes/client-node` 1.x (2.x needs Node 22). Every call is idempotent by
 * the Deployment's deterministic name `egress-<subtree>`: create treats 409 as
 * "already there", delete treats 404 as "already gone", so a restarted actuator
 * can repeat any step.
 *
 * Tested against `test/fakes/kube-apiserver.ts` (a fake of the API server's wire
 * contract; no cluster can run here), with this same client library.
 */
import {
  ApiException,
  AppsV1Api,
  CoreV1Api,
  KubeConfig,
  Observable,
  type ConfigurationOptions,
  type ObservableMiddleware,
  type RequestContext,
  type ResponseContext,
  type V1Deployment,
  type V1Pod,
} from '@kubernetes/client-node';
import { STATUS_CODES } from 'node:http';
import { isValidId } from '../../topology/ids.ts';
import {
  ProvisionerError,
  type Provisioner,
  type RunningSubtree,
  type SubtreeNode,
  type SubtreeSpec,
} from './provisioner.ts';

import {
  DEFAULT_PROGRESS_DEADLINE_SECONDS,
  deploymentName,
  egressDeployment,
  LABEL_MANAGED_BY,
  LABEL_NODE_TYPE,
  LABEL_PART_OF,
  LABEL_SUBTREE,
  LABEL_TREE,
  MANAGED_BY_ACTUATOR,
} from './egress-deployment.ts';

export { deploymentName } from './egress-deployment.ts';

export interface KubernetesProvisionerOptions {
  /** A loaded config (tests). Otherwise `kubeconfig`, otherwise the default loader (in-cluster, $KUBECONFIG, ~/.kube/config). */
  kubeConfig?: KubeConfig;
  /** Path of a kubeconfig file. */
  kubeconfig?: string;
  /** Namespace of the Deployments; default: the kubeconfig context's namespace, else `default`. */
  namespace?: string;
  /** Image of the egress app; its entrypoint must be the `canopy` command (args are `node egress`). */
  image: string;
  /** node_exporter sidecar image. */
  nodeExporterImage?: string;
  /**
   * Redis holding the topology, as the pods reach it (the egress app's
   * `--redis-url`): a URL, or a Secret key holding it (keeps a password out of
   * the Deployment object).
   */
  redisUrl: string | { secretName: string; key: string };
  /** Extra environment for the egress container (e.g. CANOPY_PORT_RANGE, CANOPY_LOG_LEVEL). */
  env?: Record<string, string>;
  imagePullPolicy?: 'Always' | 'IfNotPresent' | 'Never';
  /** The Deployment's progressDeadlineSeconds: after it the controller reports ProgressDeadlineExceeded. */
  progressDeadlineSeconds?: number;
  /** waitReady's polling period (ms). */
  pollIntervalMs?: number;
  /** One HTTP request's limit (ms); an unanswered request counts as a connection error. */
  requestTimeoutMs?: number;
  /** Attempts per API call for 5xx, 429 and connection errors (1 = no retry). */
  retryAttempts?: number;
  /** First retry delay (ms), doubled per attempt. */
  retryBaseDelayMs?: number;
  /** Time budget of one call and its retries (ms); waitReady is bounded by its own deadline. */
  retryBudgetMs?: number;
  /** delete() waits this long for the Deployment (and, Foreground, its pods) to be gone; 0 = do not wait. */
  deleteWaitMs?: number;
}

/** A ProvisionerError with what the API server said, when it said something. */
export class KubernetesProvisionerError extends ProvisionerError {
  constructor(
    step: ProvisionerError['step'],
    message: string,
    /** HTTP status of the API's answer; undefined for connection errors and local refusals. */
    readonly status?: number,
    /** The Status object's `reason` (AlreadyExists, NotFound, ...). */
    readonly reason?: string,
  ) {
    super(step, message);
  }
}

type Step = ProvisionerError['step'];

const RESERVED_ENV = new Set([
  'CANOPY_TREE_ID',
  'CANOPY_PARENT_SLOT',
  'CANOPY_NODE_ID',
  'CANOPY_ADVERTISE_HOST',
  'CANOPY_ICE_BIND',
  'CANOPY_REDIS_URL',
  'CANOPY_HTTP_PORT',
  'CANOPY_LISTEN_HOST',
]);

export class KubernetesProvisioner implements Provisioner {
  readonly name = 'kubernetes';
  readonly namespace: string;
  private readonly apps: AppsV1Api;
  private readonly core: CoreV1Api;
  private readonly o: Required<
    Omit<KubernetesProvisionerOptions, 'kubeConfig' | 'kubeconfig' | 'namespace' | 'env'>
  > & { env: Record<string, string> };

  constructor(opts: KubernetesProvisionerOptions) {
    let kc = opts.kubeConfig;
    if (!kc) {
      kc = new KubeConfig();
      if (opts.kubeconfig) kc.loadFromFile(opts.kubeconfig);
      else kc.loadFromDefault();
    }
    this.namespace = opts.namespace ?? kc.getContextObject(kc.getCurrentContext())?.namespace ?? 'default';
    if (!isValidId(this.namespace))
      throw new Error(`bad namespace ${JSON.stringify(this.namespace)}: expected a DNS label`);
    if (!opts.image) throw new Error('KubernetesProvisioner: an egress image is required');
    const r = opts.redisUrl;
    if (typeof r === 'string') {
      if (!/^rediss?:\/\/\S+$/.test(r)) throw new Error('bad redisUrl: expected a redis:// or rediss:// URL');
    } else {
      if (!r || !isValidId(r.secretName) || !/^[-._a-zA-Z0-9]+$/.test(r.key ?? ''))
        throw new Error('bad redisUrl: expected a URL or { secretName, key }');
    }
    for (const k of Object.keys(opts.env ?? {})) {
      // These carry the subtree's identity and wiring; an override would break the scrape labels or the topology.
      if (RESERVED_ENV.has(k)) throw new Error(`env ${k} is set by the provisioner and cannot be overridden`);
      if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(k)) throw new Error(`bad env name ${JSON.stringify(k)}`);
    }
    this.apps = kc.makeApiClient(AppsV1Api);
    this.core = kc.makeApiClient(CoreV1Api);
    this.o = {
      image: opts.image,
      nodeExporterImage: opts.nodeExporterImage ?? 'quay.io/prometheus/node-exporter:v1.5.0',
      redisUrl: opts.redisUrl,
      env: opts.env ?? {},
      imagePullPolicy: opts.imagePullPolicy ?? 'IfNotPresent',
      progressDeadlineSeconds: opts.progressDeadlineSeconds ?? DEFAULT_PROGRESS_DEADLINE_SECONDS,
      pollIntervalMs: opts.pollIntervalMs ?? 1000,
      requestTimeoutMs: opts.requestTimeoutMs ?? 10_000,
      retryAttempts: opts.retryAttempts ?? 4,
      retryBaseDelayMs: opts.retryBaseDelayMs ?? 250,
      retryBudgetMs: opts.retryBudgetMs ?? 15_000,
      deleteWaitMs: opts.deleteWaitMs ?? 60_000,
    };
  }

  async create(spec: SubtreeSpec): Promise<void> {
    checkSpec('create', spec);
    const name = deploymentName(spec.subtree);
    try {
      await this.call('create', `create Deployment ${this.namespace}/${name}`, (opt) =>
        this.apps.createNamespacedDeployment({ namespace: this.namespace, body: this.deployment(spec) }, opt),
      );
    } catch (err) {
      if (!(err instanceof KubernetesProvisionerError) || err.status !== 409) throw err;
      // Already there (a repeat, or a retry whose first attempt did land). Make
      // sure it is ours and for this tree, not a stranger with the same name.
      const d = await this.call('create', `get Deployment ${this.namespace}/${name}`, (opt) =>
        this.apps.readNamespacedDeployment({ name, namespace: this.namespace }, opt),
      );
      const l = d.metadata?.labels ?? {};
      if (
        l[LABEL_PART_OF] !== 'canopy' ||
        l[LABEL_MANAGED_BY] !== MANAGED_BY_ACTUATOR ||
        l[LABEL_TREE] !== spec.tree ||
        l[LABEL_SUBTREE] !== spec.subtree
      ) {
        throw new KubernetesProvisionerError(
          'create',
          `Deployment ${this.namespace}/${name} exists but is not Canopy's subtree ${spec.subtree} of tree ${spec.tree} (labels ${JSON.stringify(l)})`,
          409,
          'AlreadyExists',
        );
      }
      // A subtree still being deleted is not "already there": its pods are going away.
      if (d.metadata?.deletionTimestamp) {
        throw new KubernetesProvisionerError(
          'create',
          `Deployment ${this.namespace}/${name} is being deleted; create it again once it is gone`,
          409,
          'AlreadyExists',
        );
      }
    }
  }

  async waitReady(spec: SubtreeSpec, timeoutMs: number): Promise<SubtreeNode[]> {
    checkSpec('wait-ready', spec);
    const name = deploymentName(spec.subtree);
    const what = `Deployment ${this.namespace}/${name}`;
    const deadline = Date.now() + timeoutMs;
    let last = 'no status yet';
    const notReady = (extra = ''): KubernetesProvisionerError =>
      new KubernetesProvisionerError('wait-ready', `${what} not ready after ${timeoutMs} ms: ${last}${extra}`);
    // A request cut short by the deadline reports "not ready" with the last status seen, not a bare timeout.
    const poll = async <T>(desc: string, fn: (opt: ConfigurationOptions) => Promise<T>): Promise<T> => {
      try {
        return await this.call('wait-ready', desc, fn, deadline);
      } catch (err) {
        if (
          err instanceof KubernetesProvisionerError &&
          Date.now() >= deadline &&
          (err.status === undefined || err.status >= 500 || err.status === 429)
        ) {
          throw notReady(`; last request: ${err.message}`);
        }
        throw err;
      }
    };
    for (;;) {
      const d = await poll(`get ${what}`, (opt) =>
        this.apps.readNamespacedDeployment({ name, namespace: this.namespace }, opt),
      );
      if (d.metadata?.deletionTimestamp) throw new KubernetesProvisionerError('wait-ready', `${what} is being deleted`);
      const r = rolloutStatus(d);
      if (r.state === 'failed') throw new KubernetesProvisionerError('wait-ready', `${what}: ${r.message}`);
      if (r.state === 'done') {
        const want = d.spec?.replicas ?? 1;
        const pods = await poll(`list pods of ${what}`, (opt) =>
          this.core.listNamespacedPod(
            { namespace: this.namespace, labelSelector: podSelector(spec.tree, spec.subtree) },
            opt,
          ),
        );
        const ready = pods.items.filter(isReadyPod);
        // Pod names become node ids in Redis keys and Prometheus labels: refuse, never mangle.
        const bad = ready.map((p) => p.metadata?.name).filter((n) => !isValidId(n));
        if (bad.length > 0) {
          throw new KubernetesProvisionerError(
            'wait-ready',
            `${what}: pod name ${JSON.stringify(bad[0])} is not a valid node id (1..63 of a-z, 0-9, '-', not starting with '-'); refusing it`,
          );
        }
        // The list can briefly lag the Deployment's status, or hold pods of an old ReplicaSet still going.
        if (ready.length === want)
          return ready.map((p) => ({ id: p.metadata!.name! })).sort((a, b) => a.id.localeCompare(b.id));
        last = `rolled out, but ${ready.length} of ${want} pods are Running and Ready`;
      } else {
        last = r.message;
      }
      const left = deadline - Date.now();
      if (left <= 0) throw notReady();
      await sleep(Math.min(this.o.pollIntervalMs, left));
    }
  }

  async delete(tree: string, subtree: string): Promise<void> {
    checkId('delete', 'tree', tree);
    checkId('delete', 'subtree', subtree);
    const name = deploymentName(subtree);
    const what = `Deployment ${this.namespace}/${name}`;
    const isGone = (err: unknown): boolean => err instanceof KubernetesProvisionerError && err.status === 404;
    let uid: string | undefined;
    try {
      const d = await this.call('delete', `get ${what}`, (opt) =>
        this.apps.readNamespacedDeployment({ name, namespace: this.namespace }, opt),
      );
      const l = d.metadata?.labels ?? {};
      // As create: never remove a same-named object that is not this subtree's.
      if (
        l[LABEL_PART_OF] !== 'canopy' ||
        l[LABEL_MANAGED_BY] !== MANAGED_BY_ACTUATOR ||
        l[LABEL_TREE] !== tree ||
        l[LABEL_SUBTREE] !== subtree
      ) {
        throw new KubernetesProvisionerError(
          'delete',
          `${what} is not Canopy's subtree ${subtree} of tree ${tree} (labels ${JSON.stringify(l)}); not deleting it`,
        );
      }
      uid = d.metadata?.uid;
    } catch (err) {
      if (isGone(err)) return;
      throw err;
    }
    try {
      // Foreground: the Deployment stays (marked for deletion) until the garbage
      // collector has removed its ReplicaSet and pods, so "Deployment gone" means
      // "egress pods gone" and list() keeps reporting the subtree while its pods
      // can still hold viewers. Background would drop the Deployment at once
      // and leave the pods running unseen. The uid precondition makes sure we
      // delete the object we just checked, not a newer one of the same name.
      await this.call('delete', `delete ${what}`, (opt) =>
        this.apps.deleteNamespacedDeployment(
          {
            name,
            namespace: this.namespace,
            propagationPolicy: 'Foreground',
            body: uid ? { preconditions: { uid } } : {},
          },
          opt,
        ),
      );
    } catch (err) {
      if (isGone(err)) return;
      throw err;
    }
    if (this.o.deleteWaitMs <= 0) return;
    const deadline = Date.now() + this.o.deleteWaitMs;
    for (;;) {
      try {
        const d = await this.call(
          'delete',
          `get ${what}`,
          (opt) => this.apps.readNamespacedDeployment({ name, namespace: this.namespace }, opt),
          deadline,
        );
        // A new object of the same name (created since) is not the one we are waiting for.
        if (uid && d.metadata?.uid !== uid) return;
      } catch (err) {
        if (isGone(err)) return;
        throw err;
      }
      const now = Date.now();
      if (now >= deadline)
        throw new KubernetesProvisionerError(
          'delete',
          `${what} still terminating after ${this.o.deleteWaitMs} ms (its pods are being removed; delete again later)`,
        );
      await sleep(Math.min(this.o.pollIntervalMs, deadline - now));
    }
  }

  async list(tree?: string): Promise<RunningSubtree[]> {
    if (tree !== undefined) checkId('list', 'tree', tree);
    const selector = [
      `${LABEL_PART_OF}=canopy`,
      // The baseline egress nodes of the manifests share the template but are not the actuator's to remove.
      `${LABEL_MANAGED_BY}=${MANAGED_BY_ACTUATOR}`,
      `${LABEL_NODE_TYPE}=egress`,
      ...(tree === undefined ? [] : [`${LABEL_TREE}=${tree}`]),
    ].join(',');
    const res = await this.call('list', `list Deployments in ${this.namespace}`, (opt) =>
      this.apps.listNamespacedDeployment({ namespace: this.namespace, labelSelector: selector }, opt),
    );
    const out: RunningSubtree[] = [];
    for (const d of res.items) {
      const l = d.metadata?.labels ?? {};
      const t = l[LABEL_TREE];
      const s = l[LABEL_SUBTREE];
      // Hand-made objects with our labels but bad values are not ours to report.
      if (isValidId(t) && isValidId(s) && d.metadata?.name === deploymentName(s)) out.push({ tree: t, subtree: s });
    }
    return out.sort((a, b) => a.tree.localeCompare(b.tree) || a.subtree.localeCompare(b.subtree));
  }

  /** The Deployment of one subtree, from the one egress template (egress-deployment.ts). */
  deployment(spec: SubtreeSpec): V1Deployment {
    return egressDeployment({
      namespace: this.namespace,
      tree: spec.tree,
      subtree: spec.subtree,
      slot: spec.slot,
      replicas: spec.size,
      image: this.o.image,
      nodeExporterImage: this.o.nodeExporterImage,
      imagePullPolicy: this.o.imagePullPolicy,
      progressDeadlineSeconds: this.o.progressDeadlineSeconds,
      redisUrl: this.o.redisUrl,
      env: this.o.env,
      managedBy: MANAGED_BY_ACTUATOR,
    });
  }

  /**
   * One API call with a per-request timeout, retried with exponential backoff on
   * 5xx, 429 and connection errors, within `retryAttempts` and a time budget
   * (and the caller's deadline). Other errors fail at once, wrapped.
   */
  private async call<T>(
    step: Step,
    what: string,
    fn: (opt: ConfigurationOptions) => Promise<T>,
    deadline?: number,
  ): Promise<T> {
    const end = Math.min(deadline ?? Infinity, Date.now() + this.o.retryBudgetMs);
    for (let attempt = 1; ; attempt++) {
      const timeout = Math.max(1, Math.min(this.o.requestTimeoutMs, end - Date.now()));
      try {
        return await fn(timeoutOption(timeout));
      } catch (err) {
        const e = describe(err, timeout);
        const delay = this.o.retryBaseDelayMs * 2 ** (attempt - 1) * (0.75 + Math.random() * 0.5);
        if (!e.retryable || attempt >= this.o.retryAttempts || Date.now() + delay >= end) {
          const tries = attempt > 1 ? ` (after ${attempt} attempts)` : '';
          throw new KubernetesProvisionerError(step, `${what}: ${e.text}${tries}`, e.status, e.reason);
        }
        await sleep(delay);
      }
    }
  }
}

/**
 * `kubectl rollout status` for a Deployment (kubectl's DeploymentStatusViewer):
 * the controller must have observed the current generation; a Progressing
 * condition with reason ProgressDeadlineExceeded is a failure; then all
 * replicas updated, no old ones left, all updated ones available.
 */
export function rolloutStatus(d: V1Deployment): { state: 'done' | 'waiting' | 'failed'; message: string } {
  const gen = d.metadata?.generation ?? 0;
  const st = d.status ?? {};
  if ((st.observedGeneration ?? -1) < gen)
    return { state: 'waiting', message: 'waiting for the deployment spec update to be observed' };
  const progressing = st.conditions?.find((c) => c.type === 'Progressing');
  if (progressing?.reason === 'ProgressDeadlineExceeded') {
    return {
      state: 'failed',
      message: `exceeded its progress deadline: ${progressing.message ?? 'ProgressDeadlineExceeded'}`,
    };
  }
  const replicas = d.spec?.replicas ?? 1;
  const updated = st.updatedReplicas ?? 0;
  const total = st.replicas ?? 0;
  const available = st.availableReplicas ?? 0;
  if (updated < replicas)
    return { state: 'waiting', message: `${updated} of ${replicas} new replicas have been updated` };
  if (total > updated) return { state: 'waiting', message: `${total - updated} old replicas are pending termination` };
  if (available < updated)
    return { state: 'waiting', message: `${available} of ${updated} updated replicas are available` };
  return { state: 'done', message: 'successfully rolled out' };
}

function podSelector(tree: string, subtree: string): string {
  return `${LABEL_TREE}=${tree},${LABEL_SUBTREE}=${subtree},${LABEL_NODE_TYPE}=egress`;
}

function isReadyPod(p: V1Pod): boolean {
  return (
    !p.metadata?.deletionTimestamp &&
    p.status?.phase === 'Running' &&
    (p.status.conditions ?? []).some((c) => c.type === 'Ready' && c.status === 'True')
  );
}

function checkId(step: Step, kind: string, v: unknown): void {
  if (!isValidId(v))
    throw new KubernetesProvisionerError(
      step,
      `bad ${kind} id ${JSON.stringify(v)}: expected 1..63 of a-z, 0-9, '-', not starting with '-'`,
    );
}

function checkSpec(step: Step, spec: SubtreeSpec): void {
  checkId(step, 'tree', spec.tree);
  checkId(step, 'subtree', spec.subtree);
  checkId(step, 'slot', spec.slot);
  if (!Number.isInteger(spec.size) || spec.size < 1 || spec.size > 1000) {
    throw new KubernetesProvisionerError(
      step,
      `bad subtree size ${JSON.stringify(spec.size)}: expected an integer 1..1000`,
    );
  }
}

/** Per-request abort signal, as an (Observable-style) middleware of this one call. */
function timeoutOption(ms: number): ConfigurationOptions {
  const mw: ObservableMiddleware = {
    pre: (ctx: RequestContext) => {
      ctx.setSignal(AbortSignal.timeout(ms));
      return new Observable(Promise.resolve(ctx));
    },
    post: (res: ResponseContext) => new Observable(Promise.resolve(res)),
  };
  return { middleware: [mw], middlewareMergeStrategy: 'append' };
}

function describe(
  err: unknown,
  timeoutMs: number,
): { text: string; status?: number; reason?: string; retryable: boolean } {
  if (err instanceof ApiException) {
    const code = err.code as number;
    let reason: string | undefined;
    let message: string | undefined;
    const body: unknown = err.body;
    try {
      const s = (typeof body === 'string' ? JSON.parse(body) : body) as
        | { kind?: string; reason?: string; message?: string }
        | undefined;
      if (s && typeof s === 'object') {
        reason = typeof s.reason === 'string' ? s.reason : undefined;
        message = typeof s.message === 'string' ? s.message : undefined;
      }
    } catch {
      // Not a Status object (a proxy's HTML page, say): show a bit of it.
      message = String(body).slice(0, 200);
    }
    return {
      text: `HTTP ${code}${reason ? ` ${reason}` : ''}: ${message ?? STATUS_CODES[code] ?? 'no message'}`,
      status: code,
      reason,
      retryable: code >= 500 || code === 429,
    };
  }
  const e = err as { name?: string; code?: string; message?: string };
  if (e?.name === 'AbortError' || e?.name === 'TimeoutError')
    return { text: `no answer within ${timeoutMs} ms`, retryable: true };
  return { text: `connection error: ${e?.code ? `${e.code} ` : ''}${e?.message ?? String(err)}`, retryable: true };
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, Math.max(0, ms)));
}
