import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Child, startChild } from '../process/child.ts';
import { waitUntil } from '../process/wait.ts';
import { startRedis, type RunningRedis } from '../servers/redis.ts';
import { sample } from '../test/exposition-parser.ts';
import { json, metricsOf, startNode, type RunningNode } from '../test/nodes.ts';
import { type Received, Receiver, rtpPacket, Sender } from '../test/rtp.ts';
import { type Publisher, publish, publisherOffer, WhipRefused } from '../test/whip-publisher.ts';
import { Topology } from '../topology/index.ts';
import { PAYLOAD_TYPE } from './rtp-source.ts';
import { PUBLISHER_MAX_BITRATE, PUBLISHER_SILENCE_MS } from './whip-publisher.ts';

/**
 * Publishers at the injection, with real processes: Redis, an injection with
 * WHIP on, node-datachannel publishers sending a real gst-launch-1.0
 * encoder's VP8 + Opus, a gst-launch-1.0 sender for plain RTP ingest, and two
 * loopback UDP ports recorded as a relay attached to the injection's slot:
 * what the injection sends to its children, packet by packet.
 */

const TOKEN = 'test-token-0123456789abcdef';
const GRACE_MS = 3_000;
let redis: RunningRedis;
let r: Redis;
let topo: Topology;
let inj: RunningNode;
let dir: string;
const child = { audio: undefined as unknown as Receiver, video: undefined as unknown as Receiver };
const publishers: Publisher[] = [];
const senders: Child[] = [];

const whipUrl = (session: string) => `${inj.url}/whip/${session}`;
const auth = { authorization: `Bearer ${TOKEN}` };
const post = (url: string, body: string, headers: Record<string, string> = {}) =>
  fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/sdp', ...headers },
    body,
    signal: AbortSignal.timeout(10_000),
  });

async function offerSdp(): Promise<string> {
  const { sdp, pc } = await publisherOffer();
  pc.close();
  return sdp;
}

async function pub(session: string): Promise<Publisher> {
  const p = await publish(whipUrl(session), TOKEN);
  publishers.push(p);
  return p;
}

/** What the child received of one SSRC, in arrival order. */
const got = (t: 'audio' | 'video', ssrc: number): Received[] => child[t].packets.filter((p) => p.ssrc === ssrc);

async function metric(name: string, labels: Record<string, string>): Promise<number | undefined> {
  return sample(await metricsOf(inj), name, labels);
}

const startInjection = (port?: number) =>
  startNode({
    type: 'injection',
    id: 'injection-1',
    redisUrl: redis.url,
    port,
    extra: ['--source', 'synthetic', '--whip-token-file', join(dir, 'token'), '--whip-grace', `${GRACE_MS}ms`],
  });

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'canopy-ingest-'));
  writeFileSync(join(dir, 'token'), `${TOKEN}\n`);
  redis = await startRedis();
  r = new Redis(redis.url);
  topo = new Topology(r, 'tree-1');
  inj = await startInjection();
  child.audio = await Receiver.open();
  child.video = await Receiver.open();
  await topo.registerNode({
    id: 'relay-1',
    type: 'relay',
    host: '127.0.0.1',
    httpPort: 1,
    audioPort: child.audio.port,
    videoPort: child.video.port,
    parentSlot: 'injection-1-s0',
  });
  await waitUntil(
    'the injection to see its child',
    async () => (await json(`${inj.url}/sessions`)).body.children.length === 1,
  );
}, 60_000);

afterAll(async () => {
  for (const p of publishers) await p.vanish().catch(() => {});
  for (const s of senders) await s.stop(2_000);
  await inj?.child.stop();
  child.audio?.close();
  child.video?.close();
  r?.disconnect();
  await redis?.stop();
  rmSync(dir, { recursive: true, force: true });
});

