import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { waitUntil } from '../process/wait.ts';
import { startRedis, type RunningRedis } from '../servers/redis.ts';
import { sample } from '../test/exposition-parser.ts';
import { json, metricsOf, type RunningNode, startNode } from '../test/nodes.ts';
import { type Viewer, type WatchOptions, watch } from '../viewers/whep-client.ts';

/**
 * Keyframes on demand, end to end with real parts: Redis, an injection whose
 * encoder keyframes every 30 s unless asked, a relay, two egress nodes (one
 * passing its viewers' requests up, one keeping them), node-datachannel
 * viewers that ask for a keyframe as a browser does (PLI, or FIR) while their
 * video has none.
 */

let redis: RunningRedis;
let r: Redis;
let inj: RunningNode;
let relay: RunningNode;
/** Passes requests up (the default interval). */
let on: RunningNode;
/** `--keyframe-request-interval off`: its viewers' requests go no further. */
let off: RunningNode;
const viewers: Viewer[] = [];
const base = 26_000 + Math.floor(Math.random() * 80) * 50;
const SESS = { sessionId: 'kf-live', audioSsrc: 7111, videoSsrc: 7222 };

async function view(n: RunningNode, opts: WatchOptions): Promise<Viewer> {
  const v = await watch(`${n.url}/whep/${SESS.sessionId}`, { timeoutMs: 10_000, ...opts });
  viewers.push(v);
  return v;
}

async function counters(n: RunningNode, node: 'injection' | 'egress') {
  const m = await metricsOf(n);
  const name = (what: string) => `media_tree_${node}_keyframe_requests_${what}_total`;
  return {
    pli: sample(m, name('received'), { reason: 'pli' }) ?? -1,
    fir: sample(m, name('received'), { reason: 'fir' }) ?? -1,
    forwarded: sample(m, name('forwarded')) ?? -1,
    limited: sample(m, name('rate_limited')) ?? -1,
  };
}

beforeAll(async () => {
  redis = await startRedis();
  r = new Redis(redis.url);
  inj = await startNode({
    type: 'injection',
    id: 'injection-1',
    redisUrl: redis.url,
    extra: ['--keyframe-interval', '30s'],
  });
  relay = await startNode({
    type: 'relay',
    id: 'relay-1',
    redisUrl: redis.url,
    extra: ['--parent-slot', 'injection-1-s0', '--slots', '1'],
  });
  const egress = (id: string, ports: number, extra: string[] = []) =>
    startNode({
      type: 'egress',
      id,
      redisUrl: redis.url,
      extra: ['--parent-slot', 'relay-1-s0', '--port-range', `${ports}-${ports + 19}`, ...extra],
    });
  [on, off] = await Promise.all([
    egress('egress-on', base),
    egress('egress-off', base + 25, ['--keyframe-request-interval', 'off']),
  ]);
  await waitUntil(
    'relay-1 to forward to both egress nodes',
    async () => (await json(`${relay.url}/destinations`)).body.destinations.length === 2,
  );
  const start = await json(`${inj.url}/sessions`, { method: 'POST', body: JSON.stringify(SESS) });
  expect(start.status, JSON.stringify(start.body)).toBe(201);
  for (const e of [on, off])
    await waitUntil(
      `${e.id} to receive the session`,
      async () => ((await json(`${e.url}/sessions`)).body.sessions[0]?.received.video.packets ?? 0) > 30,
      { timeoutMs: 15_000 },
    );
}, 90_000);

afterAll(async () => {
  for (const v of viewers) await v.close({ sendDelete: false });
  await Promise.all([on, off, relay, inj].filter(Boolean).map((n) => n.child.stop()));
  r?.disconnect();
  await redis?.stop();
});

