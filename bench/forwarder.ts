import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { ForwarderClient } from '../forwarder/client.ts';
import { procStat } from '../process/proc.ts';
import { startChild, type Child } from '../process/child.ts';
import { buildForwarder, FORWARDER_BIN, startForwarder } from '../servers/forwarder.ts';
import { freePort } from '../process/ports.ts';
import type { BenchResult } from './result.ts';

export interface ForwarderBenchOptions {
  destinations: number;
  /** Sending time of each rate step. */
  stepMs: number;
  startRate: number;
  maxRate: number;
  bisections: number;
}

const LOSS_LIMIT = 0.001;

/** The load tool (C, in this folder): Node could not send and count fast enough on two cores. */
const BENCH_DIR = fileURLToPath(new URL('.', import.meta.url));
const RTP_BLAST_BIN = `${BENCH_DIR}build/rtp-blast`;

/** Set-up builds it; this covers a run straight after editing the C. */
function buildRtpBlast(): void {
  execFileSync('make', ['-s', '-C', BENCH_DIR], { stdio: ['ignore', 'ignore', 'inherit'], timeout: 120_000 });
}

/**
 * Highest input rate (packets/s over the audio and video ports together) that
 * reaches every destination with under 0.1 % loss: ours, then the plain
 * `gst-launch-1.0 udpsrc ! multiudpsink clients=...` with the same
 * destinations, in the same run. RATIO = ours / baseline (higher is better).
 * rtp-blast (C) sends and counts: Node could not keep up on two cores.
 */
export async function benchForwarder(o: ForwarderBenchOptions, log: (line: string) => void): Promise<BenchResult> {
  if (!existsSync(FORWARDER_BIN)) buildForwarder();
  if (!existsSync(RTP_BLAST_BIN)) buildRtpBlast();
  const blast = await Blast.start(o.destinations * 2);
  try {
    const dests = Array.from({ length: o.destinations }, (_, i) => ({
      audio: blast.ports[2 * i]!,
      video: blast.ports[2 * i + 1]!,
    }));
    log(
      `forwarder bench: ${o.destinations} destinations, RTP 1 in 5 audio (160 B) else video (1200 B), ${o.stepMs} ms per step, loss limit ${LOSS_LIMIT * 100}%`,
    );

    const ours = await startForwarder({ mode: 'fanout' });
    let base: Awaited<ReturnType<typeof startBaseline>> | undefined;
    let oursMax: Best;
    let baseMax: Best;
    try {
      const client = new ForwarderClient({ socketPath: ours.socketPath });
      try {
        for (const [i, d] of dests.entries())
          await client.add({ id: `bench-${i}`, host: '127.0.0.1', audioPort: d.audio, videoPort: d.video });
      } finally {
        client.close();
      }
      base = await startBaseline(dests);
      // Both searches at once, their steps taking turns: a load that drifts
      // during the run (two shared cores) weighs on both alike.
      [oursMax, baseMax] = await Promise.all([
        search('ours', blast, ours.child.process.pid!, ours.audioPort, ours.videoPort, o, log),
        search('baseline', blast, base.child.process.pid!, base.audioPort, base.videoPort, o, log),
      ]);
    } finally {
      await ours.child.stop();
      await base?.child.stop();
    }

    const out = (r: Best) =>
      `${r.rate} pkt/s in, ${r.rate * o.destinations} pkt/s out, using ${(r.cpu * 100).toFixed(0)}% of one core` +
      (r.cpu > 0 ? ` (${Math.round((r.rate * o.destinations) / r.cpu)} pkt/s out per core)` : '');
    log(`ours (media-tree-forwarder fanout): ${out(oursMax)}`);
    log(`baseline (gst-launch-1.0 udpsrc ! multiudpsink): ${out(baseMax)}`);
    return { ratio: baseMax.rate > 0 ? oursMax.rate / baseMax.rate : oursMax.rate > 0 ? Infinity : 0 };
  } finally {
    blast.stop();
  }
}

/** The best passing rate, and the forwarder's CPU use then (1 = one core busy). */
interface Best {
  rate: number;
  cpu: number;
}

/** Doubling from startRate until a step loses too much, then bisection. */
async function search(
  name: string,
  blast: Blast,
  pid: number,
  audioPort: number,
  videoPort: number,
  o: ForwarderBenchOptions,
  log: (l: string) => void,
): Promise<Best> {
  const warm = blast.turn();
  await warm.ready;
  await blast.run(audioPort, videoPort, 200, 300).finally(warm.done); // warm-up: caches, lazy sockets
  let good: Best = { rate: 0, cpu: 0 };
  let bad = 0;
  const at = async (rate: number) => {
    const cpu = await step(name, blast, pid, audioPort, videoPort, rate, o, log);
    if (cpu !== undefined) good = { rate, cpu };
    return cpu !== undefined;
  };
  for (let rate = o.startRate; ; rate = Math.min(rate * 2, o.maxRate)) {
    if (await at(rate)) {
      if (rate >= o.maxRate) return good;
    } else {
      bad = rate;
      break;
    }
  }
  for (let i = 0; i < o.bisections && bad - good.rate > Math.max(100, good.rate * 0.02); i++) {
    const mid = Math.round((good.rate + bad) / 2);
    if (!(await at(mid))) bad = mid;
  }
  return good;
}

