/**
 * `canopy bench first-frame`'s measuring half, run inside the network
 * namespace bench/first-frame.ts makes (Chromium gathers no candidate on
 * loopback alone). For each mode, a tree of its own (Redis, injection, relay,
 * egress, all on the namespace's 127.0.0.1) with a publisher that keyframes
 * only when asked, publishing before the joins start, and one headless
 * Chromium whose page joins the session `--joins` times through the entry
 * point, one viewer at a time: the time from the WHEP POST to the first
 * decoded video frame (getStats framesDecoded, polled every 10 ms), then DELETE.
 *
 * The publisher (`whip`, the default) is a page of that same Chromium sending
 * its fake camera and microphone through WHIP: Chromium's VP8 encoder
 * keyframes once at the start, then only on RTCP PLI. `encoder` is the
 * injection's built-in encoder with its periodic keyframe an hour apart.
 * Modes: `on`, viewers' keyframe requests travel up the tree (the defaults);
 * `periodic`, the egress keeps them (`--keyframe-request-interval off`) and
 * the injection asks the publisher every 5 s instead
 * (`--keyframe-request-every 5s`, a PLI to a WHIP publisher).
 *
 * Usage: first-frame-run.ts <joins> <mode,...> <publisher>; prints
 * `JOIN <mode> <ms>` per join and `FAILED <mode> <why>` for a join that never
 * decoded.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FAKE_MEDIA_ARGS } from '../test/browser.ts';
import { type Browser, launchChromium, type Stack, startStack } from '../test/browser-stack.ts';
import { json } from '../test/nodes.ts';
import { openWhipPublisher, type WhipPublisher } from '../test/whip-publisher-page.ts';
import {
  FIRST_FRAME_MODES,
  FIRST_FRAME_PUBLISHERS,
  type FirstFrameMode,
  type FirstFramePublisher,
  PERIODIC_MS,
} from './first-frame.ts';

const SESSION = 'first-frame';
/** A join that has not decoded by then counts as failed. */
const JOIN_TIMEOUT_MS = 15_000;

const MODE_FLAGS: Record<FirstFrameMode, { injection: string[]; egress: string[] }> = {
  on: { injection: [], egress: [] },
  periodic: {
    injection: ['--keyframe-request-every', `${PERIODIC_MS / 1000}s`],
    egress: ['--keyframe-request-interval', 'off'],
  },
};
/** The built-in encoder keyframing only when asked. */
const ENCODER_FLAGS = ['--keyframe-interval', '1h'];

/** In the page: one WHEP viewer through the entry point; ms from POST to the first decoded frame. */
async function joinOnce(a: { session: string; timeoutMs: number }): Promise<number> {
  const pc = new RTCPeerConnection();
  pc.addTransceiver('video', { direction: 'recvonly' });
  pc.addTransceiver('audio', { direction: 'recvonly' });
  // Played as a page would: a muted <video> the stream goes to.
  const video = document.createElement('video');
  video.muted = true;
  video.autoplay = true;
  document.documentElement.appendChild(video);
  const stream = new MediaStream();
  pc.addEventListener('track', (e) => {
    stream.addTrack(e.track);
    video.srcObject = stream;
  });
  let resource: string | null = null;
  try {
    await pc.setLocalDescription(await pc.createOffer());
    await new Promise<void>((resolve) => {
      if (pc.iceGatheringState === 'complete') return resolve();
      const t = setTimeout(resolve, 3_000);
      pc.addEventListener('icegatheringstatechange', () => {
        if (pc.iceGatheringState === 'complete') {
          clearTimeout(t);
          resolve();
        }
      });
    });
    const posted = performance.now();
    const r = await fetch(`/whep/${a.session}`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/sdp' },
      body: pc.localDescription!.sdp,
    });
    if (r.status !== 201) throw new Error(`WHEP ${r.status}: ${(await r.text()).slice(0, 200)}`);
    const location = r.headers.get('Location');
    if (location) resource = new URL(location, r.url).href;
    await pc.setRemoteDescription({ type: 'answer', sdp: await r.text() });
    for (;;) {
      let decoded = 0;
      (await pc.getStats()).forEach((s) => {
        if (s.type === 'inbound-rtp' && s.kind === 'video') decoded = s.framesDecoded ?? 0;
      });
      const now = performance.now();
      if (decoded > 0) return now - posted;
      if (now - posted > a.timeoutMs) throw new Error(`no decoded frame after ${a.timeoutMs} ms`);
      await new Promise((res) => setTimeout(res, 10));
    }
  } finally {
    pc.close();
    video.remove();
    if (resource) await fetch(resource, { method: 'DELETE' }).catch(() => {});
  }
}

