import {
  recordForwarderSnapshot,
  STREAM_TYPES,
  type PipelineSnapshot,
  type RelayMetrics,
  type StreamType,
} from '../exporters/index.ts';
import type { Collector } from '../exporters/registry.ts';
import type { ForwarderClient, ForwarderStats } from '../forwarder/client.ts';

export type RelaySnapshot = Record<StreamType, PipelineSnapshot>;

/**
 * A forwarder STATS reply as the relay exporter's snapshot. When the forwarder
 * is unreachable the states are 0 and the counters keep their last values: a
 * drop to 0 and back would read as a counter reset and fake a burst in rate().
 */
export function relaySnapshot(stats: ForwarderStats, previous?: RelaySnapshot): RelaySnapshot {
  const out = {} as RelaySnapshot;
  for (const t of STREAM_TYPES) {
    const p = stats[t];
    out[t] = stats.reachable
      ? {
          state: p.state,
          destinations: p.destinations,
          packetsForwarded: p.packetsOut,
          bytesForwarded: p.bytesOut,
          streams: p.streams,
        }
      : {
          state: 0,
          destinations: 0,
          packetsForwarded: previous?.[t].packetsForwarded ?? 0,
          bytesForwarded: previous?.[t].bytesForwarded ?? 0,
          streams: previous?.[t].streams ?? [],
        };
  }
  return out;
}

/** A scrape-time collector: asks the forwarder for STATS and records them. */
export function forwarderCollector(metrics: RelayMetrics, client: ForwarderClient): Collector {
  let last: RelaySnapshot | undefined;
  return {
    name: 'forwarder_stats',
    async collect() {
      last = relaySnapshot(await client.stats(), last);
      recordForwarderSnapshot(metrics, last);
    },
  };
}
