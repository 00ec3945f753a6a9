import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CHROMIUM, type WatchResult } from '../test/browser.ts';
import { createNetns, type Netns, netnsUnavailable, routesOut, runInNetns } from '../test/netns.ts';

/**
 * A real browser watches the tree: Debian's Chromium, headless, in a network
 * namespace this test creates (veth pair inside, 198.18.0.0/15, no route out),
 * opens the player page on the entry point of a tree running in the same
 * namespace, follows the 307 to the egress node, and decodes VP8 and Opus.
 */

const WATCH = fileURLToPath(new URL('../test/browser-watch.ts', import.meta.url));
const why = netnsUnavailable();
if (why) console.warn(`browser test skipped: ${why}`);

describe.skipIf(why !== null)('the player page in headless Chromium, in a network namespace', () => {
  let ns: Netns | undefined;

  beforeAll(() => {
    if (!existsSync(CHROMIUM))
      throw new Error(`${CHROMIUM} is missing: run scripts/setup.sh (Debian package chromium)`);
    ns = createNetns(`canopy-b${process.pid}`);
  });
  afterAll(() => ns?.remove());

  it('has no route out of the namespace', () => {
    expect(routesOut(ns!)).toEqual([]);
  });

  it('follows the redirect and decodes video and audio', async () => {
    const r = await runInNetns<WatchResult>(ns!, WATCH, { CANOPY_WATCH_TIMEOUT_MS: '90000' }, 200_000);
    expect(r.player.error, JSON.stringify(r.player)).toBeNull();
    // The offer went to the entry point (the injection) and the answer came from the egress node.
    expect(r.player.egress).toBe(r.egressOrigin);
    expect(r.player.resource).toMatch(new RegExp(`^${r.egressOrigin}/whep/browser-s1/`));
    expect(r.player.stats!.framesDecoded).toBeGreaterThan(0);
    expect(r.player.stats!.keyFramesDecoded).toBeGreaterThan(0);
    expect(r.player.stats!.audioPackets).toBeGreaterThan(0);
    expect(r.viewersWhilePlaying).toBe(1);
    // The page's DELETE on unload (or the closed connection) ended the viewer.
    expect(r.viewersAfterClose).toBe(0);
  }, 240_000);
});
