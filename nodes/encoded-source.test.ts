import { createSocket, type Socket } from 'node:dgram';
import { createInterface } from 'node:readline';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Child, startChild } from '../process/child.ts';
import { freePort } from '../process/ports.ts';
import { cmdline, descendantsOf } from '../process/proc.ts';
import { processAlive } from '../process/signals.ts';
import { waitUntil } from '../process/wait.ts';
import { startRedis, type RunningRedis } from '../servers/redis.ts';
import { sample } from '../test/exposition-parser.ts';
import { json, metricsOf, type RunningNode, startNode } from '../test/nodes.ts';
import { keys, Topology } from '../topology/index.ts';
import { vp8KeyframeStart } from '../viewers/vp8.ts';

/**
 * The injection's default source, end to end: a real `canopy node injection`
 * sends a session to two children registered in Redis, one a pair of raw
 * sockets (headers, payload descriptors), the other GStreamer depayloaders and
 * decoders. What the node sends must decode, frame for frame.
 */

let redis: RunningRedis;
let r: Redis;
let topo: Topology;
let inj: RunningNode;
const closers: Array<() => unknown> = [];

const SESS = { sessionId: 'enc-a', audioSsrc: 0xa0d10001, videoSsrc: 0x1de00002 };

interface Packet {
  pt: number;
  ssrc: number;
  marker: boolean;
  seq: number;
  ts: number;
  size: number;
  keyframeStart: boolean;
  /** performance.now() on arrival. */
  at: number;
}

/** Two loopback sockets that keep every RTP packet's header fields. */
class Capture {
  readonly packets: Record<'audio' | 'video', Packet[]> = { audio: [], video: [] };
  private constructor(private readonly socks: Record<'audio' | 'video', Socket>) {
    for (const t of ['audio', 'video'] as const)
      socks[t].on('message', (m) =>
        this.packets[t].push({
          pt: m.readUInt8(1) & 0x7f,
          ssrc: m.readUInt32BE(8),
          marker: (m.readUInt8(1) & 0x80) !== 0,
          seq: m.readUInt16BE(2),
          ts: m.readUInt32BE(4),
          size: m.length,
          keyframeStart: t === 'video' && vp8KeyframeStart(m),
          at: performance.now(),
        }),
      );
  }
  static async open(): Promise<Capture> {
    const bind = () =>
      new Promise<Socket>((resolve) => {
        const s = createSocket('udp4');
        s.bind(0, '127.0.0.1', () => resolve(s));
      });
    const c = new Capture({ audio: await bind(), video: await bind() });
    closers.push(() => c.close());
    return c;
  }
  port(t: 'audio' | 'video'): number {
    return this.socks[t].address().port;
  }
  close(): void {
    for (const s of Object.values(this.socks)) s.close();
  }
}

const CAPS = {
  video: 'application/x-rtp,media=video,clock-rate=90000,encoding-name=VP8,payload=96',
  audio: 'application/x-rtp,media=audio,clock-rate=48000,encoding-name=OPUS,payload=111',
};

/** gst-launch-1.0: udpsrc ! depayloader ! decoder ! fakesink, counting the decoded buffers it reports. */
async function decoder(t: 'audio' | 'video'): Promise<{ port: number; decoded: () => number; gst: Child }> {
  const port = await freePort();
  const chain = t === 'video' ? ['rtpvp8depay', '!', 'vp8dec'] : ['rtpopusdepay', '!', 'opusdec'];
  const gst = await startChild(`${t}-decoder`, 'gst-launch-1.0', {
    args: [
      '-v',
      'udpsrc',
      'address=127.0.0.1',
      `port=${port}`,
      `caps=${CAPS[t]}`,
      '!',
      ...chain,
      '!',
      'fakesink',
      'silent=false',
    ],
    ready: (out) => out().includes('Setting pipeline to PLAYING'),
    readyTimeoutMs: 10_000,
  });
  closers.push(() => gst.stop(1_000));
  let decoded = 0;
  createInterface({ input: gst.process.stdout! }).on('line', (l) => {
    if (l.includes('last-message = chain')) decoded++;
  });
  return { port, decoded: () => decoded, gst };
}

/** The encoder processes (media-tree-encoder running vp8enc) below a node. */
function encoders(node: RunningNode): number[] {
  return descendantsOf(node.child.process.pid!).filter((p) => /media-tree-encoder .*vp8enc/.test(cmdline(p)));
}

async function session(id: string): Promise<{ generated: { audio: number; video: number } } | undefined> {
  return (await json(`${inj.url}/sessions`)).body.sessions.find((s: { id: string }) => s.id === id);
}

