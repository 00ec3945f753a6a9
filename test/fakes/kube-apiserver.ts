/**
 * FAKE Kubernetes API server, for tests only. No real API server (or kind,
 * k3s, Docker) can run on this machine, so the Kubernetes provisioner is tested
 * with the real `@kubernetes/client-node` against this server, which speaks the
 * same wire contract for the few calls the provisioner makes:
 *
 *   POST   /apis/apps/v1/namespaces/{ns}/deployments
 *   GET    /apis/apps/v1/namespaces/{ns}/deployments[?labelSelector=]
 *   GET    /apis/apps/v1/namespaces/{ns}/deployments/{name}
 *   DELETE /apis/apps/v1/namespaces/{ns}/deployments/{name}[?propagationPolicy=]
 *   GET    /api/v1/namespaces/{ns}/pods[?labelSelector=]
 *   POST   /apis/apps/v1/namespaces/{ns}/statefulsets, GET (list, one)
 *
 * StatefulSets are there for the manifests' fake-cluster test: their pods
 * are `<name>-<ordinal>` and become Ready as a Deployment's do. Every request
 * is recorded with the authorization attributes the API server would check
 * (verb, API group, resource), so a test can hold a Role against them.
 *
 * Object and error shapes follow the Kubernetes API reference (apps/v1
 * Deployment and DeploymentStatus, core/v1 Pod, meta/v1 Status). A tiny
 * "controller" plays the Deployment and ReplicaSet controllers: it observes the
 * generation and creates Pending pods at once, then after `readyDelayMs` marks
 * them Running and Ready and the Deployment available — unless a test hook says
 * otherwise. It is not an API server: no watch, no patch/update, no
 * set-based selectors, no admission or validation beyond what tests need.
 */
import { createHash, randomInt } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';

/** Kubernetes' name-suffix alphabet (no vowels, no 0/1/3: k8s.io/apimachinery/pkg/util/rand). */
const SAFE_ALPHABET = 'bcdfghjklmnpqrstvwxz2456789';

type Json = Record<string, any>;
type AppsKind = 'deployments' | 'statefulsets';

export interface RecordedRequest {
  method: string;
  path: string;
  query: Record<string, string>;
  headers: Record<string, string | string[] | undefined>;
  body: Json | undefined;
  /** Status code the fake answered with (0: connection dropped). */
  status: number;
}

/** What RBAC authorizes a request by (k8s.io/apiserver's RequestInfo). */
export interface ApiCall {
  verb: string;
  apiGroup: string;
  resource: string;
  namespace: string;
}

export interface FakeKubeApiServerOptions {
  /** How long the fake controller takes to make pods Ready (ms). */
  readyDelayMs?: number;
  /** How long a Foreground deletion keeps the Deployment around while its pods go (ms). */
  foregroundDeleteDelayMs?: number;
}

interface FaultPlan {
  remaining: number;
  status: number;
  /** Drop the connection instead of answering. */
  drop: boolean;
  /** Never answer (the socket stays open until the client gives up or the server stops). */
  hang: boolean;
  /** Only requests of this method count (others are served normally). */
  method?: string;
}

export class FakeKubeApiServer {
  readonly requests: RecordedRequest[] = [];
  /** namespace -> name -> object */
  private readonly deployments = new Map<string, Map<string, Json>>();
  private readonly pods = new Map<string, Map<string, Json>>();
  private readonly statefulSets = new Map<string, Map<string, Json>>();
  private readonly timers = new Set<NodeJS.Timeout>();
  private readonly sockets = new Set<Socket>();
  private faults: FaultPlan | undefined;
  private readonly neverReady = new Set<string>();
  private readonly deadlineExceeded = new Set<string>();
  private server: Server | undefined;
  private rv = 1000;
  readyDelayMs: number;
  foregroundDeleteDelayMs: number;
  /** Test hook: choose pod names (e.g. an invalid one); default is Kubernetes' scheme. */
  podName: ((deployment: string, replicaSet: string, index: number) => string) | undefined;

