import { Redis } from 'ioredis';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Child } from '../process/child.ts';
import { spawnActuatorInDir } from '../test/actuator-in-dir.ts';
import { startRedis, type RunningRedis } from '../servers/redis.ts';
import { waitUntil } from '../process/wait.ts';
import { actuatorKeys, keys, Topology } from '../topology/index.ts';
import { LocalProvisioner } from './provisioners/local.ts';

const TREE = 'tree-r';

// Orphans both ways, mended by the periodic reconcile of a running actuator.
describe('reconcile', () => {
  let dir: string;
  let redis: RunningRedis;
  let client: Redis;
  let actuator: Child;
  let provisioner: LocalProvisioner;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'canopy-reconcile-'));
    redis = await startRedis();
    client = new Redis(redis.port, '127.0.0.1');
    await new Topology(client, TREE).registerSlots('relay-1', ['relay-1-s0', 'relay-1-s1'], true);
    provisioner = new LocalProvisioner({ stateDir: join(dir, 'subtrees'), redisUrl: redis.url });
  });
  afterAll(async () => {
    await actuator?.stop();
    for (const s of await provisioner.list()) await provisioner.delete(s.tree, s.subtree);
    client?.disconnect();
    await redis?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('deletes a running subtree Redis does not know, and drops a recorded one that no longer runs', async () => {
    // Running, not recorded: an actuator lost between create and record.
    const orphan = { tree: TREE, subtree: 'tree-r-st-7', slot: 'relay-1-s0', size: 1 };
    await provisioner.create(orphan);
    await provisioner.waitReady(orphan, 30_000);
    // Recorded, not running: its slot taken, its children attached.
    const topo = new Topology(client, TREE);
    await client.srem(keys.availableSlots(TREE), 'relay-1-s1');
    await topo.attachChildren('relay-1-s1', ['tree-r-st-8-0']);
    await client.hset(
      actuatorKeys.subtrees(TREE),
      'tree-r-st-8',
      JSON.stringify({ slot: 'relay-1-s1', createdAt: 1, nodes: ['tree-r-st-8-0'] }),
    );
    await client.hset(actuatorKeys.tree(TREE), 'desired', 1);
    await client.sadd(actuatorKeys.trees, TREE);

    writeFileSync(join(dir, 'token'), 'reconcile-token-0123456789\n');
    const started = await spawnActuatorInDir({
      dir,
      redisUrl: redis.url,
      tokenFile: join(dir, 'token'),
      args: ['--reconcile-interval', '1s'],
    });
    actuator = started.child;
    const url = started.url;

    await waitUntil(
      'both mended',
      async () => (await provisioner.list(TREE)).length === 0 && (await client.hlen(actuatorKeys.subtrees(TREE))) === 0,
      { timeoutMs: 30_000 },
    );
    expect(existsSync(join(dir, 'subtrees', 'tree-r-st-7.json'))).toBe(false);
    expect((await client.smembers(keys.availableSlots(TREE))).sort()).toEqual(['relay-1-s0', 'relay-1-s1']);
    expect(await client.smembers(keys.children('relay-1-s1'))).toEqual([]);
    expect(await client.hget(actuatorKeys.tree(TREE), 'desired')).toBe('0');
    const { actions } = (await (await fetch(`${url}/actions`)).json()) as {
      actions: Array<{ kind: string; subtree: string }>;
    };
    expect(
      actions
        .filter((a) => a.kind === 'reconcile')
        .map((a) => a.subtree)
        .sort(),
    ).toEqual(['tree-r-st-7', 'tree-r-st-8']);
  }, 60_000);
});
