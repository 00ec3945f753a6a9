/** What the browser test and the script it runs inside its namespace (`browser-watch.ts`) share. */

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
