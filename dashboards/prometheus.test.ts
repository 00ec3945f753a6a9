import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse, stringify } from 'yaml';
import { startNodeExporter, type RunningNodeExporter } from '../servers/node-exporter.ts';
import { instantQuery, startPrometheus, type RunningPrometheus } from '../servers/prometheus.ts';
import { waitUntil } from '../process/wait.ts';

// The dashboards' queries through a real Prometheus 2.42 (its own parser and
// type checks, stricter than lezer's grammar), with the rule pack loaded and a
// real node_exporter scraped as one egress node: the panels built on
// node_exporter alone must show that node. The node apps' panels wait for the
// local stack's end-to-end check.
const ROOT = fileURLToPath(new URL('..', import.meta.url));
const read = (p: string) => readFileSync(join(ROOT, p), 'utf8');

interface Target {
  expr: string;
  legendFormat: string;
}
interface Dashboard {
  panels: Array<{ type: string; title: string; targets?: Target[] }>;
  annotations: { list: Array<{ name: string; expr: string }> };
  templating: { list: Array<{ type: string; name: string; query?: { query: string } }> };
}
const DIR = 'deploy/grafana/dashboards';
const dashboards = readdirSync(join(ROOT, DIR))
  .filter((f) => f.endsWith('.json'))
  .map((f) => [f, JSON.parse(read(join(DIR, f))) as Dashboard] as const);

const sample = { tree_id: 'tree-1', node_type: 'egress', node_id: 'egress-1' } as const;
const substitute = (expr: string) =>
  expr
    .replaceAll('$__rate_interval', '1m')
    .replaceAll('$__range', '1h')
    .replace(/\$\{?(tree_id|node_type|node_id)\}?/g, (_m, v: keyof typeof sample) => sample[v]);

const queries = dashboards.flatMap(([f, d]) => [
  ...d.panels.flatMap((p) => (p.targets ?? []).map((t) => [`${f}: ${p.title}: ${t.legendFormat}`, t.expr] as const)),
  ...d.annotations.list.map((a) => [`${f}: annotation ${a.name}`, a.expr] as const),
]);

describe('dashboard queries on a real Prometheus with the rule pack', () => {
  let dir: string;
  let ne: RunningNodeExporter;
  let prom: RunningPrometheus;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'canopy-dash-'));
    ne = await startNodeExporter();
    // The rule files without their 30s group interval, so recordings appear within seconds.
    const ruleFiles = ['rules/media-tree-rules.yaml', 'rules/media-tree-alerts.yaml'].map((f, i) => {
      const rules = parse(read(f)) as { groups: Array<Record<string, unknown>> };
      for (const g of rules.groups) delete g.interval;
      const out = join(dir, `rules-${i}.yaml`);
      writeFileSync(out, stringify(rules));
      return out;
    });
    const config = {
      global: { scrape_interval: '1s', evaluation_interval: '1s' },
      rule_files: ruleFiles,
      scrape_configs: [
        {
          job_name: 'node-exporter',
          static_configs: [{ targets: [ne.url.replace('http://', '')], labels: sample }],
        },
      ],
    };
    prom = await startPrometheus({ dir, config: stringify(config) });
    // Two scrapes for rate(), then one evaluation of the recordings built on them.
    await waitUntil(
      'the per-node recordings',
      async () =>
        (await instantQuery(prom.url, 'tree_id:media_tree_egress_network_receive_drop:sum_rate5m')).result.length > 0,
      { timeoutMs: 30_000 },
    );
  }, 60_000);

  afterAll(async () => {
    await prom?.child.stop();
    await ne?.child.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it.each(queries)('%s is accepted by Prometheus', async (_n, expr) => {
    await instantQuery(prom.url, substitute(expr));
  });

  it('the variables list the scraped tree, node type and node', async () => {
    const values = async (label: string, selector: string) => {
      const q = new URLSearchParams({ 'match[]': substitute(selector) });
      const res = await fetch(`${prom.url}/api/v1/label/${label}/values?${q}`, { signal: AbortSignal.timeout(5_000) });
      return ((await res.json()) as { data: string[] }).data;
    };
    const node = dashboards.find(([f]) => f === 'node-detail.json')![1];
    const vars = node.templating.list.filter((v) => v.type === 'query');
    expect(vars.map((v) => v.name)).toEqual(['tree_id', 'node_type', 'node_id']);
    for (const v of vars) {
      const m = /^label_values\((.+), ([a-z_]+)\)$/.exec(v.query!.query)!;
      expect(await values(m[2]!, m[1]!), v.name).toEqual([sample[v.name as keyof typeof sample]]);
    }
  });

  // Everything Node detail draws from node_exporter (and the recordings on it).
  const nodeExporterPanels = [
    'CPU',
    'Memory',
    'Network receive / transmit',
    'Received packets dropped',
    'Disk space used',
    'Disk read / write',
    'Scrape targets',
  ];
  it.each(nodeExporterPanels)('Node detail "%s" shows the node', async (title) => {
    const panel = dashboards.find(([f]) => f === 'node-detail.json')![1].panels.find((p) => p.title === title)!;
    expect(panel, title).toBeDefined();
    for (const t of panel.targets!) {
      const { result } = await instantQuery(prom.url, substitute(t.expr));
      expect(result.length, t.expr).toBeGreaterThan(0);
      for (const s of result) expect(s.metric.node_id).toBe('egress-1');
      for (const s of result) expect(Number.isFinite(Number(s.value[1])), t.expr).toBe(true);
    }
  });
});
