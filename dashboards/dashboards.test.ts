import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parser } from '@prometheus-io/lezer-promql';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { z } from 'zod';
import { viewerQualityFamilies } from '../exporters/index.ts';
import { startNodeExporter, type RunningNodeExporter } from '../servers/node-exporter.ts';
import { promqlErrors } from '../test/promql.ts';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const read = (p: string) => readFileSync(join(ROOT, p), 'utf8');
const jsonnet = <T>(expr: string): T =>
  JSON.parse(execFileSync('jsonnet', ['-e', expr], { cwd: ROOT, encoding: 'utf8' })) as T;

// A hand-written zod schema of the dashboard model (schemaVersion 39): the
// fields Grafana needs to load, lay out and query each panel. Chosen over a
// JSON Schema generated from @grafana/schema: no extra dependencies, and it
// checks what the tests below rely on.
const Datasource = z.object({ type: z.literal('prometheus'), uid: z.string().min(1) }).strict();
const GridPos = z.object({
  x: z.number().int().min(0).max(23),
  y: z.number().int().min(0),
  w: z.number().int().min(1).max(24),
  h: z.number().int().min(1),
});
const Target = z.object({
  refId: z.string().regex(/^[A-Z]$/),
  datasource: Datasource,
  expr: z.string().min(1),
  legendFormat: z.string().min(1),
  range: z.boolean(),
  instant: z.boolean(),
  format: z.enum(['time_series', 'table']),
});
const Steps = z.array(z.object({ color: z.string(), value: z.number().nullable() })).min(1);
const Link = z.object({ title: z.string().min(1), url: z.string().min(1) }).passthrough();
const Row = z.object({
  type: z.literal('row'),
  id: z.number().int().positive(),
  title: z.string().min(1),
  gridPos: GridPos,
  collapsed: z.boolean(),
  panels: z.array(z.unknown()),
});
const Panel = z.object({
  type: z.enum(['timeseries', 'stat', 'gauge', 'state-timeline', 'table']),
  id: z.number().int().positive(),
  title: z.string().min(1),
  description: z.string(),
  gridPos: GridPos,
  datasource: Datasource,
  targets: z.array(Target).min(1),
  fieldConfig: z.object({
    defaults: z
      .object({
        unit: z.string().min(1),
        thresholds: z.object({ mode: z.literal('absolute'), steps: Steps }).optional(),
        links: z.array(Link).optional(),
      })
      .passthrough(),
    overrides: z.array(
      z.object({
        matcher: z.object({ id: z.string(), options: z.unknown() }),
        properties: z.array(z.object({ id: z.string(), value: z.unknown() })),
      }),
    ),
  }),
  options: z.record(z.string(), z.unknown()),
  links: z.array(Link),
});
const Variable = z.discriminatedUnion('type', [
  z
    .object({ type: z.literal('datasource'), name: z.string(), query: z.literal('prometheus'), current: z.object({}) })
    .passthrough(),
  z
    .object({
      type: z.literal('query'),
      name: z.string().regex(/^[a-z_]+$/),
      datasource: Datasource,
      query: z.object({ query: z.string(), refId: z.string() }),
      definition: z.string(),
      multi: z.boolean(),
      includeAll: z.boolean(),
      refresh: z.union([z.literal(1), z.literal(2)]),
    })
    .passthrough(),
]);
const Annotation = z.object({
  name: z.string().min(1),
  datasource: Datasource,
  enable: z.boolean(),
  expr: z.string().min(1),
  iconColor: z.string().min(1),
  titleFormat: z.string(),
  tagKeys: z.string(),
});
const Dashboard = z.object({
  uid: z.string().regex(/^[A-Za-z0-9_-]{1,40}$/),
  title: z.string().min(1),
  schemaVersion: z.literal(39),
  tags: z.array(z.string()).min(1),
  time: z.object({ from: z.string(), to: z.string() }),
  refresh: z.string(),
  templating: z.object({ list: z.array(Variable) }),
  annotations: z.object({ list: z.array(Annotation) }),
  links: z.array(z.object({ title: z.string(), type: z.enum(['dashboards', 'link']) }).passthrough()),
  panels: z.array(z.union([Row, Panel])).min(1),
});
type Dashboard = z.infer<typeof Dashboard>;
type Panel = z.infer<typeof Panel>;