describe('WHIP at the injection', () => {
  it('refuses with 400, 401, 406 and 415 before anything is created', async () => {
    const sdp = await offerSdp();
    const cases: Array<[string, Promise<Response>, number, RegExp]> = [
      ['no token', post(whipUrl('w-1'), sdp), 401, /Bearer/],
      [
        'a wrong token of the same length',
        post(whipUrl('w-1'), sdp, { authorization: `Bearer ${'x'.repeat(TOKEN.length)}` }),
        401,
        /Bearer/,
      ],
      ['a wrong token of another length', post(whipUrl('w-1'), sdp, { authorization: 'Bearer short' }), 401, /Bearer/],
      ['not SDP', post(whipUrl('w-1'), sdp, { ...auth, 'content-type': 'application/json' }), 415, /application\/sdp/],
      ['garbage', post(whipUrl('w-1'), 'hello', auth), 400, /must start with v=0/],
      ['a bad session id', post(whipUrl('W_1'), sdp, auth), 400, /bad session id/],
      [
        'H.264 only',
        post(whipUrl('w-1'), sdp.replace(/VP8\/90000/g, 'H264/90000'), auth),
        406,
        /no VP8 in the video section/,
      ],
      ['no audio', post(whipUrl('w-1'), sdp.replace(/opus\/48000\/2/g, 'PCMU/8000'), auth), 406, /no Opus/],
      ['a viewer offer', post(whipUrl('w-1'), sdp.replace(/a=sendonly/g, 'a=recvonly'), auth), 400, /does not send/],
    ];
    for (const [what, req, status, message] of cases) {
      const res = await req;
      const body = await res.text();
      expect(res.status, `${what}: ${body}`).toBe(status);
      expect(body, what).toMatch(message);
      if (status === 401) expect(res.headers.get('www-authenticate')).toBe('Bearer');
    }
    expect(await topo.getSession('w-1')).toBeNull();
    expect((await json(`${inj.url}/sessions`)).body.sessions).toEqual([]);
  });

  it("answers 201 with the answer and Location; the publisher's RTP reaches the children as the session's", async () => {
    const p = await pub('w-2');
    expect(p.location).toMatch(new RegExp(`^${inj.url}/whip/w-2/p-[0-9a-f]{16}$`));
    const s = (await topo.getSession('w-2'))!;
    expect(s.ingest).toEqual({ kind: 'whip' });
    await waitUntil('video from the publisher at the child', () => got('video', s.videoSsrc).length > 60);
    await new Promise((res) => setTimeout(res, 1_000));
    for (const t of ['audio', 'video'] as const) {
      const rx = got(t, s[`${t}Ssrc`]);
      expect(rx.length, t).toBeGreaterThan(20);
      expect(new Set(rx.map((x) => x.pt)), t).toEqual(new Set([PAYLOAD_TYPE[t]]));
      // Nothing of the publisher's own SSRCs goes down the tree.
      expect(child[t].count(p.ssrc[t]), t).toBe(0);
    }
    // Health: every packet the publisher sent counted once it arrived, none lost on loopback, connected.
    const l = { session_id: 'w-2', stream_type: 'video' };
    await waitUntil('the counts to match', async () => {
      const n = await metric('media_tree_injection_publisher_rtp_packets_received_total', l);
      return n !== undefined && Math.abs(n - p.sent.video.length) <= 5;
    });
    expect(await metric('media_tree_injection_publisher_rtp_packets_lost_total', l)).toBe(0);
    const jitter = (await metric('media_tree_injection_publisher_rtp_jitter_seconds', l))!;
    expect(jitter).toBeGreaterThan(0);
    expect(jitter).toBeLessThan(0.05);
    const bytes = (await metric('media_tree_injection_publisher_rtp_bytes_received_total', l))!;
    expect(bytes / (await metric('media_tree_injection_publisher_rtp_packets_received_total', l))!).toBeGreaterThan(
      100,
    );
    expect(await metric('media_tree_injection_publisher_state', { session_id: 'w-2' })).toBe(2);
    const last = (await metric('media_tree_injection_publisher_last_packet_timestamp_seconds', { session_id: 'w-2' }))!;
    expect(Math.abs(Date.now() / 1000 - last)).toBeLessThan(2);

    // One publisher per session.
    const second = await publish(whipUrl('w-2'), TOKEN).catch((e) => e);
    expect(second).toBeInstanceOf(WhipRefused);
    expect((second as WhipRefused).status).toBe(409);
    expect((second as WhipRefused).body).toMatch(/already has a publisher/);

    // No trickle; CORS preflight.
    expect((await fetch(p.location, { method: 'PATCH', headers: auth })).status).toBe(405);
    const pre = await fetch(whipUrl('w-2'), { method: 'OPTIONS' });
    expect(pre.status).toBe(204);
    expect(pre.headers.get('access-control-allow-methods')).toMatch(/DELETE/);

    // DELETE of another resource: 404; without the token: 401; then the publisher's own: 200, the session ended.
    expect((await fetch(`${whipUrl('w-2')}/p-0000000000000000`, { method: 'DELETE', headers: auth })).status).toBe(404);
    expect((await fetch(p.location, { method: 'DELETE' })).status).toBe(401);
    const ended = new Redis(redis.url);
    const events: string[] = [];
    await ended.subscribe('session-events:tree-1');
    ended.on('message', (_c, m) => events.push(m));
    expect((await fetch(p.location, { method: 'DELETE', headers: auth })).status).toBe(200);
    expect(await topo.getSession('w-2')).toBeNull();
    await waitUntil('session-ended', () =>
      events.includes(JSON.stringify({ type: 'session-ended', sessionId: 'w-2' })),
    );
    ended.disconnect();
    expect(await metricsOf(inj)).not.toMatch(/session_id="w-2"/);
    expect((await fetch(p.location, { method: 'DELETE', headers: auth })).status).toBe(404);
    await p.vanish();
  }, 60_000);

  it('keeps sequence numbers and timestamps continuous across a reconnect after the connection dropped', async () => {
    const p1 = await pub('w-3');
    const s = (await topo.getSession('w-3'))!;
    await waitUntil('video at the child', () => got('video', s.videoSsrc).length > 60);
    await p1.vanish(); // no DELETE: the session waits for its publisher
    await waitUntil(
      'the publisher to count as gone',
      async () => (await metric('media_tree_injection_publisher_state', { session_id: 'w-3' })) === 0,
    );
    const before = { audio: got('audio', s.audioSsrc).length, video: got('video', s.videoSsrc).length };
    expect(await topo.getSession('w-3')).not.toBeNull();
    const p2 = await pub('w-3');
    await waitUntil('video of the second publisher', () => got('video', s.videoSsrc).length > before.video + 60);
    // Two publishers' worth of statistics, still nothing lost.
    expect(
      await metric('media_tree_injection_publisher_rtp_packets_lost_total', {
        session_id: 'w-3',
        stream_type: 'video',
      }),
    ).toBe(0);
    await p2.close();
    for (const t of ['audio', 'video'] as const) {
      const rx = got(t, s[`${t}Ssrc`]);
      const at = before[t];
      expect(rx.length).toBeGreaterThan(at + 10);
      // Every step forward by one (loopback loses nothing), the switch included.
      const steps = rx.slice(1).map((x, i) => (x.seq - rx[i]!.seq) & 0xffff);
      expect(
        steps.filter((d) => d !== 1),
        `${t} sequence steps other than 1`,
      ).toEqual([]);
      // Timestamps never go back; across the switch they advance by about the time between the packets.
      const tsSteps = rx.slice(1).map((x, i) => (x.ts - rx[i]!.ts) | 0);
      expect(Math.min(...tsSteps), t).toBeGreaterThanOrEqual(0);
      const gapMs = rx[at]!.atMs - rx[at - 1]!.atMs;
      const clock = t === 'audio' ? 48_000 : 90_000;
      expect(tsSteps[at - 1]! / clock, `${t} timestamp step across the switch`).toBeGreaterThan((gapMs / 1000) * 0.5);
      expect(tsSteps[at - 1]! / clock, `${t} timestamp step across the switch`).toBeLessThan(gapMs / 1000 + 0.5);
    }
  }, 60_000);

  it('ends a session whose publisher does not come back within the grace period', async () => {
    const p = await pub('w-4');
    await p.vanish();
    await waitUntil('the session to remain while the grace lasts', async () => (await topo.getSession('w-4')) !== null);
    await waitUntil('the session to end', async () => (await topo.getSession('w-4')) === null, {
      timeoutMs: PUBLISHER_SILENCE_MS + GRACE_MS + 5_000,
    });
    expect(await metricsOf(inj)).not.toMatch(/session_id="w-4"/);
  }, 30_000);

  it('answers 409 for a session fed by the built-in source', async () => {
    const start = await json(`${inj.url}/sessions`, {
      method: 'POST',
      body: JSON.stringify({ sessionId: 'builtin-1', audioSsrc: 1001, videoSsrc: 1002 }),
    });
    expect(start.status).toBe(201);
    const res = await post(whipUrl('builtin-1'), await offerSdp(), auth);
    expect(res.status).toBe(409);
    expect(await res.text()).toMatch(/built-in source/);
    await fetch(`${inj.url}/sessions/builtin-1`, { method: 'DELETE' });
  });
});

