import { streamsOf, type SessionStreams } from './labels.ts';
import { createKeyframeRequestMetrics, type KeyframeRequestMetrics } from './keyframe-requests.ts';
import type { NodeRegistryOptions } from './registry.ts';
import { createForwardingNodeMetrics, type ForwardingNodeMetrics } from './stream-quality.ts';
import { createViewerQualityMetrics, type ViewerQualityMetrics } from './viewer-quality.ts';

/**
 * The seed's egress families, plus bytes received. `tree_id` and `node_id`
 * come from the target, which also fixes the seed's viewers-without-tree gap.
 */
export const egressFamilies = {
  activeMountpoints: {
    name: 'media_tree_egress_active_mountpoints',
    help: 'Number of active Janus streaming mountpoints',
    type: 'gauge',
    labelNames: [],
  },
  activeViewers: {
    name: 'media_tree_egress_active_viewers',
    help: 'Number of active WHEP viewers',
    type: 'gauge',
    labelNames: ['session_id'],
  },
  portPoolUtilizationPercent: {
    name: 'media_tree_egress_port_pool_utilization_percent',
    help: 'Port pool utilization percentage',
    type: 'gauge',
    labelNames: [],
  },
  portPoolAllocated: {
    name: 'media_tree_egress_port_pool_allocated',
    help: 'Number of allocated ports',
    type: 'gauge',
    labelNames: [],
  },
  portPoolAvailable: {
    name: 'media_tree_egress_port_pool_available',
    help: 'Number of available ports',
    type: 'gauge',
    labelNames: [],
  },
  rtpPacketsReceived: {
    name: 'media_tree_egress_rtp_packets_received_total',
    help: 'Total RTP packets received from parent',
    type: 'counter',
    labelNames: ['stream_type', 'ssrc'],
  },
  rtpBytesReceived: {
    name: 'media_tree_egress_rtp_bytes_received_total',
    help: 'Total RTP bytes received from parent',
    type: 'counter',
    labelNames: ['stream_type', 'ssrc'],
  },
} as const;

export type EgressMetrics = ForwardingNodeMetrics<typeof egressFamilies> & {
  viewerQuality: ViewerQualityMetrics;
  keyframeRequests: KeyframeRequestMetrics;
};

export function createEgressMetrics(options?: NodeRegistryOptions): EgressMetrics {
  const base = createForwardingNodeMetrics('egress', egressFamilies, options);
  const m = {
    ...base,
    viewerQuality: createViewerQualityMetrics(base.node.registry),
    keyframeRequests: createKeyframeRequestMetrics('egress', base.node.registry),
  };
  recordPortPool(m, 0, 0);
  return m;
}

/**
 * Sets allocated, available and utilisation together. An empty pool reads 0 %,
 * never NaN (the seed divided by zero).
 */
export function recordPortPool(m: EgressMetrics, allocated: number, available: number): void {
  for (const [what, n] of [
    ['allocated', allocated],
    ['available', available],
  ] as const) {
    if (!Number.isInteger(n) || n < 0) {
      throw new RangeError(`port pool ${what} must be an integer >= 0, got ${n}`);
    }
  }
  const size = allocated + available;
  m.portPoolAllocated.set(allocated);
  m.portPoolAvailable.set(available);
  m.portPoolUtilizationPercent.set(size === 0 ? 0 : (allocated / size) * 100);
}

/** Removes every series labelled with an ended session, so cardinality follows live sessions. */
export function forgetEgressSession(m: EgressMetrics, s: SessionStreams): void {
  m.activeViewers.remove({ session_id: s.sessionId });
  for (const [streamType, ssrc] of streamsOf(s)) {
    m.rtpPacketsReceived.remove({ stream_type: streamType, ssrc });
    m.rtpBytesReceived.remove({ stream_type: streamType, ssrc });
    m.streamQuality.forget(streamType, ssrc);
  }
}
