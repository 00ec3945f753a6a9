import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PUBLISHER_STATE } from '../exporters/index.ts';
import { CHROMIUM, type PublishResult } from '../test/browser.ts';
import { createNetns, type Netns, netnsUnavailable, routesOut, runInNetns } from '../test/netns.ts';

/**
 * Browser to browser through the tree: in a network namespace this test
 * creates (veth pair inside, 198.18.0.0/15, no route out), headless Chromium
 * with its fake camera and microphone publishes VP8 + Opus through WHIP into
 * the injection, and a second page of it plays the session from the entry
 * point (WHEP, redirected to the egress node) once the publisher has sent
 * for a while, and decodes video and audio: its keyframe request reached
 * the browser. The publisher's DELETE ends the session.
 */

const PUBLISH = fileURLToPath(new URL('../test/browser-publish.ts', import.meta.url));
const why = netnsUnavailable();
if (why) console.warn(`browser publish test skipped: ${why}`);

describe.skipIf(why !== null)(
  'a Chromium publisher (WHIP) watched by a Chromium player, in a network namespace',
  () => {
    let ns: Netns | undefined;

    beforeAll(() => {
      if (!existsSync(CHROMIUM))
        throw new Error(`${CHROMIUM} is missing: run scripts/setup.sh (Debian package chromium)`);
      ns = createNetns(`canopy-p${process.pid}`);
    });
    afterAll(() => ns?.remove());

    it('publishes, is decoded by the viewer, and ends the session on DELETE', async () => {
      expect(routesOut(ns!)).toEqual([]);
      const r = await runInNetns<PublishResult>(ns!, PUBLISH, { CANOPY_PUBLISH_TIMEOUT_MS: '40000' }, 90_000);
      const session = 'browser-p1';
      expect(r.whip.status).toBe(201);
      expect(r.whip.location).toMatch(new RegExp(`/whip/${session}/p-[0-9a-f]+$`));
      // The browser sent VP8 (the answer kept nothing else) and Opus.
      expect(r.sent.videoCodec).toBe('video/VP8');
      expect(r.sent.framesEncoded).toBeGreaterThan(0);
      expect(r.sent.audioPackets).toBeGreaterThan(0);
      // The player joined late: its keyframe request went up the tree to the browser, which sent a keyframe.
      expect(r.sentAtJoin.framesEncoded).toBeGreaterThan(0);
      expect(r.injection.keyframeRequestsForwarded).toBeGreaterThan(0);
      expect(r.sent.pliCount).toBeGreaterThan(r.sentAtJoin.pliCount);
      expect(r.sent.keyFramesEncoded).toBeGreaterThan(r.sentAtJoin.keyFramesEncoded);
      // The injection took that publisher's media and sent it down the tree.
      expect(r.injection.ingest).toEqual({ kind: 'whip' });
      expect(r.injection.publisher).toBe(r.whip.location!.split('/').pop());
      expect(r.injection.state).toBe(PUBLISHER_STATE.connected);
      expect(r.injection.received.video).toBeGreaterThan(0);
      expect(r.injection.received.audio).toBeGreaterThan(0);
      expect(r.injection.forwarded.video).toBeGreaterThan(0);
      expect(r.injection.forwarded.audio).toBeGreaterThan(0);
      // The player's offer went to the entry point, its answer came from the egress node, and it decoded both.
      expect(r.player.error, JSON.stringify(r.player)).toBeNull();
      expect(r.player.egress).toBe(r.egressOrigin);
      expect(r.player.stats!.framesDecoded).toBeGreaterThan(0);
      expect(r.player.stats!.keyFramesDecoded).toBeGreaterThan(0);
      expect(r.player.stats!.audioPackets).toBeGreaterThan(0);
      expect(r.viewersWhilePlaying).toBe(1);
      expect(r.playerPacketsBefore.audio).toBeGreaterThan(0);
      expect(r.playerPacketsBefore.video).toBeGreaterThan(0);
      // DELETE on the publisher's resource ended the session everywhere; the player gets nothing more.
      expect(r.deleteStatus).toBe(200);
      expect(r.sessionInRedisAfter).toBe(false);
      expect(r.sessionOnInjectionAfter).toBe(false);
      expect(r.viewersAfterDelete ?? 0).toBe(0);
      expect(r.playerPacketsAfter).toEqual({ audio: 0, video: 0 });
    }, 120_000);
  },
);
