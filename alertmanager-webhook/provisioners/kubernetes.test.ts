/**
 * The Kubernetes provisioner with the real @kubernetes/client-node, over HTTP on
 * loopback, against FakeKubeApiServer (a fake of the API server's REST
 * contract: no cluster can run here). The kubeconfig is a real file read by the
 * library's own loader.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { ID_PATTERN } from '../../topology/ids.ts';
import { FakeKubeApiServer } from '../../test/fakes/kube-apiserver.ts';
import { podMeta, type Relabel, relabel } from '../../test/relabel.ts';
import { KubernetesProvisioner, KubernetesProvisionerError, type KubernetesProvisionerOptions } from './kubernetes.ts';
import { ProvisionerError, type SubtreeSpec } from './provisioner.ts';

const NS = 'media';
const spec: SubtreeSpec = { tree: 'tree-a', subtree: 'tree-a-st-1', slot: 'relay-1-s0', size: 3 };

let fake: FakeKubeApiServer;
let dir: string;

beforeEach(async () => {
  fake = new FakeKubeApiServer({ readyDelayMs: 80, foregroundDeleteDelayMs: 60 });
  const url = await fake.start();
  dir = mkdtempSync(join(tmpdir(), 'canopy-k8s-'));
  // http:// needs insecure-skip-tls-verify in client-node; a real cluster is https.
  writeFileSync(
    join(dir, 'kubeconfig'),
    [
      'apiVersion: v1',
      'kind: Config',
      'current-context: fake',
      'clusters:',
      '- name: fake',
      '  cluster:',
      `    server: ${url}`,
      '    insecure-skip-tls-verify: true',
      'users:',
      '- name: actuator',
      '  user:',
      '    token: test-token',
      'contexts:',
      '- name: fake',
      '  context:',
      '    cluster: fake',
      '    user: actuator',
      `    namespace: ${NS}`,
    ].join('\n'),
  );
});

afterEach(async () => {
  await fake.stop();
  rmSync(dir, { recursive: true, force: true });
});

function provisioner(extra: Partial<KubernetesProvisionerOptions> = {}): KubernetesProvisioner {
  return new KubernetesProvisioner({
    kubeconfig: join(dir, 'kubeconfig'),
    image: 'registry.example/canopy:test',
    nodeExporterImage: 'registry.example/node-exporter:v1.5.0',
    redisUrl: 'redis://redis.media.svc:6379',
    pollIntervalMs: 20,
    retryBaseDelayMs: 10,
    requestTimeoutMs: 2000,
    deleteWaitMs: 3000,
    ...extra,
  });
}

async function rejection(p: Promise<unknown>): Promise<KubernetesProvisionerError> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(KubernetesProvisionerError);
  expect(err).toBeInstanceOf(ProvisionerError);
  return err as KubernetesProvisionerError;
}

describe('KubernetesProvisioner against the fake API server', () => {
  it('create then waitReady returns the pod names as node ids', async () => {
    const p = provisioner();
    expect(p.namespace).toBe(NS); // from the kubeconfig context
    await p.create(spec);
    const nodes = await p.waitReady(spec, 5000);
    expect(nodes).toHaveLength(3);
    expect(nodes.map((n) => n.id)).toEqual(fake.podNames(NS));
    for (const n of nodes) {
      expect(n.id).toMatch(ID_PATTERN);
      expect(n.id).toMatch(/^egress-tree-a-st-1-[a-z0-9]{1,10}-[a-z0-9]{5}$/);
    }
    const post = fake.requests.find((r) => r.method === 'POST')!;
    expect(post.path).toBe(`/apis/apps/v1/namespaces/${NS}/deployments`);
    expect(post.headers.authorization).toBe('Bearer test-token');
    const podList = fake.requests.find((r) => r.path === `/api/v1/namespaces/${NS}/pods`)!;
    expect(podList.query.labelSelector).toBe(
      'canopy.media/tree-id=tree-a,canopy.media/subtree=tree-a-st-1,canopy.media/node-type=egress',
    );
  });

  it('create twice makes one Deployment (409 AlreadyExists is success)', async () => {
    const p = provisioner();
    await p.create(spec);
    await p.create(spec);
    expect(fake.deploymentNames(NS)).toEqual(['egress-tree-a-st-1']);
    expect(fake.requests.filter((r) => r.method === 'POST').map((r) => r.status)).toEqual([201, 409]);
    expect(await p.waitReady(spec, 5000)).toHaveLength(3);
  });

  it("refuses a same-named Deployment that is not Canopy's", async () => {
    const p = provisioner();
    const foreign = p.deployment(spec);
    foreign.metadata!.labels = { app: 'someone-else' };
    const res = await fetch(`${fake.url}/apis/apps/v1/namespaces/${NS}/deployments`, {
      method: 'POST',
      body: JSON.stringify(foreign),
    });
    expect(res.status).toBe(201);
    const err = await rejection(p.create(spec));
    expect(err.step).toBe('create');
    expect(err.message).toMatch(/exists but is not Canopy's/);
  });

  it('delete twice is fine (404 NotFound is success); Foreground removes the pods first', async () => {
    const p = provisioner();
    await p.create(spec);
    await p.waitReady(spec, 5000);
    const uid = fake.deployment(NS, 'egress-tree-a-st-1')!.metadata.uid as string;
    await p.delete(spec.tree, spec.subtree);
    expect(fake.deploymentNames(NS)).toEqual([]);
    expect(fake.podNames(NS)).toEqual([]);
    const [del] = fake.requests.filter((r) => r.method === 'DELETE');
    expect(del!.status).toBe(200);
    expect(del!.path).toBe(`/apis/apps/v1/namespaces/${NS}/deployments/egress-tree-a-st-1`);
    expect(del!.query.propagationPolicy).toBe('Foreground');
    expect(del!.body?.preconditions).toEqual({ uid });
    // Deletion waited for the Deployment to be gone: the last request is a GET answered 404.
    expect(fake.requests.at(-1)).toMatchObject({ method: 'GET', status: 404 });

    const before = fake.requests.length;
    await p.delete(spec.tree, spec.subtree);
    expect(fake.requests.slice(before).map((r) => `${r.method} ${r.status}`)).toEqual(['GET 404']);
    // A DELETE that itself meets 404 (gone between the check and the delete) is success too.
    await p.create(spec);
    fake.failNext(1, 404, 'DELETE');
    await provisioner({ deleteWaitMs: 0 }).delete(spec.tree, spec.subtree);
    expect(fake.requests.at(-1)).toMatchObject({ method: 'DELETE', status: 404 });
    await p.delete(spec.tree, spec.subtree);
    expect(await p.list()).toEqual([]);
  });

  it('create and waitReady refuse a subtree that is still being deleted', async () => {
    fake.foregroundDeleteDelayMs = 2000;
    const p = provisioner({ deleteWaitMs: 0 });
    await p.create(spec);
    await p.waitReady(spec, 5000);
    await p.delete(spec.tree, spec.subtree);
    expect(fake.deployment(NS, 'egress-tree-a-st-1')?.metadata.deletionTimestamp).toBeTruthy();
    expect((await rejection(p.create(spec))).message).toMatch(/is being deleted; create it again once it is gone/);
    expect((await rejection(p.waitReady(spec, 1000))).message).toMatch(/egress-tree-a-st-1 is being deleted/);
  });

  it('delete refuses a same-named Deployment of another tree or owner', async () => {
    const p = provisioner();
    await p.create(spec);
    const err = await rejection(p.delete('tree-b', spec.subtree));
    expect(err.step).toBe('delete');
    expect(err.message).toMatch(/is not Canopy's subtree tree-a-st-1 of tree tree-b/);
    expect(fake.requests.filter((r) => r.method === 'DELETE')).toHaveLength(0);
    expect(fake.deploymentNames(NS)).toEqual(['egress-tree-a-st-1']);
  });

  it('puts the labels and named ports the Prometheus kubernetes_sd config needs on Deployment and pods', async () => {
    const p = provisioner({ env: { CANOPY_LOG_LEVEL: 'debug' } });
    await p.create(spec);
    const [node] = await p.waitReady(spec, 5000);
    const want = {
      'app.kubernetes.io/part-of': 'canopy',
      'app.kubernetes.io/managed-by': 'canopy-actuator',
      'canopy.media/tree-id': 'tree-a',
      'canopy.media/subtree': 'tree-a-st-1',
      'canopy.media/node-type': 'egress',
    };
    // What went over the wire.
    const body = fake.requests.find((r) => r.method === 'POST')!.body!;
    expect(body.metadata.name).toBe('egress-tree-a-st-1');
    expect(body.metadata.labels).toEqual(want);
    expect(body.spec.replicas).toBe(3);
    expect(body.spec.template.metadata.labels).toEqual(want);
    for (const [k, v] of Object.entries(body.spec.selector.matchLabels))
      expect(body.spec.template.metadata.labels[k]).toBe(v);
    const [app, exporter] = body.spec.template.spec.containers;
    expect(app.image).toBe('registry.example/canopy:test');
    expect(app.args).toEqual(['node', 'egress']);
    expect(app.ports).toEqual([{ name: 'metrics', containerPort: 7073, protocol: 'TCP' }]);
    expect(app.readinessProbe.httpGet).toEqual({ path: '/readyz', port: 'metrics' });
    const env = Object.fromEntries(
      app.env.map((e: { name: string; value?: string; valueFrom?: unknown }) => [e.name, e.value ?? e.valueFrom]),
    );
    expect(env).toMatchObject({
      CANOPY_TREE_ID: 'tree-a',
      CANOPY_PARENT_SLOT: 'relay-1-s0',
      CANOPY_NODE_ID: { fieldRef: { fieldPath: 'metadata.name' } },
      CANOPY_ADVERTISE_HOST: { fieldRef: { fieldPath: 'status.podIP' } },
      CANOPY_ICE_BIND: { fieldRef: { fieldPath: 'status.podIP' } },
      CANOPY_REDIS_URL: 'redis://redis.media.svc:6379',
      CANOPY_HTTP_PORT: '7073',
      CANOPY_LOG_LEVEL: 'debug',
    });
    expect(exporter.image).toBe('registry.example/node-exporter:v1.5.0');
    expect(exporter.ports).toEqual([{ name: 'node-metrics', containerPort: 9100, protocol: 'TCP' }]);

    // The committed kubernetes_sd scrape config, applied to the pod the fake made
    // from that template, yields an egress target and a node_exporter target.
    const res = await fetch(`${fake.url}/api/v1/namespaces/${NS}/pods`);
    const pod = ((await res.json()) as { items: Array<Record<string, any>> }).items.find(
      (x) => x.metadata.name === node!.id,
    )!;
    const prom = parse(readFileSync(new URL('../../deploy/prometheus-kubernetes.yml', import.meta.url), 'utf8')) as {
      scrape_configs: Array<{ job_name: string; relabel_configs?: Relabel[] }>;
    };
    const targets: Array<{ job: string; labels: Record<string, string> }> = [];
    for (const job of prom.scrape_configs.filter(
      (j) => j.job_name === 'node-exporter' || j.job_name.startsWith('media-tree-'),
    )) {
      for (const c of pod.spec.containers) {
        for (const port of c.ports) {
          const out = relabel(podMeta(pod, port.name, NS), job.relabel_configs ?? []);
          if (out)
            targets.push({
              job: job.job_name,
              labels: { tree_id: out.tree_id!, node_type: out.node_type!, node_id: out.node_id! },
            });
        }
      }
    }
    const labels = { tree_id: 'tree-a', node_type: 'egress', node_id: node!.id };
    expect(targets).toEqual([
      { job: 'node-exporter', labels },
      { job: 'media-tree-egress', labels },
    ]);
  });

  it('takes the Redis URL from a Secret when asked, and refuses bad options', async () => {
    const p = provisioner({ redisUrl: { secretName: 'canopy-redis', key: 'url' } });
    const env = p.deployment(spec).spec!.template.spec!.containers[0]!.env!;
    expect(env.find((e) => e.name === 'CANOPY_REDIS_URL')).toEqual({
      name: 'CANOPY_REDIS_URL',
      valueFrom: { secretKeyRef: { name: 'canopy-redis', key: 'url' } },
    });
    expect(() => provisioner({ redisUrl: 'http://x' })).toThrow(/bad redisUrl/);
    expect(() => provisioner({ env: { CANOPY_NODE_ID: 'x' } })).toThrow(/set by the provisioner/);
    expect(() => provisioner({ namespace: 'Bad_NS' })).toThrow(/bad namespace/);
  });

  it('a Deployment that never becomes ready times out at step wait-ready', async () => {
    fake.setNeverReady('egress-tree-a-st-1');
    const p = provisioner();
    await p.create(spec);
    const t0 = Date.now();
    const err = await rejection(p.waitReady(spec, 600));
    const took = Date.now() - t0;
    expect(err.step).toBe('wait-ready');
    expect(err.message).toMatch(
      /Deployment media\/egress-tree-a-st-1 not ready after 600 ms: 0 of 3 updated replicas are available/,
    );
    expect(took).toBeGreaterThanOrEqual(550);
    expect(took).toBeLessThan(3000);
  });

  it("ProgressDeadlineExceeded fails fast with the controller's message", async () => {
    fake.setProgressDeadlineExceeded('egress-tree-a-st-1');
    const p = provisioner();
    await p.create(spec);
    const t0 = Date.now();
    const err = await rejection(p.waitReady(spec, 30_000));
    expect(Date.now() - t0).toBeLessThan(2000);
    expect(err.step).toBe('wait-ready');
    expect(err.message).toMatch(
      /exceeded its progress deadline: ReplicaSet "egress-tree-a-st-1-[a-z0-9]+" has timed out progressing\./,
    );
  });

  it('retries transient 500s and dropped connections, then succeeds', async () => {
    const p = provisioner();
    fake.failNext(2, 500);
    await p.create(spec);
    expect(fake.requests.map((r) => `${r.method} ${r.status}`)).toEqual(['POST 500', 'POST 500', 'POST 201']);
    fake.dropNext(1);
    expect(await p.waitReady(spec, 5000)).toHaveLength(3);
    expect(fake.requests.some((r) => r.method === 'GET' && r.status === 0)).toBe(true);
    fake.failNext(1, 503);
    expect(await p.list('tree-a')).toEqual([{ tree: 'tree-a', subtree: 'tree-a-st-1' }]);
  });

  it('an unanswered request is cut at requestTimeoutMs and retried', async () => {
    const p = provisioner({ requestTimeoutMs: 200 });
    fake.hangNext(1);
    const t0 = Date.now();
    expect(await p.list()).toEqual([]);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(190);
    expect(fake.requests.map((r) => r.status)).toEqual([0, 200]);
    fake.hangNext(100);
    const err = await rejection(provisioner({ requestTimeoutMs: 100, retryAttempts: 2 }).list());
    expect(err.message).toBe('list Deployments in media: no answer within 100 ms (after 2 attempts)');
    expect(err.status).toBeUndefined();
  });

  it("gives up on a lasting 500 with the step, status and the API's message", async () => {
    const p = provisioner({ retryAttempts: 3 });
    fake.failNext(100, 500);
    const err = await rejection(p.create(spec));
    expect(err.step).toBe('create');
    expect(err.status).toBe(500);
    expect(err.reason).toBe('InternalError');
    expect(err.message).toBe(
      'create Deployment media/egress-tree-a-st-1: HTTP 500 InternalError: fake apiserver: injected fault (after 3 attempts)',
    );
    expect(fake.requests).toHaveLength(3);
  });

  it('does not retry a 403 (RBAC) or 401: it fails at once', async () => {
    const p = provisioner();
    fake.failNext(1, 403);
    const err = await rejection(p.list());
    expect(err.step).toBe('list');
    expect(err.status).toBe(403);
    expect(err.message).toBe('list Deployments in media: HTTP 403 Forbidden: fake apiserver: injected fault');
    expect(fake.requests).toHaveLength(1);
    // client-node drops the body of a 401; the message still says what happened.
    fake.failNext(1, 401);
    expect((await rejection(p.list())).message).toBe('list Deployments in media: HTTP 401: Unauthorized');
  });

  it('refuses a pod name that is not a valid node id', async () => {
    fake.podName = (_d, rs, i) => `${rs}-Bad_${i}`;
    const p = provisioner();
    await p.create(spec);
    const err = await rejection(p.waitReady(spec, 5000));
    expect(err.step).toBe('wait-ready');
    expect(err.message).toMatch(/pod name "egress-tree-a-st-1-[a-z0-9]+-Bad_0" is not a valid node id/);
  });

  it('waitReady on a subtree never created fails with the 404', async () => {
    const err = await rejection(provisioner().waitReady(spec, 2000));
    expect(err.step).toBe('wait-ready');
    expect(err.status).toBe(404);
    expect(err.message).toMatch(/HTTP 404 NotFound: deployments.apps "egress-tree-a-st-1" not found/);
  });

  it('refuses bad ids and sizes before any request', async () => {
    const p = provisioner();
    expect((await rejection(p.create({ ...spec, subtree: 'Tree_A' }))).step).toBe('create');
    expect((await rejection(p.create({ ...spec, size: 0 }))).message).toMatch(/bad subtree size 0/);
    expect((await rejection(p.delete('tree-a', 'x:y'))).step).toBe('delete');
    expect((await rejection(p.list('bad tree'))).step).toBe('list');
    expect(fake.requests).toHaveLength(0);
  });

  it('list filters by tree with a label selector', async () => {
    const p = provisioner();
    await p.create(spec);
    await p.create({ ...spec, subtree: 'tree-a-st-2', size: 1 });
    await p.create({ tree: 'tree-b', subtree: 'tree-b-st-1', slot: 'relay-2-s1', size: 2 });
    expect(await p.list('tree-a')).toEqual([
      { tree: 'tree-a', subtree: 'tree-a-st-1' },
      { tree: 'tree-a', subtree: 'tree-a-st-2' },
    ]);
    expect(await p.list('tree-b')).toEqual([{ tree: 'tree-b', subtree: 'tree-b-st-1' }]);
    expect(await p.list('tree-c')).toEqual([]);
    expect((await p.list()).map((s) => s.subtree)).toEqual(['tree-a-st-1', 'tree-a-st-2', 'tree-b-st-1']);
    const selectors = fake.requests.filter((r) => r.method === 'GET').map((r) => r.query.labelSelector);
    expect(selectors[0]).toBe(
      'app.kubernetes.io/part-of=canopy,app.kubernetes.io/managed-by=canopy-actuator,canopy.media/node-type=egress,canopy.media/tree-id=tree-a',
    );
    expect(selectors.at(-1)).toBe(
      'app.kubernetes.io/part-of=canopy,app.kubernetes.io/managed-by=canopy-actuator,canopy.media/node-type=egress',
    );
  });
});
