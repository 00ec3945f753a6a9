import { createWriteStream } from 'node:fs';
import { once } from 'node:events';

export interface TreeData {
  trees: number;
  nodesPerTree: number;
  /** Seconds of history before `now`, and of future after it (so a run has data at its own now). */
  historySeconds: number;
  futureSeconds: number;
  stepSeconds: number;
  now: number;
}

interface Series {
  labels: string;
  value: (k: number) => number;
}

/**
 * Writes an OpenMetrics file of a fleet of egress nodes (node_exporter and
 * app series, with the target labels service discovery would set) plus one
 * injection per tree, for `promtool tsdb create-blocks-from openmetrics`.
 * Returns the number of series and samples.
 */
export async function writeFleet(path: string, d: TreeData): Promise<{ series: number; samples: number }> {
  const families = new Map<string, Series[]>();
  const add = (name: string, s: Series) => {
    let list = families.get(name);
    if (!list) families.set(name, (list = []));
    list.push(s);
  };
  for (let t = 0; t < d.trees; t++) {
    const tree = `tree-${t}`;
    const inj = `tree_id="${tree}",node_id="${tree}-injection",node_type="injection"`;
    add('media_tree_injection_active_sessions', { labels: `job="media-tree-injection",instance="${tree}-injection:7070",${inj},room_id="all"`, value: () => 4 });
    for (let i = 0; i < d.nodesPerTree; i++) {
      const id = `${tree}-egress-${i}`;
      const target = `tree_id="${tree}",node_id="${id}",node_type="egress"`;
      const ne = `job="node-exporter",instance="${id}:9100",${target}`;
      const app = `job="media-tree-egress",instance="${id}:7073",${target}`;
      const busy = 0.1 + (0.6 * ((i * 7 + t) % 10)) / 10;
      const step = d.stepSeconds;
      add('node_cpu_seconds_total', { labels: `${ne},cpu="0",mode="idle"`, value: (k) => 1e6 + k * step * (1 - busy) });
      add('node_cpu_seconds_total', { labels: `${ne},cpu="0",mode="user"`, value: (k) => 1e6 + k * step * busy });
      add('node_memory_MemTotal_bytes', { labels: ne, value: () => 8 * 2 ** 30 });
      add('node_memory_MemAvailable_bytes', { labels: ne, value: (k) => (5 + ((k + i) % 7) / 10) * 2 ** 30 });
      add('node_network_receive_drop_total', { labels: `${ne},device="eth0"`, value: (k) => k * ((i % 3) + 1) });
      add('up', { labels: ne, value: () => 1 });
      add('up', { labels: app, value: () => 1 });
      add('media_tree_egress_port_pool_utilization_percent', { labels: app, value: (k) => 20 + ((k + i * 13) % 60) });
      add('media_tree_egress_active_viewers', { labels: `${app},session_id="sess-${t}"`, value: (k) => 100 + ((k + i) % 50) });
    }
  }

  const out = createWriteStream(path);
  const first = d.now - d.historySeconds;
  const steps = Math.floor((d.historySeconds + d.futureSeconds) / d.stepSeconds);
  let series = 0;
  let samples = 0;
  for (const [name, list] of families) {
    let chunk = `# TYPE ${name} gauge\n`;
    for (const s of list) {
      series++;
      const head = `${name}{${s.labels}} `;
      for (let k = 0; k <= steps; k++) {
        chunk += `${head}${s.value(k)} ${first + k * d.stepSeconds}\n`;
        samples++;
      }
      if (chunk.length > 1 << 20) {
        if (!out.write(chunk)) await once(out, 'drain');
        chunk = '';
      }
    }
    if (!out.write(chunk)) await once(out, 'drain');
  }
  out.end('# EOF\n');
  await once(out, 'finish');
  return { series, samples };
}
