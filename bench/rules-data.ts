import { createWriteStream } from 'node:fs';
import { once } from 'node:events';
import type { WriteSeries } from './remote-write.ts';

/** One series of the synthetic fleet: its value at step k of the history. */
export interface FleetSeries {
  name: string;
  labels: Record<string, string>;
  value: (k: number) => number;
}

/**
 * A fleet of egress nodes (node_exporter and app series, with the target
 * labels service discovery would set) plus one injection per tree.
 */
export function fleet(trees: number, nodesPerTree: number, stepSeconds: number): FleetSeries[] {
  const out: FleetSeries[] = [];
  const add = (name: string, labels: Record<string, string>, value: (k: number) => number) =>
    out.push({ name, labels, value });
  for (let t = 0; t < trees; t++) {
    const tree = `tree-${t}`;
    const inj = { tree_id: tree, node_id: `${tree}-injection`, node_type: 'injection' };
    add(
      'media_tree_injection_active_sessions',
      { job: 'media-tree-injection', instance: `${tree}-injection:7070`, ...inj, room_id: 'all' },
      () => 4,
    );
    for (let i = 0; i < nodesPerTree; i++) {
      const id = `${tree}-egress-${i}`;
      const target = { tree_id: tree, node_id: id, node_type: 'egress' };
      const ne = { job: 'node-exporter', instance: `${id}:9100`, ...target };
      const app = { job: 'media-tree-egress', instance: `${id}:7073`, ...target };
      const busy = 0.1 + (0.6 * ((i * 7 + t) % 10)) / 10;
      add('node_cpu_seconds_total', { ...ne, cpu: '0', mode: 'idle' }, (k) => 1e6 + k * stepSeconds * (1 - busy));
      add('node_cpu_seconds_total', { ...ne, cpu: '0', mode: 'user' }, (k) => 1e6 + k * stepSeconds * busy);
      add('node_memory_MemTotal_bytes', ne, () => 8 * 2 ** 30);
      add('node_memory_MemAvailable_bytes', ne, (k) => (5 + ((k + i) % 7) / 10) * 2 ** 30);
      add('node_network_receive_drop_total', { ...ne, device: 'eth0' }, (k) => k * ((i % 3) + 1));
      add('up', ne, () => 1);
      add('up', app, () => 1);
      add('media_tree_egress_port_pool_utilization_percent', app, (k) => 20 + ((k + i * 13) % 60));
      add('media_tree_egress_active_viewers', { ...app, session_id: `sess-${t}` }, (k) => 100 + ((k + i) % 50));
    }
  }
  return out;
}

/**
 * Steps [from, to) of the fleet as an OpenMetrics file for `promtool tsdb
 * create-blocks-from openmetrics`; step k is at firstSeconds + k * stepSeconds.
 * Returns the number of samples.
 */
export async function writeOpenMetrics(
  path: string,
  series: FleetSeries[],
  firstSeconds: number,
  stepSeconds: number,
  from: number,
  to: number,
): Promise<number> {
  const out = createWriteStream(path);
  let samples = 0;
  const byName = new Map<string, FleetSeries[]>();
  for (const s of series) {
    const list = byName.get(s.name);
    if (list) list.push(s);
    else byName.set(s.name, [s]);
  }
  for (const [name, list] of byName) {
    let chunk = `# TYPE ${name} gauge\n`;
    for (const s of list) {
      const head = `${name}{${Object.entries(s.labels)
        .map(([k, v]) => `${k}="${v}"`)
        .join(',')}} `;
      for (let k = from; k < to; k++) {
        chunk += `${head}${s.value(k)} ${firstSeconds + k * stepSeconds}\n`;
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
  return samples;
}

/** Steps [from, to) of the fleet as remote-write series. */
export function writeSeries(
  series: FleetSeries[],
  firstSeconds: number,
  stepSeconds: number,
  from: number,
  to: number,
): WriteSeries[] {
  return series.map((s) => ({
    labels: { __name__: s.name, ...s.labels },
    samples: Array.from({ length: to - from }, (_, j) => ({
      value: s.value(from + j),
      timestampMs: (firstSeconds + (from + j) * stepSeconds) * 1000,
    })),
  }));
}
