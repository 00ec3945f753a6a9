import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { parse, stringify } from 'yaml';
import { JSONNETFMT_STYLE } from './jsonnet.ts';
import { renderAll, staleFiles } from './render.ts';
import { SCALE_OUT_REASONS } from '../alertmanager-webhook/payload.ts';
import { promqlErrors } from '../test/promql.ts';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const read = (p: string) => readFileSync(join(ROOT, p), 'utf8');

interface Rule {
  record?: string;
  alert?: string;
  expr: string;
  for?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
}
interface RuleFile {
  groups: Array<{ name: string; interval?: string; rules: Rule[] }>;
}

const ruleFiles = ['rules/media-tree-rules.yaml', 'rules/media-tree-alerts.yaml'];
// The pack with the opt-in forecast on (promtool-tests/render.jsonnet), which its suite runs on.
const forecastRules = 'promtool-tests/forecast-rules.yaml';
const groups = ruleFiles.flatMap((f) => (parse(read(f)) as RuleFile).groups);
const forecastOn = (parse(read(forecastRules)) as RuleFile).groups.flatMap((g) => g.rules);
const rules = groups.flatMap((g) => g.rules);
const alerts = rules.filter((r) => r.alert);
const recordings = rules.filter((r) => r.record);
const testFiles = readdirSync(join(ROOT, 'promtool-tests')).filter((f) => f.endsWith('.test.yaml'));

function run(cmd: string, args: string[], cwd = ROOT) {
  const r = spawnSync(cmd, args, { cwd, encoding: 'utf8', timeout: 60_000 });
  if (r.error) throw r.error;
  return { code: r.status, out: `${r.stdout}${r.stderr}` };
}

function jsonnetSources(): string[] {
  const out: string[] = [];
  for (const dir of ['rules', 'deploy', 'promtool-tests', 'dashboards/jsonnet']) {
    for (const f of readdirSync(join(ROOT, dir))) if (/\.(jsonnet|libsonnet)$/.test(f)) out.push(join(dir, f));
  }
  return out;
}

describe('generated files', () => {
  it('match their Jsonnet sources (run "canopy render" when this fails)', () => {
    expect(staleFiles(renderAll(false))).toEqual([]);
  });

  it('Jsonnet sources are jsonnetfmt-clean', () => {
    const sources = jsonnetSources();
    expect(sources.length).toBeGreaterThan(5);
    const dirty = sources.filter((f) => run('jsonnetfmt', ['--test', ...JSONNETFMT_STYLE, f]).code !== 0);
    expect(dirty).toEqual([]);
  });
});