describe('keyframes on demand', () => {
  it('a viewer whose egress keeps its requests waits: no keyframe for seconds (the next periodic one is 30 s away)', async () => {
    const v = await view(off, { keyframeRequests: 'pli' });
    await new Promise((res) => setTimeout(res, 3_000));
    const kf = v.keyframes();
    console.log(`requests off: ${JSON.stringify(kf)} video ${v.counts().video.packets} packets`);
    expect(v.counts().video.packets).toBeGreaterThan(100); // media flows: only its keyframe is missing
    expect(kf.count).toBe(0);
    expect(kf.requestsSent).toBeGreaterThan(5); // it kept asking, every 200 ms
    // The viewer keeps asking while the counters are read: every PLI it had sent
    // is counted, and none it had not sent by the time they were read.
    let e = await counters(off, 'egress');
    await waitUntil(
      'the egress to count every PLI sent',
      async () => {
        e = await counters(off, 'egress');
        return e.pli >= kf.requestsSent;
      },
      { timeoutMs: 5_000, intervalMs: 100 },
    );
    expect(e.pli).toBeLessThanOrEqual(v.keyframes().requestsSent);
    expect(e).toMatchObject({ fir: 0, forwarded: 0, limited: 0 });
    expect(await counters(inj, 'injection')).toEqual({ pli: 0, fir: 0, forwarded: 0, limited: 0 });
  }, 30_000);

  it("a viewer's PLI reaches the encoder: its first keyframe comes well under a second after it connected", async () => {
    const waiting = viewers[0]!; // the one above, still without a picture
    const v = await view(on, { keyframeRequests: 'pli' });
    await waitUntil('its first keyframe', () => v.keyframes().firstAt !== null, { timeoutMs: 5_000 });
    const kf = v.keyframes();
    const afterConnectMs = kf.firstAt! - kf.connectedAt;
    console.log(
      `requests on (PLI): first keyframe ${afterConnectMs.toFixed(0)} ms after connecting, ` +
        `${(kf.firstAt! - kf.postedAt).toFixed(0)} ms after the POST; ${kf.requestsSent} PLI sent`,
    );
    expect(afterConnectMs).toBeLessThan(1_000);
    expect(kf.requestsSent).toBeGreaterThanOrEqual(1);
    // Every viewer of the session gets that keyframe: the one that waited has its picture now.
    await waitUntil('the waiting viewer to get it too', () => waiting.keyframes().count > 0, { timeoutMs: 2_000 });
    const e = await counters(on, 'egress');
    expect(e.pli).toBe(kf.requestsSent);
    expect(e.forwarded).toBeGreaterThanOrEqual(1);
    expect(e.forwarded + e.limited).toBeGreaterThanOrEqual(e.pli);
    const i = await counters(inj, 'injection');
    expect(i.pli).toBe(e.forwarded);
    expect(i.forwarded).toBeGreaterThanOrEqual(1);
  }, 30_000);

  it('a FIR does the same', async () => {
    await new Promise((res) => setTimeout(res, 600)); // past the previous request's interval
    const v = await view(on, { keyframeRequests: 'fir' });
    await waitUntil('its first keyframe', () => v.keyframes().firstAt !== null, { timeoutMs: 5_000 });
    const kf = v.keyframes();
    console.log(`requests on (FIR): first keyframe ${(kf.firstAt! - kf.connectedAt).toFixed(0)} ms after connecting`);
    expect(kf.firstAt! - kf.connectedAt).toBeLessThan(1_000);
    expect((await counters(on, 'egress')).fir).toBe(kf.requestsSent);
    expect((await counters(inj, 'injection')).fir).toBeGreaterThanOrEqual(1);
  }, 30_000);

  it('viewers joining together cost the encoder one keyframe per interval, and each gets its first one', async () => {
    await new Promise((res) => setTimeout(res, 600));
    const before = await counters(inj, 'injection');
    const started = performance.now();
    const crowd = await Promise.all([0, 1, 2, 3].map(() => view(on, { keyframeRequests: 'pli' })));
    await waitUntil('every first keyframe', () => crowd.every((v) => v.keyframes().firstAt !== null), {
      timeoutMs: 5_000,
    });
    const elapsedS = (performance.now() - started) / 1000;
    const after = await counters(inj, 'injection');
    const asked = crowd.reduce((n, v) => n + v.keyframes().requestsSent, 0);
    console.log(
      `crowd: ${asked} PLIs from 4 viewers, ${after.forwarded - before.forwarded} keyframes forced in ${elapsedS.toFixed(1)} s; ` +
        `first keyframes ${crowd.map((v) => (v.keyframes().firstAt! - v.keyframes().connectedAt).toFixed(0)).join(', ')} ms after connecting`,
    );
    // At most one at once and one at each 500 ms interval's end.
    expect(after.forwarded - before.forwarded).toBeLessThanOrEqual(Math.ceil(elapsedS / 0.5) + 1);
    for (const v of crowd) expect(v.keyframes().firstAt! - v.keyframes().connectedAt).toBeLessThan(1_500);
  }, 30_000);
});
