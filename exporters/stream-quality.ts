import type { Registry } from 'prom-client';
import { createFamilies, type Families, type FamilySpec, setCounterTotal } from './families.ts';
import type { StreamType } from './labels.ts';
import { createNodeRegistry, type NodeRegistry, type NodeRegistryOptions } from './registry.ts';

/**
 * RTP receive quality per SSRC (RFC 3550) where RTP enters a relay or an
 * egress node, measured by its forwarder. One set of families per node type:
 * `media_tree_<node>_rtp_packets_{expected,lost,out_of_order}_total` and
 * `media_tree_<node>_rtp_jitter_seconds`, labelled {stream_type, ssrc}.
 */
export function streamQualityFamilies(node: 'relay' | 'egress') {
  const labelNames = ['stream_type', 'ssrc'] as const;
  return {
    rtpPacketsExpected: {
      name: `media_tree_${node}_rtp_packets_expected_total`,
      help: 'RTP packets expected from the parent: extended highest sequence number minus the first, plus one (RFC 3550 A.3)',
      type: 'counter',
      labelNames,
    },
    rtpPacketsLost: {
      name: `media_tree_${node}_rtp_packets_lost_total`,
      help: 'RTP packets from the parent never received: expected minus distinct packets received (RFC 3550 A.3)',
      type: 'counter',
      labelNames,
    },
    rtpPacketsOutOfOrder: {
      name: `media_tree_${node}_rtp_packets_out_of_order_total`,
      help: 'RTP packets from the parent that arrived after a higher sequence number',
      type: 'counter',
      labelNames,
    },
    rtpJitterSeconds: {
      name: `media_tree_${node}_rtp_jitter_seconds`,
      help: 'Interarrival jitter of RTP from the parent (RFC 3550 A.8), in seconds of the payload clock',
      type: 'gauge',
      labelNames,
    },
  } as const;
}

type QualitySpecs = ReturnType<typeof streamQualityFamilies>;
export type StreamQualityMetrics = Families<QualitySpecs>;

export function createStreamQualityMetrics(node: 'relay' | 'egress', registry: Registry): StreamQualityMetrics {
  return createFamilies(streamQualityFamilies(node), registry) as StreamQualityMetrics;
}

/** One SSRC's counts as the forwarder reports them (cumulative). */
export interface StreamQualitySample {
  ssrc: number;
  expected: number;
  lost: number;
  outOfOrder: number;
  jitter: number;
}

/**
 * Copies the forwarder's per-SSRC quality into the families and removes the
 * series of SSRCs it no longer reports (their sessions ended), so cardinality
 * follows live streams.
 */
export class StreamQualityRecorder {
  private readonly shown = new Map<StreamType, Set<string>>();
  constructor(private readonly m: StreamQualityMetrics) {}

  record(streamType: StreamType, samples: readonly StreamQualitySample[]): void {
    const now = new Set<string>();
    for (const q of samples) {
      const labels = { stream_type: streamType, ssrc: String(q.ssrc) };
      now.add(labels.ssrc);
      setCounterTotal(this.m.rtpPacketsExpected, labels, q.expected);
      setCounterTotal(this.m.rtpPacketsLost, labels, q.lost);
      setCounterTotal(this.m.rtpPacketsOutOfOrder, labels, q.outOfOrder);
      this.m.rtpJitterSeconds.set(labels, q.jitter);
    }
    for (const ssrc of this.shown.get(streamType) ?? []) if (!now.has(ssrc)) this.forget(streamType, ssrc);
    this.shown.set(streamType, now);
  }

  forget(streamType: StreamType, ssrc: string): void {
    const labels = { stream_type: streamType, ssrc };
    this.m.rtpPacketsExpected.remove(labels);
    this.m.rtpPacketsLost.remove(labels);
    this.m.rtpPacketsOutOfOrder.remove(labels);
    this.m.rtpJitterSeconds.remove(labels);
    this.shown.get(streamType)?.delete(ssrc);
  }
}

/** The metrics of a node whose forwarder receives RTP (relay, egress): its own families plus stream quality. */
export type ForwardingNodeMetrics<T extends Record<string, FamilySpec>> = Families<T> &
  StreamQualityMetrics & { node: NodeRegistry; streamQuality: StreamQualityRecorder };

export function createForwardingNodeMetrics<T extends Record<string, FamilySpec>>(
  nodeType: 'relay' | 'egress',
  families: T,
  options?: NodeRegistryOptions,
): ForwardingNodeMetrics<T> {
  const node = createNodeRegistry(nodeType, options);
  const quality = createStreamQualityMetrics(nodeType, node.registry);
  return {
    node,
    ...createFamilies(families, node.registry),
    ...quality,
    streamQuality: new StreamQualityRecorder(quality),
  };
}
