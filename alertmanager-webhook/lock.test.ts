import { Redis } from 'ioredis';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { startRedis, type RunningRedis } from '../servers/redis.ts';
import { redisSnapshot } from '../test/redis.ts';
import {
  actuatorKeys,
  keys,
  nextSubtreeNumber,
  StaleFenceError,
  Topology,
  TopologySubscriber,
} from '../topology/index.ts';
import { fencedWrite, TreeLock } from './lock.ts';

describe('TreeLock against a real Redis', () => {
  let redis: RunningRedis;
  let client: Redis;
  beforeAll(async () => {
    redis = await startRedis();
    client = new Redis(redis.port, '127.0.0.1');
  });
  afterAll(async () => {
    client?.disconnect();
    await redis?.stop();
  });
  beforeEach(async () => {
    await client.flushall();
  });

  it('two replicas: one holds the tree, the other waits', async () => {
    const a = new TreeLock(client, 'replica-a', 5_000);
    const b = new TreeLock(client, 'replica-b', 5_000);
    const la = await a.acquire('tree-1');
    expect(la).not.toBeNull();
    expect(await b.acquire('tree-1')).toBeNull();
    expect(await b.acquire('tree-2')).not.toBeNull();
    expect(await a.release(la!)).toBe(true);
    const lb = await b.acquire('tree-1');
    expect(lb!.token).toBeGreaterThan(la!.token);
  });

  it('a stalled holder loses the tree at its TTL, and its late writes are fenced off', async () => {
    const a = new TreeLock(client, 'replica-a', 200);
    const b = new TreeLock(client, 'replica-b', 5_000);
    const la = (await a.acquire('tree-1'))!;
    await new Promise((r) => setTimeout(r, 300));
    const lb = (await b.acquire('tree-1'))!;
    expect(lb).not.toBeNull();
    // The old holder wakes up and tries to write: refused, nothing written.
    expect(await fencedWrite(client, la, [['HSET', actuatorKeys.tree('tree-1'), 'desired', 9]])).toBe(false);
    expect(await client.hget(actuatorKeys.tree('tree-1'), 'desired')).toBeNull();
    expect(
      await fencedWrite(client, lb, [
        ['HSET', actuatorKeys.tree('tree-1'), 'desired', 2],
        ['SADD', actuatorKeys.trees, 'tree-1'],
      ]),
    ).toBe(true);
    expect(await client.hget(actuatorKeys.tree('tree-1'), 'desired')).toBe('2');
    // Nor can it extend or release the new holder's lock.
    expect(await a.extend(la)).toBe(false);
    expect(await a.release(la)).toBe(false);
    expect(await b.extend(lb)).toBe(true);
  });

  it('refuses a tree id that is not a valid id before touching Redis', async () => {
    const a = new TreeLock(client, 'replica-a', 1_000);
    await expect(a.acquire('tree-1\r\nFLUSHALL')).rejects.toThrow(/bad tree id/);
  });

  it('a replica that lost its lock changes nothing in the topology: slot, subtree number, attach, detach, draining', async () => {
    const topo = new Topology(client, 'tree-1');
    await topo.registerSlots('relay-1', ['relay-1-s0', 'relay-1-s1'], true);
    await topo.withdrawSlot('relay-1-s0');
    await topo.registerNode({ id: 'egress-1', type: 'egress', host: '127.0.0.1', httpPort: 7001 });
    const a = new TreeLock(client, 'replica-a', 100);
    const b = new TreeLock(client, 'replica-b', 5_000);
    const stale = (await a.acquire('tree-1'))!;
    // While it holds the tree, its writes land.
    await topo.attachChildren('relay-1-s0', ['egress-1'], stale);
    expect(await topo.children('relay-1-s0')).toEqual(['egress-1']);
    await new Promise((r) => setTimeout(r, 200));
    const fresh = (await b.acquire('tree-1'))!;
    expect(fresh.token).toBeGreaterThan(stale.token);

    const sub = new Redis(redis.url);
    const events: string[] = [];
    const watcher = new TopologySubscriber(sub, { onTopology: (slot, e) => events.push(`${slot} ${e.type}`) });
    await watcher.watchSlots(['relay-1-s0', 'relay-1-s1']);
    const before = await redisSnapshot(client);
    for (const attempt of [
      () => topo.takeSlot(stale),
      () => nextSubtreeNumber(client, stale),
      () => topo.attachChildren('relay-1-s1', ['egress-1'], stale),
      () => topo.detachChildren('relay-1-s0', ['egress-1'], stale),
      () => topo.setDraining('egress-1', true, stale),
    ])
      await expect(attempt()).rejects.toBeInstanceOf(StaleFenceError);
    await new Promise((r) => setTimeout(r, 100));
    expect(await redisSnapshot(client)).toBe(before);
    expect(events).toEqual([]);

    // The holder of the newest token does all of them.
    const slot = await topo.takeSlot(fresh);
    expect(slot).toBe('relay-1-s1');
    expect(await nextSubtreeNumber(client, fresh)).toBe(1);
    await topo.detachChildren('relay-1-s0', ['egress-1'], fresh);
    await topo.attachChildren('relay-1-s1', ['egress-1'], fresh);
    await topo.setDraining('egress-1', true, fresh);
    expect(await topo.parentOf('egress-1')).toBe('relay-1-s1');
    expect(await topo.isDraining('egress-1')).toBe(true);
    expect(await topo.takeSlot(fresh)).toBeNull();
    await new Promise((r) => setTimeout(r, 100));
    expect(events).toEqual(['relay-1-s0 children-removed', 'relay-1-s1 children-added']);
    await watcher.close();
  });

  it('keeps fencing tokens rising when Redis lost its counter', async () => {
    const a = new TreeLock(client, 'replica-a', 5_000);
    for (let i = 0; i < 3; i++) await a.release((await a.acquire('tree-1'))!);
    const before = (await a.acquire('tree-1'))!;
    await client.flushall();
    const after = (await a.acquire('tree-1'))!;
    expect(after.token).toBeGreaterThan(before.token);
    expect(await client.get(actuatorKeys.fence('tree-1'))).toBe(String(after.token));
    expect(keys.availableSlots('tree-1')).toBe('relay-slots:tree-1:available');
  });
});
