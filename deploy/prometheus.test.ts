import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse, stringify } from 'yaml';
import { startNodeExporter, type RunningNodeExporter } from '../servers/node-exporter.ts';
import { instantQuery, startPrometheus, type RunningPrometheus } from '../servers/prometheus.ts';
import { waitUntil } from '../process/wait.ts';

const ROOT = fileURLToPath(new URL('..', import.meta.url));

interface Target {
  labels: Record<string, string>;
  discoveredLabels: Record<string, string>;
}

// deploy/prometheus.yml as shipped, run by a real Prometheus over file_sd
// target files, with a real node_exporter behind one of them.
describe('deploy/prometheus.yml with file_sd (real Prometheus)', () => {
  let dir: string;
  let ne: RunningNodeExporter;
  let prom: RunningPrometheus;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'canopy-prom-'));
    ne = await startNodeExporter();
    const cfg = parse(readFileSync(join(ROOT, 'deploy/prometheus.yml'), 'utf8')) as Record<string, unknown> & {
      global: Record<string, string>;
      rule_files: string[];
    };
    cfg.global.scrape_interval = '1s';
    cfg.rule_files = cfg.rule_files.map((f) => join(ROOT, 'deploy', f));
    const targets = (job: string, groups: unknown[]) => {
      mkdirSync(join(dir, 'targets', job), { recursive: true });
      writeFileSync(join(dir, 'targets', job, 'test.json'), JSON.stringify(groups));
    };
    targets('node-exporter', [
      // Every label given: kept as given.
      {
        targets: [ne.url.replace('http://', '')],
        labels: { tree_id: 'tree-1', node_id: 'egress-7', node_type: 'egress' },
      },
      // Only the tree: node_id from the host, node_type from node_id's prefix (the seed's scheme).
      { targets: ['relay-3:9100'], labels: { tree_id: 'tree-1' } },
      // No tree: left out of every decision, so not scraped at all.
      { targets: ['egress-9:9100'], labels: {} },
    ]);
    // The actuator is no tree node: kept without a tree_id.
    targets('canopy-actuator', [{ targets: ['127.0.0.1:9'] }]);
    prom = await startPrometheus({ dir, config: stringify(cfg) });
  }, 60_000);

  afterAll(async () => {
    await prom?.child.stop();
    await ne?.child.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  async function targetsOf(kind: 'activeTargets' | 'droppedTargets'): Promise<Target[]> {
    const res = await fetch(`${prom.url}/api/v1/targets`, { signal: AbortSignal.timeout(5_000) });
    return ((await res.json()) as { data: Record<string, Target[]> }).data[kind] ?? [];
  }

  const nodeTargets = async (kind: 'activeTargets' | 'droppedTargets') =>
    (await targetsOf(kind)).filter((t) => t.labels.job !== 'canopy-actuator');

  it('sets tree_id, node_id and node_type on every kept target, once', async () => {
    await waitUntil('two active node targets', async () => (await nodeTargets('activeTargets')).length === 2, {
      timeoutMs: 20_000,
    });
    const byNode = Object.fromEntries((await nodeTargets('activeTargets')).map((t) => [t.labels.node_id, t.labels]));
    expect(byNode['egress-7']).toMatchObject({ job: 'node-exporter', tree_id: 'tree-1', node_type: 'egress' });
    expect(byNode['relay-3']).toMatchObject({
      job: 'node-exporter',
      tree_id: 'tree-1',
      node_type: 'relay',
      instance: 'relay-3:9100',
    });
  });

  it("scrapes the actuator's target (job canopy-actuator) without a tree_id", async () => {
    await waitUntil(
      'the actuator target',
      async () => (await targetsOf('activeTargets')).some((t) => t.labels.job === 'canopy-actuator'),
      { timeoutMs: 20_000 },
    );
    const actuator = (await targetsOf('activeTargets')).filter((t) => t.labels.job === 'canopy-actuator');
    expect(actuator.map((t) => t.labels)).toEqual([{ job: 'canopy-actuator', instance: '127.0.0.1:9' }]);
  });

  it('drops a target without a tree_id', async () => {
    await waitUntil('a dropped target', async () => (await targetsOf('droppedTargets')).length > 0, {
      timeoutMs: 20_000,
    });
    const dropped = await targetsOf('droppedTargets');
    expect(dropped.map((t) => t.discoveredLabels.__address__)).toContain('egress-9:9100');
  });

  it("scraped series carry the target labels, not exported_* copies, and feed the pack's rules", async () => {
    await waitUntil(
      'node_exporter series with target labels',
      async () =>
        (
          await instantQuery(
            prom.url,
            'node_memory_MemTotal_bytes{tree_id="tree-1", node_id="egress-7", node_type="egress"}',
          )
        ).result.length === 1,
      { timeoutMs: 20_000 },
    );
    const exported = await instantQuery(prom.url, '{__name__=~"node_.*", exported_tree_id!=""}');
    expect(exported.result).toEqual([]);
    await waitUntil(
      'the recording rules to evaluate',
      async () =>
        (await instantQuery(prom.url, 'node_id:media_tree_node_cpu_utilisation:ratio_irate{node_id="egress-7"}')).result
          .length === 1,
      { timeoutMs: 45_000, intervalMs: 1_000 },
    );
  }, 60_000);
});