async function attach(id: string, audioPort: number, videoPort: number, parentSlot = 'injection-1-s0'): Promise<void> {
  await topo.registerNode({
    id,
    type: 'relay',
    host: '127.0.0.1',
    httpPort: 9,
    audioPort,
    videoPort,
    parentSlot,
  });
}

beforeAll(async () => {
  redis = await startRedis();
  r = new Redis(redis.url);
  topo = new Topology(r, 'tree-1');
  inj = await startNode({ type: 'injection', id: 'injection-1', redisUrl: redis.url });
}, 60_000);

afterAll(async () => {
  for (const c of closers.reverse()) await c();
  await inj?.child.stop();
  r?.disconnect();
  await redis?.stop();
});

describe("the injection's default source", () => {
  it('sends VP8 and Opus that decode frame for frame, with the session SSRCs, payload types and a keyframe every second', async () => {
    const raw = await Capture.open();
    const dec = { audio: await decoder('audio'), video: await decoder('video') };
    await attach('probe-raw', raw.port('audio'), raw.port('video'));
    await attach('probe-dec', dec.audio.port, dec.video.port);
    await waitUntil(
      'the injection to see both probes',
      async () => (await json(`${inj.url}/sessions`)).body.children.join() === 'probe-dec,probe-raw',
    );
    expect((await json(`${inj.url}/sessions`)).body.source).toBe('encoded');

    const seconds = 4;
    const start = await json(`${inj.url}/sessions`, {
      method: 'POST',
      body: JSON.stringify({ ...SESS, generator: { delayMs: 300, durationMs: seconds * 1000 } }),
    });
    expect(start.status, JSON.stringify(start.body)).toBe(201);
    await new Promise((res) => setTimeout(res, 300 + seconds * 1000));
    // The encoder is stopped: the counts settle once the last packets are decoded.
    let last = '';
    await waitUntil(
      'the decoders to catch up',
      async () => {
        const now = JSON.stringify([
          await session(SESS.sessionId),
          dec.audio.decoded(),
          dec.video.decoded(),
          raw.packets.video.length,
        ]);
        const settled = now === last;
        last = now;
        return settled;
      },
      { timeoutMs: 10_000, intervalMs: 300 },
    );

    const { audio, video } = raw.packets;
    const generated = (await session(SESS.sessionId))!.generated;
    expect({ audio: audio.length, video: video.length }).toEqual(generated);
    expect(new Set(audio.map((p) => `${p.pt}/${p.ssrc}`))).toEqual(new Set([`111/${SESS.audioSsrc}`]));
    expect(new Set(video.map((p) => `${p.pt}/${p.ssrc}`))).toEqual(new Set([`96/${SESS.videoSsrc}`]));

    // 30 frames/s and 50 Opus packets/s when the machine keeps up; half is the floor on a busy CI box.
    const frames = video.filter((p) => p.marker).length;
    expect(frames).toBeGreaterThanOrEqual(seconds * 15);
    expect(audio.length).toBeGreaterThanOrEqual(seconds * 25);
    const kbps = (ps: Packet[]) => (ps.reduce((n, p) => n + p.size - 12, 0) * 8) / seconds / 1000;
    expect(kbps(video)).toBeGreaterThan(400);
    expect(kbps(video)).toBeLessThan(1200);
    expect(kbps(audio)).toBeGreaterThan(24);
    expect(kbps(audio)).toBeLessThan(72);

    // A viewer joining at any moment has a keyframe within a second, asked for or not.
    const keyTs = video.filter((p) => p.keyframeStart).map((p) => p.ts);
    expect(video[0]?.keyframeStart).toBe(true);
    expect(keyTs.length).toBeGreaterThanOrEqual(seconds);
    const gaps = keyTs.slice(1).map((ts, i) => (ts - keyTs[i]! + 2 ** 32) % 2 ** 32);
    expect(Math.max(...gaps)).toBeLessThanOrEqual(90_000 + 1_500); // a second at 90 kHz, plus rounding

    // Every frame and every Opus packet the node sent decodes; nothing complained.
    expect(dec.video.decoded()).toBe(frames);
    expect(dec.audio.decoded()).toBe(audio.length);
    expect(dec.video.gst.output()).toMatch(
      /vp8dec0\.GstPad:src: caps = video\/x-raw.*width=\(int\)640, height=\(int\)360/,
    );
    for (const d of [dec.audio, dec.video]) expect(d.gst.output()).not.toMatch(/WARNING|ERROR/);

    // The accounting is per datagram per child, as before.
    const m = await metricsOf(inj);
    for (const t of ['audio', 'video'] as const) {
      const ssrc = String(t === 'audio' ? SESS.audioSsrc : SESS.videoSsrc);
      const labels = { stream_type: t, session_id: SESS.sessionId, ssrc };
      expect(sample(m, 'media_tree_injection_rtp_packets_sent_total', labels)).toBe(2 * generated[t]);
      const bytes = raw.packets[t].reduce((n, p) => n + p.size, 0);
      const sentBytes = sample(m, 'media_tree_injection_rtp_bytes_sent_total', {
        stream_type: t,
        session_id: SESS.sessionId,
      });
      expect(sentBytes).toBe(2 * bytes);
    }
    expect(encoders(inj)).toEqual([]); // its duration is over: the encoder is gone, the session stays
    await topo.deregisterNode('probe-dec', 'relay');
  }, 40_000);

  it('restarts a killed encoder, and the stream resumes with a keyframe', async () => {
    const raw = await Capture.open();
    await attach('probe-raw', raw.port('audio'), raw.port('video'));
    const res = await json(`${inj.url}/sessions`, {
      method: 'POST',
      body: JSON.stringify({ sessionId: 'enc-b', audioSsrc: 5, videoSsrc: 6 }),
    });
    expect(res.status).toBe(201);
    await waitUntil('media to flow', () => raw.packets.video.length > 30, { timeoutMs: 10_000 });
    const [first] = encoders(inj);
    expect(first).toBeGreaterThan(0);
    const atKill = raw.packets.video.length;
    process.kill(first!, 'SIGKILL');
    await waitUntil('the encoder to be replaced', () => encoders(inj).some((p) => p !== first), { timeoutMs: 10_000 });
    await waitUntil('media to flow again', () => raw.packets.video.length > atKill + 30, { timeoutMs: 10_000 });
    // The new encoder numbers its packets afresh: its first one breaks the sequence, and starts a keyframe.
    const v = raw.packets.video;
    const fresh = v.findIndex((p, i) => i >= atKill && i > 0 && p.seq !== (v[i - 1]!.seq + 1) % 65536);
    expect(fresh).toBeGreaterThanOrEqual(atKill);
    expect(v[fresh]!.keyframeStart).toBe(true);
    expect(v[fresh]!.ssrc).toBe(6);
  }, 30_000);

  it('leaves no encoder behind: a session deleted, the node stopped, the node SIGKILLed', async () => {
    expect(encoders(inj)).toHaveLength(1); // enc-b
    expect((await json(`${inj.url}/sessions/enc-b`, { method: 'DELETE' })).status).toBe(204);
    expect(encoders(inj)).toEqual([]);

    const res = await json(`${inj.url}/sessions`, {
      method: 'POST',
      body: JSON.stringify({ sessionId: 'enc-c', audioSsrc: 7, videoSsrc: 8 }),
    });
    expect(res.status).toBe(201);
    await waitUntil('an encoder for enc-c', () => encoders(inj).length === 1, { timeoutMs: 10_000 });
    const stopped = encoders(inj);
    await inj.child.stop();
    expect(stopped.filter(processAlive)).toEqual([]);

    // Restarted, the node resumes enc-c's encoder (enc-a's duration was its own: it resumes too).
    inj = await startNode({ type: 'injection', id: 'injection-1', redisUrl: redis.url, port: inj.port });
    await waitUntil('the resumed encoders', () => encoders(inj).length === 2, { timeoutMs: 10_000 });
    const orphans = encoders(inj);
    inj.child.process.kill('SIGKILL'); // no handler runs: the parent-death signal must take them
    await waitUntil('the encoders to die with their node', () => orphans.filter(processAlive).length === 0, {
      timeoutMs: 5_000,
    });
  }, 40_000);
});

