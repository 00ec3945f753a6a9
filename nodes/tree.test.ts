import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startNodeExporter } from '../servers/node-exporter.ts';
import { evalJsonnet } from '../rules/jsonnet.ts';
import { instantQuery, startPrometheus } from '../servers/prometheus.ts';
import { startRedis, type RunningRedis } from '../servers/redis.ts';
import { waitUntil } from '../process/wait.ts';
import { keys, Topology } from '../topology/index.ts';
import { redisSnapshot } from '../test/redis.ts';
import { sample } from '../test/exposition-parser.ts';
import { json, metricsOf, startNode, type RunningNode } from '../test/nodes.ts';
import { type Viewer, WhepError, watch } from '../viewers/whep-client.ts';
import { POOL_FULL_RETRY_AFTER_S } from './whep-viewers.ts';

/**
 * The whole tree with real processes: Redis, `canopy node injection|relay|egress`
 * (each egress and relay with its real forwarder), real RTP on loopback.
 */

let redis: RunningRedis;
let r: Redis;
let topo: Topology;
let inj: RunningNode;
let relay: RunningNode;
let e1: RunningNode;
let e2: RunningNode;
let e3: RunningNode;
const viewers: Viewer[] = [];
const base = 21_000 + Math.floor(Math.random() * 80) * 100;

// Exact packet counts: the raw-rate source (the encoded one's rates follow its encoder).
const SYNTHETIC = ['--source', 'synthetic'];
const SESS_A = { sessionId: 'sess-a', audioSsrc: 1111, videoSsrc: 2222 };
const SESS_B = { sessionId: 'sess-b', audioSsrc: 3333, videoSsrc: 4444 };

/** A real WHEP viewer (node-datachannel) of `session` on `node`. */
async function viewer(node: RunningNode, session: string): Promise<Viewer> {
  const v = await watch(`${node.url}/whep/${session}`, { timeoutMs: 10_000 });
  viewers.push(v);
  expect(v.location).toMatch(new RegExp(`^${node.url}/whep/${session}/viewers/v-[0-9a-f]{16}$`));
  return v;
}

/** Packets of `ssrc` a viewer received on the stream that carries it. */
const got = (v: Viewer, t: 'audio' | 'video', ssrc: number) =>
  v.counts()[t].ssrc === ssrc ? v.counts()[t].packets : 0;

async function mountpoints(
  node: RunningNode,
): Promise<
  Array<{ sessionId: string; viewers: number; received: { audio: { packets: number }; video: { packets: number } } }>
> {
  return (await json(`${node.url}/sessions`)).body.sessions;
}

async function received(node: RunningNode, session: string, t: 'audio' | 'video'): Promise<number> {
  return (await mountpoints(node)).find((m) => m.sessionId === session)?.received[t].packets ?? 0;
}

async function destinations(): Promise<string[]> {
  return (await json(`${relay.url}/destinations`)).body.destinations.map((d: { id: string }) => d.id).sort();
}

beforeAll(async () => {
  redis = await startRedis();
  r = new Redis(redis.url);
  topo = new Topology(r, 'tree-1');
  inj = await startNode({ type: 'injection', id: 'injection-1', redisUrl: redis.url, extra: SYNTHETIC });
  relay = await startNode({
    type: 'relay',
    id: 'relay-1',
    redisUrl: redis.url,
    extra: ['--parent-slot', 'injection-1-s0', '--slots', '2'],
  });
  [e1, e2, e3] = await Promise.all([
    startNode({
      type: 'egress',
      id: 'egress-1',
      redisUrl: redis.url,
      extra: ['--parent-slot', 'relay-1-s0', '--port-range', `${base}-${base + 49}`],
    }),
    startNode({
      type: 'egress',
      id: 'egress-2',
      redisUrl: redis.url,
      extra: ['--parent-slot', 'relay-1-s0', '--port-range', `${base + 50}-${base + 99}`],
    }),
    // A tiny pool: two mountpoints (4 ports) and one viewer fill it.
    startNode({
      type: 'egress',
      id: 'egress-3',
      redisUrl: redis.url,
      extra: ['--port-range', `${base + 100}-${base + 104}`],
    }),
  ]);
}, 60_000);

