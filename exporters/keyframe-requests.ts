import type { Registry } from 'prom-client';
import { createFamilies, type Families } from './families.ts';

/**
 * Keyframe requests (RTCP PLI and FIR from WHEP viewers) on their way up the
 * tree, at the egress node that heard them and at the injection node that
 * asks the session's source. Each node lets at most one request per session
 * through per interval: one asked within the interval after another is
 * rate-limited (folded into a single request sent when the interval ends).
 * So received = forwarded-at-once + rate-limited, and forwarded counts what
 * went on, at once or at an interval's end.
 */
export function keyframeRequestFamilies(node: 'injection' | 'egress') {
  const from = node === 'egress' ? 'WHEP viewers' : 'egress nodes (keyframe-request events)';
  const to = node === 'egress' ? "to the session's injection node" : "to the session's source (encoder or publisher)";
  return {
    keyframeRequestsReceived: {
      name: `media_tree_${node}_keyframe_requests_received_total`,
      help: `Keyframe requests received from ${from}, by reason (pli, fir)`,
      type: 'counter',
      labelNames: ['reason'],
    },
    keyframeRequestsForwarded: {
      name: `media_tree_${node}_keyframe_requests_forwarded_total`,
      help: `Keyframe requests passed on ${to}`,
      type: 'counter',
      labelNames: [],
    },
    keyframeRequestsRateLimited: {
      name: `media_tree_${node}_keyframe_requests_rate_limited_total`,
      help: 'Keyframe requests that came within the per-session interval after another and were folded into one',
      type: 'counter',
      labelNames: [],
    },
  } as const;
}

export type KeyframeRequestMetrics = Families<ReturnType<typeof keyframeRequestFamilies>>;

export function createKeyframeRequestMetrics(node: 'injection' | 'egress', registry: Registry): KeyframeRequestMetrics {
  const m = createFamilies(keyframeRequestFamilies(node), registry) as KeyframeRequestMetrics;
  // Zero from the start: rate() has a first sample before the first request.
  for (const reason of ['pli', 'fir']) m.keyframeRequestsReceived.inc({ reason }, 0);
  m.keyframeRequestsForwarded.inc(0);
  m.keyframeRequestsRateLimited.inc(0);
  return m;
}
