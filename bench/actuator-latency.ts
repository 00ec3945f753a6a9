import http from 'node:http';
import { Redis } from 'ioredis';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { notification, scaleOut } from '../test/fixtures/notifications.ts';
import { startChild, type Child } from '../process/child.ts';
import { freePort } from '../process/ports.ts';
import { startRedis, type RunningRedis } from '../servers/redis.ts';
import { httpOk, waitUntil } from '../process/wait.ts';
import { actuatorKeys } from '../topology/index.ts';
import type { BenchResult } from './result.ts';
import { median, percentile } from './scrape.ts';

const BIN = fileURLToPath(new URL('../bin/canopy.mjs', import.meta.url));
const BASELINE = fileURLToPath(new URL('./actuator-latency-baseline.ts', import.meta.url));
const TOKEN = 'bench-actuator-token-0123456789abcdef';
const TREES = 20;
/** GET /actions answers at most 9,999 entries and the journal keeps about 10,000. */
const MAX_EPISODES = 9_000;
/** A repeat is an exact copy of one of the last few episodes sent, as Alertmanager's HA pairs and repeat_interval produce. */
const REPEAT_WINDOW = 64;

export interface ActuatorBenchOptions {
  notifications: number;
  clients: number;
  duplicatesPercent: number;
}

interface Episode {
  tree: string;
  fingerprint: string;
  startsAt: string;
}

interface Workload {
  bodies: Buffer[];
  episodes: Episode[];
}

/**
 * Alertmanager v4 notifications, one MediaTreeScaleOut alert each: a share of
 * distinct firing episodes (fingerprint + startsAt) over `trees` trees, the
 * rest byte-for-byte repeats of a recent one. Deterministic: `seed` fixes it.
 */
export function workload(
  n: number,
  duplicatesPercent: number,
  o: { seed: number; treePrefix: string; fingerprintBase: number; trees: number },
): Workload {
  const distinct = Math.max(1, Math.round((n * (100 - duplicatesPercent)) / 100));
  const rand = mulberry32(o.seed);
  // Which positions open a new episode: the first, and distinct-1 others chosen at random.
  const fresh = new Array<boolean>(n).fill(false);
  fresh[0] = true;
  const others = Array.from({ length: n - 1 }, (_, i) => i + 1);
  for (let i = others.length - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    [others[i], others[j]] = [others[j]!, others[i]!];
  }
  for (const i of others.slice(0, distinct - 1)) fresh[i] = true;

  const episodes: Episode[] = [];
  const encoded: Buffer[] = [];
  const bodies: Buffer[] = [];
  const base = Date.parse('2026-11-25T10:00:00.000Z');
  for (let i = 0; i < n; i++) {
    if (fresh[i]) {
      const k = episodes.length;
      const tree = `${o.treePrefix}-${k % o.trees}`;
      const e = {
        tree,
        fingerprint: (o.fingerprintBase + k).toString(16).padStart(16, '0'),
        startsAt: new Date(base + k * 1000).toISOString(),
      };
      episodes.push(e);
      const body = {
        ...notification([{ labels: scaleOut(tree), fingerprint: e.fingerprint, startsAt: e.startsAt }]),
        groupKey: `{}/{component="scaling"}:{alertname="MediaTreeScaleOut", tree_id="${tree}"}`,
      };
      encoded.push(Buffer.from(JSON.stringify(body)));
      bodies.push(encoded[k]!);
    } else {
      const from = Math.max(0, encoded.length - REPEAT_WINDOW);
      bodies.push(encoded[from + Math.floor(rand() * (encoded.length - from))]!);
    }
  }
  return { bodies, episodes };
}

interface RunFigures {
  latenciesMs: number[];
  wallMs: number;
  statuses: Map<number, number>;
  errors: string[];
}

/** Sends every body once from `clients` keep-alive connections; latency is request start to response end. */
export async function drive(url: string, bodies: Buffer[], clients: number, token?: string): Promise<RunFigures> {
  const target = new URL('/alerts', url);
  const agent = new http.Agent({ keepAlive: true, maxSockets: clients });
  const latencies = new Array<number>(bodies.length).fill(NaN);
  const statuses = new Map<number, number>();
  const errors: string[] = [];
  let next = 0;
  const post = (body: Buffer) =>
    new Promise<number>((resolve, reject) => {
      const req = http.request(
        {
          host: target.hostname,
          port: target.port,
          path: target.pathname,
          method: 'POST',
          agent,
          timeout: 10_000,
          headers: {
            'content-type': 'application/json',
            'content-length': body.length,
            ...(token ? { authorization: `Bearer ${token}` } : {}),
          },
        },
        (res) => {
          res.resume();
          res.once('end', () => resolve(res.statusCode ?? 0));
          res.once('error', reject);
        },
      );
      req.once('timeout', () => req.destroy(new Error('no answer within 10 s')));
      req.once('error', reject);
      req.end(body);
    });
  const client = async () => {
    for (;;) {
      const i = next++;
      if (i >= bodies.length) return;
      const started = process.hrtime.bigint();
      try {
        const status = await post(bodies[i]!);
        latencies[i] = Number(process.hrtime.bigint() - started) / 1e6;
        statuses.set(status, (statuses.get(status) ?? 0) + 1);
      } catch (err) {
        if (errors.length < 5) errors.push((err as Error).message);
        statuses.set(0, (statuses.get(0) ?? 0) + 1);
      }
    }
  };
  const started = performance.now();
  await Promise.all(Array.from({ length: Math.min(clients, bodies.length) }, client));
  const wallMs = performance.now() - started;
  agent.destroy();
  return { latenciesMs: latencies.filter((x) => !Number.isNaN(x)), wallMs, statuses, errors };
}