afterAll(async () => {
  for (const v of viewers) await v.close({ sendDelete: false });
  await Promise.all([e1, e2, e3, relay, inj].filter(Boolean).map((n) => n.child.stop()));
  r?.disconnect();
  await redis?.stop();
});

describe('a tree of real nodes', () => {
  it('carries a session from injection through the relay to both egress nodes and their viewers', async () => {
    await waitUntil(
      'relay-1 to forward to egress-1 and egress-2',
      async () => (await destinations()).join() === 'egress-1,egress-2',
    );
    await waitUntil(
      'injection-1 to see relay-1',
      async () => (await json(`${inj.url}/sessions`)).body.children.join() === 'relay-1',
    );

    // The source waits 5 s, so mountpoints and viewers (ICE, DTLS) are in place before the first packet.
    const start = await json(`${inj.url}/sessions`, {
      method: 'POST',
      body: JSON.stringify({ ...SESS_A, generator: { delayMs: 5000, durationMs: 2000 } }),
    });
    expect(start.status, JSON.stringify(start.body)).toBe(201);
    expect(start.headers.get('location')).toBe('/sessions/sess-a');
    for (const e of [e1, e2, e3])
      await waitUntil(
        `${e.id} to open sess-a`,
        async () => (await mountpoints(e)).some((m) => m.sessionId === 'sess-a'),
        { timeoutMs: 5_000 },
      );
    const v1 = await viewer(e1, 'sess-a');
    const v2 = await viewer(e2, 'sess-a');

    const want = { audio: 100, video: 500 }; // 2 s at 50 and 250 packets/s
    await waitUntil(
      'the source to finish',
      async () => {
        const s = (await json(`${inj.url}/sessions`)).body.sessions.find((x: { id: string }) => x.id === 'sess-a');
        return s.generated.audio === want.audio && s.generated.video === want.video;
      },
      { timeoutMs: 12_000 },
    );
    await new Promise((res) => setTimeout(res, 500)); // the last packets cross two forwarders

    const [mi, mr, m1, m2] = await Promise.all([metricsOf(inj), metricsOf(relay), metricsOf(e1), metricsOf(e2)]);
    const figures: Record<string, unknown> = {};
    for (const t of ['audio', 'video'] as const) {
      const ssrc = String(t === 'audio' ? SESS_A.audioSsrc : SESS_A.videoSsrc);
      const sent = sample(mi, 'media_tree_injection_rtp_packets_sent_total', {
        stream_type: t,
        session_id: 'sess-a',
        ssrc,
      });
      const forwarded = sample(mr, 'media_tree_relay_rtp_packets_forwarded_total', { stream_type: t });
      const r1 = sample(m1, 'media_tree_egress_rtp_packets_received_total', { stream_type: t, ssrc });
      const r2 = sample(m2, 'media_tree_egress_rtp_packets_received_total', { stream_type: t, ssrc });
      const view1 = got(v1, t, Number(ssrc));
      const view2 = got(v2, t, Number(ssrc));
      figures[t] = {
        injectionSent: sent,
        relayForwarded: forwarded,
        egress1: r1,
        egress2: r2,
        viewer1: view1,
        viewer2: view2,
      };
      // One child: the injection sends each generated packet once.
      expect(sent).toBe(want[t]);
      // Loopback: allow 2 % loss per hop, never more than was sent.
      const within = (n: number | undefined, of: number) => {
        expect(n).toBeLessThanOrEqual(of);
        expect(n).toBeGreaterThanOrEqual(Math.floor(of * 0.98));
      };
      within(forwarded, 2 * want[t]); // two destinations
      within(r1, want[t]);
      within(r2, want[t]);
      within(view1, want[t]);
      within(view2, want[t]);
    }
    console.log(`hop counts sess-a: ${JSON.stringify(figures)}`);
    expect(sample(m1, 'media_tree_egress_active_viewers', { session_id: 'sess-a' })).toBe(1);
    expect(sample(m1, 'media_tree_egress_active_mountpoints')).toBe(1);
    expect(sample(m1, 'media_tree_egress_port_pool_allocated')).toBe(3); // 2 mountpoint ports + 1 viewer
    expect(sample(m1, 'media_tree_egress_port_pool_available')).toBe(47);
    expect(sample(mi, 'media_tree_injection_active_sessions', { room_id: 'all' })).toBe(1);
    expect(sample(mi, 'media_tree_injection_children_count')).toBe(1);
    expect(sample(mr, 'media_tree_relay_destinations_count', { stream_type: 'video' })).toBe(2);
    expect(sample(mr, 'media_tree_relay_forwarder_state', { pipeline: 'video' })).toBe(3);
  });

  it('follows children-added to a third egress node, and children-removed stops it', async () => {
    await topo.attachChildren('relay-1-s0', ['egress-3']);
    await waitUntil('relay-1 to add egress-3', async () => (await destinations()).includes('egress-3'), {
      timeoutMs: 3_000,
    });
    expect((await json(`${inj.url}/sessions`, { method: 'POST', body: JSON.stringify(SESS_B) })).status).toBe(201);
    await waitUntil('egress-3 to receive sess-b', async () => (await received(e3, 'sess-b', 'video')) > 100, {
      timeoutMs: 5_000,
    });

    await topo.detachChildren('relay-1-s0', ['egress-3']);
    await waitUntil('relay-1 to remove egress-3', async () => !(await destinations()).includes('egress-3'), {
      timeoutMs: 3_000,
    });
    await new Promise((res) => setTimeout(res, 200));
    const [stop3, stop1] = [await received(e3, 'sess-b', 'video'), await received(e1, 'sess-b', 'video')];
    await new Promise((res) => setTimeout(res, 1_000));
    const [later3, later1] = [await received(e3, 'sess-b', 'video'), await received(e1, 'sess-b', 'video')];
    console.log(
      `egress-3 sess-b video: ${stop3} at children-removed, ${later3} a second later; egress-1 ${stop1} -> ${later1}`,
    );
    expect(later3).toBe(stop3);
    expect(later1 - stop1).toBeGreaterThan(150); // ~250/s still flowing to the others
  });

  it('a relay killed with SIGKILL and restarted forwards to the same children', async () => {
    const before = await received(e1, 'sess-b', 'video');
    relay.child.process.kill('SIGKILL');
    await new Promise((res) => relay.child.process.once('exit', res));
    // Same ports: this only starts if the old forwarder died with its app (--die-with-parent).
    relay = await startNode({
      type: 'relay',
      id: 'relay-1',
      redisUrl: redis.url,
      port: relay.port,
      fwdAudio: relay.fwdAudio,
      fwdVideo: relay.fwdVideo,
      extra: ['--parent-slot', 'injection-1-s0', '--slots', '2'],
    });
    await waitUntil(
      'the restarted relay to rebuild its destinations',
      async () => (await destinations()).join() === 'egress-1,egress-2',
      { timeoutMs: 5_000 },
    );
    expect(await topo.availableSlots()).toEqual(['relay-1-s0', 'relay-1-s1']);
    const mid = await received(e1, 'sess-b', 'video');
    await waitUntil(
      'sess-b to reach egress-1 and egress-2 again',
      async () => (await received(e1, 'sess-b', 'video')) > mid + 100 && (await received(e2, 'sess-b', 'video')) > 0,
      { timeoutMs: 5_000 },
    );
    expect(mid).toBeGreaterThanOrEqual(before);
  });

  it('a relay whose forwarder dies restarts it and adds its destinations again (onReconnect)', async () => {
    const fwdPid = Number(
      execFileSync('pgrep', ['-P', String(relay.child.process.pid), '-f', 'media-tree-forwarder'], {
        encoding: 'utf8',
      }).trim(),
    );
    process.kill(fwdPid, 'SIGKILL');
    await waitUntil(
      'a new forwarder child',
      () => {
        try {
          return (
            Number(
              execFileSync('pgrep', ['-P', String(relay.child.process.pid), '-f', 'media-tree-forwarder'], {
                encoding: 'utf8',
              }).trim(),
            ) !== fwdPid
          );
        } catch {
          return false;
        }
      },
      { timeoutMs: 5_000 },
    );
    await waitUntil('its destinations to be back', async () => (await destinations()).join() === 'egress-1,egress-2', {
      timeoutMs: 5_000,
    });
    const mid = await received(e2, 'sess-b', 'video');
    await waitUntil('sess-b to flow again', async () => (await received(e2, 'sess-b', 'video')) > mid + 100, {
      timeoutMs: 5_000,
    });
    expect(relay.child.output()).toMatch(/forwarder exited/);
  });

  it('an egress node restarted after SIGKILL rediscovers the live sessions; its viewers come back through WHEP', async () => {
    const v = await viewer(e1, 'sess-b');
    await waitUntil('the viewer to receive', () => got(v, 'video', SESS_B.videoSsrc) > 50, { timeoutMs: 3_000 });
    e1.child.process.kill('SIGKILL');
    await new Promise((res) => e1.child.process.once('exit', res));
    e1 = await startNode({
      type: 'egress',
      id: 'egress-1',
      redisUrl: redis.url,
      port: e1.port,
      fwdAudio: e1.fwdAudio,
      fwdVideo: e1.fwdVideo,
      extra: ['--parent-slot', 'relay-1-s0', '--port-range', `${base}-${base + 49}`],
    });
    // The PeerConnections died with the process: their records and ports are returned.
    const mps = await mountpoints(e1);
    expect(mps.map((m) => [m.sessionId, m.viewers])).toEqual([
      ['sess-a', 0],
      ['sess-b', 0],
    ]);
    expect(await topo.viewers('egress-1')).toEqual([]);
    const again = await viewer(e1, 'sess-b');
    await waitUntil('the viewer, back through WHEP, to receive', () => got(again, 'video', SESS_B.videoSsrc) > 100, {
      timeoutMs: 5_000,
    });
    await waitUntil('the new mountpoint to count sess-b', async () => (await received(e1, 'sess-b', 'video')) > 100, {
      timeoutMs: 5_000,
    });
    expect(await destinations()).toEqual(['egress-1', 'egress-2']);
  });

  it('an injection node restarted after SIGKILL resumes its sessions and feeds the same relay', async () => {
    inj.child.process.kill('SIGKILL');
    await new Promise((res) => inj.child.process.once('exit', res));
    await new Promise((res) => setTimeout(res, 200));
    const paused = await received(e1, 'sess-b', 'video');
    inj = await startNode({
      type: 'injection',
      id: 'injection-1',
      redisUrl: redis.url,
      port: inj.port,
      extra: SYNTHETIC,
    });
    const state = (await json(`${inj.url}/sessions`)).body;
    expect(state.sessions.map((x: { id: string }) => x.id)).toEqual(['sess-a', 'sess-b']);
    expect(state.children).toEqual(['relay-1']);
    await waitUntil('sess-b to flow again', async () => (await received(e1, 'sess-b', 'video')) > paused + 100, {
      timeoutMs: 5_000,
    });
  });

  it('refuses bad input to every HTTP API with a clear 4xx JSON body, and changes nothing in Redis', async () => {
    const before = await redisSnapshot(r);
    const post = (url: string, body: string) => json(url, { method: 'POST', body });
    const cases: Array<[string, Promise<{ status: number; body: any }>, number, RegExp]> = [
      ['injection: not JSON', post(`${inj.url}/sessions`, '{"sessionId":'), 400, /not valid JSON/],
      [
        'injection: CRLF in the session id',
        post(
          `${inj.url}/sessions`,
          JSON.stringify({ ...SESS_A, sessionId: 'tree-1\r\nFLUSHALL', audioSsrc: 7, videoSsrc: 8 }),
        ),
        400,
        /sessionId/,
      ],
      [
        'injection: SSRC out of range',
        post(`${inj.url}/sessions`, JSON.stringify({ sessionId: 'sess-x', audioSsrc: -1, videoSsrc: 2 ** 32 })),
        400,
        /bad session/,
      ],
      [
        'injection: same SSRC twice',
        post(`${inj.url}/sessions`, JSON.stringify({ sessionId: 'sess-x', audioSsrc: 9, videoSsrc: 9 })),
        400,
        /bad session/,
      ],
      [
        'injection: unknown field',
        post(`${inj.url}/sessions`, JSON.stringify({ sessionId: 'sess-x', audioSsrc: 9, videoSsrc: 10, room: 'x' })),
        400,
        /bad session/,
      ],
      ['injection: missing fields', post(`${inj.url}/sessions`, '{}'), 400, /bad session/],
      ['injection: an array body', post(`${inj.url}/sessions`, '[]'), 400, /bad session/],
      [
        'injection: SSRC of a live session',
        post(
          `${inj.url}/sessions`,
          JSON.stringify({ sessionId: 'sess-x', audioSsrc: SESS_B.audioSsrc, videoSsrc: 10 }),
        ),
        409,
        /SSRC 3333/,
      ],
      [
        'injection: session id taken',
        post(`${inj.url}/sessions`, JSON.stringify({ ...SESS_A, audioSsrc: 7, videoSsrc: 8 })),
        409,
        /already exists|SSRC/,
      ],
      [
        'injection: body over 16 KiB',
        post(`${inj.url}/sessions`, JSON.stringify({ sessionId: 'x'.repeat(20_000) })),
        413,
        /16 KiB/,
      ],
      [
        'injection: stop a bad id',
        json(`${inj.url}/sessions/BAD%0D%0AFLUSHALL`, { method: 'DELETE' }),
        400,
        /bad session id/,
      ],
      [
        'injection: stop an unknown session',
        json(`${inj.url}/sessions/sess-nope`, { method: 'DELETE' }),
        404,
        /no session/,
      ],
      // The WHEP server's own refusals (bad offers, 404, 415) are nodes/whep.test.ts's.
      [
        'egress: the old JSON viewer API',
        post(`${e2.url}/whep/sess-a`, JSON.stringify({ host: '127.0.0.1', audioPort: 4000, videoPort: 4002 })),
        415,
        /application\/sdp/,
      ],
      [
        'egress: unknown viewer',
        json(`${e2.url}/whep/sess-a/viewers/v-0000000000000000`, { method: 'DELETE' }),
        404,
        /no viewer/,
      ],
      [
        'egress: bad viewer id',
        json(`${e2.url}/whep/sess-a/viewers/..%2F..`, { method: 'DELETE' }),
        400,
        /bad viewer id/,
      ],
      ['relay: unknown route', post(`${relay.url}/destinations`, '{}'), 404, /no route/],
    ];
    for (const [what, res, status, message] of cases) {
      const got = await res;
      expect(got.status, `${what}: ${JSON.stringify(got.body)}`).toBe(status);
      expect(got.body.error, what).toMatch(message);
    }

    // Redis-derived input: bad events are logged and ignored; the nodes keep serving.
    const dests = await destinations();
    for (const payload of [
      'not json',
      '{"type":"children-added","childIds":["egress-9\\r\\nFLUSHALL"]}',
      '{"type":"children-removed","childIds":["egress-1"]}',
      '{"type":"children-added","childIds":["egress-3"]}',
      '{"type":"boom"}',
    ]) {
      await r.publish(keys.topologyChannel('relay-1-s0'), payload);
    }
    await r.publish(keys.sessionsChannel('tree-1'), '{"type":"session-ended","sessionId":"sess-a","x":1}');
    await new Promise((res) => setTimeout(res, 300));
    expect(await destinations()).toEqual(dests);
    expect((await mountpoints(e2)).map((m) => m.sessionId)).toEqual(['sess-a', 'sess-b']);
    for (const n of [inj, relay, e1, e2, e3]) expect((await fetch(`${n.url}/readyz`)).status).toBe(200);
    expect(relay.child.output()).toMatch(/ignoring a bad topology event/);
    expect(relay.child.output()).toMatch(/children-removed for a node still in children/);
    expect(await redisSnapshot(r)).toBe(before);
  });

  it('answers 503 with a clear body when the pool is full or the node drains', async () => {
    // egress-3: 5 ports, 4 held by the two mountpoints.
    await viewer(e3, 'sess-b');
    const before = await redisSnapshot(r);
    const full = await watch(`${e3.url}/whep/sess-b`, { timeoutMs: 5_000 }).catch((e) => e);
    expect(full).toBeInstanceOf(WhepError);
    expect(full.status).toBe(503);
    expect(full.message).toMatch(/port pool exhausted/);
    // A WHEP client is told when to try again.
    expect(full.retryAfterS).toBe(POOL_FULL_RETRY_AFTER_S);
    expect(sample(await metricsOf(e3), 'media_tree_egress_port_pool_utilization_percent')).toBe(100);
    expect(await redisSnapshot(r)).toBe(before);

    await topo.setDraining('egress-2', true);
    const drained = await watch(`${e2.url}/whep/sess-b`, { timeoutMs: 5_000 }).catch((e) => e);
    expect(drained.status).toBe(503);
    expect(drained.message).toMatch(/draining/);
    await topo.setDraining('egress-2', false);
  });

  it('on SIGTERM an egress node deregisters and its relay stops sending to it; a stopped session leaves no series', async () => {
    await e2.child.stop();
    expect(e2.child.process.exitCode).toBe(0);
    expect(await topo.nodeIds('egress')).toEqual(['egress-1', 'egress-3']);
    expect(await topo.children('relay-1-s0')).toEqual(['egress-1']);
    await waitUntil('relay-1 to drop egress-2', async () => (await destinations()).join() === 'egress-1', {
      timeoutMs: 3_000,
    });
    expect(e2.child.output()).toMatch(/"msg":"stopped"/);

    expect((await json(`${inj.url}/sessions/sess-a`, { method: 'DELETE' })).status).toBe(204);
    await waitUntil(
      'egress-1 to close sess-a',
      async () => !(await mountpoints(e1)).some((m) => m.sessionId === 'sess-a'),
      { timeoutMs: 5_000 },
    );
    const m1 = await metricsOf(e1);
    expect(m1).not.toMatch(/session_id="sess-a"|ssrc="1111"|ssrc="2222"/);
    expect(await metricsOf(inj)).not.toMatch(/session_id="sess-a"/);
    expect((await topo.viewers('egress-1')).map((v) => v.sessionId)).toEqual(['sess-b']);
  });
});

