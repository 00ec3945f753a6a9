/**
 * Run inside a network namespace by nodes/browser-publish.test.ts: a tree
 * on the namespace's 127.0.0.1 whose injection takes WHIP publishers
 * (browser-stack.ts), and one headless Chromium with the fake camera and
 * microphone. One page publishes through WHIP (browser-publisher.html, served
 * here from a loopback origin of its own); a second opens the session's player
 * page on the entry point and decodes what the first sends. Then the
 * publisher DELETEs its resource, which ends the session. Prints one line
 * `RESULT <json>` (PublishResult), then stops everything it started.
 *
 * The player joins once the publisher has sent for a while, so its first
 * keyframe is long gone: Chromium sends another only when asked (RTCP PLI),
 * and the player's request has to travel up the tree to the browser.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { injectionFamilies, keyframeRequestFamilies } from '../exporters/index.ts';
import { Topology } from '../topology/index.ts';
import { FAKE_MEDIA_ARGS, type PublishResult } from './browser.ts';
import {
  activeViewers,
  type Browser,
  decodedVideoAndAudio,
  launchChromium,
  playUntil,
  readPlayer,
  type Stack,
  startStack,
} from './browser-stack.ts';
import { sample } from './exposition-parser.ts';
import { json, metricsOf } from './nodes.ts';
import { openWhipPublisher, type PublisherPage, type WhipPublisher } from './whip-publisher-page.ts';

const SESSION = 'browser-p1';
const DEADLINE_MS = Number(process.env.CANOPY_PUBLISH_TIMEOUT_MS ?? 40_000);
/** How long the publisher sends before the player joins. */
const JOIN_AFTER_MS = 3_000;
declare const window: { canopyPublisher: PublisherPage; canopyPlayer: unknown };

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function waitFor<T>(what: string, read: () => Promise<T>, ok: (v: T) => boolean, until: number): Promise<T> {
  for (;;) {
    const v = await read();
    if (ok(v)) return v;
    if (Date.now() > until) throw new Error(`${what}: still ${JSON.stringify(v)}`);
    await sleep(250);
  }
}

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'canopy-publish-'));
  // The injection takes 16..1024 characters: random hex, whatever the pid.
  const token = randomBytes(24).toString('hex');
  writeFileSync(join(dir, 'token'), `${token}\n`);
  let stack: Stack | undefined;
  let browser: Browser | undefined;
  let redis: Redis | undefined;
  let publisher: WhipPublisher | undefined;
  const until = Date.now() + DEADLINE_MS;
  try {
    stack = await startStack(['--source', 'synthetic', '--whip-token-file', join(dir, 'token')]);
    const { injection: inj, egress } = stack;
    redis = new Redis(stack.redis.url);
    const topo = new Topology(redis, 'tree-1');
    browser = await launchChromium(FAKE_MEDIA_ARGS);

    publisher = await openWhipPublisher(browser, `${inj.url}/whip/${SESSION}`, token);
    const { page: pub, whip } = publisher;
    const receivedVideo = async () =>
      sample(await metricsOf(inj), injectionFamilies.publisherPacketsReceived.name, {
        session_id: SESSION,
        stream_type: 'video',
      }) ?? 0;
    await waitFor("the injection's first packets from the publisher", receivedVideo, (n) => n > 0, until);
    await sleep(JOIN_AFTER_MS);

    const sentAtJoin = await pub.evaluate(() => window.canopyPublisher.stats());
    const view = await browser.context.newPage();
    await view.goto(`${inj.url}/watch/${SESSION}`);
    const player = await playUntil(view, decodedVideoAndAudio, until);
    const sent = await pub.evaluate(() => window.canopyPublisher.stats());

    const sessions = (await json(`${inj.url}/sessions`)).body as {
      sessions: { id: string; publisher?: string; ingest?: unknown; sent: { audio: number; video: number } }[];
    };
    const mine = sessions.sessions.find((s) => s.id === SESSION);
    const m = await metricsOf(inj);
    const received = (t: string) =>
      sample(m, injectionFamilies.publisherPacketsReceived.name, { session_id: SESSION, stream_type: t }) ?? 0;
    const injection = {
      keyframeRequestsForwarded: sample(m, keyframeRequestFamilies('injection').keyframeRequestsForwarded.name) ?? 0,
      publisher: mine?.publisher ?? null,
      ingest: mine?.ingest ?? null,
      forwarded: mine?.sent ?? { audio: 0, video: 0 },
      received: { audio: received('audio'), video: received('video') },
      state: sample(m, injectionFamilies.publisherState.name, { session_id: SESSION }) ?? null,
    };
    const viewersWhilePlaying = await activeViewers(egress, SESSION);
    const packetsIn = async (ms: number) => {
      const before = (await readPlayer(view)).stats;
      await sleep(ms);
      const later = (await readPlayer(view)).stats;
      return {
        audio: (later?.audioPackets ?? 0) - (before?.audioPackets ?? 0),
        video: (later?.videoPackets ?? 0) - (before?.videoPackets ?? 0),
      };
    };
    // What the player receives in 2 s while the publisher sends (the player reads its stats every second).
    const playerPacketsBefore = await packetsIn(2_000);

    // The publisher's DELETE ends the session: gone from Redis and the injection, its viewer dropped.
    const deleteStatus = await pub.evaluate(() => window.canopyPublisher.stop());
    const gone = Date.now() + 10_000;
    const record = await waitFor(
      'the session record after DELETE',
      () => topo.getSession(SESSION),
      (s) => !s,
      gone,
    );
    const viewersAfterDelete = await waitFor(
      "the egress node's viewers after DELETE",
      () => activeViewers(egress, SESSION),
      (v) => !v,
      gone,
    );
    const after = (await json(`${inj.url}/sessions`)).body as { sessions: { id: string }[] };
    await sleep(1_500); // the player's stats are read every second
    const playerPacketsAfter = await packetsIn(2_000);

    const result: PublishResult = {
      whip,
      sentAtJoin,
      sent,
      player,
      egressOrigin: new URL(egress.url).origin,
      injection,
      viewersWhilePlaying,
      deleteStatus,
      sessionInRedisAfter: record !== null,
      sessionOnInjectionAfter: after.sessions.some((s) => s.id === SESSION),
      playerPacketsBefore,
      playerPacketsAfter,
      viewersAfterDelete,
    };
    process.stdout.write(`RESULT ${JSON.stringify(result)}\n`);
  } finally {
    await browser?.close();
    await publisher?.close();
    redis?.disconnect();
    await stack?.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

main().then(
  () => process.exit(0),
  (err) => {
    process.stderr.write(`browser-publish: ${(err as Error).stack ?? err}\n`);
    process.exit(1);
  },
);