function requireAll(name: string, r: RunFigures, sent: number, want: number): void {
  const ok = r.statuses.get(want) ?? 0;
  if (ok !== sent) {
    const seen = [...r.statuses].map(([s, c]) => `${s === 0 ? 'error' : s}: ${c}`).join(', ');
    throw new Error(
      `${name}: ${ok} of ${sent} answered ${want} (${seen})${r.errors.length ? `; ${r.errors.join('; ')}` : ''}`,
    );
  }
}

function summary(r: RunFigures): { p50: number; p90: number; p99: number; max: number; rps: number } {
  const xs = r.latenciesMs;
  return {
    p50: median(xs),
    p90: percentile(xs, 90),
    p99: percentile(xs, 99),
    max: Math.max(...xs),
    rps: xs.length / (r.wallMs / 1000),
  };
}

/**
 * Ack latency of `canopy actuator --dry-run` (real process, real Redis) under
 * a burst of mostly duplicate notifications, against an express handler that
 * only parses the JSON and answers 202, same requests, same run; then checks
 * that the worker made exactly one decision per distinct firing episode.
 * RATIO = our p99 / baseline p99 (lower is better; target <= 2).
 */
export async function benchActuator(o: ActuatorBenchOptions, log: (line: string) => void): Promise<BenchResult> {
  const warmupCount = Math.min(2_000, Math.max(200, Math.round(o.notifications / 10)));
  const main = workload(o.notifications, o.duplicatesPercent, {
    seed: 0x5eed,
    treePrefix: 'bench',
    fingerprintBase: 0x10_0000_0000,
    trees: TREES,
  });
  const warm = workload(warmupCount, o.duplicatesPercent, {
    seed: 0xa11,
    treePrefix: 'warmup',
    fingerprintBase: 0xf0_0000_0000,
    trees: 4,
  });
  const expected = [...warm.episodes, ...main.episodes];
  if (expected.length > MAX_EPISODES) {
    throw new Error(
      `${expected.length} distinct episodes: the exactly-once check reads the journal, which holds about 10,000 entries; use at most ${MAX_EPISODES} (fewer notifications or more duplicates)`,
    );
  }

  const dir = mkdtempSync(join(tmpdir(), 'canopy-bench-actuator-'));
  let redis: RunningRedis | undefined;
  let client: Redis | undefined;
  let ours: Child | undefined;
  let baseline: Child | undefined;
  try {
    redis = await startRedis();
    client = new Redis(redis.url, { maxRetriesPerRequest: 1, commandTimeout: 5_000 });
    client.on('error', () => {});
    writeFileSync(join(dir, 'token'), `${TOKEN}\n`);

    const oursPort = await freePort();
    const oursUrl = `http://127.0.0.1:${oursPort}`;
    // Every distinct episode is a decision: no cooldown, bounds far away; dry-run journals it and provisions nothing.
    ours = await startChild('canopy actuator', process.execPath, {
      args: [
        BIN,
        'actuator',
        '--dry-run',
        '--port',
        String(oursPort),
        '--redis-url',
        redis.url,
        '--token-file',
        join(dir, 'token'),
        '--state-dir',
        join(dir, 'subtrees'),
        '--targets-dir',
        join(dir, 'targets'),
        '--scale-out-cooldown',
        '0s',
        '--max-subtrees',
        '1000',
        '--global-max-subtrees',
        '100000',
      ],
      ready: () => httpOk(`${oursUrl}/readyz`),
      readyTimeoutMs: 30_000,
    });
    const basePort = await freePort();
    const baseUrl = `http://127.0.0.1:${basePort}`;
    baseline = await startChild('baseline', process.execPath, {
      args: ['--import', 'tsx', BASELINE],
      env: { ...process.env, BENCH_PORT: String(basePort) },
      ready: () => httpOk(`${baseUrl}/healthz`),
      readyTimeoutMs: 30_000,
    });

    const inboxLength = () => client!.xlen(actuatorKeys.inbox);
    const drainTimeoutMs = 120_000 + o.notifications * 10;
    const drained = () =>
      waitUntil('the actuator worker to drain its inbox', async () => (await inboxLength()) === 0, {
        timeoutMs: drainTimeoutMs,
        intervalMs: 50,
      });

    // Warm-up: the JIT, the connections, Redis; then let our worker finish so the baseline runs on a quiet machine.
    requireAll('baseline warm-up', await drive(baseUrl, warm.bodies, o.clients), warm.bodies.length, 202);
    requireAll('ours warm-up', await drive(oursUrl, warm.bodies, o.clients, TOKEN), warm.bodies.length, 202);
    await drained();

    const base = await drive(baseUrl, main.bodies, o.clients);
    requireAll('baseline', base, main.bodies.length, 202);
    const mine = await drive(oursUrl, main.bodies, o.clients, TOKEN);
    requireAll('ours', mine, main.bodies.length, 202);
    const lastAck = performance.now();
    await drained();
    const drainMs = performance.now() - lastAck;

    // Exactly once: one dry-run decision per distinct episode, in the journal and in each tree's episode set.
    const res = await fetch(`${oursUrl}/actions?limit=9999`, { signal: AbortSignal.timeout(10_000) });
    if (!res.ok) throw new Error(`GET /actions answered ${res.status}`);
    const actions = ((await res.json()) as { actions: Array<{ tree: string; kind: string; result: string }> }).actions;
    const byResult = new Map<string, number>();
    const journalPerTree = new Map<string, number>();
    for (const a of actions) {
      byResult.set(`${a.kind} ${a.result}`, (byResult.get(`${a.kind} ${a.result}`) ?? 0) + 1);
      if (a.kind === 'scale-out' && a.result === 'dry-run')
        journalPerTree.set(a.tree, (journalPerTree.get(a.tree) ?? 0) + 1);
    }
    const expectedPerTree = new Map<string, Set<string>>();
    for (const e of expected) {
      const s = expectedPerTree.get(e.tree) ?? new Set<string>();
      s.add(`${e.fingerprint}@${e.startsAt}`);
      expectedPerTree.set(e.tree, s);
    }
    const problems: string[] = [];
    const otherResults = [...byResult].filter(([k]) => k !== 'scale-out dry-run');
    if (otherResults.length)
      problems.push(`journal holds other entries: ${otherResults.map(([k, c]) => `${k} x${c}`).join(', ')}`);
    for (const tree of new Set([...expectedPerTree.keys(), ...journalPerTree.keys()])) {
      const want = expectedPerTree.get(tree) ?? new Set<string>();
      const got = journalPerTree.get(tree) ?? 0;
      if (got !== want.size) problems.push(`tree ${tree}: ${got} dry-run actions for ${want.size} distinct episodes`);
      const marked = new Set(await client.smembers(actuatorKeys.episodes(tree)));
      const missing = [...want].filter((e) => !marked.has(e)).length;
      const extra = [...marked].filter((e) => !want.has(e)).length;
      if (missing || extra) problems.push(`tree ${tree}: episode set ${missing} missing, ${extra} unexpected`);
    }
    const metrics = await (await fetch(`${oursUrl}/metrics`, { signal: AbortSignal.timeout(10_000) })).text();
    const suppressed = Number(
      /^canopy_actuator_duplicates_suppressed_total(?:\{\})? (\S+)$/m.exec(metrics)?.[1] ?? NaN,
    );
    const sent = warm.bodies.length + main.bodies.length;
    if (suppressed !== sent - expected.length)
      problems.push(`${suppressed} duplicates suppressed, expected ${sent - expected.length}`);

    const b = summary(base);
    const m = summary(mine);
    const f = (x: number) => x.toFixed(3);
    log(
      `workload: ${o.notifications} Alertmanager v4 notifications, ${main.episodes.length} distinct firing episodes over ${TREES} trees, ${o.duplicatesPercent}% exact repeats; ${o.clients} keep-alive clients; warm-up ${warmupCount} each`,
    );
    log(
      `baseline (express, JSON.parse, 202): p50 ${f(b.p50)} ms, p90 ${f(b.p90)} ms, p99 ${f(b.p99)} ms, max ${f(b.max)} ms, ${b.rps.toFixed(0)} req/s`,
    );
    log(
      `ours (canopy actuator --dry-run, Redis inbox): p50 ${f(m.p50)} ms, p90 ${f(m.p90)} ms, p99 ${f(m.p99)} ms, max ${f(m.max)} ms, ${m.rps.toFixed(0)} req/s`,
    );
    log(
      `p99 ours/baseline ${(m.p99 / b.p99).toFixed(2)}x (target <= 2x); throughput ours/baseline ${(m.rps / b.rps).toFixed(2)}`,
    );
    log(`worker: inbox drained ${(drainMs / 1000).toFixed(1)} s after the last ack`);
    log(
      `exactly once: ${journalPerTree.size ? [...journalPerTree.values()].reduce((a, c) => a + c, 0) : 0} dry-run actions in the journal for ${expected.length} distinct episodes (incl. ${warm.episodes.length} of the warm-up), ${suppressed} duplicates suppressed of ${sent} notifications: ${problems.length ? 'FAILED' : 'ok'}`,
    );
    if (problems.length) throw new Error(`exactly-once check failed: ${problems.slice(0, 10).join('; ')}`);
    return { ratio: m.p99 / b.p99 };
  } finally {
    await ours?.stop(10_000);
    await baseline?.stop(5_000);
    client?.disconnect();
    await redis?.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
