/**
 * What the scripts the browser tests and `canopy bench first-frame` run
 * inside their namespace share (browser-watch.ts, browser-publish.ts,
 * bench/first-frame-run.ts): a tree on the namespace's
 * 127.0.0.1 (Redis, an injection, a relay, an egress node), headless Debian
 * Chromium through playwright-core (never a downloaded browser), and the
 * player page's figures.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type BrowserContext, chromium, type Page } from 'playwright-core';
import { type RunningRedis, startRedis } from '../servers/redis.ts';
import { CHROMIUM, CHROMIUM_ARGS, type WatchResult } from './browser.ts';
import { egressFamilies } from '../exporters/index.ts';
import { sample } from './exposition-parser.ts';
import { metricsOf, type RunningNode, startNode } from './nodes.ts';

export interface Stack {
  redis: RunningRedis;
  injection: RunningNode;
  egress: RunningNode;
  /** Stops the nodes, then Redis. */
  stop(): Promise<void>;
}

/** Redis and an injection → relay → egress chain; the extras are the injection's and the egress node's own flags. */
export async function startStack(injectionExtra: string[], egressExtra: string[] = []): Promise<Stack> {
  const nodes: RunningNode[] = [];
  const redis = await startRedis();
  const stop = async () => {
    for (const n of nodes.reverse()) await n.child.stop();
    await redis.stop();
  };
  try {
    const start = async (o: Parameters<typeof startNode>[0]) => {
      const n = await startNode({ readyTimeoutMs: 60_000, ...o });
      nodes.push(n);
      return n;
    };
    const injection = await start({ type: 'injection', id: 'injection-1', redisUrl: redis.url, extra: injectionExtra });
    await start({ type: 'relay', id: 'relay-1', redisUrl: redis.url, extra: ['--parent-slot', 'injection-1-s0'] });
    const base = 24_000 + Math.floor(Math.random() * 50) * 100;
    const egress = await start({
      type: 'egress',
      id: 'egress-1',
      redisUrl: redis.url,
      extra: ['--parent-slot', 'relay-1-s0', '--port-range', `${base}-${base + 49}`, ...egressExtra],
    });
    return { redis, injection, egress, stop };
  } catch (err) {
    await stop();
    throw err;
  }
}

export interface Browser {
  context: BrowserContext;
  /** Closes the browser and removes its profile. */
  close(): Promise<void>;
}

/** Headless Chromium with the shared flags plus `extraArgs`; its console goes to stderr. */
export async function launchChromium(extraArgs: string[] = []): Promise<Browser> {
  const profile = mkdtempSync(join(tmpdir(), 'canopy-chromium-'));
  try {
    const context = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM,
      headless: true,
      args: [...CHROMIUM_ARGS, ...extraArgs],
    });
    context.on('page', (p) => p.on('console', (m) => process.stderr.write(`[chromium] ${m.type()}: ${m.text()}\n`)));
    return {
      context,
      close: async () => {
        await context.close().catch(() => {});
        rmSync(profile, { recursive: true, force: true });
      },
    };
  } catch (err) {
    rmSync(profile, { recursive: true, force: true });
    throw err;
  }
}

/** The egress node's `media_tree_egress_active_viewers` for a session (null when it has no series). */
export async function activeViewers(egress: RunningNode, session: string): Promise<number | null> {
  const text = await metricsOf(egress);
  return sample(text, egressFamilies.activeViewers.name, { session_id: session }) ?? null;
}

export type Player = WatchResult['player'];

export const readPlayer = (page: Page): Promise<Player> =>
  page.evaluate(() => (window as unknown as { canopyPlayer: Player }).canopyPlayer);

export const decodedVideoAndAudio = (p: Player): boolean =>
  !!p.stats && p.stats.framesDecoded > 0 && p.stats.keyFramesDecoded > 0 && p.stats.audioPackets > 0;

/**
 * Polls the player page (already opened) until `done` or `until` (epoch ms),
 * reloading it after a refusal: the egress node may not serve the session yet.
 */
export async function playUntil(page: Page, done: (p: Player) => boolean, until: number): Promise<Player> {
  let player = await readPlayer(page);
  let reloaded = Date.now();
  while (Date.now() < until && !done(player)) {
    await new Promise((r) => setTimeout(r, 500));
    player = await readPlayer(page);
    if (player.state === 'failed' && Date.now() < until - 5_000 && Date.now() - reloaded > 2_000) {
      reloaded = Date.now();
      process.stderr.write(`player failed (${player.error}); reloading\n`);
      await page.reload();
    }
  }
  return player;
}

/** Closes the player page (its pagehide DELETEs the viewer) and waits up to 10 s for the egress node to count 0. */
export async function closePlayer(page: Page, egress: RunningNode, session: string): Promise<number | null> {
  await page.close({ runBeforeUnload: true });
  let viewers = await activeViewers(egress, session);
  for (let i = 0; i < 40 && viewers !== 0; i++) {
    await new Promise((r) => setTimeout(r, 250));
    viewers = await activeViewers(egress, session);
  }
  return viewers;
}
