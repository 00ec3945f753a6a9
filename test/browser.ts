/** What the browser tests and the scripts they run inside their namespace (`browser-watch.ts`, `browser-publish.ts`) share. */

export const CHROMIUM = '/usr/bin/chromium';
/** The flags, plus loopback candidates (every server here is on 127.0.0.1). */
export const CHROMIUM_ARGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--allow-loopback-in-peer-connection',
];

export interface WatchResult {
  player: {
    state: string;
    egress: string | null;
    resource: string | null;
    error: string | null;
    stats: {
      framesDecoded: number;
      keyFramesDecoded: number;
      fps: number;
      videoPackets: number;
      videoLost: number;
      audioPackets: number;
      audioLost: number;
    } | null;
  };
  /** The egress node's origin, as the test should see it in `player.egress`. */
  egressOrigin: string;
  /** Viewers the egress node counted while the page played, and after it was closed. */
  viewersWhilePlaying: number | null;
  viewersAfterClose: number | null;
  decoded: boolean;
}

/** Flags a browser publisher needs here besides the above: Chromium's fake camera and microphone, no prompt. */
export const FAKE_MEDIA_ARGS = ['--use-fake-device-for-media-stream', '--use-fake-ui-for-media-stream'];

/** What `browser-publish.ts` reports: a Chromium publisher (WHIP) watched by a Chromium player page (WHEP). */
export interface PublishResult {
  /** The WHIP POST's status and the publisher's resource (absolute). */
  whip: { status: number; location: string | null; error: string | null };
  /** The publisher page's own outbound figures when the player joined, and when it had decoded. */
  sentAtJoin: PublisherStats;
  sent: PublisherStats;
  player: WatchResult['player'];
  egressOrigin: string;
  /** The injection's view of the session while playing: GET /sessions and its publisher metrics. */
  injection: {
    /** Keyframe requests the injection passed on to the session's source (the browser). */
    keyframeRequestsForwarded: number;
    publisher: string | null;
    ingest: unknown;
    forwarded: { audio: number; video: number };
    received: { audio: number; video: number };
    state: number | null;
  };
  viewersWhilePlaying: number | null;
  /** The DELETE on the publisher's resource, and what followed within a few seconds. */
  deleteStatus: number;
  sessionInRedisAfter: boolean;
  sessionOnInjectionAfter: boolean;
  /** Packets the player received in a 2 s window while playing, and in one once the session had ended. */
  playerPacketsBefore: { audio: number; video: number };
  playerPacketsAfter: { audio: number; video: number };
  viewersAfterDelete: number | null;
}

/** A publisher page's outbound-rtp figures (its `getStats()`). */
export interface PublisherStats {
  state: string;
  videoPackets: number;
  framesEncoded: number;
  keyFramesEncoded: number;
  /** PLIs the browser received. */
  pliCount: number;
  audioPackets: number;
  videoCodec: string | null;
}