  constructor(opts: FakeKubeApiServerOptions = {}) {
    this.readyDelayMs = opts.readyDelayMs ?? 50;
    this.foregroundDeleteDelayMs = opts.foregroundDeleteDelayMs ?? 30;
  }

  /** Listens on 127.0.0.1 on a free port; resolves with the base URL. */
  async start(): Promise<string> {
    const server = createServer((req, res) => {
      this.handle(req, res).catch((err: unknown) => {
        if (!res.headersSent) this.status(res, req, 500, 'InternalError', `fake apiserver: ${String(err)}`);
      });
    });
    server.on('connection', (s) => {
      this.sockets.add(s);
      s.on('close', () => this.sockets.delete(s));
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => resolve());
    });
    this.server = server;
    return this.url;
  }

  get url(): string {
    if (!this.server) throw new Error('fake apiserver not started');
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  async stop(): Promise<void> {
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
    const server = this.server;
    this.server = undefined;
    if (!server) return;
    // Keep-alive sockets of the client would otherwise hold close() open.
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  // ---- fault injection and inspection (tests) ----

  /** The next `n` requests (of `method`, if given) fail with `status` (a Status object, reason InternalError for 500). */
  failNext(n: number, status = 500, method?: string): void {
    this.faults = { remaining: n, status, drop: false, hang: false, method };
  }

  /** The next `n` requests get their connection destroyed with no answer. */
  dropNext(n: number): void {
    this.faults = { remaining: n, status: 0, drop: true, hang: false };
  }

  /** The next `n` requests get no answer at all. */
  hangNext(n: number): void {
    this.faults = { remaining: n, status: 0, drop: false, hang: true };
  }

  /** Pods of this Deployment stay Pending; it never becomes available. */
  setNeverReady(name: string): void {
    this.neverReady.add(name);
  }

  /** This Deployment reports Progressing=False, reason ProgressDeadlineExceeded (as the controller does after progressDeadlineSeconds). */
  setProgressDeadlineExceeded(name: string): void {
    this.deadlineExceeded.add(name);
    for (const d of this.allDeployments()) if (d.metadata.name === name) this.applyDeadlineExceeded(d);
  }

  deployment(namespace: string, name: string): Json | undefined {
    return this.deployments.get(namespace)?.get(name);
  }

  deploymentNames(namespace: string): string[] {
    return [...(this.deployments.get(namespace)?.keys() ?? [])].sort();
  }

  podNames(namespace: string): string[] {
    return [...(this.pods.get(namespace)?.keys() ?? [])].sort();
  }

  /** The pods of a namespace as stored (labels, containers, status). */
  podObjects(namespace: string): Json[] {
    return [...(this.pods.get(namespace)?.values() ?? [])];
  }

  /**
   * Every answered request as RBAC sees it: GET on a collection is `list`, on
   * one object `get`; POST `create`; DELETE `delete` (deletecollection when
   * no name); PUT `update`; PATCH `patch`. Dropped or refused-as-malformed
   * requests count too: RBAC is checked before anything else.
   */
  calls(): ApiCall[] {
    const out: ApiCall[] = [];
    for (const r of this.requests) {
      const m = /^\/(?:api\/v1|apis\/([^/]+)\/[^/]+)\/namespaces\/([^/]+)\/([^/]+)(?:\/([^/]+))?$/.exec(r.path);
      if (!m) continue;
      const named = m[4] !== undefined;
      const verb =
        r.method === 'GET'
          ? named
            ? 'get'
            : 'list'
          : r.method === 'POST'
            ? 'create'
            : r.method === 'DELETE'
              ? named
                ? 'delete'
                : 'deletecollection'
              : r.method === 'PUT'
                ? 'update'
                : r.method === 'PATCH'
                  ? 'patch'
                  : r.method.toLowerCase();
      out.push({ verb, apiGroup: m[1] ?? '', resource: m[3]!, namespace: decodeURIComponent(m[2]!) });
    }
    return out;
  }

  // ---- HTTP ----

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://fake');
    const query = Object.fromEntries(url.searchParams);
    const raw = await readBody(req);
    let body: Json | undefined;
    if (raw.length > 0) {
      try {
        body = JSON.parse(raw) as Json;
      } catch {
        this.record(req, url.pathname, query, undefined, 400);
        return this.status(res, req, 400, 'BadRequest', 'the body of the request was in an unknown format');
      }
    }
    const rec = this.record(req, url.pathname, query, body, 0);

    if (
      this.faults &&
      this.faults.remaining > 0 &&
      (this.faults.method === undefined || this.faults.method === req.method)
    ) {
      this.faults.remaining--;
      if (this.faults.drop) {
        req.socket.destroy();
        return;
      }
      if (this.faults.hang) return;
      rec.status = this.faults.status;
      return this.status(res, req, this.faults.status, reasonFor(this.faults.status), 'fake apiserver: injected fault');
    }

    const send = (code: number, obj: Json): void => {
      rec.status = code;
      res.writeHead(code, { 'content-type': 'application/json' });
      res.end(JSON.stringify(obj));
    };
    const fail = (code: number, reason: string, message: string, details?: Json): void => {
      rec.status = code;
      this.status(res, req, code, reason, message, details);
    };
    // The Status bodies the real server sends for a named apps/v1 object.
    const notFound = (kind: AppsKind, name: string) =>
      fail(404, 'NotFound', `${kind}.apps "${name}" not found`, { name, group: 'apps', kind });
    const alreadyExists = (kind: AppsKind, name: string) =>
      fail(409, 'AlreadyExists', `${kind}.apps "${name}" already exists`, { name, group: 'apps', kind });

    let m = /^\/apis\/apps\/v1\/namespaces\/([^/]+)\/deployments(?:\/([^/]+))?$/.exec(url.pathname);
    if (m) {
      const ns = decodeURIComponent(m[1]!);
      const name = m[2] === undefined ? undefined : decodeURIComponent(m[2]);
      const store = this.nsMap(this.deployments, ns);
      if (name === undefined && req.method === 'GET') {
        const sel = parseSelector(query.labelSelector);
        if (sel instanceof Error) return fail(400, 'BadRequest', sel.message);
        const items = [...store.values()].filter((d) => matches(sel, d.metadata.labels)).map(listItem);
        return send(200, {
          kind: 'DeploymentList',
          apiVersion: 'apps/v1',
          metadata: { resourceVersion: String(this.rv) },
          items,
        });
      }
      if (name === undefined && req.method === 'POST') {
        if (!body || typeof body.metadata?.name !== 'string')
          return fail(
            422,
            'Invalid',
            'Deployment.apps "" is invalid: metadata.name: Required value: name or generateName is required',
          );
        const dname: string = body.metadata.name;
        if (store.has(dname)) {
          return alreadyExists('deployments', dname);
        }
        const d = this.admit(ns, body);
        store.set(dname, d);
        this.reconcile(ns, dname);
        return send(201, d);
      }
      if (name !== undefined && req.method === 'GET') {
        const d = store.get(name);
        if (!d) return notFound('deployments', name);
        return send(200, d);
      }
      if (name !== undefined && req.method === 'DELETE') {
        const d = store.get(name);
        if (!d) return notFound('deployments', name);
        // The policy may come as a query parameter or in the DeleteOptions body.
        const policy = query.propagationPolicy ?? body?.propagationPolicy ?? 'Background';
        const pre = body?.preconditions?.uid;
        if (typeof pre === 'string' && pre !== d.metadata.uid) {
          return fail(
            409,
            'Conflict',
            `Operation cannot be fulfilled on deployments.apps "${name}": Precondition failed: UID in precondition: ${pre}, UID in object meta: ${d.metadata.uid}`,
            { name, group: 'apps', kind: 'deployments' },
          );
        }
        if (policy === 'Foreground') {
          // The object stays, marked, until the garbage collector removes its dependents.
          if (!d.metadata.deletionTimestamp) {
            d.metadata.deletionTimestamp = new Date().toISOString();
            d.metadata.finalizers = ['foregroundDeletion'];
            d.metadata.resourceVersion = String(++this.rv);
            this.later(this.foregroundDeleteDelayMs, () => {
              this.deletePods(ns, name);
              store.delete(name);
            });
          }
          return send(200, d);
        }
        if (policy !== 'Background' && policy !== 'Orphan')
          return fail(400, 'BadRequest', `propagationPolicy: Unsupported value: "${policy}"`);
        store.delete(name);
        if (policy === 'Background') this.later(this.foregroundDeleteDelayMs, () => this.deletePods(ns, name));
        return send(200, {
          kind: 'Status',
          apiVersion: 'v1',
          metadata: {},
          status: 'Success',
          details: { name, group: 'apps', kind: 'deployments', uid: d.metadata.uid },
        });
      }
      return fail(405, 'MethodNotAllowed', `the server does not allow this method on the requested resource`);
    }

    m = /^\/apis\/apps\/v1\/namespaces\/([^/]+)\/statefulsets(?:\/([^/]+))?$/.exec(url.pathname);
    if (m) {
      const ns = decodeURIComponent(m[1]!);
      const name = m[2] === undefined ? undefined : decodeURIComponent(m[2]);
      const store = this.nsMap(this.statefulSets, ns);
      if (name === undefined && req.method === 'GET') {
        const sel = parseSelector(query.labelSelector);
        if (sel instanceof Error) return fail(400, 'BadRequest', sel.message);
        const items = [...store.values()].filter((d) => matches(sel, d.metadata.labels)).map(listItem);
        return send(200, { kind: 'StatefulSetList', apiVersion: 'apps/v1', metadata: {}, items });
      }
      if (name === undefined && req.method === 'POST') {
        const sname = body?.metadata?.name;
        if (typeof sname !== 'string')
          return fail(422, 'Invalid', 'StatefulSet.apps "" is invalid: metadata.name: Required value');
        if (store.has(sname)) return alreadyExists('statefulsets', sname);
        const st = this.admit(ns, body!, 'StatefulSet');
        store.set(sname, st);
        this.reconcileStatefulSet(ns, st);
        return send(201, st);
      }
      if (name !== undefined && req.method === 'GET') {
        const st = store.get(name);
        if (!st) return notFound('statefulsets', name);
        return send(200, st);
      }
      return fail(405, 'MethodNotAllowed', `the server does not allow this method on the requested resource`);
    }

    m = /^\/api\/v1\/namespaces\/([^/]+)\/pods$/.exec(url.pathname);
    if (m && req.method === 'GET') {
      const sel = parseSelector(query.labelSelector);
      if (sel instanceof Error) return fail(400, 'BadRequest', sel.message);
      const items = [...this.nsMap(this.pods, decodeURIComponent(m[1]!)).values()]
        .filter((p) => matches(sel, p.metadata.labels))
        .map(listItem);
      return send(200, { kind: 'PodList', apiVersion: 'v1', metadata: { resourceVersion: String(this.rv) }, items });
    }

    return fail(404, 'NotFound', 'the server could not find the requested resource');
  }

  private record(
    req: IncomingMessage,
    path: string,
    query: Record<string, string>,
    body: Json | undefined,
    status: number,
  ): RecordedRequest {
    const r: RecordedRequest = { method: req.method ?? '', path, query, headers: { ...req.headers }, body, status };
    this.requests.push(r);
    return r;
  }

  /** A meta/v1 Status, as the API server sends for every error. */
  private status(
    res: ServerResponse,
    _req: IncomingMessage,
    code: number,
    reason: string,
    message: string,
    details?: Json,
  ): void {
    res.writeHead(code, { 'content-type': 'application/json' });
    res.end(
      JSON.stringify({
        kind: 'Status',
        apiVersion: 'v1',
        metadata: {},
        status: 'Failure',
        message,
        reason,
        ...(details ? { details } : {}),
        code,
      }),
    );
  }

  // ---- the "controllers" ----

  /** What the API server fills in on create: uid, resourceVersion, generation, defaults, empty status. */
  private admit(ns: string, body: Json, kind: 'Deployment' | 'StatefulSet' = 'Deployment'): Json {
    const d = structuredClone(body);
    d.kind = kind;
    d.apiVersion = 'apps/v1';
    d.metadata = {
      ...d.metadata,
      namespace: ns,
      uid: cryptoUid(),
      resourceVersion: String(++this.rv),
      generation: 1,
      creationTimestamp: new Date().toISOString().replace(/\.\d+Z$/, 'Z'),
    };
    if (kind === 'Deployment') {
      d.spec = { replicas: 1, progressDeadlineSeconds: 600, revisionHistoryLimit: 10, ...d.spec };
      d.spec.strategy ??= { type: 'RollingUpdate', rollingUpdate: { maxUnavailable: '25%', maxSurge: '25%' } };
    } else {
      d.spec = { replicas: 1, podManagementPolicy: 'OrderedReady', ...d.spec };
    }
    d.status = {};
    return d;
  }

  private reconcile(ns: string, name: string): void {
    const d = this.deployments.get(ns)?.get(name);
    if (!d) return;
    const replicas: number = d.spec.replicas;
    const template = d.spec.template ?? {};
    const hash = templateHash(template);
    const rsName = `${name}-${hash}`;
    const now = new Date().toISOString().replace(/\.\d+Z$/, 'Z');
    const pods = this.nsMap(this.pods, ns);
    const created: Json[] = [];
    for (let i = 0; i < replicas; i++) {
      // generateName: ReplicaSet name + '-', cut to 58 characters, then 5 random ones.
      const podName = this.podName ? this.podName(name, rsName, i) : `${`${rsName}-`.slice(0, 58)}${randomSuffix()}`;
      const pod: Json = {
        kind: 'Pod',
        apiVersion: 'v1',
        metadata: {
          name: podName,
          generateName: `${rsName}-`,
          namespace: ns,
          uid: cryptoUid(),
          resourceVersion: String(++this.rv),
          creationTimestamp: now,
          labels: { ...(template.metadata?.labels ?? {}), 'pod-template-hash': hash },
          ownerReferences: [
            {
              apiVersion: 'apps/v1',
              kind: 'ReplicaSet',
              name: rsName,
              uid: cryptoUid(),
              controller: true,
              blockOwnerDeletion: true,
            },
          ],
        },
        spec: structuredClone(template.spec ?? {}),
        status: { phase: 'Pending', conditions: [{ type: 'PodScheduled', status: 'True', lastTransitionTime: now }] },
      };
      pods.set(podName, pod);
      created.push(pod);
    }
    d.status = {
      observedGeneration: d.metadata.generation,
      replicas,
      updatedReplicas: replicas,
      unavailableReplicas: replicas,
      conditions: [
        condition('Available', 'False', 'MinimumReplicasUnavailable', 'Deployment does not have minimum availability.'),
        condition('Progressing', 'True', 'ReplicaSetUpdated', `ReplicaSet "${rsName}" is progressing.`),
      ],
    };
    if (this.deadlineExceeded.has(name)) this.applyDeadlineExceeded(d);
    if (this.neverReady.has(name) || this.deadlineExceeded.has(name)) return;
    this.later(this.readyDelayMs, () => {
      if (this.neverReady.has(name) || this.deadlineExceeded.has(name) || this.deployments.get(ns)?.get(name) !== d)
        return;
      let ip = 10;
      for (const p of created) {
        p.status = {
          phase: 'Running',
          podIP: `10.244.0.${ip++}`,
          startTime: now,
          conditions: ['PodScheduled', 'Initialized', 'ContainersReady', 'Ready'].map((type) => ({
            type,
            status: 'True',
            lastTransitionTime: now,
          })),
        };
        p.metadata.resourceVersion = String(++this.rv);
      }
      d.status = {
        observedGeneration: d.metadata.generation,
        replicas,
        updatedReplicas: replicas,
        readyReplicas: replicas,
        availableReplicas: replicas,
        conditions: [
          condition('Available', 'True', 'MinimumReplicasAvailable', 'Deployment has minimum availability.'),
          condition(
            'Progressing',
            'True',
            'NewReplicaSetAvailable',
            `ReplicaSet "${rsName}" has successfully progressed.`,
          ),
        ],
      };
      d.metadata.resourceVersion = String(++this.rv);
    });
  }

  /** The StatefulSet controller, briefly: pods `<name>-<ordinal>`, Running and Ready after readyDelayMs. */
  private reconcileStatefulSet(ns: string, st: Json): void {
    const template = st.spec.template ?? {};
    const now = new Date().toISOString().replace(/\.\d+Z$/, 'Z');
    const pods = this.nsMap(this.pods, ns);
    const created: Json[] = [];
    for (let i = 0; i < st.spec.replicas; i++) {
      const podName = `${st.metadata.name}-${i}`;
      const pod: Json = {
        kind: 'Pod',
        apiVersion: 'v1',
        metadata: {
          name: podName,
          namespace: ns,
          uid: cryptoUid(),
          resourceVersion: String(++this.rv),
          creationTimestamp: now,
          labels: {
            ...(template.metadata?.labels ?? {}),
            'apps.kubernetes.io/pod-index': String(i),
            'statefulset.kubernetes.io/pod-name': podName,
          },
          ownerReferences: [
            {
              apiVersion: 'apps/v1',
              kind: 'StatefulSet',
              name: st.metadata.name,
              uid: st.metadata.uid,
              controller: true,
            },
          ],
        },
        spec: { ...structuredClone(template.spec ?? {}), hostname: podName, subdomain: st.spec.serviceName },
        status: { phase: 'Pending' },
      };
      pods.set(podName, pod);
      created.push(pod);
    }
    st.status = { observedGeneration: 1, replicas: st.spec.replicas, readyReplicas: 0 };
    this.later(this.readyDelayMs, () => {
      for (const p of created) {
        p.status = {
          phase: 'Running',
          conditions: [{ type: 'Ready', status: 'True', lastTransitionTime: now }],
        };
      }
      st.status = { ...st.status, readyReplicas: created.length, availableReplicas: created.length };
    });
  }

  private applyDeadlineExceeded(d: Json): void {
    const rsName = `${d.metadata.name}-${templateHash(d.spec.template ?? {})}`;
    const conditions: Json[] = (d.status.conditions ?? []).filter((c: Json) => c.type !== 'Progressing');
    conditions.push(
      condition(
        'Progressing',
        'False',
        'ProgressDeadlineExceeded',
        `ReplicaSet "${rsName}" has timed out progressing.`,
      ),
    );
    d.status = { ...d.status, conditions };
  }

  private deletePods(ns: string, deployment: string): void {
    const pods = this.nsMap(this.pods, ns);
    for (const [n, p] of pods) {
      if (p.metadata.ownerReferences?.[0]?.name?.startsWith(`${deployment}-`)) pods.delete(n);
    }
  }

  private later(ms: number, fn: () => void): void {
    const t = setTimeout(() => {
      this.timers.delete(t);
      fn();
    }, ms);
    this.timers.add(t);
  }

  private nsMap(m: Map<string, Map<string, Json>>, ns: string): Map<string, Json> {
    let v = m.get(ns);
    if (!v) {
      v = new Map();
      m.set(ns, v);
    }
    return v;
  }

  private *allDeployments(): Iterable<Json> {
    for (const m of this.deployments.values()) yield* m.values();
  }
}

