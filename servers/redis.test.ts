import { Redis } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import { startRedis, type RunningRedis } from './redis.ts';

// The stack's `stop`/`start` and `redis-flush` steps: a maintenance stop keeps
// the dataset, a flush loses it, and both come back on the same port.
describe('Redis halted and started again', () => {
  let redis: RunningRedis | undefined;
  afterAll(async () => {
    await redis?.stop();
  });

  it('keeps its data through halt({ keepData: true }) and loses it through halt({ keepData: false })', async () => {
    redis = await startRedis();
    const client = () => new Redis(redis!.port, '127.0.0.1', { maxRetriesPerRequest: 1 });
    let r = client();
    await r.set('k', 'v');
    await r.sadd('s', 'a', 'b');
    r.disconnect();
    const firstPid = redis.child.process.pid;
    await redis.halt({ keepData: true });
    expect(redis.child.process.exitCode !== null || redis.child.process.signalCode !== null).toBe(true);
    await redis.start();
    expect(redis.child.process.pid).not.toBe(firstPid);
    r = client();
    expect(await r.get('k')).toBe('v');
    expect((await r.smembers('s')).sort()).toEqual(['a', 'b']);
    r.disconnect();
    await redis.halt({ keepData: false });
    await redis.start();
    r = client();
    expect(await r.dbsize()).toBe(0);
    r.disconnect();
  });
});
