import { Counter, Histogram, type Registry } from 'prom-client';
import type { StreamType } from './labels.ts';

/**
 * What an egress node's WHEP viewers report about the streams it sends them
 * (RTCP receiver reports, RFC 3550 6.4.2; NACKs, RFC 4585): one observation a
 * report, by stream type only, so the series do not grow with viewers or
 * sessions. A histogram per figure: quantiles and averages over the tree in
 * PromQL, and how many viewers suffer more than a bound.
 */
export const viewerQualityFamilies = {
  viewerFractionLost: {
    name: 'media_tree_egress_viewer_fraction_lost_ratio',
    help: 'Fraction of RTP packets lost since the previous receiver report, as each WHEP viewer reports it (0..1)',
    buckets: [0, 0.001, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1],
  },
  viewerJitter: {
    name: 'media_tree_egress_viewer_jitter_seconds',
    help: 'Interarrival jitter each WHEP viewer reports (RTCP receiver reports), in seconds',
    buckets: [0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5],
  },
  viewerRtt: {
    name: 'media_tree_egress_viewer_rtt_seconds',
    help: 'Round trip to each WHEP viewer, from its receiver reports against our sender reports, in seconds',
    buckets: [0.0005, 0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1],
  },
  viewerNackedPackets: {
    name: 'media_tree_egress_viewer_nacked_packets_total',
    help: 'RTP packets WHEP viewers asked for again with generic NACKs (resent from the last ones sent)',
  },
} as const;

export interface ViewerQualityMetrics {
  fractionLost: Histogram<'stream_type'>;
  jitter: Histogram<'stream_type'>;
  rtt: Histogram<'stream_type'>;
  nackedPackets: Counter<'stream_type'>;
}

export function createViewerQualityMetrics(registry: Registry): ViewerQualityMetrics {
  const h = (spec: { name: string; help: string; buckets: readonly number[] }) =>
    new Histogram({
      name: spec.name,
      help: spec.help,
      labelNames: ['stream_type'],
      buckets: [...spec.buckets],
      registers: [registry],
    });
  const f = viewerQualityFamilies;
  return {
    fractionLost: h(f.viewerFractionLost),
    jitter: h(f.viewerJitter),
    rtt: h(f.viewerRtt),
    nackedPackets: new Counter({
      name: f.viewerNackedPackets.name,
      help: f.viewerNackedPackets.help,
      labelNames: ['stream_type'],
      registers: [registry],
    }),
  };
}

/** One receiver report block about one of our streams. */
export function recordViewerReport(
  m: ViewerQualityMetrics,
  r: { stream: StreamType; fractionLost: number; jitterS: number; rttS: number | null },
): void {
  const labels = { stream_type: r.stream };
  if (Number.isFinite(r.fractionLost) && r.fractionLost >= 0 && r.fractionLost <= 1)
    m.fractionLost.observe(labels, r.fractionLost);
  if (Number.isFinite(r.jitterS) && r.jitterS >= 0) m.jitter.observe(labels, r.jitterS);
  if (r.rttS !== null && Number.isFinite(r.rttS) && r.rttS >= 0) m.rtt.observe(labels, r.rttS);
}