describe('promtool', () => {
  it('check rules passes on the rendered rule files', () => {
    const r = run('promtool', ['check', 'rules', ...ruleFiles, forecastRules]);
    for (const f of [...ruleFiles, forecastRules]) {
      const n = (parse(read(f)) as RuleFile).groups.reduce((a, g) => a + g.rules.length, 0);
      expect(r.out).toContain(`${f}\n  SUCCESS: ${n} rules found`);
    }
    expect(r.code, r.out).toBe(0);
  });

  it('check config passes on deploy/prometheus.yml', () => {
    const r = run('promtool', ['check', 'config', 'prometheus.yml'], join(ROOT, 'deploy'));
    expect(r.code, r.out).toBe(0);
  });

  it('check config passes on the Kubernetes variant, its SD blocks aside', () => {
    // Debian's Prometheus 2.42 is built without kubernetes_sd, so promtool
    // checks everything else (relabelling, rules, alerting) with the SD swapped out.
    const dir = mkdtempSync(join(tmpdir(), 'canopy-k8s-'));
    // The in-cluster service-account files, which promtool insists on finding.
    const sa = '/var/run/secrets/kubernetes.io/serviceaccount/';
    writeFileSync(join(dir, 'token'), 'token\n');
    writeFileSync(join(dir, 'ca.crt'), '');
    const text = read('deploy/prometheus-kubernetes.yml').replaceAll(sa, `${dir}/`);
    const cfg = parse(text) as { scrape_configs: Array<Record<string, unknown>> };
    for (const job of cfg.scrape_configs) {
      expect(job.kubernetes_sd_configs, `${job.job_name as string} has kubernetes_sd`).toBeDefined();
      delete job.kubernetes_sd_configs;
      job.static_configs = [{ targets: ['127.0.0.1:1'] }];
    }
    try {
      writeFileSync(
        join(dir, 'prometheus.yml'),
        stringify({ ...cfg, rule_files: ruleFiles.map((f) => join(ROOT, f)) }),
      );
      const r = run('promtool', ['check', 'config', 'prometheus.yml'], dir);
      expect(r.code, r.out).toBe(0);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it.each(testFiles)('test rules %s passes', (file) => {
    const r = run('promtool', ['test', 'rules', file], join(ROOT, 'promtool-tests'));
    expect(r.out).toMatch(/SUCCESS/);
    expect(r.code, r.out).toBe(0);
  });
});

describe('the promtool suites cover the whole pack', () => {
  const tests = testFiles.flatMap(
    (f) =>
      (
        parse(read(join('promtool-tests', f))) as {
          tests: Array<{
            alert_rule_test?: Array<{ alertname: string; exp_alerts?: unknown[] }>;
            promql_expr_test?: Array<{ expr: string }>;
          }>;
        }
      ).tests,
  );
  const alertCases = tests.flatMap((t) => t.alert_rule_test ?? []);
  const exprs = tests.flatMap((t) => (t.promql_expr_test ?? []).map((p) => p.expr));

  it.each([...new Set(alerts.map((a) => a.alert!))])('%s is tested firing and not firing', (name) => {
    const cases = alertCases.filter((c) => c.alertname === name);
    expect(cases.some((c) => (c.exp_alerts ?? []).length > 0)).toBe(true);
    expect(cases.some((c) => (c.exp_alerts ?? []).length === 0)).toBe(true);
  });

  it.each([...new Set([...recordings, ...forecastOn].filter((r) => r.record).map((r) => r.record!))])(
    '%s is tested by value',
    (name) => {
      expect(exprs.some((e) => e.includes(name))).toBe(true);
    },
  );

  it('the forecast adds one recording and one scale-out reason, nothing else', () => {
    const names = (rs: Rule[]) => rs.map((r) => r.record ?? `${r.alert}/${r.labels?.reason ?? ''}`);
    const extra = names(forecastOn).filter(
      (n) =>
        !names(
          rules.filter((r) => r.record || r.alert === 'MediaTreeScaleOut' || r.alert === 'MediaTreeScaleIn'),
        ).includes(n),
    );
    expect(extra.sort()).toEqual([
      'MediaTreeScaleOut/forecast',
      'tree_id:media_tree_egress_port_pool_allocated:predict_linear5m',
    ]);
  });

  // Every reason the actuator accepts is one the pack can send, and is tested firing.
  it.each(SCALE_OUT_REASONS)('scale-out reason %s fires in some test', (reason) => {
    const fired = tests
      .flatMap((t) => t.alert_rule_test ?? [])
      .flatMap((c) => (c.exp_alerts ?? []) as Array<{ exp_labels: Record<string, string> }>);
    expect(fired.some((a) => a.exp_labels.reason === reason)).toBe(true);
  });
});

describe('mixin conventions', () => {
  const runbook = read('rules/runbook.md');
  const anchors = new Set([...runbook.matchAll(/^## (\S+)/gm)].map((m) => m[1]!.toLowerCase()));

  it('recording rules are named level:metric:operations', () => {
    for (const r of recordings) expect(r.record).toMatch(/^[a-z_]+:[a-z_]+:[a-z0-9_]+$/);
  });

  it('groups hold at most 20 rules and evaluate on the configured interval', () => {
    for (const g of groups) {
      expect(g.rules.length).toBeLessThanOrEqual(20);
      // Only what no decision reads is evaluated less often.
      expect(g.interval).toBe(g.name === 'media-tree.dashboards' ? '1m' : '30s');
    }
    expect(groups.find((g) => g.name === 'media-tree.dashboards')!.rules.every((r) => !('alert' in r))).toBe(true);
  });

  it.each(alerts.map((a, i) => [`${a.alert}#${i}`, a] as const))(
    '%s has labels and annotations as the mixins lint them',
    (_n, a) => {
      expect(a.alert).toMatch(/^[A-Z][A-Za-z]{0,39}$/);
      expect(['critical', 'warning', 'info']).toContain(a.labels?.severity);
      expect(a.labels?.component).toMatch(/^[a-z]+$/);
      const { summary, description, runbook_url } = a.annotations ?? {};
      expect(summary).toMatch(/^[A-Z][^{}]*\.$/);
      expect(description).toMatch(/\{\{ \$(value|labels)/);
      expect(runbook_url).toMatch(/#[a-z]+$/);
      expect(anchors.has(runbook_url!.split('#')[1]!), `runbook section for ${a.alert}`).toBe(true);
    },
  );

  it('scaling alerts carry the labels of the docs/architecture.md contract', () => {
    for (const a of alerts.filter((x) => x.alert === 'MediaTreeScaleOut')) {
      expect(a.labels?.component).toBe('scaling');
      expect(['critical', 'high']).toContain(a.labels?.urgency);
      expect(SCALE_OUT_REASONS).toContain(a.labels?.reason);
      // The size the actuator converges to (rules/sizing.libsonnet), as a whole number.
      expect(a.annotations?.desired_subtrees).toContain('tree_id:media_tree_egress_subtrees_desired:ceil');
    }
    const scaleIn = alerts.filter((x) => x.alert === 'MediaTreeScaleIn');
    expect(scaleIn).toHaveLength(1);
    expect(scaleIn[0]!.labels).toMatchObject({ component: 'scaling', urgency: 'low' });
    // Only the scaling decisions go to the actuator.
    for (const a of alerts.filter((x) => !x.alert!.startsWith('MediaTreeScale')))
      expect(a.labels?.component).not.toBe('scaling');
  });
});

describe('every PromQL expression parses with lezer-promql', () => {
  const suiteExprs = testFiles.flatMap((f) =>
    (
      parse(read(join('promtool-tests', f))) as { tests: Array<{ promql_expr_test?: Array<{ expr: string }> }> }
    ).tests.flatMap((t) => (t.promql_expr_test ?? []).map((p) => p.expr)),
  );
  it.each(rules.map((r) => [r.record ?? r.alert!, r.expr] as const))('rule %s', (_name, expr) => {
    expect(promqlErrors(expr)).toEqual([]);
  });
  it('promtool suites', () => {
    for (const e of suiteExprs) expect(promqlErrors(e), e).toEqual([]);
  });
  it('the parser does reject a broken expression (the check is live)', () => {
    expect(promqlErrors('sum by (tree_id (up')).not.toEqual([]);
  });
});

describe('Alertmanager routing (amtool)', () => {
  const config = join(ROOT, 'deploy/alertmanager.yml');

  it('amtool check-config passes', () => {
    const r = run('amtool', ['check-config', config]);
    expect(r.code, r.out).toBe(0);
  });

  function route(labels: Record<string, string>): string {
    const r = run('amtool', [
      'config',
      'routes',
      'test',
      `--config.file=${config}`,
      ...Object.entries(labels).map(([k, v]) => `${k}=${v}`),
    ]);
    expect(r.code, r.out).toBe(0);
    return r.out
      .split('\n')
      .filter((l) => l && !l.startsWith('Warning'))[0]!
      .trim();
  }

  it.each(alerts.map((a, i) => [`${a.alert}#${i}`, a] as const))(
    '%s goes to the actuator only when it is a scaling decision',
    (_n, a) => {
      const want = a.labels?.component === 'scaling' ? 'actuator' : 'slack';
      expect(route({ alertname: a.alert!, tree_id: 'tree-1', ...a.labels })).toBe(want);
    },
  );

  it('an unknown alert goes to people, not to the actuator', () => {
    expect(route({ alertname: 'Watchdog', severity: 'none' })).toBe('slack');
  });
});
