import { createFamilies, type Families } from './families.ts';
import { createKeyframeRequestMetrics, type KeyframeRequestMetrics } from './keyframe-requests.ts';
import { streamsOf, type SessionStreams } from './labels.ts';
import { createNodeRegistry, type NodeRegistry, type NodeRegistryOptions } from './registry.ts';

/** The seed's injection families; `tree_id` comes from the target, not the exposition. */
export const injectionFamilies = {
  activeSessions: {
    name: 'media_tree_injection_active_sessions',
    help: 'Number of active broadcast sessions',
    type: 'gauge',
    labelNames: ['room_id'],
  },
  rtpPacketsSent: {
    name: 'media_tree_injection_rtp_packets_sent_total',
    help: 'Total RTP packets forwarded to children',
    type: 'counter',
    labelNames: ['stream_type', 'session_id', 'ssrc'],
  },
  rtpBytesSent: {
    name: 'media_tree_injection_rtp_bytes_sent_total',
    help: 'Total RTP bytes forwarded',
    type: 'counter',
    labelNames: ['stream_type', 'session_id'],
  },
  childrenCount: {
    name: 'media_tree_injection_children_count',
    help: 'Number of child nodes',
    type: 'gauge',
    labelNames: [],
  },
} as const;

export type InjectionMetrics = Families<typeof injectionFamilies> & {
  node: NodeRegistry;
  keyframeRequests: KeyframeRequestMetrics;
};

export function createInjectionMetrics(options?: NodeRegistryOptions): InjectionMetrics {
  const node = createNodeRegistry('injection', options);
  return {
    node,
    ...createFamilies(injectionFamilies, node.registry),
    keyframeRequests: createKeyframeRequestMetrics('injection', node.registry),
  };
}

/** Removes every series labelled with an ended session, so cardinality follows live sessions. */
export function forgetInjectionSession(m: InjectionMetrics, s: SessionStreams): void {
  for (const [streamType, ssrc] of streamsOf(s)) {
    m.rtpPacketsSent.remove({ stream_type: streamType, session_id: s.sessionId, ssrc });
    m.rtpBytesSent.remove({ stream_type: streamType, session_id: s.sessionId });
  }
}