/** Starts the session's publisher on the injection; the returned function stops what it started. */
async function startPublisher(
  kind: FirstFramePublisher,
  injectionUrl: string,
  browser: Browser,
  token: string,
): Promise<() => Promise<void>> {
  if (kind === 'whip') {
    const p: WhipPublisher = await openWhipPublisher(browser, `${injectionUrl}/whip/${SESSION}`, token);
    return p.close;
  }
  const s = await json(`${injectionUrl}/sessions`, {
    method: 'POST',
    body: JSON.stringify({ sessionId: SESSION, audioSsrc: 9001, videoSsrc: 9002 }),
  });
  if (s.status !== 201) throw new Error(`cannot start the session: ${s.status} ${JSON.stringify(s.body)}`);
  return async () => {};
}

async function measure(
  mode: FirstFrameMode,
  publisher: FirstFramePublisher,
  joins: number,
  out: (line: string) => void,
): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'canopy-first-frame-'));
  // The injection takes 16..1024 visible characters.
  const token = randomBytes(16).toString('hex');
  writeFileSync(join(dir, 'token'), `${token}\n`);
  let stack: Stack | undefined;
  let browser: Browser | undefined;
  let stopPublisher: (() => Promise<void>) | undefined;
  try {
    const flags = MODE_FLAGS[mode];
    const source =
      publisher === 'whip' ? ['--source', 'synthetic', '--whip-token-file', join(dir, 'token')] : ENCODER_FLAGS;
    stack = await startStack([...source, ...flags.injection], flags.egress);
    const { injection: inj, egress } = stack;
    // One browser: the publisher's page (fake camera and microphone) and the viewers' page.
    browser = await launchChromium(publisher === 'whip' ? FAKE_MEDIA_ARGS : []);
    stopPublisher = await startPublisher(publisher, inj.url, browser, token);
    // Until the egress serves the session, a join would be refused, not slow.
    for (const until = Date.now() + 30_000; ; ) {
      const m = (await json(`${egress.url}/sessions`)).body.sessions?.[0];
      if ((m?.received?.video?.packets ?? 0) > 30) break;
      if (Date.now() > until) throw new Error('the egress node never received the session');
      await new Promise((res) => setTimeout(res, 200));
    }
    const page = await browser.context.newPage();
    // tsx names functions with a helper the page does not have; joinOnce runs there.
    await page.addInitScript('window.__name = (f) => f;');
    // Same origin as the entry point: the page's POST goes there and follows its 307.
    await page.goto(`${inj.url}/healthz`);
    // A first join warms the browser up (codec, ICE stack); it is not counted.
    await page.evaluate(joinOnce, { session: SESSION, timeoutMs: JOIN_TIMEOUT_MS }).catch(() => {});
    for (let i = 0; i < joins; i++) {
      // A join ends at a keyframe: a short pause would start the next one at the same point of the
      // periodic cycle every time. A pause as long as a random part of the cycle lands joins anywhere in it.
      await new Promise((res) => setTimeout(res, 200 + Math.random() * PERIODIC_MS));
      try {
        const ms = await page.evaluate(joinOnce, { session: SESSION, timeoutMs: JOIN_TIMEOUT_MS });
        out(`JOIN ${mode} ${ms.toFixed(1)}`);
      } catch (err) {
        out(`FAILED ${mode} ${(err as Error).message.split('\n')[0]}`);
      }
    }
  } finally {
    await browser?.close();
    await stopPublisher?.();
    await stack?.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

async function main(): Promise<void> {
  const joins = Number(process.argv[2]);
  const modes = (process.argv[3] ?? FIRST_FRAME_MODES.join(',')).split(',') as FirstFrameMode[];
  const publisher = (process.argv[4] ?? 'whip') as FirstFramePublisher;
  if (
    !Number.isInteger(joins) ||
    joins < 1 ||
    modes.some((m) => !FIRST_FRAME_MODES.includes(m)) ||
    !FIRST_FRAME_PUBLISHERS.includes(publisher)
  )
    throw new Error('usage: first-frame-run.ts <joins> [on,periodic] [whip|encoder]');
  for (const mode of modes) await measure(mode, publisher, joins, (l) => process.stdout.write(`${l}\n`));
}

main().then(
  () => process.exit(0),
  (err) => {
    process.stderr.write(`first-frame-run: ${(err as Error).stack ?? err}\n`);
    process.exit(1);
  },
);