describe('plain RTP ingest', () => {
  const SESS = { sessionId: 'rtp-1', audioSsrc: 7001, videoSsrc: 7002 };

  it('refuses a bad ingest body', async () => {
    const both = await json(`${inj.url}/sessions`, {
      method: 'POST',
      body: JSON.stringify({ ...SESS, ingest: {}, generator: { delayMs: 1 } }),
    });
    expect(both.status).toBe(400);
    expect(both.body.error).toMatch(/generator applies to the built-in source/);
    const port = await json(`${inj.url}/sessions`, {
      method: 'POST',
      body: JSON.stringify({ ...SESS, ingest: { audioPort: 70_000 } }),
    });
    expect(port.status).toBe(400);
    expect(await topo.getSession(SESS.sessionId)).toBeNull();
  });

  it("takes a real gst-launch-1.0 sender's RTP with the declared SSRCs; drops and counts the rest", async () => {
    const start = await json(`${inj.url}/sessions`, { method: 'POST', body: JSON.stringify({ ...SESS, ingest: {} }) });
    expect(start.status, JSON.stringify(start.body)).toBe(201);
    const { audioPort, videoPort } = start.body.ingest as { audioPort: number; videoPort: number };
    expect(audioPort).toBeGreaterThan(0);
    expect((await topo.getSession(SESS.sessionId))!.ingest).toEqual({ kind: 'rtp', audioPort, videoPort });
    // The same ports again: taken.
    const clash = await json(`${inj.url}/sessions`, {
      method: 'POST',
      body: JSON.stringify({ sessionId: 'rtp-2', audioSsrc: 7003, videoSsrc: 7004, ingest: { audioPort, videoPort } }),
    });
    expect(clash.status).toBe(409);
    expect(await topo.getSession('rtp-2')).toBeNull();

    // As the README shows, payload types of the sender's own (97, 110): the injection maps them.
    const gst = await startChild('rtp-sender', 'gst-launch-1.0', {
      args: `-q videotestsrc is-live=true ! video/x-raw,width=320,height=180,framerate=30/1 ! vp8enc deadline=1 cpu-used=8 keyframe-max-dist=30 ! rtpvp8pay pt=97 ssrc=${SESS.videoSsrc} ! udpsink host=127.0.0.1 port=${videoPort} audiotestsrc is-live=true ! audioconvert ! audioresample ! opusenc ! rtpopuspay pt=110 ssrc=${SESS.audioSsrc} ! udpsink host=127.0.0.1 port=${audioPort}`.split(
        ' ',
      ),
    });
    senders.push(gst);
    await waitUntil("the sender's video at the child", () => got('video', SESS.videoSsrc).length > 30);
    const strangers = new Sender(videoPort);
    for (let i = 0; i < 7; i++) await strangers.send(rtpPacket(4242, i, 200, 96));
    strangers.close();
    const l = { session_id: SESS.sessionId, stream_type: 'video' };
    await waitUntil(
      '7 drops',
      async () => (await metric('media_tree_injection_publisher_rtp_packets_dropped_total', l)) === 7,
    );
    expect(child.video.count(4242)).toBe(0);
    for (const t of ['audio', 'video'] as const) {
      const rx = got(t, SESS[`${t}Ssrc`]);
      expect(rx.length, t).toBeGreaterThan(10);
      expect(new Set(rx.map((x) => x.pt)), t).toEqual(new Set([PAYLOAD_TYPE[t]]));
    }
    const received = (await metric('media_tree_injection_publisher_rtp_packets_received_total', l))!;
    expect(received).toBeGreaterThan(30);
    expect(await metric('media_tree_injection_publisher_rtp_packets_lost_total', l)).toBe(0);
    // No connection to speak of: no state series.
    expect(await metric('media_tree_injection_publisher_state', { session_id: SESS.sessionId })).toBeUndefined();

    // The sender stops: the last packet's time stays where it was (what the stall alert reads).
    await gst.stop(2_000);
    const stoppedAt = Date.now() / 1000;
    await new Promise((res) => setTimeout(res, 1_500));
    const last = (await metric('media_tree_injection_publisher_last_packet_timestamp_seconds', {
      session_id: SESS.sessionId,
    }))!;
    expect(last).toBeLessThanOrEqual(stoppedAt + 0.1);
    expect(last).toBeGreaterThan(stoppedAt - 2);

    expect((await fetch(`${inj.url}/sessions/${SESS.sessionId}`, { method: 'DELETE' })).status).toBe(204);
    expect(await metricsOf(inj)).not.toMatch(/session_id="rtp-1"/);
  }, 60_000);
});

