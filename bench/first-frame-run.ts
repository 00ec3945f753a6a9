/**
 * `canopy bench first-frame`'s measuring half, run inside the network
 * namespace bench/first-frame.ts makes (Chromium gathers no candidate on
 * loopback alone). For each mode, a tree of its own (Redis, injection, relay,
 * egress, all on the namespace's 127.0.0.1) with a publisher that keyframes
 * only when asked, and one headless Chromium whose page joins the session
 * `--joins` times through the entry point, one viewer at a time: the time from
 * the WHEP POST to the first decoded video frame (getStats framesDecoded,
 * polled every 10 ms), then DELETE.
 *
 * The publisher is the built-in encoder keyframing only when asked (its
 * periodic keyframe an hour apart). Modes: `on`, viewers' keyframe requests
 * travel up the tree (the defaults); `periodic`, the egress keeps them
 * (`--keyframe-request-interval off`) and the injection asks the publisher
 * every 5 s instead (`--keyframe-request-every 5s`). The injection asks any
 * source with `requestKeyframe` the same way, so a WHIP publisher (a browser
 * keyframing on PLI only) can take the encoder's place unchanged.
 *
 * Usage: first-frame-run.ts <joins> <mode,...>; prints `JOIN <mode> <ms>` per
 * join and `FAILED <mode> <why>` for a join that never decoded.
 */
import { type Browser, launchChromium, type Stack, startStack } from '../test/browser-stack.ts';
import { json } from '../test/nodes.ts';
import { FIRST_FRAME_MODES, type FirstFrameMode, PERIODIC_MS } from './first-frame.ts';

const SESSION = 'first-frame';
/** A join that has not decoded by then counts as failed. */
const JOIN_TIMEOUT_MS = 15_000;

const ON_REQUEST_ONLY = ['--keyframe-interval', '1h'];
const MODE_FLAGS: Record<FirstFrameMode, { injection: string[]; egress: string[] }> = {
  on: { injection: ON_REQUEST_ONLY, egress: [] },
  periodic: {
    injection: [...ON_REQUEST_ONLY, '--keyframe-request-every', `${PERIODIC_MS / 1000}s`],
    egress: ['--keyframe-request-interval', 'off'],
  },
};

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

async function measure(mode: FirstFrameMode, joins: number, out: (line: string) => void): Promise<void> {
  let stack: Stack | undefined;
  let browser: Browser | undefined;
  try {
    const flags = MODE_FLAGS[mode];
    stack = await startStack(flags.injection, flags.egress);
    const { injection: inj, egress } = stack;
    const s = await json(`${inj.url}/sessions`, {
      method: 'POST',
      body: JSON.stringify({ sessionId: SESSION, audioSsrc: 9001, videoSsrc: 9002 }),
    });
    if (s.status !== 201) throw new Error(`cannot start the session: ${s.status} ${JSON.stringify(s.body)}`);
    // Until the egress serves the session, a join would be refused, not slow.
    for (const until = Date.now() + 30_000; ; ) {
      const m = (await json(`${egress.url}/sessions`)).body.sessions?.[0];
      if ((m?.received?.video?.packets ?? 0) > 30) break;
      if (Date.now() > until) throw new Error('the egress node never received the session');
      await new Promise((res) => setTimeout(res, 200));
    }
    browser = await launchChromium();
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
    await stack?.stop();
  }
}

async function main(): Promise<void> {
  const joins = Number(process.argv[2]);
  const modes = (process.argv[3] ?? FIRST_FRAME_MODES.join(',')).split(',') as FirstFrameMode[];
  if (!Number.isInteger(joins) || joins < 1 || modes.some((m) => !FIRST_FRAME_MODES.includes(m)))
    throw new Error('usage: first-frame-run.ts <joins> [on,periodic]');
  for (const mode of modes) await measure(mode, joins, (l) => process.stdout.write(`${l}\n`));
}

main().then(
  () => process.exit(0),
  (err) => {
    process.stderr.write(`first-frame-run: ${(err as Error).stack ?? err}\n`);
    process.exit(1);
  },
);
