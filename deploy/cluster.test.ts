/**
 * The cluster objects, checked without a cluster: every rendered object of
 * deploy/kubernetes/ and deploy/prometheus-operator/ against the Kubernetes
 * and prometheus-operator schemas (kubernetes-models); then the workloads and
 * a subtree from the Kubernetes provisioner created on the fake API server
 * (test/fakes/kube-apiserver.ts), and the PodMonitors, ports and RBAC held
 * against the pods and calls that produced.
 */
import { AppsV1Api, KubeConfig } from '@kubernetes/client-node';
import * as monitoringV1 from '@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1';
import * as monitoringV1alpha1 from '@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1alpha1';
import * as appsV1 from 'kubernetes-models/apps/v1';
import * as networkingV1 from 'kubernetes-models/networking.k8s.io/v1';
import * as policyV1 from 'kubernetes-models/policy/v1';
import * as rbacV1 from 'kubernetes-models/rbac.authorization.k8s.io/v1';
import * as coreV1 from 'kubernetes-models/v1';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse, parseAllDocuments } from 'yaml';
import { KubernetesProvisioner } from '../alertmanager-webhook/provisioners/kubernetes.ts';
import { clusterRender, expandEgressTemplates } from '../cli/cluster-render.ts';
import { renderFiles, staleFiles } from '../rules/render.ts';
import { ROOT } from '../rules/jsonnet.ts';
import { type ApiCall, FakeKubeApiServer } from '../test/fakes/kube-apiserver.ts';
import { podMeta, relabel } from '../test/relabel.ts';

type Obj = Record<string, any>;

const MODELS: Record<string, Record<string, new (o: any) => { validate(): void }>> = {
  v1: coreV1 as any,
  'apps/v1': appsV1 as any,
  'rbac.authorization.k8s.io/v1': rbacV1 as any,
  'policy/v1': policyV1 as any,
  'networking.k8s.io/v1': networkingV1 as any,
  'monitoring.coreos.com/v1': monitoringV1 as any,
  'monitoring.coreos.com/v1alpha1': monitoringV1alpha1 as any,
};

function objects(dir: string): Array<[string, Obj]> {
  const out: Array<[string, Obj]> = [];
  for (const f of readdirSync(join(ROOT, dir)).sort()) {
    for (const doc of parseAllDocuments(readFileSync(join(ROOT, dir, f), 'utf8'))) {
      const o = doc.toJS() as Obj | null;
      if (o) out.push([`${dir}/${f} ${o.kind}/${o.metadata?.name}`, o]);
    }
  }
  return out;
}

const manifests = objects('deploy/kubernetes');
const operator = objects('deploy/prometheus-operator');
const all = [...manifests, ...operator];
const NS = manifests.find(([, o]) => o.kind === 'Namespace')![1].metadata.name as string;
const ofKind = (list: Array<[string, Obj]>, kind: string): Obj[] =>
  list.filter(([, o]) => o.kind === kind).map(([, o]) => o);

describe('rendering', () => {
  it('the committed cluster files match their sources (run "canopy render" when this fails)', () => {
    const extra = clusterRender();
    const rendered = renderFiles(extra.targets!, extra.generated!, false);
    expect(rendered.size).toBeGreaterThan(8);
    expect(staleFiles(rendered)).toEqual([]);
  });

  it('refuses bad baseline egress parameters with the field named, and leaves other objects alone', () => {
    const other = { kind: 'Service' };
    const good = {
      egressDeployment: {
        namespace: 'media',
        tree: 'tree-1',
        subtree: 'baseline',
        slot: 'relay-0-s0',
        replicas: 1,
        image: 'i',
        nodeExporterImage: 'n',
        imagePullPolicy: 'IfNotPresent',
        redisUrl: 'redis://r:6379',
      },
    };
    const [svc, dep] = expandEgressTemplates([other, good]) as Obj[];
    expect(svc).toBe(other);
    expect(dep!.kind).toBe('Deployment');
    const bad = { egressDeployment: { ...good.egressDeployment, tree: 'Tree 1' } };
    expect(() => expandEgressTemplates([bad])).toThrow(/tree/);
    const extraKey = { egressDeployment: { ...good.egressDeployment, env: { X: '1' } } };
    expect(() => expandEgressTemplates([extraKey])).toThrow(/env/);
  });
});

