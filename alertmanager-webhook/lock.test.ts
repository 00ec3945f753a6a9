import { Redis } from 'ioredis';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { startRedis, type RunningRedis } from '../servers/redis.ts';
import { actuatorKeys } from '../topology/index.ts';
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
});