function condition(type: string, status: string, reason: string, message: string): Json {
  const now = new Date().toISOString().replace(/\.\d+Z$/, 'Z');
  return { type, status, reason, message, lastUpdateTime: now, lastTransitionTime: now };
}

/** List items carry no kind/apiVersion on the wire; the list does. */
function listItem(o: Json): Json {
  const { kind: _k, apiVersion: _a, ...rest } = o;
  return rest;
}

/** pod-template-hash: a hash of the template, in the safe alphabet (the real one is FNV-32a of the template). */
function templateHash(template: Json): string {
  const n = createHash('sha256').update(JSON.stringify(template)).digest().readUInt32BE(0);
  let v = n;
  let s = '';
  do {
    s += SAFE_ALPHABET[v % SAFE_ALPHABET.length];
    v = Math.floor(v / SAFE_ALPHABET.length);
  } while (v > 0 && s.length < 10);
  return s;
}

function randomSuffix(): string {
  let s = '';
  for (let i = 0; i < 5; i++) s += SAFE_ALPHABET[randomInt(SAFE_ALPHABET.length)];
  return s;
}

function cryptoUid(): string {
  return globalThis.crypto.randomUUID();
}

function reasonFor(code: number): string {
  return (
    {
      400: 'BadRequest',
      403: 'Forbidden',
      404: 'NotFound',
      409: 'Conflict',
      429: 'TooManyRequests',
      500: 'InternalError',
      503: 'ServiceUnavailable',
      504: 'Timeout',
    }[code] ?? 'Unknown'
  );
}