interface Config {
  dashboards: Record<string, { uid: string; title: string }>;
  portPoolWarningPercent: number;
  portPoolScaleOutPercent: number;
  runbookURL: string;
  dashboardURLPattern: string;
  treeAlertComponents: string[];
  actuatorAlertComponents: string[];
}
const config = jsonnet<Config>("(import 'mixin.libsonnet')._config");

const PROVISIONED = 'deploy/grafana/dashboards';
const IMPORT = 'dashboards/import';
const files = readdirSync(join(ROOT, PROVISIONED)).filter((f) => f.endsWith('.json'));
const load = (dir: string, f: string) => JSON.parse(read(join(dir, f))) as Dashboard & Record<string, unknown>;
const provisioned = files.map((f) => [f, load(PROVISIONED, f)] as const);
const panelsOf = (d: Dashboard) => d.panels.filter((p): p is Panel => p.type !== 'row');
const allPanels = provisioned.flatMap(([f, d]) => panelsOf(d).map((p) => [`${f}: ${p.title}`, p] as const));
const allTargets = allPanels.flatMap(([n, p]) =>
  p.targets.map((t) => [`${n} ${t.refId}`, t.expr, t.legendFormat] as const),
);
const allAnnotations = provisioned.flatMap(([f, d]) =>
  d.annotations.list.map((a) => [`${f}: ${a.name}`, a.expr] as const),
);

// Grafana's variables replaced by sample values, so the result is plain PromQL.
function substitute(expr: string): string {
  return expr
    .replaceAll('$__rate_interval', '1m')
    .replaceAll('$__range', '1h')
    .replace(
      /\$\{?(tree_id|node_type|node_id)\}?/g,
      (_m, v: string) => ({ tree_id: 'tree-1', node_type: 'egress', node_id: 'egress-1' })[v]!,
    );
}

/** Metric names in an expression: identifiers of vector selectors. */
function metricNames(expr: string): string[] {
  const names: string[] = [];
  parser.parse(expr).iterate({
    enter: (n) => {
      if (n.name === 'Identifier' && n.node.parent?.name === 'VectorSelector') names.push(expr.slice(n.from, n.to));
    },
  });
  return names;
}