/** The seed's PrometheusClient queries, verbatim but for the ids. */
const seedQueries = (treeId: string, nodeId: string, streamType = 'video') => ({
  getAvgCPU: `
      avg(
        avg_over_time(
          (1 - rate(node_cpu_seconds_total{mode="idle",tree_id="${treeId}",node_type="egress"}[1m]))[5m:]
        )
      ) * 100
    `,
  getMaxPortPoolUtilization: `
      max(
        media_tree_egress_port_pool_utilization_percent{tree_id="${treeId}"}
      )
    `,
  getTotalViewers: `
      sum(
        media_tree_egress_active_viewers{tree_id="${treeId}"}
      )
    `,
  getDroppedPacketsRate: `
      sum(
        rate(node_network_receive_drop_total{tree_id="${treeId}",node_type="egress",device!="lo"}[5m])
      )
    `,
  getMemoryUsage: `
      (1 - (
        node_memory_MemAvailable_bytes{node_id="${nodeId}"} /
        node_memory_MemTotal_bytes{node_id="${nodeId}"}
      )) * 100
    `,
  getActiveSessions: `
      sum(
        media_tree_injection_active_sessions{tree_id="${treeId}"}
      )
    `,
  getRTPThroughput: `
      rate(media_tree_egress_rtp_packets_received_total{node_id="${nodeId}",stream_type="${streamType}"}[1m])
    `,
  getUnhealthyNodes: `
      (
        (1 - rate(node_cpu_seconds_total{mode="idle",tree_id="${treeId}",node_type="egress"}[1m])) * 100 > 90
        or
        (1 - (node_memory_MemAvailable_bytes{tree_id="${treeId}",node_type="egress"} / node_memory_MemTotal_bytes{tree_id="${treeId}",node_type="egress"})) * 100 > 90
      )
    `,
});

