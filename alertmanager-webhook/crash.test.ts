import { execFileSync } from 'node:child_process';
import { Redis } from 'ioredis';
import { existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Child } from '../process/child.ts';
import { spawnActuatorInDir } from '../test/actuator-in-dir.ts';
import { startRedis, type RunningRedis } from '../servers/redis.ts';
import { waitUntil } from '../process/wait.ts';
import { actuatorKeys, keys, Topology } from '../topology/index.ts';
import { notification, scaleIn, scaleOut } from '../test/fixtures/notifications.ts';

const TOKEN = 'crash-test-token-0123456789';
const SLOTS = ['relay-1-s0', 'relay-1-s1'];

/** Egress processes of a tree still running, by their command line. */
function egressProcesses(tree: string): number {
  try {
    return execFileSync('pgrep', ['-f', `node egress --tree-id ${tree} `], { encoding: 'utf8' })
      .trim()
      .split('\n')
      .filter(Boolean).length;
  } catch {
    return 0;
  }
}

// The actuator killed with SIGKILL at each step of a scale-out and of a
// scale-in, then restarted: the state must end consistent (the subtree
// complete, or rolled back with its slot returned), with no orphan process,
// no dangling key and nothing in flight.
describe('actuator crash at each step, then restart', () => {
  let dir: string;
  let redis: RunningRedis;
  let client: Redis;
  let n = 0;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'canopy-crash-'));
    redis = await startRedis();
    client = new Redis(redis.port, '127.0.0.1');
    writeFileSync(join(dir, 'token'), `${TOKEN}\n`);
  });
  afterAll(async () => {
    client?.disconnect();
    await redis?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  function actuator(tree: string, failpoint?: string): Promise<{ child: Child; url: string }> {
    return spawnActuatorInDir({
      dir: join(dir, tree),
      redisUrl: redis.url,
      tokenFile: join(dir, 'token'),
      args: [
        '--subtree-size',
        '2',
        '--scale-out-cooldown',
        '0s',
        '--scale-in-stabilisation',
        '0s',
        '--protect-new-subtree',
        '0s',
        '--drain-timeout',
        '1s',
        '--lock-ttl',
        '2s',
      ],
      env: failpoint ? { CANOPY_FAILPOINT: failpoint } : {},
    });
  }

  async function post(url: string, labels: Record<string, string>): Promise<void> {
    const res = await fetch(`${url}/alerts`, {
      method: 'POST',
      headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
      body: JSON.stringify(notification([{ labels, startsAt: new Date(Date.now() - n++ * 1000).toISOString() }])),
    });
    expect(res.status).toBe(202);
  }

  const died = (c: Child) =>
    waitUntil(
      'the actuator to die at its failpoint',
      () => c.process.exitCode !== null || c.process.signalCode !== null,
      { timeoutMs: 60_000 },
    );
  const settled = (tree: string) =>
    waitUntil(
      'the restarted actuator to settle',
      async () =>
        (await client.exists(actuatorKeys.inflight(tree))) === 0 && (await client.xlen(actuatorKeys.inbox)) === 0,
      { timeoutMs: 60_000, intervalMs: 250 },
    );

  /** The invariants: every recorded subtree complete and running; everything else returned. */
  async function expectConsistent(tree: string, subtreesExpected: number): Promise<void> {
    const subtrees = await client.hgetall(actuatorKeys.subtrees(tree));
    expect(Object.keys(subtrees)).toHaveLength(subtreesExpected);
    const taken = new Set<string>();
    for (const [subtree, json] of Object.entries(subtrees)) {
      const r = JSON.parse(json) as { slot: string; nodes: string[] };
      taken.add(r.slot);
      expect((await client.smembers(keys.children(r.slot))).sort()).toEqual([...r.nodes].sort());
      for (const node of r.nodes) expect(await client.get(keys.parent(node))).toBe(r.slot);
      expect(existsSync(join(dir, tree, 'targets', 'media-tree-egress', `${subtree}.json`))).toBe(true);
    }
    for (const slot of SLOTS) {
      if (taken.has(slot)) continue;
      expect(await client.sismember(keys.availableSlots(tree), slot)).toBe(1);
      expect(await client.smembers(keys.children(slot))).toEqual([]);
    }
    const targetFiles = existsSync(join(dir, tree, 'targets', 'media-tree-egress'))
      ? readdirSync(join(dir, tree, 'targets', 'media-tree-egress'))
      : [];
    expect(targetFiles).toHaveLength(subtreesExpected);
    await waitUntil(
      "only the recorded subtrees' processes running",
      () => egressProcesses(tree) === 2 * subtreesExpected,
      { timeoutMs: 20_000 },
    );
    // No egress left registered beyond the running ones.
    expect(await client.scard(keys.nodes(tree, 'egress'))).toBe(2 * subtreesExpected);
  }

  /** The subtrees' egress processes outlive an actuator by design; a test stops its own. */
  async function stopEgress(tree: string): Promise<void> {
    try {
      execFileSync('pkill', ['-TERM', '-f', `node egress --tree-id ${tree} `]);
    } catch {
      /* none left */
    }
    await waitUntil('egress processes stopped', () => egressProcesses(tree) === 0, { timeoutMs: 20_000 });
  }

  it.each([
    'scale-out:slot-taken',
    'scale-out:created',
    'scale-out:ready',
    'scale-out:attached',
    'scale-out:targets-written',
  ])(
    'killed at %s: after the restart, the subtree complete or rolled back, nothing dangling',
    async (failpoint) => {
      const tree = `t-${failpoint.split(':')[1]}`;
      await client.flushall();
      await new Topology(client, tree).registerSlots('relay-1', SLOTS, true);
      const crashing = await actuator(tree, failpoint);
      await post(crashing.url, scaleOut(tree));
      await died(crashing.child);
      const restarted = await actuator(tree);
      try {
        await settled(tree);
        // Normally the retried request completes it; a retry that fails (a port
        // taken meanwhile on a busy machine) must leave a clean rollback instead.
        const count = await client.hlen(actuatorKeys.subtrees(tree));
        expect([0, 1]).toContain(count);
        await expectConsistent(tree, count);
      } finally {
        await restarted.child.stop(20_000);
        await stopEgress(tree);
      }
    },
    120_000,
  );

  it.each(['scale-in:drained', 'scale-in:detached', 'scale-in:deleted'])(
    'killed at %s: after the restart, the subtree is gone and its slot back',
    async (failpoint) => {
      const tree = `t-in-${failpoint.split(':')[1]}`;
      await client.flushall();
      await new Topology(client, tree).registerSlots('relay-1', SLOTS, true);
      const first = await actuator(tree);
      await post(first.url, scaleOut(tree));
      await waitUntil('one subtree', async () => (await client.hlen(actuatorKeys.subtrees(tree))) === 1, {
        timeoutMs: 60_000,
      });
      await first.child.stop();
      const crashing = await actuator(tree, failpoint);
      await post(crashing.url, scaleIn(tree));
      await died(crashing.child);
      const restarted = await actuator(tree);
      try {
        await settled(tree);
        await expectConsistent(tree, 0);
      } finally {
        await restarted.child.stop(20_000);
        await stopEgress(tree);
      }
    },
    120_000,
  );
});
