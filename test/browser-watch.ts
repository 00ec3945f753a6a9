/**
 * Run inside a network namespace by nodes/browser.test.ts (`ip netns exec <ns>
 * node --import tsx test/browser-watch.ts`): a tree with the injection's
 * encoded source on the namespace's 127.0.0.1 (browser-stack.ts); headless
 * Chromium opens the session's player page on the entry point, which
 * redirects the offer to the egress node. Prints one line `RESULT <json>`
 * with the player's last stats, then stops everything it started.
 */
import type { WatchResult } from './browser.ts';
import {
  activeViewers,
  type Browser,
  closePlayer,
  decodedVideoAndAudio,
  launchChromium,
  playUntil,
  type Stack,
  startStack,
} from './browser-stack.ts';
import { json } from './nodes.ts';

const SESSION = 'browser-s1';
const DEADLINE_MS = Number(process.env.CANOPY_WATCH_TIMEOUT_MS ?? 90_000);

async function main(): Promise<void> {
  let stack: Stack | undefined;
  let browser: Browser | undefined;
  try {
    stack = await startStack(['--source', 'encoded']);
    const { injection: inj, egress } = stack;
    const s = await json(`${inj.url}/sessions`, {
      method: 'POST',
      body: JSON.stringify({ sessionId: SESSION, audioSsrc: 7001, videoSsrc: 7002 }),
    });
    if (s.status !== 201) throw new Error(`cannot start the session: ${s.status} ${JSON.stringify(s.body)}`);

    browser = await launchChromium();
    const page = await browser.context.newPage();
    await page.goto(`${inj.url}/watch/${SESSION}`);
    const player = await playUntil(page, decodedVideoAndAudio, Date.now() + DEADLINE_MS);
    const viewersWhilePlaying = await activeViewers(egress, SESSION);
    const viewersAfterClose = await closePlayer(page, egress, SESSION);
    const result: WatchResult = {
      player,
      egressOrigin: new URL(egress.url).origin,
      viewersWhilePlaying,
      viewersAfterClose,
      decoded: decodedVideoAndAudio(player),
    };
    process.stdout.write(`RESULT ${JSON.stringify(result)}\n`);
  } finally {
    await browser?.close();
    await stack?.stop();
  }
}

main().then(
  () => process.exit(0),
  (err) => {
    process.stderr.write(`browser-watch: ${(err as Error).stack ?? err}\n`);
    process.exit(1);
  },
);