describe('scraped by a real Prometheus', () => {
  it('answers every seed PrometheusClient query once traffic flows', async () => {
    const ne = await startNodeExporter();
    const hostPort = (url: string) => url.replace(/^http:\/\//, '');
    const target = (url: string, nodeId: string, nodeType: string) => ({
      targets: [hostPort(url)],
      labels: { tree_id: 'tree-1', node_id: nodeId, node_type: nodeType },
    });
    // The one node_exporter of this machine stands for each egress node's.
    const targets: Record<string, unknown[]> = {
      'node-exporter': [target(ne.url, 'egress-1', 'egress'), target(ne.url, 'egress-3', 'egress')],
      'media-tree-injection': [target(inj.url, 'injection-1', 'injection')],
      'media-tree-relay': [target(relay.url, 'relay-1', 'relay')],
      'media-tree-egress': [target(e1.url, 'egress-1', 'egress'), target(e3.url, 'egress-3', 'egress')],
    };
    const dir = mkdtempSync(join(tmpdir(), 'canopy-prom-'));
    for (const [job, list] of Object.entries(targets)) {
      mkdirSync(join(dir, 'targets', job), { recursive: true });
      writeFileSync(join(dir, 'targets', job, 'nodes.json'), JSON.stringify(list));
    }
    // The shipped config's source, with a 1 s scrape and no rules or Alertmanager.
    const config = evalJsonnet(
      `(import 'deploy/prometheus.libsonnet').new(scrapeInterval='1s', evaluationInterval='1s', ruleFiles=[], targetsDir='${join(dir, 'targets')}', alertmanagers=[])`,
    );
    const prom = await startPrometheus({ dir, config: JSON.stringify(config) });
    const query = async (promql: string) => (await instantQuery(prom.url, promql)).result;
    try {
      const q = seedQueries('tree-1', 'egress-1');
      const answers: Record<string, number | string> = {};
      for (const [name, promql] of Object.entries(q)) {
        if (name === 'getUnhealthyNodes') continue;
        await waitUntil(
          `${name} to answer`,
          async () => {
            const res = await query(promql);
            if (res.length === 0) return false;
            answers[name] = Number(res[0]!.value[1]);
            return true;
          },
          { timeoutMs: 20_000, intervalMs: 250 },
        );
      }
      expect(answers.getActiveSessions).toBe(1); // sess-b
      expect(answers.getTotalViewers).toBe(2); // one on each of egress-1 and egress-3
      expect(answers.getMaxPortPoolUtilization).toBe(60); // egress-3: sess-b's mountpoint (2) and a viewer (1) of 5 ports
      // rate() over [1m] seconds after Prometheus started covers a few samples and
      // extrapolates little: small but above 0. Over a window the samples fill, ~250/s.
      expect(answers.getRTPThroughput).toBeGreaterThan(0);
      let recent = 0;
      await waitUntil(
        'a 5 s rate of ~250 video packets/s',
        async () => {
          const res = await query(
            'rate(media_tree_egress_rtp_packets_received_total{node_id="egress-1",stream_type="video"}[5s])',
          );
          recent = Number(res[0]?.value[1] ?? 0);
          return recent > 200 && recent < 300;
        },
        { timeoutMs: 10_000, intervalMs: 500 },
      );
      answers.rate5s = recent;
      expect(answers.getMemoryUsage).toBeGreaterThan(0);
      expect(answers.getAvgCPU).toBeGreaterThanOrEqual(0);
      expect(answers.getDroppedPacketsRate).toBeGreaterThanOrEqual(0);

      // Empty by design unless an egress node is above 90 % CPU or memory: the query is
      // accepted, and the series it selects exist with the labels it returns (node_id).
      const unhealthy = await query(q.getUnhealthyNodes);
      expect(Array.isArray(unhealthy)).toBe(true);
      for (const m of [
        'node_cpu_seconds_total{mode="idle",tree_id="tree-1",node_type="egress"}',
        'node_memory_MemAvailable_bytes{tree_id="tree-1",node_type="egress"}',
      ]) {
        const got = await query(m);
        expect(new Set(got.map((x) => x.metric.node_id))).toEqual(new Set(['egress-1', 'egress-3']));
      }
      console.log(`seed queries: ${JSON.stringify(answers)}`);
      // The same query with the threshold at 0 returns every egress node, by node_id.
      const all = await query(q.getUnhealthyNodes.replaceAll('> 90', '>= 0'));
      expect(new Set(all.map((x) => x.metric.node_id))).toEqual(new Set(['egress-1', 'egress-3']));
      // No exported_* duplicates: the apps never expose the target labels.
      expect(await query('count({__name__=~"media_tree_.+", exported_tree_id!=""})')).toEqual([]);
    } finally {
      await prom.child.stop();
      await ne.child.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