describe('schemas (kubernetes-models)', () => {
  it.each(all)('%s is a valid object', (_name, o) => {
    const Model = MODELS[o.apiVersion]?.[o.kind];
    expect(Model, `${o.apiVersion} ${o.kind}`).toBeDefined();
    expect(() => new Model!(o).validate()).not.toThrow();
    if (o.kind !== 'Namespace') expect(o.metadata.namespace).toBe(NS);
  });

  it('the validator refuses a broken object (so the checks above can fail)', () => {
    const d = structuredClone(ofKind(manifests, 'Deployment')[0]!);
    d.spec.replicas = 'two';
    expect(() => new appsV1.Deployment(d).validate()).toThrow(/replicas/);
  });

  it('every workload runs non-root with a read-only root and no privilege escalation, with requests and probes', () => {
    for (const w of [...ofKind(manifests, 'StatefulSet'), ...ofKind(manifests, 'Deployment')]) {
      if (w.metadata.name.startsWith('egress-')) continue; // the provisioner's template, checked below
      const pod = w.spec.template.spec;
      expect(pod.securityContext.runAsNonRoot, w.metadata.name).toBe(true);
      for (const c of pod.containers) {
        expect(c.securityContext, `${w.metadata.name}/${c.name}`).toMatchObject({
          readOnlyRootFilesystem: true,
          allowPrivilegeEscalation: false,
          capabilities: { drop: ['ALL'] },
        });
        expect(c.resources.requests, `${w.metadata.name}/${c.name}`).toBeDefined();
      }
      expect(pod.containers[0].readinessProbe, w.metadata.name).toBeDefined();
    }
  });

  it("the AlertmanagerConfig routes as deploy/alertmanager.yml's actuator route does", () => {
    const am = parse(readFileSync(join(ROOT, 'deploy/alertmanager.yml'), 'utf8')) as Obj;
    const route = am.route.routes.find((r: Obj) => r.receiver === 'actuator');
    const hook = am.receivers.find((r: Obj) => r.name === 'actuator').webhook_configs[0];
    const [amc] = ofKind(operator, 'AlertmanagerConfig');
    expect(amc!.spec.route).toMatchObject({
      groupBy: am.route.group_by,
      groupWait: route.group_wait,
      groupInterval: route.group_interval,
      repeatInterval: route.repeat_interval,
    });
    expect(amc!.spec.route.matchers.map((m: Obj) => `${m.name}${m.matchType}"${m.value}"`)).toEqual(route.matchers);
    const wh = amc!.spec.receivers[0].webhookConfigs[0];
    expect({ sendResolved: wh.sendResolved, maxAlerts: wh.maxAlerts }).toEqual({
      sendResolved: hook.send_resolved,
      maxAlerts: hook.max_alerts,
    });
    // The token is the Secret the actuator mounts; the URL its Service.
    const actuator = ofKind(manifests, 'Deployment').find((d) => d.spec.template.spec.serviceAccountName)!;
    const secret = actuator.spec.template.spec.volumes.find((v: Obj) => v.secret).secret.secretName;
    expect(wh.httpConfig.authorization.credentials).toEqual({ name: secret, key: 'token' });
    const svc = ofKind(manifests, 'Service').find((s) => s.metadata.name === actuator.metadata.name)!;
    expect(wh.url).toBe(`http://${svc.metadata.name}.${NS}.svc:${svc.spec.ports[0].port}/alerts`);
  });
});