/** One step at `rate`, on its own turn of the blaster: its CPU share when it passed, undefined when it failed. */
async function step(
  name: string,
  blast: Blast,
  pid: number,
  audioPort: number,
  videoPort: number,
  rate: number,
  o: ForwarderBenchOptions,
  log: (l: string) => void,
): Promise<number | undefined> {
  const turn = blast.turn();
  await turn.ready;
  try {
    const cpu0 = cpuSeconds(pid);
    const r = await blast.run(audioPort, videoPort, rate, o.stepMs);
    // All the step's work (its tail drains after the sending window) over the sending window.
    const cpu = (cpuSeconds(pid) - cpu0) / (o.stepMs / 1000);
    const sent = r.sentAudio + r.sentVideo;
    const expected = sent * o.destinations;
    const loss = expected > 0 ? 1 - r.received / expected : 1;
    // A sender that fell behind did not offer the rate asked for.
    const offered = sent / (o.stepMs / 1000);
    const ok = loss < LOSS_LIMIT && offered >= rate * 0.95;
    log(
      `  ${name.padEnd(8)} ${String(rate).padStart(7)} pkt/s in: sent ${sent}, received ${r.received} of ${expected}, loss ${(Math.max(loss, 0) * 100).toFixed(3)}%, cpu ${(cpu * 100).toFixed(0)}%${offered < rate * 0.95 ? ' (sender behind)' : ''} ${ok ? 'ok' : 'FAIL'}`,
    );
    return ok ? cpu : undefined;
  } finally {
    turn.done();
  }
}

/** User + system CPU seconds of a process so far, from /proc. */
function cpuSeconds(pid: number): number {
  const f = procStat(pid);
  if (!f) throw new Error(`process ${pid} is gone`);
  return (Number(f[11]) + Number(f[12])) / CLOCK_TICKS;
}
const CLOCK_TICKS = 100; // USER_HZ on Linux

interface RunResult {
  sentAudio: number;
  sentVideo: number;
  received: number;
}

/** The rtp-blast child: its receive ports, and one RUN at a time. */
class Blast {
  private readonly replies: Array<(line: string) => void> = [];
  private last: Promise<void> = Promise.resolve();
  private constructor(
    private readonly proc: ChildProcess,
    readonly ports: number[],
  ) {}

  static async start(receivers: number): Promise<Blast> {
    const proc = spawn(RTP_BLAST_BIN, ['--receivers', String(receivers)], { stdio: ['pipe', 'pipe', 'inherit'] });
    const lines = createInterface({ input: proc.stdout! });
    const first = await new Promise<string>((resolve, reject) => {
      lines.once('line', resolve);
      proc.once('exit', (code) => reject(new Error(`rtp-blast exited with code ${code}`)));
    });
    const ports = first.split(' ').slice(1).map(Number);
    if (first.split(' ')[0] !== 'PORTS' || ports.length !== receivers) throw new Error(`rtp-blast said ${first}`);
    const b = new Blast(proc, ports);
    lines.on('line', (l) => b.replies.shift()?.(l));
    return b;
  }

  /** One step at a time, in the order asked: `ready` resolves when it is ours, `done()` passes it on. */
  turn(): { ready: Promise<void>; done: () => void } {
    let done!: () => void;
    const ready = this.last;
    this.last = new Promise<void>((r) => (done = r));
    return { ready, done };
  }

  run(audioPort: number, videoPort: number, rate: number, ms: number): Promise<RunResult> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('rtp-blast did not answer')), ms + 10_000);
      this.replies.push((line) => {
        clearTimeout(timer);
        const r = JSON.parse(line) as Partial<RunResult> & { error?: string };
        if (typeof r.sentAudio !== 'number' || typeof r.sentVideo !== 'number' || typeof r.received !== 'number')
          reject(new Error(`rtp-blast: ${line}`));
        else resolve(r as RunResult);
      });
      this.proc.stdin!.write(`RUN ${audioPort} ${videoPort} ${rate} ${ms}\n`);
    });
  }

  stop(): void {
    this.proc.stdin!.end();
    this.proc.kill('SIGTERM');
  }
}

/** The baseline: one gst-launch-1.0 with both plain pipelines. */
async function startBaseline(
  dests: Array<{ audio: number; video: number }>,
): Promise<{ child: Child; audioPort: number; videoPort: number }> {
  const audioPort = await freePort();
  let videoPort = await freePort();
  while (videoPort === audioPort) videoPort = await freePort();
  // One plain pipeline per stream: receive on its port, send to every destination's port of that stream.
  const pipeline = (port: number, k: 'audio' | 'video') => [
    'udpsrc',
    'address=127.0.0.1',
    `port=${port}`,
    '!',
    'multiudpsink',
    `clients=${dests.map((d) => `127.0.0.1:${d[k]}`).join(',')}`,
  ];
  const child = await startChild('gst-launch-1.0', 'gst-launch-1.0', {
    args: [...pipeline(audioPort, 'audio'), ...pipeline(videoPort, 'video')],
    ready: () => udpBound(audioPort) && udpBound(videoPort),
    readyTimeoutMs: 5_000,
  });
  return { child, audioPort, videoPort };
}

/** gst-launch prints no readiness line: ready once its UDP port shows in /proc/net/udp. */
function udpBound(port: number): boolean {
  const hex = `:${port.toString(16).toUpperCase().padStart(4, '0')} `;
  return readFileSync('/proc/net/udp', 'utf8')
    .split('\n')
    .some((l) => l.trim().split(/\s+/)[1]?.endsWith(hex.trim()));
}
