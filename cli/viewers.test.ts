import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { waitUntil } from '../process/wait.ts';
import { startRedis, type RunningRedis } from '../servers/redis.ts';
import { runCanopy } from '../test/canopy.ts';
import { json, startNode, type RunningNode } from '../test/nodes.ts';
import { Topology } from '../topology/index.ts';

/**
 * `canopy viewers` against a real tree: Redis, an injection (synthetic
 * source), a relay and two egress nodes; the viewers go through the entry
 * point, which spreads them over both egress nodes, and receive the session.
 */

describe('canopy viewers: refusals', () => {
  it.each([
    [['viewers', '--count', '2'], /--whep <url>.*not specified|required option.*--whep/],
    [['viewers', '--whep', 'ftp://x/whep/s', '--count', '1'], /--whep.*expected an http\(s\) URL/],
    [['viewers', '--whep', 'http://127.0.0.1:1/whep/Bad', '--count', '1'], /--whep.*\/whep\/<session id>/],
    [['viewers', '--whep', 'http://127.0.0.1:1/whep/s', '--count', '0'], /--count.*expected 1\.\.2000, got 0/],
    [['viewers', '--whep', 'http://127.0.0.1:1/whep/s', '--count', '1', '--rate', '0'], /--rate.*expected a number/],
    [
      ['viewers', '--whep', 'http://127.0.0.1:1/whep/s', '--count', '1', '--duration', '5'],
      /--duration.*expected a duration/,
    ],
  ])('refuses %j with a clear message and a non-zero exit', async (args, message) => {
    const r = await runCanopy(args);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(message);
    expect(r.stdout).not.toMatch(/connected:/);
  });
});

describe('canopy viewers through the entry point of a real tree', () => {
  let redis: RunningRedis;
  let r: Redis;
  const nodes: RunningNode[] = [];
  let inj: RunningNode;
  const base = 25_000 + Math.floor(Math.random() * 50) * 100;

  beforeAll(async () => {
    redis = await startRedis();
    r = new Redis(redis.url);
    const start = async (o: Parameters<typeof startNode>[0]) => {
      const n = await startNode({ readyTimeoutMs: 60_000, ...o });
      nodes.push(n);
      return n;
    };
    inj = await start({ type: 'injection', id: 'injection-1', redisUrl: redis.url, extra: ['--source', 'synthetic'] });
    await start({ type: 'relay', id: 'relay-1', redisUrl: redis.url, extra: ['--parent-slot', 'injection-1-s0'] });
    for (const i of [0, 1])
      await start({
        type: 'egress',
        id: `egress-${i + 1}`,
        redisUrl: redis.url,
        extra: ['--parent-slot', 'relay-1-s0', '--port-range', `${base + i * 20}-${base + i * 20 + 19}`],
      });
    const s = await json(`${inj.url}/sessions`, {
      method: 'POST',
      body: JSON.stringify({ sessionId: 'load-1', audioSsrc: 8001, videoSsrc: 8002 }),
    });
    expect(s.status).toBe(201);
    const topo = new Topology(r, 'tree-1');
    await waitUntil(
      'both egress nodes serve load-1',
      async () => (await topo.egressCandidates()).filter((c) => c.load?.sessions.includes('load-1')).length === 2,
      { timeoutMs: 20_000, intervalMs: 100 },
    );
  }, 240_000);

  afterAll(async () => {
    for (const n of nodes.reverse()) await n.child.stop();
    r?.disconnect();
    await redis?.stop();
  });

  it('connects every viewer, spread over the egress nodes, and prints what each stream received', async () => {
    const res = await runCanopy(
      ['viewers', '--whep', `${inj.url}/whep/load-1`, '--count', '6', '--rate', '10', '--duration', '3s'],
      120_000,
    );
    expect(res.code, res.stderr).toBe(0);
    const out = res.stdout;
    expect(out, res.stderr).toMatch(/^connected: 6 of 6$/m);
    expect(out).toMatch(/^failed: 0$/m);
    // The entry point spread them: 3 on each (equal pools, least used first).
    const per = [...out.matchAll(/^egress (http:\/\/127\.0\.0\.1:\d+): (\d+)$/gm)].map((m) => Number(m[2]));
    expect(per).toEqual([3, 3]);
    for (const t of ['audio', 'video']) {
      const m = new RegExp(`^${t}: packets (\\d+), expected (\\d+), lost (\\d+) \\(([\\d.]+) %\\)$`, 'm').exec(out);
      expect(m, out).not.toBeNull();
      // 3 s of the synthetic source (50 audio, 250 video packets/s) to each of 6 viewers.
      expect(Number(m![1])).toBeGreaterThan((t === 'audio' ? 50 : 250) * 6 * 2);
      expect(Number(m![3])).toBeLessThanOrEqual(Number(m![2]) * 0.01);
    }
  }, 180_000);
});