describe('dashboards', () => {
  it('exist for every dashboard of the config, in both forms', () => {
    const want = ['actuator.json', 'node-detail.json', 'tree-overview.json'];
    expect(files.sort()).toEqual(want);
    expect(
      readdirSync(join(ROOT, IMPORT))
        .filter((f) => f.endsWith('.json'))
        .sort(),
    ).toEqual(want);
  });

  it.each(provisioned)('%s matches the dashboard schema', (_f, d) => {
    const r = Dashboard.safeParse(d);
    expect(r.success, r.success ? '' : JSON.stringify(r.error.issues.slice(0, 5), null, 1)).toBe(true);
  });

  it("uids are stable, unique, and the config's", () => {
    // Spelled out: alerts' dashboard_url, data links and bookmarks use them.
    expect(Object.fromEntries(provisioned.map(([f, d]) => [f, d.uid]))).toEqual({
      'actuator.json': '2ef6f1a3d7b13565',
      'node-detail.json': 'cb6b23c004e46f1f',
      'tree-overview.json': 'f4b4cbe434e6e83d',
    });
    expect(new Set(provisioned.map(([, d]) => d.uid)).size).toBe(provisioned.length);
    expect(provisioned.map(([, d]) => d.uid).sort()).toEqual(
      Object.values(config.dashboards)
        .map((x) => x.uid)
        .sort(),
    );
    expect(new Set(provisioned.map(([, d]) => d.title)).size).toBe(provisioned.length);
  });

  it.each(provisioned)('%s: panel ids unique, no two panels overlap, all within 24 columns', (_f, d) => {
    expect(new Set(d.panels.map((p) => p.id)).size).toBe(d.panels.length);
    for (const p of d.panels) expect(p.gridPos.x + p.gridPos.w).toBeLessThanOrEqual(24);
    for (let i = 0; i < d.panels.length; i++) {
      for (let j = i + 1; j < d.panels.length; j++) {
        const a = d.panels[i]!.gridPos;
        const b = d.panels[j]!.gridPos;
        const overlap = a.x < b.x + b.w && b.x < a.x + a.w && a.y < b.y + b.h && b.y < a.y + a.h;
        expect(overlap, `${d.panels[i]!.title} / ${d.panels[j]!.title}`).toBe(false);
      }
    }
  });

  it('the layout helper wraps and never overlaps, whatever the widths', () => {
    const widths = [5, 24, 13, 11, 12, 7, 9, 8, 24, 1, 23, 2, 6, 6, 6, 6, 6];
    const laid = jsonnet<Array<{ id: number; gridPos: { x: number; y: number; w: number; h: number } }>>(
      `local g = import 'dashboards/jsonnet/grafana.libsonnet';
       g.layout([g.stat('p', 'short', [g.target('up', 'x')], w=w, h=1 + w % 5) for w in ${JSON.stringify(widths)}] + [g.row('r'), g.stat('q', 'short', [], w=3)])`,
    );
    expect(laid.map((p) => p.id)).toEqual(laid.map((_p, i) => i + 1));
    for (const [i, a] of laid.entries()) {
      expect(a.gridPos.x + a.gridPos.w).toBeLessThanOrEqual(24);
      for (const b of laid.slice(i + 1)) {
        const o =
          a.gridPos.x < b.gridPos.x + b.gridPos.w &&
          b.gridPos.x < a.gridPos.x + a.gridPos.w &&
          a.gridPos.y < b.gridPos.y + b.gridPos.h &&
          b.gridPos.y < a.gridPos.y + a.gridPos.h;
        expect(o).toBe(false);
      }
    }
    // A row starts its own line, the panel after it goes under it.
    const row = laid[laid.length - 2]!;
    expect(row.gridPos.x).toBe(0);
    expect(laid[laid.length - 1]!.gridPos).toMatchObject({ x: 0, y: row.gridPos.y + 1 });
  });

  it.each(allPanels)('%s has a unit and the templated datasource', (_n, p) => {
    expect(p.fieldConfig.defaults.unit).toMatch(/\S/);
    expect(p.datasource).toEqual({ type: 'prometheus', uid: '${datasource}' });
    for (const t of p.targets) expect(t.datasource).toEqual({ type: 'prometheus', uid: '${datasource}' });
  });

  it.each(provisioned)('%s: one datasource variable; variables and annotations on it', (_f, d) => {
    const ds = d.templating.list.filter((v) => v.type === 'datasource');
    expect(ds).toHaveLength(1);
    expect(ds[0]!.name).toBe('datasource');
    for (const v of d.templating.list.filter((x) => x.type === 'query'))
      expect(v.datasource).toEqual({ type: 'prometheus', uid: '${datasource}' });
    for (const a of d.annotations.list) expect(a.datasource).toEqual({ type: 'prometheus', uid: '${datasource}' });
  });

  it.each(allTargets)('%s parses as PromQL', (_n, expr) => {
    expect(promqlErrors(substitute(expr))).toEqual([]);
  });

  it.each(allAnnotations)('annotation %s parses as PromQL', (_n, expr) => {
    expect(promqlErrors(substitute(expr))).toEqual([]);
  });

  it.each(provisioned)('%s: variable queries are label_values() over parsing selectors, chained', (_f, d) => {
    for (const v of d.templating.list) {
      if (v.type !== 'query') continue;
      const m = /^label_values\((.+), ([a-z_]+)\)$/.exec(v.query.query);
      expect(m, v.query.query).not.toBeNull();
      expect(m![2]).toBe(v.name);
      expect(promqlErrors(substitute(m![1]!))).toEqual([]);
    }
    const nodeId = d.templating.list.find((v) => v.name === 'node_id');
    if (nodeId?.type === 'query') {
      expect(nodeId.query.query).toContain('tree_id=~"$tree_id"');
      expect(nodeId.query.query).toContain('node_type=~"$node_type"');
    }
  });

  it.each([...allTargets.map(([n, e]) => [n, e] as const), ...allAnnotations])(
    '%s: counters go through $__rate_interval (or $__range)',
    (_n, expr) => {
      // Every range in rate()/irate()/increase() of a raw counter.
      for (const m of expr.matchAll(/\b(rate|irate|increase)\(([^()]*)\)/g)) {
        expect(m[2], m[0]).toMatch(/\[\$__(rate_interval|range)\]$/);
      }
      expect(expr).not.toMatch(/\[\d+[smhd]\]/);
    },
  );

  it.each(provisioned)('%s: every template variable is used', (_f, d) => {
    const body = JSON.stringify({ panels: d.panels, annotations: d.annotations, links: d.links });
    for (const v of d.templating.list) {
      const others = JSON.stringify(d.templating.list.filter((x) => x !== v));
      expect(
        body.includes(`$${v.name}`) || body.includes(`\${${v.name}}`) || others.includes(`$${v.name}`),
        v.name,
      ).toBe(true);
    }
  });

  it("the port-pool panels use the config's thresholds: green, yellow from 70, red above 85", () => {
    const pool = allPanels.filter(([n]) => /port.pool/i.test(n));
    expect(pool.length).toBeGreaterThanOrEqual(3);
    for (const [n, p] of pool) {
      expect(p.fieldConfig.defaults.thresholds?.steps, n).toEqual([
        { color: 'green', value: null },
        { color: 'yellow', value: config.portPoolWarningPercent },
        { color: 'red', value: config.portPoolScaleOutPercent },
      ]);
      expect(p.fieldConfig.defaults.unit).toBe('percent');
    }
    expect([config.portPoolWarningPercent, config.portPoolScaleOutPercent]).toEqual([70, 85]);
  });

  it('the packet-loss panels draw the 100 pkt/s line', () => {
    const loss = allPanels.filter(([n]) => /packet loss|packets dropped/i.test(n));
    expect(loss.length).toBeGreaterThanOrEqual(2);
    for (const [, p] of loss) {
      expect(p.fieldConfig.defaults.thresholds?.steps.map((s) => s.value)).toEqual([null, 100]);
      expect(p.fieldConfig.defaults.unit).toBe('pps');
    }
  });

  it('Tree overview annotates scale decisions and actuator actions', () => {
    const tree = provisioned.find(([f]) => f === 'tree-overview.json')![1];
    const exprs = tree.annotations.list.map((a) => a.expr);
    expect(exprs.some((e) => e.includes('ALERTS{alertname=~"MediaTreeScale.*"'))).toBe(true);
    expect(exprs.some((e) => e.includes('canopy_actuator_actions_total'))).toBe(true);
  });

  it('runbook links point at sections of rules/runbook.md', () => {
    const anchors = new Set([...read('rules/runbook.md').matchAll(/^## (\S+)/gm)].map((m) => m[1]!.toLowerCase()));
    const links = allPanels.flatMap(([, p]) => p.links).filter((l) => l.url.startsWith(config.runbookURL));
    expect(links.length).toBeGreaterThan(5);
    for (const l of links) {
      const anchor = l.url.split('#')[1];
      if (anchor !== undefined) expect(anchors.has(anchor), l.url).toBe(true);
    }
    for (const [, d] of provisioned)
      expect(d.links.some((l) => l.title === 'Runbook' && l.url === config.runbookURL)).toBe(true);
  });

  it('data links open dashboards that exist, with variables they define', () => {
    const byUid = new Map(provisioned.map(([, d]) => [d.uid, d]));
    const links = allPanels.flatMap(([, p]) => p.fieldConfig.defaults.links ?? []);
    expect(links.length).toBeGreaterThan(3);
    for (const l of links) {
      const m = /^\/d\/([^?]+)\?(.*)$/.exec(l.url);
      expect(m, l.url).not.toBeNull();
      const target = byUid.get(m![1]!);
      expect(target, l.url).toBeDefined();
      for (const v of m![2]!.matchAll(/var-([a-z_]+)=/g))
        expect(target!.templating.list.map((x) => x.name)).toContain(v[1]);
    }
  });
});

describe('metric names', () => {
  const names = jsonnet<{
    app: Record<string, Record<string, string>>;
    recorded: Record<string, string>;
    ne: Record<string, string>;
    actuator: Record<string, { name: string; type: string } | string>;
  }>(
    `{
      app: import 'rules/metrics.libsonnet',
      recorded: (import 'mixin.libsonnet').recorded,
      ne: import 'dashboards/jsonnet/node-exporter.libsonnet',
      actuator: (import 'mixin.libsonnet').actuatorMetrics,
    }`,
  );
  const contract = Object.values(names.actuator).filter(
    (x): x is { name: string; type: string } => typeof x === 'object',
  );
  const known = new Set<string>([
    ...Object.values(names.app).flatMap((t) => Object.values(t)),
    ...Object.values(names.recorded),
    ...Object.values(names.ne),
    ...contract.flatMap((m) =>
      m.type === 'histogram' ? ['_bucket', '_sum', '_count'].map((s) => m.name + s) : [m.name],
    ),
    // The egress's histograms of what viewers report: their series, not their family names.
    ...Object.values(viewerQualityFamilies)
      .filter((f) => 'buckets' in f)
      .flatMap((f) => ['_bucket', '_sum', '_count'].map((s) => f.name + s)),
    'ALERTS',
    'up',
  ]);
  const everyExpr = [...allTargets.map(([n, e]) => [n, e] as const), ...allAnnotations];

  it.each(everyExpr)('%s reads only known metrics', (_n, expr) => {
    const used = metricNames(substitute(expr));
    expect(used.length).toBeGreaterThan(0);
    for (const m of used) expect(known.has(m), m).toBe(true);
  });

  it('the actuator contract: canopy_actuator_ names, counters end in _total, every metric on a dashboard', () => {
    expect(contract.length).toBeGreaterThanOrEqual(5);
    const used = new Set(everyExpr.flatMap(([, e]) => metricNames(substitute(e))));
    for (const m of contract) {
      expect(m.name).toMatch(/^canopy_actuator_[a-z_]+$/);
      expect(['counter', 'gauge', 'histogram']).toContain(m.type);
      if (m.type === 'counter') expect(m.name).toMatch(/_total$/);
      if (m.type === 'histogram') expect(m.name).toMatch(/_seconds$/);
      expect(used.has(m.name) || used.has(`${m.name}_bucket`), m.name).toBe(true);
    }
  });

  it('series that keep node_id are labelled by it ({{node_id}})', () => {
    // Per-node inputs: the apps', node_exporter's, the node_id: recordings, node targets' up.
    // The node apps' families; the actuator is not a tree node.
    const nodeApps = Object.entries(names.app)
      .filter(([k]) => k !== 'actuator')
      .map(([, t]) => t);
    const perNode = new Set([...nodeApps.flatMap((t) => Object.values(t)), ...Object.values(names.ne), 'up']);
    for (const v of Object.values(names.recorded)) if (v.startsWith('node_id:')) perNode.add(v);
    let checked = 0;
    for (const [n, expr, legend] of allTargets) {
      if (n.startsWith('node-detail.json')) expect(legend, n).toContain('{{node_id}}');
      if (expr.includes(`job="${names.actuator.job as string}"`)) continue;
      const reads = metricNames(substitute(expr)).some((m) => perNode.has(m));
      const groupings = [...expr.matchAll(/\b(sum|max|min|avg|count)\b( by \(([^)]*)\))?/g)];
      const keeps = groupings.every((g) => g[3]?.split(/,\s*/).includes('node_id'));
      if (reads && keeps) {
        checked++;
        expect(legend, n).toContain('{{node_id}}');
      }
    }
    expect(checked).toBeGreaterThan(15);
  });

  describe('node_exporter names exist in a real node_exporter', () => {
    let ne: RunningNodeExporter;
    beforeAll(async () => {
      ne = await startNodeExporter();
    });
    afterAll(async () => {
      await ne?.child.stop();
    });
    it('each listed name is in its exposition', async () => {
      const text = await (await fetch(`${ne.url}/metrics`)).text();
      const exposed = new Set([...text.matchAll(/^# TYPE (\S+) /gm)].map((m) => m[1]));
      for (const n of Object.values(names.ne)) expect(exposed.has(n), n).toBe(true);
    });
  });
});

describe('the UI-import form', () => {
  const imported = files.map((f) => [f, load(IMPORT, f)] as const);

  it.each(imported)('%s uses the DS_PROMETHEUS input only, never the datasource variable', (f, d) => {
    const text = read(join(IMPORT, f));
    expect(text).not.toContain('${datasource}');
    expect(d.templating.list.some((v) => v.type === 'datasource')).toBe(false);
    expect(d.__inputs).toEqual([
      expect.objectContaining({ name: 'DS_PROMETHEUS', type: 'datasource', pluginId: 'prometheus' }),
    ]);
    const requires = d.__requires as Array<{ type: string; id: string }>;
    for (const t of new Set(panelsOf(d).map((p) => p.type)))
      expect(requires).toContainEqual(expect.objectContaining({ type: 'panel', id: t }));
    expect(requires).toContainEqual(expect.objectContaining({ type: 'datasource', id: 'prometheus' }));
  });

  it.each(imported)('%s is the provisioned dashboard otherwise', (f, _d) => {
    const back = JSON.parse(read(join(IMPORT, f)).replaceAll('${DS_PROMETHEUS}', '${datasource}')) as Dashboard &
      Record<string, unknown>;
    const p = load(PROVISIONED, f);
    const { __inputs: _i, __requires: _r, ...rest } = back;
    expect(rest.panels).toEqual(p.panels);
    expect(rest.annotations).toEqual(p.annotations);
    expect(rest.templating.list).toEqual(p.templating.list.filter((v) => v.type !== 'datasource'));
    expect(rest.uid).toBe(p.uid);
    expect(Dashboard.safeParse({ ...rest, templating: p.templating }).success).toBe(true);
  });
});

describe('Grafana provisioning files', () => {
  it('a file provider for the dashboards and a default Prometheus datasource', () => {
    const provider = parse(read('deploy/grafana/provisioning/dashboards/canopy.yaml')) as {
      apiVersion: number;
      providers: Array<{ type: string; options: { path: string } }>;
    };
    expect(provider.apiVersion).toBe(1);
    expect(provider.providers).toHaveLength(1);
    expect(provider.providers[0]!.type).toBe('file');
    expect(provider.providers[0]!.options.path).toMatch(/^\//);
    const ds = parse(read('deploy/grafana/provisioning/datasources/prometheus.yaml')) as {
      apiVersion: number;
      datasources: Array<{ type: string; isDefault: boolean; url: string }>;
    };
    expect(ds.apiVersion).toBe(1);
    expect(ds.datasources).toEqual([
      expect.objectContaining({ type: 'prometheus', isDefault: true, url: 'http://localhost:9090' }),
    ]);
  });
});

describe("alerts' dashboard_url", () => {
  interface Rule {
    alert?: string;
    labels?: Record<string, string>;
    annotations?: Record<string, string>;
  }
  // The scaling alerts share their inputs' group in the recording rules file.
  const alerts = ['rules/media-tree-rules.yaml', 'rules/media-tree-alerts.yaml']
    .flatMap((f) => (parse(read(f)) as { groups: Array<{ rules: Rule[] }> }).groups.flatMap((g) => g.rules))
    .filter((r) => r.alert);
  const byUid = new Map(provisioned.map(([, d]) => [d.uid, d]));

  it.each(alerts.map((a, i) => [`${a.alert}#${i}`, a] as const))(
    '%s opens a dashboard that exists, on its tree',
    (_n, a) => {
      const url = a.annotations?.dashboard_url ?? '';
      const prefix = config.dashboardURLPattern.replace('%s', '');
      expect(url.startsWith(prefix), url).toBe(true);
      const [uid, query] = url.slice(prefix.length).split('?');
      const d = byUid.get(uid!);
      expect(d, url).toBeDefined();
      const component = a.labels?.component ?? '';
      const actuator = config.actuatorAlertComponents.includes(component);
      // The actuator's alerts may have no tree: all trees then.
      expect(query).toContain(
        actuator
          ? 'var-tree_id={{ with $labels.tree_id }}{{ . }}{{ else }}$__all{{ end }}'
          : 'var-tree_id={{ $labels.tree_id }}',
      );
      for (const v of query!.matchAll(/var-([a-z_]+)=/g)) expect(d!.templating.list.map((x) => x.name)).toContain(v[1]);
      const tree = ['scaling', 'cleanup'].includes(component);
      expect(uid).toBe(
        tree
          ? config.dashboards.treeOverview!.uid
          : actuator
            ? config.dashboards.actuator!.uid
            : config.dashboards.nodeDetail!.uid,
      );
    },
  );

  it('the actuator alerts open the Actuator dashboard; the lists of components do not overlap', () => {
    expect(config.actuatorAlertComponents).toEqual(['actuator']);
    expect(config.treeAlertComponents.filter((c) => config.actuatorAlertComponents.includes(c))).toEqual([]);
    expect(
      alerts
        .filter((a) => a.labels?.component === 'actuator')
        .map((a) => a.alert)
        .sort(),
    ).toEqual([
      'CanopyActuatorActionsFailing',
      'CanopyActuatorDown',
      'CanopyActuatorRejectingNotifications',
      'CanopyActuatorScaleOutNotActing',
      'CanopyActuatorStuck',
      'CanopyActuatorUnavailable',
    ]);
  });
});
