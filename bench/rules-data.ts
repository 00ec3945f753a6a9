import type { WriteSeries } from './remote-write.ts';

/** One series of the synthetic fleet: its value at step k of the history. */
export interface FleetSeries {
  name: string;
  labels: Record<string, string>;
  value: (k: number) => number;
}

/** Fleet shape of the rules bench. */
export interface FleetShape {
  trees: number;
  /** Egress nodes over all trees. */
  nodes: number;
  /** CPU cores per egress node. */
  cores: number;
}

/** One in this many egress nodes runs above every threshold, so alerts fire and ALERTS is written. */
export const HOT_EVERY = 100;

/**
 * A fleet of egress nodes (node_exporter and app series, RTP quality of one
 * session included, with the target labels service discovery would set),
 * plus one injection and one relay per tree. One node in HOT_EVERY is above
 * the CPU, memory, port-pool and drop thresholds of both the seed and the
 * pack, and the pack's RTP loss and jitter thresholds.
 */
export function fleet(shape: FleetShape, stepSeconds: number): FleetSeries[] {
  const out: FleetSeries[] = [];
  const add = (name: string, labels: Record<string, string>, value: (k: number) => number) =>
    out.push({ name, labels, value });
  const perTree = Math.ceil(shape.nodes / shape.trees);
  let g = 0;
  for (let t = 0; t < shape.trees; t++) {
    const tree = `tree-${t}`;
    const inj = {
      job: 'media-tree-injection',
      instance: `${tree}-injection:7070`,
      tree_id: tree,
      node_id: `${tree}-injection`,
      node_type: 'injection',
    };
    add('media_tree_injection_active_sessions', { ...inj, room_id: 'all' }, () => 4);
    add('up', inj, () => 1);
    const relay = {
      job: 'media-tree-relay',
      instance: `${tree}-relay:7071`,
      tree_id: tree,
      node_id: `${tree}-relay`,
      node_type: 'relay',
    };
    for (const pipeline of ['audio', 'video']) add('media_tree_relay_forwarder_state', { ...relay, pipeline }, () => 3);
    rtpStreams(add, 'relay', relay, false, stepSeconds);
    add('up', relay, () => 1);
    for (let i = 0; i < perTree && g < shape.nodes; i++, g++) {
      const id = `${tree}-egress-${i}`;
      const hot = g % HOT_EVERY === 0;
      const target = { tree_id: tree, node_id: id, node_type: 'egress' };
      const ne = { job: 'node-exporter', instance: `${id}:9100`, ...target };
      const app = { job: 'media-tree-egress', instance: `${id}:7073`, ...target };
      const busy = hot ? 0.95 : 0.1 + (0.5 * ((i * 7 + t) % 10)) / 10;
      for (let cpu = 0; cpu < shape.cores; cpu++) {
        add(
          'node_cpu_seconds_total',
          { ...ne, cpu: String(cpu), mode: 'idle' },
          (k) => 1e6 + k * stepSeconds * (1 - busy),
        );
        add('node_cpu_seconds_total', { ...ne, cpu: String(cpu), mode: 'user' }, (k) => 1e6 + k * stepSeconds * busy);
      }
      add('node_memory_MemTotal_bytes', ne, () => 8 * 2 ** 30);
      add('node_memory_MemAvailable_bytes', ne, (k) => (hot ? 0.5 : 5 + ((k + i) % 7) / 10) * 2 ** 30);
      for (const device of ['eth0', 'lo'])
        add(
          'node_network_receive_drop_total',
          { ...ne, device },
          (k) => k * stepSeconds * (hot && device === 'eth0' ? 150 : (i % 3) / 10),
        );
      add('up', ne, () => 1);
      add('up', app, () => 1);
      // a pool of 100 ports: allocated and available agree with the utilisation (the sizing group reads them)
      const pool = (k: number) => (hot ? 90 : 20 + ((k + i * 13) % 60));
      add('media_tree_egress_port_pool_utilization_percent', app, pool);
      add('media_tree_egress_port_pool_allocated', app, pool);
      add('media_tree_egress_port_pool_available', app, (k) => 100 - pool(k));
      add('media_tree_egress_active_mountpoints', app, () => 2);
      add('media_tree_egress_active_viewers', { ...app, session_id: `sess-${t}` }, (k) => 100 + ((k + i) % 50));
      rtpStreams(add, 'egress', app, hot, stepSeconds);
    }
  }
  return out;
}

/**
 * RTP receive quality of one live session (a video and an audio stream, one
 * SSRC each), as the relay and egress apps export it: what the pack's
 * stream-quality rules read. A hot node misses 4 % of its packets, with 50 ms of jitter.
 */
function rtpStreams(
  add: (name: string, labels: Record<string, string>, value: (k: number) => number) => void,
  node: 'relay' | 'egress',
  target: Record<string, string>,
  hot: boolean,
  stepSeconds: number,
): void {
  for (const [streamType, ssrc, perSecond] of [
    ['video', '1111', 300],
    ['audio', '2222', 50],
  ] as const) {
    const labels = { ...target, stream_type: streamType, ssrc };
    add(`media_tree_${node}_rtp_packets_expected_total`, labels, (k) => 1e6 + k * stepSeconds * perSecond);
    add(`media_tree_${node}_rtp_packets_lost_total`, labels, (k) => k * stepSeconds * perSecond * (hot ? 0.04 : 0));
    add(`media_tree_${node}_rtp_jitter_seconds`, labels, () => (hot ? 0.05 : 0.004));
  }
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
