import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { waitUntil } from '../process/wait.ts';
import { startRedis, type RunningRedis } from '../servers/redis.ts';
import { redisSnapshot } from '../test/redis.ts';
import { keys, Topology, TopologyInputError } from './index.ts';

let redis: RunningRedis;
let r: Redis;
const warnings: string[] = [];
let topo: Topology;

beforeAll(async () => {
  redis = await startRedis();
  r = new Redis(redis.url);
  topo = new Topology(r, 'tree-l', (m) => warnings.push(m));
  for (const id of ['egress-a', 'egress-b', 'egress-c'])
    await topo.registerNode({ id, type: 'egress', host: '127.0.0.1', httpPort: 7000 + id.charCodeAt(7) });
});
afterAll(async () => {
  r?.disconnect();
  await redis?.stop();
});

describe('egress load records', () => {
  it('lists every egress node with its draining flag and load; no record reads as not ready', async () => {
    await topo.putEgressLoad('egress-a', { allocated: 4, size: 10, sessions: ['s-1', 's-2'] }, 10_000);
    await topo.putEgressLoad('egress-b', { allocated: 0, size: 5, sessions: [] }, 10_000);
    await topo.setDraining('egress-b', true);
    const got = await topo.egressCandidates();
    expect(got.map((c) => [c.node.id, c.node.draining, c.load?.allocated, c.load?.size, c.load?.sessions])).toEqual([
      ['egress-a', false, 4, 10, ['s-1', 's-2']],
      ['egress-b', true, 0, 5, []],
      ['egress-c', false, undefined, undefined, undefined],
    ]);
    expect(got[0]!.load!.at).toBeGreaterThan(Date.now() - 5_000);
  });

  it('expires a load record that is not refreshed (a node that died drops out of placement)', async () => {
    await topo.putEgressLoad('egress-c', { allocated: 1, size: 3, sessions: ['s-1'] }, 300);
    expect(await topo.getEgressLoad('egress-c')).not.toBeNull();
    await waitUntil('the record expired', async () => (await topo.getEgressLoad('egress-c')) === null, {
      timeoutMs: 5_000,
      intervalMs: 50,
    });
  });

  it('refuses a bad record before writing, and skips (and reports) a malformed one in Redis', async () => {
    const before = await redisSnapshot(r);
    await expect(
      topo.putEgressLoad('egress-a', { allocated: 1, size: 3, sessions: ['Bad:id'] }, 1_000),
    ).rejects.toThrow();
    await expect(topo.putEgressLoad('egress-a', { allocated: -1, size: 3, sessions: [] }, 1_000)).rejects.toThrow();
    await expect(topo.putEgressLoad('egress-a', { allocated: 0, size: 0, sessions: [] }, 1_000)).rejects.toThrow();
    await expect(topo.putEgressLoad('Egress', { allocated: 0, size: 1, sessions: [] }, 1_000)).rejects.toThrow(
      TopologyInputError,
    );
    await expect(topo.putEgressLoad('egress-a', { allocated: 0, size: 1, sessions: [] }, 0)).rejects.toThrow(
      TopologyInputError,
    );
    expect(await redisSnapshot(r)).toBe(before);

    await r.hset(keys.egressLoad('egress-c'), { allocated: '9', size: '3', sessions: '[]', at: '1' });
    warnings.length = 0;
    expect(await topo.getEgressLoad('egress-c')).toBeNull();
    await r.hset(keys.egressLoad('egress-c'), { allocated: '1', sessions: 'not json' });
    expect(await topo.getEgressLoad('egress-c')).toBeNull();
    expect(warnings.filter((w) => /malformed egress load/.test(w))).toHaveLength(2);
    await r.del(keys.egressLoad('egress-c'));
  });

  it('goes with the node when it deregisters, and clears on request', async () => {
    await topo.putEgressLoad('egress-c', { allocated: 0, size: 3, sessions: [] }, 10_000);
    await topo.deregisterNode('egress-c', 'egress');
    expect(await r.exists(keys.egressLoad('egress-c'))).toBe(0);
    await topo.clearEgressLoad('egress-a');
    expect(await topo.getEgressLoad('egress-a')).toBeNull();
    expect((await topo.egressCandidates()).map((c) => c.node.id)).toEqual(['egress-a', 'egress-b']);
  });
});
