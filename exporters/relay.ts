import { setCounterTotal } from './families.ts';
import { STREAM_TYPES, type StreamType } from './labels.ts';
import type { NodeRegistryOptions } from './registry.ts';
import { createForwardingNodeMetrics, type ForwardingNodeMetrics, type StreamQualitySample } from './stream-quality.ts';

/** The seed's relay families, plus bytes forwarded; stream quality in stream-quality.ts. */
export const relayFamilies = {
  destinationsCount: {
    name: 'media_tree_relay_destinations_count',
    help: 'Number of active destinations (children)',
    type: 'gauge',
    labelNames: ['stream_type'],
  },
  rtpPacketsForwarded: {
    name: 'media_tree_relay_rtp_packets_forwarded_total',
    help: 'Total RTP packets forwarded',
    type: 'counter',
    labelNames: ['stream_type'],
  },
  rtpBytesForwarded: {
    name: 'media_tree_relay_rtp_bytes_forwarded_total',
    help: 'Total RTP bytes forwarded',
    type: 'counter',
    labelNames: ['stream_type'],
  },
  forwarderState: {
    name: 'media_tree_relay_forwarder_state',
    help: 'Forwarder pipeline state (0=null, 1=ready, 2=paused, 3=playing)',
    type: 'gauge',
    labelNames: ['pipeline'],
  },
} as const;

export type RelayMetrics = ForwardingNodeMetrics<typeof relayFamilies>;

export function createRelayMetrics(options?: NodeRegistryOptions): RelayMetrics {
  return createForwardingNodeMetrics('relay', relayFamilies, options);
}

/** GstState as the seed reports it: 0 NULL, 1 READY, 2 PAUSED, 3 PLAYING. */
export type PipelineState = 0 | 1 | 2 | 3;

export interface PipelineSnapshot {
  state: PipelineState;
  destinations: number;
  /** Cumulative since the forwarder started. */
  packetsForwarded: number;
  bytesForwarded: number;
  /** RTP receive quality per SSRC arriving from the parent. */
  streams: readonly StreamQualitySample[];
}

/** Copies one forwarder snapshot (both pipelines) into the relay families. */
export function recordForwarderSnapshot(m: RelayMetrics, snapshot: Record<StreamType, PipelineSnapshot>): void {
  for (const streamType of STREAM_TYPES) {
    const p = snapshot[streamType];
    m.forwarderState.set({ pipeline: streamType }, p.state);
    m.destinationsCount.set({ stream_type: streamType }, p.destinations);
    setCounterTotal(m.rtpPacketsForwarded, { stream_type: streamType }, p.packetsForwarded);
    setCounterTotal(m.rtpBytesForwarded, { stream_type: streamType }, p.bytesForwarded);
    m.streamQuality.record(streamType, p.streams);
  }
}