type Requirement = { key: string; op: '=' | '!=' | 'exists' | '!exists'; value?: string };

/** Equality-based selectors (`a=b`, `a==b`, `a!=b`, `a`, `!a`), comma-joined; set-based ones are refused. */
function parseSelector(raw: string | undefined): Requirement[] | Error {
  if (raw === undefined || raw.trim() === '') return [];
  const out: Requirement[] = [];
  for (const part of raw.split(',')) {
    const p = part.trim();
    const req = parseRequirement(p);
    if (!req)
      return new Error(
        `unable to parse requirement: fake apiserver supports equality-based selectors only: ${JSON.stringify(p)}`,
      );
    out.push(req);
  }
  return out;
}

const REQUIREMENT_FORMS: Array<[RegExp, (m: RegExpExecArray) => Requirement]> = [
  [/^([^=!\s]+)\s*!=\s*(\S*)$/, (m) => ({ key: m[1]!, op: '!=', value: m[2]! })],
  [/^([^=!\s]+)\s*==?\s*(\S*)$/, (m) => ({ key: m[1]!, op: '=', value: m[2]! })],
  [/^!([^=!\s]+)$/, (m) => ({ key: m[1]!, op: '!exists' })],
  [/^([^=!\s(),]+)$/, (m) => ({ key: m[1]!, op: 'exists' })],
];

function parseRequirement(p: string): Requirement | undefined {
  for (const [re, make] of REQUIREMENT_FORMS) {
    const m = re.exec(p);
    if (m) return make(m);
  }
  return undefined;
}

function matches(sel: Requirement[], labels: Record<string, string> | undefined): boolean {
  const l = labels ?? {};
  return sel.every((r) => {
    const has = Object.hasOwn(l, r.key);
    switch (r.op) {
      case '=':
        return has && l[r.key] === r.value;
      case '!=':
        return !has || l[r.key] !== r.value;
      case 'exists':
        return has;
      case '!exists':
        return !has;
      default:
        return false;
    }
  });
}

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}
