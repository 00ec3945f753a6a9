import { Redis } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import { freePort } from '../process/ports.ts';
import { startRedis, type RunningRedis } from '../servers/redis.ts';
import { waitUntil } from '../process/wait.ts';
import { fileURLToPath } from 'node:url';
import { startChild, type Child } from '../process/child.ts';
import { Topology } from '../topology/index.ts';

const BIN = fileURLToPath(new URL('../bin/canopy.mjs', import.meta.url));
let redis: RunningRedis | undefined;
let relay: Child | undefined;

afterAll(async () => {
  await relay?.stop();
  await redis?.stop();
});

describe('a node started before Redis', () => {
  it('is alive but not ready, then registers and becomes ready once Redis comes', async () => {
    const [redisPort, http, a, v] = [await freePort(), await freePort(), await freePort(), await freePort()];
    const url = `http://127.0.0.1:${http}`;
    relay = await startChild('relay-9', process.execPath, {
      args: [
        BIN,
        'node',
        'relay',
        '--node-id',
        'relay-9',
        '--slots',
        '2',
        '--redis-url',
        `redis://127.0.0.1:${redisPort}`,
        '--port',
        String(http),
        '--listen-host',
        '127.0.0.1',
        '--forwarder-audio-port',
        String(a),
        '--forwarder-video-port',
        String(v),
      ],
      ready: async () => (await fetch(`${url}/healthz`)).ok,
    });
    const early = await fetch(`${url}/readyz`);
    expect(early.status).toBe(503);
    expect(await early.text()).toMatch(/not ready: starting/);

    redis = await startRedis(redisPort);
    await waitUntil('relay-9 to become ready', async () => (await fetch(`${url}/readyz`)).status === 200, {
      timeoutMs: 15_000,
    });
    const r = new Redis(redis.url);
    try {
      const topo = new Topology(r, 'tree-1');
      expect(await topo.availableSlots()).toEqual(['relay-9-s0', 'relay-9-s1']);
      expect(await topo.getNode('relay-9')).toMatchObject({
        type: 'relay',
        audioPort: a,
        videoPort: v,
        httpPort: http,
      });
    } finally {
      r.disconnect();
    }
    expect(relay.output()).toMatch(/start-up failed/);
  });
});