describe('an injection restart', () => {
  it('binds the RTP ingest ports again, and a WHIP session waits for its publisher', async () => {
    const SESS = { sessionId: 'rtp-3', audioSsrc: 7101, videoSsrc: 7102 };
    const start = await json(`${inj.url}/sessions`, { method: 'POST', body: JSON.stringify({ ...SESS, ingest: {} }) });
    expect(start.status).toBe(201);
    const ports = start.body.ingest as { audioPort: number; videoPort: number };
    const p = await pub('w-5');
    const w5 = (await topo.getSession('w-5'))!;

    await inj.child.stop();
    await p.vanish();
    inj = await startInjection(inj.port);
    const listed = (await json(`${inj.url}/sessions`)).body.sessions as Array<{ id: string; ingest?: unknown }>;
    expect(listed.find((s) => s.id === 'rtp-3')?.ingest).toEqual({ kind: 'rtp', ...ports });
    expect(listed.find((s) => s.id === 'w-5')?.ingest).toEqual({ kind: 'whip' });
    expect(await metric('media_tree_injection_publisher_state', { session_id: 'w-5' })).toBe(0);

    // The publisher comes back within the grace period (it runs from the restart): same session, same SSRCs.
    const seen = got('video', w5.videoSsrc).length;
    const again = await pub('w-5');
    await waitUntil('video of the returning publisher', () => got('video', w5.videoSsrc).length > seen + 30);
    expect((await topo.getSession('w-5'))!.videoSsrc).toBe(w5.videoSsrc);
    // RTP to the recorded port is the session's again.
    await waitUntil(
      'the injection to see its child again',
      async () => ((await json(`${inj.url}/sessions`)).body.children as string[]).length === 1,
    );
    const before = got('video', SESS.videoSsrc).length;
    const s = new Sender(ports.videoPort);
    for (let i = 0; i < 20; i++) await s.send(rtpPacket(SESS.videoSsrc, 500 + i, 300, 97));
    s.close();
    await waitUntil('the packets at the child', () => got('video', SESS.videoSsrc).length === before + 20);

    await again.close();
    expect((await fetch(`${inj.url}/sessions/rtp-3`, { method: 'DELETE' })).status).toBe(204);
  }, 90_000);
});

