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
  // What a session's publisher (WHIP or plain RTP ingest) sends in; none for the built-in source.
  publisherPacketsReceived: {
    name: 'media_tree_injection_publisher_rtp_packets_received_total',
    help: "RTP packets received from a session's publisher (WHIP or RTP ingest)",
    type: 'counter',
    labelNames: ['stream_type', 'session_id'],
  },
  publisherBytesReceived: {
    name: 'media_tree_injection_publisher_rtp_bytes_received_total',
    help: "RTP bytes received from a session's publisher; its bitrate is rate() * 8",
    type: 'counter',
    labelNames: ['stream_type', 'session_id'],
  },
  publisherPacketsLost: {
    name: 'media_tree_injection_publisher_rtp_packets_lost_total',
    help: "RTP packets from a session's publisher never received (RFC 3550 A.3), summed over its publishers",
    type: 'counter',
    labelNames: ['stream_type', 'session_id'],
  },
  publisherJitterSeconds: {
    name: 'media_tree_injection_publisher_rtp_jitter_seconds',
    help: "Interarrival jitter of a session's publisher's RTP (RFC 3550 A.8), in seconds of the payload clock",
    type: 'gauge',
    labelNames: ['stream_type', 'session_id'],
  },
  publisherPacketsDropped: {
    name: 'media_tree_injection_publisher_rtp_packets_dropped_total',
    help: "Datagrams at a session's ingest that are not its media (another SSRC, not RTP), dropped",
    type: 'counter',
    labelNames: ['stream_type', 'session_id'],
  },
  publisherState: {
    name: 'media_tree_injection_publisher_state',
    help: "A WHIP session's publisher connection (0=none, 1=connecting, 2=connected)",
    type: 'gauge',
    labelNames: ['session_id'],
  },
  publisherLastPacket: {
    name: 'media_tree_injection_publisher_last_packet_timestamp_seconds',
    help: "Unix time of the last RTP packet from a session's publisher (the session's start before the first)",
    type: 'gauge',
    labelNames: ['session_id'],
  },
} as const;

/** `media_tree_injection_publisher_state` values. */
export const PUBLISHER_STATE = { none: 0, connecting: 1, connected: 2 } as const;

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
    const byStream = { stream_type: streamType, session_id: s.sessionId };
    for (const f of [
      m.publisherPacketsReceived,
      m.publisherBytesReceived,
      m.publisherPacketsLost,
      m.publisherJitterSeconds,
      m.publisherPacketsDropped,
    ])
      f.remove(byStream);
  }
  m.publisherState.remove({ session_id: s.sessionId });
  m.publisherLastPacket.remove({ session_id: s.sessionId });
}