describe('keyframes on request', () => {
  it('forces a key unit for each keyframe-request event, at most one per session per interval; bad events change nothing', async () => {
    // An encoder whose periodic keyframes are 30 s apart: any other keyframe was asked for.
    const node = await startNode({
      type: 'injection',
      id: 'injection-2',
      redisUrl: redis.url,
      extra: ['--keyframe-interval', '30s', '--keyframe-request-interval', '500ms'],
    });
    closers.push(() => node.child.stop());
    const raw = await Capture.open();
    await attach('probe-kf', raw.port('audio'), raw.port('video'), 'injection-2-s0');
    await waitUntil('injection-2 to see its probe', async () =>
      (await json(`${node.url}/sessions`)).body.children.includes('probe-kf'),
    );
    const start = await json(`${node.url}/sessions`, {
      method: 'POST',
      body: JSON.stringify({ sessionId: 'kf-a', audioSsrc: 21, videoSsrc: 22 }),
    });
    expect(start.status).toBe(201);
    const video = raw.packets.video;
    const keyframesAfter = (t: number) => video.filter((p) => p.keyframeStart && p.at > t);
    await waitUntil('video to flow', () => video.length > 0, { timeoutMs: 10_000 });
    expect(video[0]!.keyframeStart).toBe(true); // an encoder starts with one

    const counters = async () => {
      const m = await metricsOf(node);
      return {
        pli: sample(m, 'media_tree_injection_keyframe_requests_received_total', { reason: 'pli' }),
        fir: sample(m, 'media_tree_injection_keyframe_requests_received_total', { reason: 'fir' }),
        forwarded: sample(m, 'media_tree_injection_keyframe_requests_forwarded_total'),
        limited: sample(m, 'media_tree_injection_keyframe_requests_rate_limited_total'),
      };
    };
    expect(await counters()).toEqual({ pli: 0, fir: 0, forwarded: 0, limited: 0 });

    // Bad payloads, a session this node does not play, a request for another injection: nothing happens.
    const quiet = performance.now();
    const channel = keys.keyframeRequestsChannel('injection-2');
    const ask = { sessionId: 'kf-a', nodeId: 'egress-9', reason: 'pli' as const, at: Date.now() };
    for (const bad of ['{', JSON.stringify(ask), JSON.stringify({ type: 'keyframe-request', ...ask, reason: 'x' })])
      await r.publish(channel, bad);
    await topo.requestKeyframe('injection-2', { ...ask, sessionId: 'not-here' });
    await topo.requestKeyframe('injection-1', ask);
    await new Promise((res) => setTimeout(res, 1_500));
    expect(keyframesAfter(quiet)).toEqual([]);
    expect(await counters()).toEqual({ pli: 0, fir: 0, forwarded: 0, limited: 0 });
    expect(node.child.output()).toMatch(/ignoring a bad keyframe request/);

    // One request: a keyframe within a few frames.
    const asked = performance.now();
    await topo.requestKeyframe('injection-2', ask);
    await waitUntil('the keyframe asked for', () => keyframesAfter(asked).length > 0, { timeoutMs: 5_000 });
    const latencyMs = keyframesAfter(asked)[0]!.at - asked;
    expect(latencyMs).toBeLessThan(500); // ~40 ms here: Redis, a line on stdin, the next frame encoded
    expect(await counters()).toEqual({ pli: 1, fir: 0, forwarded: 1, limited: 0 });

    // A burst of ten, past the interval: one keyframe at once, one when the interval ends, no more.
    await new Promise((res) => setTimeout(res, 600));
    const burst = performance.now();
    for (let i = 0; i < 10; i++)
      await topo.requestKeyframe('injection-2', { ...ask, reason: i % 2 ? 'fir' : 'pli', at: Date.now() });
    await waitUntil('two keyframes', () => keyframesAfter(burst).length >= 2, { timeoutMs: 5_000 });
    await new Promise((res) => setTimeout(res, 1_500));
    const got = keyframesAfter(burst);
    expect(got).toHaveLength(2);
    expect(got[1]!.at - got[0]!.at).toBeGreaterThan(400); // the interval (500 ms), less the encoder's jitter
    expect(await counters()).toEqual({ pli: 6, fir: 5, forwarded: 3, limited: 9 });
    await json(`${node.url}/sessions/kf-a`, { method: 'DELETE' });
  }, 60_000);

  it("--keyframe-request-every asks each session's source on its own (not counted as requests)", async () => {
    const node = await startNode({
      type: 'injection',
      id: 'injection-3',
      redisUrl: redis.url,
      extra: ['--keyframe-interval', '30s', '--keyframe-request-every', '1s'],
    });
    closers.push(() => node.child.stop());
    const raw = await Capture.open();
    await attach('probe-every', raw.port('audio'), raw.port('video'), 'injection-3-s0');
    await waitUntil('injection-3 to see its probe', async () =>
      (await json(`${node.url}/sessions`)).body.children.includes('probe-every'),
    );
    const start = await json(`${node.url}/sessions`, {
      method: 'POST',
      body: JSON.stringify({ sessionId: 'kf-every', audioSsrc: 31, videoSsrc: 32 }),
    });
    expect(start.status).toBe(201);
    await waitUntil('video to flow', () => raw.packets.video.length > 0, { timeoutMs: 10_000 });
    const from = performance.now();
    await new Promise((res) => setTimeout(res, 4_200));
    const keyframes = raw.packets.video.filter((p) => p.keyframeStart && p.at > from);
    // One a second (the first encoder's start keyframe aside); the 30 s periodic one cannot be among them.
    expect(keyframes.length).toBeGreaterThanOrEqual(3);
    expect(keyframes.length).toBeLessThanOrEqual(5);
    const m = await metricsOf(node);
    expect(sample(m, 'media_tree_injection_keyframe_requests_forwarded_total')).toBe(0);
    await json(`${node.url}/sessions/kf-every`, { method: 'DELETE' });
  }, 60_000);
});
