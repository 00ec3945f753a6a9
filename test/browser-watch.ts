/**
 * Run inside a network namespace by nodes/browser.test.ts (`ip netns exec <ns>
 * node --import tsx test/browser-watch.ts`): Redis, an injection with the
 * encoded source, a relay and an egress node, all on the namespace's
 * 127.0.0.1; headless Debian Chromium (playwright-core, never a downloaded
 * browser) opens the session's player page on the entry point, which
 * redirects the offer to the egress node. Prints one line `RESULT <json>`
 * with the player's last stats, then stops everything it started.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';
import { startRedis } from '../servers/redis.ts';
import { CHROMIUM, CHROMIUM_ARGS, type WatchResult } from './browser.ts';
import { json, startNode, type RunningNode } from './nodes.ts';

const SESSION = 'browser-s1';
const DEADLINE_MS = Number(process.env.CANOPY_WATCH_TIMEOUT_MS ?? 90_000);

async function activeViewers(egress: RunningNode): Promise<number | null> {
  const text = await (await fetch(`${egress.url}/metrics`, { signal: AbortSignal.timeout(3_000) })).text();
  const m = new RegExp(`^media_tree_egress_active_viewers\\{[^}]*session_id="${SESSION}"[^}]*\\} (\\d+)`, 'm').exec(
    text,
  );
  return m ? Number(m[1]) : null;
}

async function main(): Promise<void> {
  const nodes: RunningNode[] = [];
  const redis = await startRedis();
  const profile = mkdtempSync(join(tmpdir(), 'canopy-chromium-'));
  let browser: Awaited<ReturnType<typeof chromium.launchPersistentContext>> | undefined;
  try {
    const start = async (o: Parameters<typeof startNode>[0]) => {
      const n = await startNode({ readyTimeoutMs: 60_000, ...o });
      nodes.push(n);
      return n;
    };
    const inj = await start({
      type: 'injection',
      id: 'injection-1',
      redisUrl: redis.url,
      extra: ['--source', 'encoded'],
    });
    await start({ type: 'relay', id: 'relay-1', redisUrl: redis.url, extra: ['--parent-slot', 'injection-1-s0'] });
    const base = 24_000 + Math.floor(Math.random() * 50) * 100;
    const egress = await start({
      type: 'egress',
      id: 'egress-1',
      redisUrl: redis.url,
      extra: ['--parent-slot', 'relay-1-s0', '--port-range', `${base}-${base + 49}`],
    });
    const s = await json(`${inj.url}/sessions`, {
      method: 'POST',
      body: JSON.stringify({ sessionId: SESSION, audioSsrc: 7001, videoSsrc: 7002 }),
    });
    if (s.status !== 201) throw new Error(`cannot start the session: ${s.status} ${JSON.stringify(s.body)}`);

    browser = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM,
      headless: true,
      args: CHROMIUM_ARGS,
    });
    const page = await browser.newPage();
    page.on('console', (m) => process.stderr.write(`[chromium] ${m.type()}: ${m.text()}\n`));
    await page.goto(`${inj.url}/watch/${SESSION}`);
    const readPlayer = () =>
      page.evaluate(() => (window as unknown as { canopyPlayer: WatchResult['player'] }).canopyPlayer);
    let player = await readPlayer();
    const until = Date.now() + DEADLINE_MS;
    const decoded = (p: WatchResult['player']) =>
      !!p.stats && p.stats.framesDecoded > 0 && p.stats.keyFramesDecoded > 0 && p.stats.audioPackets > 0;
    // The egress node may not serve the session yet: the page is reloaded after a refusal.
    let reloaded = Date.now();
    while (Date.now() < until && !decoded(player)) {
      await new Promise((r) => setTimeout(r, 500));
      player = await readPlayer();
      if (player.state === 'failed' && Date.now() < until - 5_000 && Date.now() - reloaded > 2_000) {
        reloaded = Date.now();
        process.stderr.write(`player failed (${player.error}); reloading\n`);
        await page.reload();
      }
    }
    const viewersWhilePlaying = await activeViewers(egress);
    // Closing the page runs its pagehide handler: DELETE on the viewer's resource.
    await page.close({ runBeforeUnload: true });
    let viewersAfterClose = await activeViewers(egress);
    for (let i = 0; i < 40 && viewersAfterClose !== 0; i++) {
      await new Promise((r) => setTimeout(r, 250));
      viewersAfterClose = await activeViewers(egress);
    }
    const result: WatchResult = {
      player,
      egressOrigin: new URL(egress.url).origin,
      viewersWhilePlaying,
      viewersAfterClose,
      decoded: decoded(player),
    };
    process.stdout.write(`RESULT ${JSON.stringify(result)}\n`);
  } finally {
    await browser?.close().catch(() => {});
    for (const n of nodes.reverse()) await n.child.stop();
    await redis.stop();
    rmSync(profile, { recursive: true, force: true });
  }
}

main().then(
  () => process.exit(0),
  (err) => {
    process.stderr.write(`browser-watch: ${(err as Error).stack ?? err}\n`);
    process.exit(1);
  },
);
