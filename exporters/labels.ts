/**
 * Labels that service discovery sets once on every target. An exporter never
 * exposes them itself: doing both yields `exported_*` duplicates.
 */
export const TARGET_LABELS = ['tree_id', 'node_id', 'node_type'] as const;

export const NODE_TYPES = ['injection', 'relay', 'egress'] as const;
export type NodeType = (typeof NODE_TYPES)[number];

export const STREAM_TYPES = ['audio', 'video'] as const;
export type StreamType = (typeof STREAM_TYPES)[number];

/** The two SSRCs of one broadcast session, as the exporters label them. */
export interface SessionStreams {
  sessionId: string;
  audioSsrc: number;
  videoSsrc: number;
}

export function streamsOf(s: SessionStreams): Array<[StreamType, string]> {
  return [
    ['audio', String(s.audioSsrc)],
    ['video', String(s.videoSsrc)],
  ];
}
