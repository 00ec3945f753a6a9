import { spawnSync } from 'node:child_process';
import { randomInt } from 'node:crypto';
import { createSocket, type RemoteInfo, type Socket } from 'node:dgram';
import { existsSync, readFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { Redis } from 'ioredis';
import { ENCODER_BIN } from '../forwarder/process.ts';
import { ENCODING, encoderArgs, encoderMissing } from '../nodes/encoded-source.ts';
import { PAYLOAD_TYPE } from '../nodes/rtp-source.ts';
import { startChild, type Child } from '../process/child.ts';
import { netnsAllowed, StackNetwork } from '../process/netns.ts';
import { treeCpuByName, type UdpDrops, udpDrops } from '../process/proc.ts';
import { waitUntil } from '../process/wait.ts';
import { buildForwarder, FORWARDER_BIN } from '../servers/forwarder.ts';
import { janusMissing, type RunningJanus, startJanus } from '../servers/janus.ts';
import { startRedis, type RunningRedis } from '../servers/redis.ts';
import { json, type RunningNode, startNode } from '../test/nodes.ts';
import { Topology } from '../topology/index.ts';
import type { Stream, StreamCounts } from '../viewers/receiver.ts';
import { watch } from '../viewers/whep-client.ts';
import { cpuPerViewerMinute, DELIVERY_TARGET, type Delivery, delivery, type Packets } from './egress-figures.ts';
import { createdSchema, infoSchema, JanusSession, pluginData } from './janus-api.ts';
import { watchJanus } from './janus-viewer.ts';
import type { BenchResult } from './result.ts';

/**
 * `canopy bench egress`: CPU seconds per viewer-minute of one egress node
 * (the node app and its forwarder) serving N real viewers of a 640x360 VP8 +
 * Opus session, against Debian's Janus 1.1.2 streaming plugin serving as many
 * viewers of the same RTP, in the same run. One encoder feeds both servers
 * all along (its packets copied to each); the sides take turns with their
 * viewers (both at once would not fit two cores), each measured over the same
 * window, and at each size the side that goes first alternates. Janus runs
 * in a network namespace of its own (libnice gathers nothing on loopback), its
 * viewers reach it over the veth; ours runs and is watched on loopback.
 * RATIO = ours / Janus at the largest size (lower is better; target <= 0.8),
 * with every viewer of both receiving >= 99.9 % of the packets sent.
 */

export interface EgressBenchOptions {
  /** Viewer counts, measured in this order. */
  viewers: number[];
  /** Measuring window per side and size. */
  seconds: number;
  /** After the last viewer connected, before the window. */
  warmupSeconds: number;
  /** Janus's `event_loops` (0: its default, a thread per handle). */
  janusEventLoops: number;
  /** Viewers started per second. */
  rate?: number;
}

const SESSION = 'bench';
const TREE = 'tree-1';
const MOUNTPOINT = 1;
/** The mids of Janus's mountpoint (its offer carries them). */
const MID: Record<Stream, string> = { audio: 'a', video: 'v' };
const STREAMS: Stream[] = ['audio', 'video'];

type Side = 'ours' | 'janus';
interface SideResult {
  connectS: number;
  cpuS: number;
  windowMs: number;
  perViewerMinute: number;
  /** CPU seconds in the window by process name. */
  byProcess: Record<string, number>;
  delivery: Delivery;
  /** UDP datagrams dropped in the window (full receive buffers and other errors), by namespace. */
  drops: Record<'janusNs' | 'here', number>;
}

interface ViewerLike {
  counts(): Record<Stream, StreamCounts>;
  close(): Promise<void>;
}

export async function benchEgress(o: EgressBenchOptions, log: (l: string) => void): Promise<BenchResult> {
  const missing = [
    netnsAllowed() ? null : 'root with ip, nft and tc (Janus runs in a network namespace)',
    janusMissing(),
    encoderMissing(),
  ].filter(Boolean);
  if (missing.length) throw new Error(`canopy bench egress needs: ${missing.join('; ')}`);
  if (!existsSync(FORWARDER_BIN)) buildForwarder();
  const most = Math.max(...o.viewers);
  const rate = o.rate ?? 25;
  const ssrc = { audioSsrc: randomInt(1, 2 ** 31), videoSsrc: randomInt(1, 2 ** 31) };

  const cleanups: Array<() => Promise<void> | void> = [];
  try {
    // Ours: Redis and one egress node (a pool port per viewer), the session in Redis as an injection records it.
    const redis: RunningRedis = await startRedis();
    cleanups.push(() => redis.stop());
    const r = new Redis(redis.url, { lazyConnect: true, maxRetriesPerRequest: 1 });
    cleanups.push(() => r.disconnect());
    // Below the ephemeral range the viewers bind in, at a place of our own.
    const base = 12_000 + (process.pid % 60) * 250;
    const egress: RunningNode = await startNode({
      type: 'egress',
      id: 'egress-1',
      redisUrl: redis.url,
      extra: ['--port-range', `${base}-${base + most + 9}`, '--log-level', 'warn'],
    });
    cleanups.push(() => egress.child.stop());
    await new Topology(r, TREE).startSession({ id: SESSION, injection: 'injection-1', ...ssrc });
    await waitUntil('the egress node to open the mountpoint', async () => {
      const s = (await json(`${egress.url}/sessions`)).body as { sessions: Array<{ sessionId: string }> };
      return s.sessions.some((x) => x.sessionId === SESSION);
    });

    // Janus: its own namespace, reached over a veth from here.
    const net = await StackNetwork.create();
    cleanups.push(() => net.destroy());
    const link = await net.add('janus');
    const janus: RunningJanus = await startJanus({
      exec: link.exec,
      host: link.host,
      iface: 'eth0',
      eventLoops: o.janusEventLoops,
    });
    cleanups.push(() => janus.stop());
    const api = await JanusSession.create(janus.url);
    cleanups.push(() => api.close());
    const control = await api.attach();
    const created = pluginData(
      await api.request(control, {
        request: 'create',
        type: 'rtp',
        id: MOUNTPOINT,
        name: SESSION,
        media: STREAMS.map((s) => ({
          type: s,
          mid: MID[s],
          port: 0,
          pt: PAYLOAD_TYPE[s],
          codec: s === 'audio' ? 'opus' : 'vp8',
          iface: link.host,
        })),
      }),
      createdSchema,
    );
    const janusPort = (s: Stream) => created.stream.ports.find((p) => p.type === s)!.port;

    // One encoder, its packets copied to both servers.
    const fan = await Fanout.start(ssrc, [
      { host: '127.0.0.1', audio: egress.fwdAudio!, video: egress.fwdVideo! },
      { host: link.host, audio: janusPort('audio'), video: janusPort('video') },
    ]);
    cleanups.push(() => fan.stop());
    await waitUntil(
      'both servers to receive the encoded session',
      async () => {
        const ours = (await json(`${egress.url}/sessions`)).body as {
          sessions: Array<{ received: Record<Stream, { packets: number }> | null }>;
        };
        const info = pluginData(await api.request(control, { request: 'info', id: MOUNTPOINT }), infoSchema);
        return (
          (ours.sessions[0]?.received?.video.packets ?? 0) > 30 &&
          info.info.media.every((m) => m.age_ms !== undefined && m.age_ms < 500)
        );
      },
      { timeoutMs: 15_000 },
    );

    const e = ENCODING;
    log(
      `egress bench: ${e.width}x${e.height}@${e.fps} VP8 ${e.videoBitrate / 1000} kbit/s + Opus ${e.audioBitrate / 1000} kbit/s, ` +
        `viewers ${o.viewers.join(', ')}, a ${o.seconds} s window per side after ${o.warmupSeconds} s of warm-up; ` +
        `ours: the egress node and its forwarder, on loopback; Janus 1.1.2 streaming plugin (event_loops ${o.janusEventLoops}) ` +
        `in namespace ${link.ns} (${link.host}), its viewers over a veth`,
    );

    const starters: Record<Side, () => Promise<ViewerLike>> = {
      ours: async () => {
        const v = await watch(`${egress.url}/whep/${SESSION}`, { timeoutMs: 20_000 });
        return { counts: () => v.counts(), close: () => v.close() };
      },
      janus: () =>
        watchJanus(api, MOUNTPOINT, {
          bindAddress: net.gateway,
          streamOfMid: { [MID.audio]: 'audio', [MID.video]: 'video' },
          timeoutMs: 20_000,
        }),
    };
    const servers: Record<Side, Child> = { ours: egress.child, janus: janus.child };
    const drops = () => ({ janusNs: udpDropsIn(link.exec), here: udpDrops(readFileSync('/proc/net/snmp', 'utf8')) });

    const results: Array<{ n: number } & Record<Side, SideResult>> = [];
    for (const [i, n] of o.viewers.entries()) {
      const order: Side[] = i % 2 === 0 ? ['ours', 'janus'] : ['janus', 'ours'];
      const at = {} as Record<Side, SideResult>;
      for (const side of order) {
        at[side] = await measure(side, n, starters[side], servers[side], fan, drops, o, rate, log);
        log(`  ${String(n).padStart(4)} viewers ${side.padEnd(5)}: ${describe(at[side])}`);
      }
      results.push({ n, ...at });
      log(
        `  ${String(n).padStart(4)} viewers ours/janus: ${(at.ours.perViewerMinute / at.janus.perViewerMinute).toFixed(4)}`,
      );
    }

    log('viewers  ours CPU-s/viewer-min  janus CPU-s/viewer-min  ours/janus  min delivery ours  min delivery janus');
    for (const x of results)
      log(
        `${String(x.n).padStart(7)}  ${x.ours.perViewerMinute.toFixed(4).padStart(21)}  ${x.janus.perViewerMinute.toFixed(4).padStart(22)}  ` +
          `${(x.ours.perViewerMinute / x.janus.perViewerMinute).toFixed(4).padStart(10)}  ${pct(x.ours.delivery.min.both).padStart(17)}  ${pct(x.janus.delivery.min.both).padStart(18)}`,
      );
    const short = results.flatMap((x) =>
      (['ours', 'janus'] as const).filter((s) => x[s].delivery.below > 0).map((s) => `${s} at ${x.n}`),
    );
    log(
      short.length
        ? `delivery: BELOW ${pct(DELIVERY_TARGET)} for some viewers (${short.join(', ')}): those figures do not count as met`
        : `delivery: every viewer of both servers received >= ${pct(DELIVERY_TARGET)} of the packets sent, at every size`,
    );
    const last = results.find((x) => x.n === most)!;
    log(`ratio at ${most} viewers (target <= 0.8)`);
    return { ratio: last.ours.perViewerMinute / last.janus.perViewerMinute };
  } finally {
    for (const c of cleanups.reverse()) await Promise.resolve(c()).catch(() => {});
  }
}

const pct = (x: number) => `${(x * 100).toFixed(3)} %`;

function describe(r: SideResult): string {
  const d = r.delivery;
  return (
    `connected in ${r.connectS.toFixed(1)} s; CPU ${r.cpuS.toFixed(2)} s (${Object.entries(r.byProcess)
      .map(([k, v]) => `${k} ${v.toFixed(2)}`)
      .join(', ')}) in ${(r.windowMs / 1000).toFixed(1)} s ` +
    `= ${r.perViewerMinute.toFixed(4)} CPU-s per viewer-minute; delivery min ${pct(d.min.both)} ` +
    `(audio ${pct(d.min.audio)}, video ${pct(d.min.video)}), viewers below ${pct(DELIVERY_TARGET)}: ${d.below}; ` +
    `UDP datagrams dropped in the window (receive errors + full send buffers): ${r.drops.janusNs} in Janus's namespace, ${r.drops.here} in this one (the viewers, our egress, anything else here)`
  );
}

/** One side at one size: start the viewers, warm up, measure the window, end them. */
async function measure(
  side: Side,
  n: number,
  start: () => Promise<ViewerLike>,
  server: Child,
  fan: Fanout,
  drops: () => Record<'janusNs' | 'here', UdpDrops>,
  o: EgressBenchOptions,
  rate: number,
  log: (l: string) => void,
): Promise<SideResult> {
  const viewers: ViewerLike[] = [];
  const cpu = () => {
    if (server.process.exitCode !== null || server.process.signalCode !== null)
      throw new Error(
        `${side}: the server exited (${server.process.exitCode ?? server.process.signalCode}): ${server.output().trim().split('\n').slice(-8).join('\n')}`,
      );
    return treeCpuByName(server.process.pid!);
  };
  try {
    const t0 = performance.now();
    const starting: Promise<void>[] = [];
    const failures: string[] = [];
    for (let i = 0; i < n; i++) {
      const due = t0 + (i * 1000) / rate;
      if (due > performance.now()) await sleep(due - performance.now());
      starting.push(
        withRetries(start).then(
          (v) => void viewers.push(v),
          (err: unknown) => void failures.push((err as Error).message),
        ),
      );
    }
    await Promise.all(starting);
    cpu(); // still there
    if (failures.length)
      throw new Error(`${side}: ${failures.length} of ${n} viewers did not connect (first: ${failures[0]})`);
    const connectS = (performance.now() - t0) / 1000;
    await sleep(o.warmupSeconds * 1000);

    const read = () => ({
      at: performance.now(),
      cpu: cpu(),
      sent: fan.sent(),
      drops: drops(),
      viewers: viewers.map((v) => packetsOf(v.counts())),
    });
    const a = read();
    await sleep(o.seconds * 1000);
    const b = read();
    const windowMs = b.at - a.at;
    const byProcess = Object.fromEntries(Object.entries(b.cpu).map(([k, v]) => [k, v - (a.cpu[k] ?? 0)]));
    const cpuS = Object.values(byProcess).reduce((x, y) => x + y, 0);
    return {
      connectS,
      cpuS,
      windowMs,
      perViewerMinute: cpuPerViewerMinute(cpuS, n, windowMs),
      byProcess,
      drops: {
        janusNs: dropped(a.drops.janusNs, b.drops.janusNs),
        here: dropped(a.drops.here, b.drops.here),
      },
      delivery: delivery(
        { before: a.sent, after: b.sent },
        a.viewers.map((before, k) => ({ before, after: b.viewers[k]! })),
      ),
    };
  } finally {
    await Promise.all(viewers.map((v) => v.close().catch(() => {})));
    // The server lets go of them before the other side's turn.
    await sleep(2_000);
    log(`  ${side}: ${viewers.length} viewers ended`);
  }
}

/**
 * A viewer that fails to connect tries again, as a player would: now and then
 * libdatachannel refuses a description under a burst of set-ups ("remote
 * candidate without ICE transport"). Only the connecting is retried; the
 * window counts viewers that are up.
 */
async function withRetries(start: () => Promise<ViewerLike>, attempts = 4): Promise<ViewerLike> {
  for (let i = 1; ; i++) {
    try {
      return await start();
    } catch (err) {
      if (i >= attempts) throw err;
      await sleep(200 * i);
    }
  }
}

const dropped = (a: UdpDrops, b: UdpDrops) => b.inErrors - a.inErrors + (b.sndbufErrors - a.sndbufErrors);

/** The UDP drops of the namespace `exec` (`ip netns exec <ns>`) runs in. */
function udpDropsIn(exec: string[]): UdpDrops {
  const [cmd, ...args] = exec;
  const r = spawnSync(cmd!, [...args, 'cat', '/proc/net/snmp'], { encoding: 'utf8', timeout: 5_000 });
  if (r.status !== 0) throw new Error(`cannot read /proc/net/snmp in the namespace: ${r.stderr}`);
  return udpDrops(r.stdout);
}

const packetsOf = (c: Record<Stream, StreamCounts>): Packets => ({ audio: c.audio.packets, video: c.video.packets });

/** The encoder (media-tree-encoder, the injection's settings) and the copy of each packet to every server. */
class Fanout {
  private constructor(
    private readonly inSock: Socket,
    private readonly out: Socket,
    private readonly gst: Child,
    private readonly count: Packets,
  ) {}

  static async start(
    s: { audioSsrc: number; videoSsrc: number },
    to: Array<{ host: string; audio: number; video: number }>,
  ): Promise<Fanout> {
    const inSock = createSocket('udp4');
    // Sends by route: one server is on loopback, the other behind the veth.
    const out = createSocket('udp4');
    const count: Packets = { audio: 0, video: 0 };
    inSock.on('message', (m: Buffer, from: RemoteInfo) => {
      if (from.address !== '127.0.0.1' || m.length < 12) return;
      const id = m.readUInt32BE(8);
      const stream: Stream | null = id === s.audioSsrc ? 'audio' : id === s.videoSsrc ? 'video' : null;
      if (!stream) return;
      count[stream]++;
      for (const d of to) out.send(m, d[stream], d.host);
    });
    await new Promise<void>((resolve) => inSock.bind(0, '127.0.0.1', resolve));
    let gst: Child;
    try {
      gst = await startChild('media-tree-encoder', ENCODER_BIN, {
        args: encoderArgs(s, inSock.address().port),
        // Its stdin open: the encoder stops at end of input.
        stdin: true,
      });
    } catch (err) {
      inSock.close();
      out.close();
      throw err;
    }
    return new Fanout(inSock, out, gst, count);
  }

  /** Packets sent to each server so far. */
  sent(): Packets {
    return { ...this.count };
  }

  async stop(): Promise<void> {
    await this.gst.stop(2_000);
    this.inSock.close();
    this.out.close();
  }
}