describe('on the fake API server', () => {
  const fake = new FakeKubeApiServer({ readyDelayMs: 10 });
  let pods: Obj[] = [];
  let provisionerCalls: ApiCall[] = [];
  let subtreeBody: Obj;

  beforeAll(async () => {
    await fake.start();
    const kc = new KubeConfig();
    kc.loadFromOptions({
      clusters: [{ name: 'fake', server: fake.url, skipTLSVerify: true }],
      users: [{ name: 'actuator', token: 'test-token' }],
      contexts: [{ name: 'fake', cluster: 'fake', user: 'actuator', namespace: NS }],
      currentContext: 'fake',
    });
    const apps = kc.makeApiClient(AppsV1Api);
    for (const d of ofKind(manifests, 'Deployment')) await apps.createNamespacedDeployment({ namespace: NS, body: d });
    for (const s of ofKind(manifests, 'StatefulSet'))
      await apps.createNamespacedStatefulSet({ namespace: NS, body: s });

    // The provisioner as the actuator Deployment runs it: its image flags.
    const actuator = ofKind(manifests, 'Deployment').find((d) => d.spec.template.spec.serviceAccountName)!;
    const flag = (n: string): string =>
      (actuator.spec.template.spec.containers[0].args as string[]).find((a) => a.startsWith(`--${n}=`))!.split('=')[1]!;
    const redisUrl = actuator.spec.template.spec.containers[0].env.find(
      (e: Obj) => e.name === 'CANOPY_REDIS_URL',
    ).value;
    const p = new KubernetesProvisioner({
      kubeConfig: kc,
      namespace: flag('namespace'),
      image: flag('image'),
      nodeExporterImage: flag('node-exporter-image'),
      redisUrl,
      pollIntervalMs: 10,
      deleteWaitMs: 2000,
    });
    const before = fake.calls().length;
    const spec = { tree: 'tree-1', subtree: 'tree-1-st-1', slot: 'relay-0-s1', size: 2 };
    await p.create(spec);
    subtreeBody = fake.requests.at(-1)!.body!;
    await p.waitReady(spec, 5000);
    // Only the subtree, with its slot (the actuator rebuilds its records from this after Redis lost them).
    expect(await p.list()).toEqual([
      { tree: 'tree-1', subtree: 'tree-1-st-1', slot: 'relay-0-s1', createdAt: expect.any(Number) },
    ]);
    // The baseline shares the template but is not the actuator's to remove.
    await expect(p.delete('tree-1', 'baseline')).rejects.toThrow(/not Canopy's subtree/);
    // A second subtree stays up for the monitor checks; the first is removed.
    await p.create({ ...spec, subtree: 'tree-1-st-2' });
    await p.waitReady({ ...spec, subtree: 'tree-1-st-2' }, 5000);
    await p.delete('tree-1', 'tree-1-st-1');
    provisionerCalls = fake.calls().slice(before);
    await new Promise((r) => setTimeout(r, 50));
    pods = fake.podObjects(NS);
  });
  afterAll(() => fake.stop());

  it('every workload made its pods, and they are Ready', () => {
    const names = pods.map((p) => p.metadata.name).sort();
    expect(names.filter((n) => /^(injection|relay|redis)-\d+$/.test(n))).toEqual(['injection-0', 'redis-0', 'relay-0']);
    expect(names.filter((n) => n.startsWith('egress-baseline-'))).toHaveLength(2);
    expect(names.filter((n) => n.startsWith('egress-tree-1-st-2-'))).toHaveLength(2);
    expect(names.filter((n) => n.startsWith('egress-tree-1-st-1-'))).toHaveLength(0);
    expect(names.filter((n) => n.startsWith('canopy-actuator-'))).toHaveLength(2);
    for (const p of pods) expect(p.status.phase, p.metadata.name).toBe('Running');
  });

  it("the baseline egress Deployment is the provisioner's subtree template, but for its name, slot, size and owner", () => {
    const baseline = ofKind(manifests, 'Deployment').find((d) => d.metadata.name === 'egress-baseline')!;
    const normalise = (d: Obj): Obj => {
      const c = structuredClone(d);
      for (const l of [c.metadata.labels, c.spec.template.metadata.labels, c.spec.selector.matchLabels]) {
        delete l['canopy.media/subtree'];
        delete l['app.kubernetes.io/managed-by'];
      }
      delete c.metadata.name;
      delete c.spec.replicas;
      for (const e of c.spec.template.spec.containers[0].env) if (e.name === 'CANOPY_PARENT_SLOT') e.value = 'x';
      return c;
    };
    expect(normalise(subtreeBody)).toEqual(normalise(baseline));
    expect(baseline.metadata.labels['app.kubernetes.io/managed-by']).not.toBe(
      subtreeBody.metadata.labels['app.kubernetes.io/managed-by'],
    );
  });

  // Which pods each monitor is for: by the workload that made them.
  const expected: Record<string, RegExp> = {
    'canopy-injection': /^injection-\d+$/,
    'canopy-relay': /^relay-\d+$/,
    'canopy-egress': /^egress-/,
    'canopy-node-exporter': /^(injection-\d+|relay-\d+|egress-.*)$/,
    'canopy-actuator': /^canopy-actuator-/,
  };
  const monitors = ofKind(operator, 'PodMonitor');

  it('the PodMonitors are the five expected', () => {
    expect(monitors.map((m) => m.metadata.name).sort()).toEqual(Object.keys(expected).sort());
  });

  it.each(monitors.map((m) => [m.metadata.name, m] as const))(
    '%s selects the pods it should and no others, on ports they have, with the target labels the rules read',
    (name, m) => {
      const selected = pods.filter((p) => selects(m.spec.selector, p.metadata.labels));
      const want = pods.filter((p) => expected[name]!.test(p.metadata.name));
      expect(want.length).toBeGreaterThan(0);
      expect(selected.map((p) => p.metadata.name).sort()).toEqual(want.map((p) => p.metadata.name).sort());
      for (const ep of m.spec.podMetricsEndpoints) {
        for (const p of selected) {
          const ports = p.spec.containers.flatMap((c: Obj) => (c.ports ?? []).map((x: Obj) => x.name));
          expect(ports, `${p.metadata.name} port ${ep.port}`).toContain(ep.port);
          // The operator's own relabelling (job, container, endpoint), then ours.
          const out = relabel(
            { ...podMeta(p, ep.port, NS), job: `${NS}/${name}`, container: 'x', endpoint: ep.port },
            ep.relabelings.map((r: Obj) => ({
              source_labels: r.sourceLabels,
              target_label: r.targetLabel,
              regex: r.regex,
              replacement: r.replacement,
              action: r.action,
            })),
          )!;
          expect(out, p.metadata.name).toBeDefined();
          expect(out.container).toBeUndefined();
          if (name === 'canopy-actuator') {
            expect(out.job).toBe('canopy-actuator');
            expect(out.tree_id).toBeUndefined();
          } else {
            expect({ job: out.job, tree_id: out.tree_id, node_id: out.node_id, node_type: out.node_type }).toEqual({
              job: name === 'canopy-node-exporter' ? 'node-exporter' : `media-tree-${name.slice('canopy-'.length)}`,
              tree_id: 'tree-1',
              node_id: p.metadata.name,
              node_type: p.metadata.name.split('-')[0],
            });
          }
        }
      }
    },
  );

  it("the actuator's Role covers every call the provisioner made, and grants nothing it did not use", () => {
    const role = ofKind(manifests, 'Role')[0]!;
    const granted = (c: ApiCall): boolean =>
      c.namespace === role.metadata.namespace &&
      role.rules.some(
        (r: Obj) => r.apiGroups.includes(c.apiGroup) && r.resources.includes(c.resource) && r.verbs.includes(c.verb),
      );
    expect(provisionerCalls.length).toBeGreaterThan(0);
    for (const c of provisionerCalls) expect(granted(c), JSON.stringify(c)).toBe(true);
    const used = new Set(provisionerCalls.map((c) => `${c.apiGroup}/${c.resource}/${c.verb}`));
    for (const r of role.rules)
      for (const g of r.apiGroups)
        for (const res of r.resources)
          for (const v of r.verbs) expect(used.has(`${g}/${res}/${v}`), `${g}/${res}/${v}`).toBe(true);
    // The binding gives that Role to the actuator's ServiceAccount, which its pods run as.
    const binding = ofKind(manifests, 'RoleBinding')[0]!;
    const actuator = ofKind(manifests, 'Deployment').find((d) => d.spec.template.spec.serviceAccountName)!;
    expect(binding.roleRef.name).toBe(role.metadata.name);
    expect(binding.subjects).toEqual([
      { kind: 'ServiceAccount', name: actuator.spec.template.spec.serviceAccountName, namespace: NS },
    ]);
  });

  it('the NetworkPolicy and PodDisruptionBudget select the actuator pods, and only them', () => {
    const actuatorPods = pods.filter((p) => p.metadata.name.startsWith('canopy-actuator-')).map((p) => p.metadata.name);
    for (const o of [...ofKind(manifests, 'NetworkPolicy'), ...ofKind(manifests, 'PodDisruptionBudget')]) {
      const sel = o.kind === 'NetworkPolicy' ? o.spec.podSelector : o.spec.selector;
      expect(
        pods.filter((p) => selects(sel, p.metadata.labels)).map((p) => p.metadata.name),
        o.kind,
      ).toEqual(expect.arrayContaining(actuatorPods));
      expect(pods.filter((p) => selects(sel, p.metadata.labels))).toHaveLength(actuatorPods.length);
    }
    const np = ofKind(manifests, 'NetworkPolicy')[0]!;
    const container = pods.find((p) => p.metadata.name.startsWith('canopy-actuator-'))!.spec.containers[0];
    for (const rule of np.spec.ingress)
      for (const port of rule.ports) expect(container.ports.map((x: Obj) => x.name)).toContain(port.port);
  });
});

/** A LabelSelector (matchLabels, matchExpressions) against a pod's labels. */
function selects(sel: Obj, labels: Record<string, string>): boolean {
  const l = labels ?? {};
  for (const [k, v] of Object.entries((sel.matchLabels ?? {}) as Record<string, string>)) if (l[k] !== v) return false;
  for (const e of sel.matchExpressions ?? []) {
    const has = Object.hasOwn(l, e.key);
    const ok =
      e.operator === 'In'
        ? has && e.values.includes(l[e.key])
        : e.operator === 'NotIn'
          ? !has || !e.values.includes(l[e.key])
          : e.operator === 'Exists'
            ? has
            : !has;
    if (!ok) return false;
  }
  return true;
}