describe('a keyframe request', () => {
  it('reaches the publisher as an RTCP PLI (and the publisher is told its maximum rate by REMB)', async () => {
    const { WhipPublisher } = await import('./whip-publisher.ts');
    const { parseOffer } = await import('./whep-sdp.ts');
    const ssrc = { audio: 3101, video: 3102 };
    const { sdp, pc, tracks } = await publisherOffer(ssrc);
    let plis = 0;
    const remb: number[] = [];
    tracks.video.onMessage((m) => {
      // Payload-specific feedback (206), possibly compound: FMT 1 is a PLI, FMT 15 an application one (REMB).
      for (let off = 0; off + 12 <= m.length; off += (m.readUInt16BE(off + 2) + 1) * 4) {
        if (m[off + 1] !== 206) continue;
        const fmt = m[off]! & 0x1f;
        if (fmt === 1) plis++;
        if (fmt === 15 && m.toString('latin1', off + 12, off + 16) === 'REMB') {
          const v = m.readUInt32BE(off + 16);
          remb.push((v & 0x3ffff) * 2 ** ((v >>> 18) & 0x3f));
        }
      }
    });
    const connected = new Promise<void>((res) => pc.onStateChange((s) => s === 'connected' && res()));
    const received: number[] = [];
    const { publisher, answer } = await WhipPublisher.answer({
      id: 'p-test',
      offerSdp: sdp,
      offer: parseOffer(sdp, 'publisher'),
      bind: '127.0.0.1',
      advertise: '127.0.0.1',
      onRtp: (_t, rtp) => received.push(rtp.readUInt16BE(2)),
      onState: () => {},
    });
    try {
      pc.setRemoteDescription(answer, 'answer');
      await connected;
      await waitUntil('the server side to connect', () => publisher.isConnected);
      for (let i = 0; i < 5; i++) tracks.video.sendMessageBinary(rtpPacket(ssrc.video, i, 300, 100));
      await waitUntil('RTP at the server', () => received.length === 5);
      expect(plis).toBe(0);
      expect(publisher.requestKeyframe()).toBe(true);
      await waitUntil('a PLI at the publisher', () => plis === 1, { timeoutMs: 3_000 });
      // And the rate it may send at, asked for once connected.
      expect(remb.length).toBeGreaterThan(0);
      expect(Math.abs(remb[0]! - PUBLISHER_MAX_BITRATE)).toBeLessThan(PUBLISHER_MAX_BITRATE * 0.01);
    } finally {
      publisher.close();
      pc.close();
    }
    expect(publisher.requestKeyframe()).toBe(false);
  });
});
