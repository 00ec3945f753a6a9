import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CHROMIUM, type WatchResult } from '../test/browser.ts';
import { createNetns, type Netns, netnsUnavailable, routesOf } from '../test/netns.ts';

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
    const routes = routesOf(ns!);
    expect(routes).not.toMatch(/^default/m);
    for (const line of routes
      .split('\n')
      .filter((l) => /^\S/.test(l) && !/^(local|broadcast|multicast|fe80|ff00|::1)/.test(l)))
      expect(line).toMatch(/^(198\.18\.|127\.)/);
  });

  it('follows the redirect and decodes video and audio', async () => {
    const out = await new Promise<string>((resolve, reject) => {
      const [cmd, ...args] = [...ns!.prefix, process.execPath, '--import', 'tsx', WATCH];
      const p = spawn(cmd!, args, {
        stdio: ['ignore', 'pipe', 'pipe'],
        env: { ...process.env, CANOPY_WATCH_TIMEOUT_MS: '90000' },
      });
      let stdout = '';
      let stderr = '';
      p.stdout.on('data', (d) => (stdout += d));
      p.stderr.on('data', (d) => (stderr = (stderr + d).slice(-20_000)));
      const t = setTimeout(() => p.kill('SIGTERM'), 200_000);
      p.on('exit', (code) => {
        clearTimeout(t);
        if (code === 0) resolve(stdout);
        else reject(new Error(`browser-watch exited with ${code}\n${stderr.split('\n').slice(-40).join('\n')}`));
      });
    });
    const line = out.split('\n').find((l) => l.startsWith('RESULT '));
    expect(line, out).toBeDefined();
    const r = JSON.parse(line!.slice('RESULT '.length)) as WatchResult;
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
