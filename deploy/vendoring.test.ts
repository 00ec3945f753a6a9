/**
 * The mixin as a user consumes it: the repository's Jsonnet laid out the way
 * jsonnet-bundler vendors it (vendor/canopy/..., `jsonnet -J vendor`), in a
 * directory with nothing else, rendered with an override of a threshold, a
 * selector (the egress and actuator jobs) and a window, and the override
 * looked for everywhere it should arrive: rules, alerts, the rule files
 * promtool loads and evaluates, dashboards, the actuator's metric contract
 * and the prometheus-operator objects.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ROOT, toYaml } from '../rules/jsonnet.ts';

type Obj = Record<string, any>;

const dir = mkdtempSync(join(tmpdir(), 'canopy-vendor-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

// What jb would fetch: the repository's Jsonnet (and nothing from outside vendor/).
const sources = execFileSync('git', ['ls-files', '*.libsonnet', '*.jsonnet', 'jsonnetfile.json'], {
  cwd: ROOT,
  encoding: 'utf8',
})
  .split('\n')
  .filter(Boolean);
for (const f of sources) {
  mkdirSync(dirname(join(dir, 'vendor/canopy', f)), { recursive: true });
  copyFileSync(join(ROOT, f), join(dir, 'vendor/canopy', f));
}
writeFileSync(
  join(dir, 'main.jsonnet'),
  `local override = { _config+:: {
    portPoolScaleOutPercent: 77,
    jobs+: { egress: 'edge-egress' },
    actuatorJob: 'edge-actuator',
    cpuAverageWindow: '10m',
    kubernetes+: { namespace: 'live' },
  } };
  local mixin = (import 'canopy/mixin.libsonnet') + override;
  local cluster = (import 'canopy/deploy/cluster.libsonnet') + override;
  {
    rules: mixin.prometheusRules,
    alerts: mixin.prometheusAlerts,
    dashboards: mixin.grafanaDashboards,
    actuatorMetrics: mixin.actuatorMetrics,
    recorded: mixin.recorded,
    operator: cluster.prometheusOperator,
  }
`,
);
const out = JSON.parse(
  execFileSync('jsonnet', ['-J', 'vendor', 'main.jsonnet'], { cwd: dir, encoding: 'utf8', maxBuffer: 64 << 20 }),
) as Obj;
const text = (v: unknown): string => JSON.stringify(v);
const exprs = (groups: Obj[]): string[] => groups.flatMap((g) => g.rules.map((r: Obj) => r.expr as string));

describe('the mixin vendored with jsonnet-bundler, with an override', () => {
  it('reaches the rules and alerts: the selector, the threshold and the window', () => {
    const all = [...exprs(out.rules.groups), ...exprs(out.alerts.groups)].join('\n');
    expect(all).toContain('job="edge-egress"');
    expect(all).not.toContain('media-tree-egress');
    expect(all).toContain('job="edge-actuator"');
    expect(all).not.toContain('canopy-actuator');
    expect(all).toMatch(/avg_over_time\([^)]*\[10m\]\)/);
    expect(all).toContain(out.recorded.treeEgressCpu);
    expect(out.recorded.treeEgressCpu).toMatch(/avg10m$/);
    expect(all).not.toMatch(/avg5m/);
    const scaleOut = out.rules.groups
      .flatMap((g: Obj) => g.rules)
      .filter((r: Obj) => r.alert === 'MediaTreeScaleOut' && r.labels.reason === 'port_pool');
    expect(scaleOut.length).toBeGreaterThan(0);
    for (const r of scaleOut) {
      expect(r.expr).toContain(`${out.recorded.treePortsUtilisation} > 0.77`);
      expect(r.annotations.description).toContain('above 77%');
    }
    expect(all).not.toMatch(/[> ]85\b|0\.85\b/);
  });

  it('reaches the dashboards and the actuator metric contract', () => {
    const d = text(out.dashboards);
    expect(d).toContain('edge-egress');
    expect(d).not.toContain('media-tree-egress');
    expect(d).toContain('job=\\"edge-actuator\\"');
    expect(d).not.toContain('canopy-actuator');
    expect(d).toContain(out.recorded.treeEgressCpu);
    expect(d).not.toMatch(/avg5m/);
    expect(out.actuatorMetrics.job).toBe('edge-actuator');
    // The port-pool panels turn red at the scale-out threshold.
    expect(d).toMatch(/"value":77\b/);
    expect(d).not.toMatch(/"value":85\b/);
  });

  it('reaches the prometheus-operator objects', () => {
    const o = out.operator;
    expect(o.prometheusRule.spec.groups).toEqual([...out.alerts.groups, ...out.rules.groups]);
    expect(o.prometheusRule.metadata.namespace).toBe('live');
    const jobOf = (name: string): string =>
      o.podMonitors
        .find((m: Obj) => m.metadata.name === name)
        .spec.podMetricsEndpoints[0].relabelings.find((r: Obj) => r.targetLabel === 'job').replacement;
    expect(jobOf('canopy-egress')).toBe('edge-egress');
    expect(jobOf('canopy-actuator')).toBe('edge-actuator');
    expect(o.alertmanagerConfig.spec.receivers[0].webhookConfigs[0].url).toMatch(/^http:\/\/edge-actuator\.live\.svc:/);
  });

  it('renders rule files promtool loads, whose rules select the overridden job and fire at the overridden threshold', () => {
    writeFileSync(join(dir, 'rules.yaml'), toYaml(out.rules));
    writeFileSync(join(dir, 'alerts.yaml'), toYaml(out.alerts));
    const check = spawnSync('promtool', ['check', 'rules', 'rules.yaml', 'alerts.yaml'], {
      cwd: dir,
      encoding: 'utf8',
    });
    expect(check.status, check.stdout + check.stderr).toBe(0);
    const pool = 'media_tree_egress_port_pool_utilization_percent';
    const target = 'tree_id="t", node_id="egress-1", node_type="egress"';
    writeFileSync(
      join(dir, 'vendored.test.yaml'),
      toYaml({
        rule_files: ['rules.yaml', 'alerts.yaml'],
        evaluation_interval: '1m',
        tests: [
          {
            interval: '1m',
            input_series: [
              { series: `${pool}{job="edge-egress", ${target}}`, values: '80x10' },
              // The default job is no longer the egress job: ignored.
              {
                series: `${pool}{job="media-tree-egress", tree_id="u", node_id="egress-2", node_type="egress"}`,
                values: '99x10',
              },
            ],
            promql_expr_test: [
              {
                expr: out.recorded.treePortPool,
                eval_time: '5m',
                exp_samples: [{ labels: `${out.recorded.treePortPool}{tree_id="t"}`, value: 80 }],
              },
              // 80 > 77: fires (it would not at the default 85).
              {
                expr: 'count(ALERTS{alertname="PortPoolExhaustion", alertstate="firing"})',
                eval_time: '5m',
                exp_samples: [{ labels: '{}', value: 1 }],
              },
            ],
          },
        ],
      }),
    );
    const run = spawnSync('promtool', ['test', 'rules', 'vendored.test.yaml'], {
      cwd: dir,
      encoding: 'utf8',
      timeout: 60_000,
    });
    expect(run.status, run.stdout + run.stderr).toBe(0);
  });
});
