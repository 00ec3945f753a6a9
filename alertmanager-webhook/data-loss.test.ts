import { Redis } from 'ioredis';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Child } from '../process/child.ts';
import { killGroup, processAlive } from '../process/signals.ts';
import { waitUntil } from '../process/wait.ts';
import { type RunningRedis, startRedis } from '../servers/redis.ts';
import { spawnActuatorInDir, subtreePids } from '../test/actuator-in-dir.ts';
import { notification, scaleOut } from '../test/fixtures/notifications.ts';
import { sample } from '../test/exposition-parser.ts';
import { json, type RunningNode, startNode } from '../test/nodes.ts';
import { actuatorFamilies, REREGISTRATIONS_METRIC } from '../exporters/index.ts';
import { actuatorKeys, keys } from '../topology/index.ts';
import { releaseWebRtc, type Viewer, watch } from '../viewers/whep-client.ts';

const TREE = 'tree-1';
const TOKEN = 'data-loss-token-0123456789';
const SESSION = { sessionId: 'sess-1', audioSsrc: 5151, videoSsrc: 5252 };

/**
 * Redis loses its data under a scaled-out tree serving a viewer, both ways:
 * FLUSHALL (connections stay, nobody is told) and a restart without the data
 * (connections drop). Real Redis, real node apps, the real actuator with the
 * local provisioner, reconciling every second so a wrong deletion would show.
 */
describe('Redis data loss under a serving tree', () => {
  let dir: string;
  let redis: RunningRedis;
  let client: Redis;
  let inj: RunningNode;
  let relay: RunningNode;
  let actuator: Child;
  let actuatorUrl: string;
  let viewer: Viewer | undefined;
  const stateDir = () => join(dir, 'subtrees');

  const subtrees = async () =>
    Object.fromEntries(
      Object.entries(await client.hgetall(actuatorKeys.subtrees(TREE))).map(([k, v]) => [k, JSON.parse(v)]),
    ) as Record<string, { slot: string; nodes: string[] }>;
  const journal = async () =>
    (
      (await (await fetch(`${actuatorUrl}/actions?limit=200`)).json()) as {
        actions: Array<{ kind: string; result: string; subtree?: string; why: string }>;
      }
    ).actions;
  const alert = (startsAt: string, desired: number) =>
    fetch(`${actuatorUrl}/alerts`, {
      method: 'POST',
      headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
      body: JSON.stringify(
        notification([
          {
            labels: scaleOut(TREE),
            startsAt,
            fingerprint: `00000000000000${desired}f`,
            annotations: { desired_subtrees: String(desired) },
          },
        ]),
      ),
    });
  const destinations = async (): Promise<string[]> =>
    (await json(`${relay.url}/destinations`)).body.destinations.map((d: { id: string }) => d.id).sort();

  /** Everything the tree and the actuator own in Redis that a loss takes, as one comparable text. */
  async function owned(egress: string[], viewersOf: string): Promise<string> {
    const lines: string[] = [];
    for (const t of ['injection', 'relay', 'egress'] as const)
      lines.push(`${t}: ${(await client.smembers(keys.nodes(TREE, t))).sort()}`);
    for (const n of ['injection-1', 'relay-1', ...egress]) {
      const { tree, type, host, httpPort } = await client.hgetall(keys.node(n));
      lines.push(`node ${n}: ${tree} ${type} ${host} ${httpPort} parent=${await client.get(keys.parent(n))}`);
    }
    for (const s of ['injection-1-s0', 'relay-1-s0', 'relay-1-s1', 'relay-1-s2'])
      lines.push(
        `children ${s}: ${(await client.smembers(keys.children(s))).sort()} owner=${await client.hget(keys.slot(s), 'owner')}`,
      );
    lines.push(`slots relay-1: ${(await client.smembers(keys.ownedSlots('relay-1'))).sort()}`);
    lines.push(`free: ${(await client.smembers(keys.availableSlots(TREE))).sort()}`);
    lines.push(`sessions: ${await client.smembers(keys.sessions(TREE))}`);
    const s = await client.hgetall(keys.session(TREE, SESSION.sessionId));
    lines.push(`session: ${s.audioSsrc} ${s.videoSsrc} ${s.injection}`);
    lines.push(`viewers: ${Object.keys(await client.hgetall(keys.viewers(viewersOf))).sort()}`);
    lines.push(`subtrees: ${JSON.stringify(Object.entries(await subtrees()).map(([k, v]) => [k, v.slot, v.nodes]))}`);
    return lines.join('\n');
  }

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'canopy-data-loss-'));
    redis = await startRedis();
    client = new Redis(redis.port, '127.0.0.1');
    client.on('error', () => {});
    inj = await startNode({
      type: 'injection',
      id: 'injection-1',
      redisUrl: redis.url,
      extra: ['--source', 'synthetic'],
    });
    relay = await startNode({
      type: 'relay',
      id: 'relay-1',
      redisUrl: redis.url,
      extra: ['--parent-slot', 'injection-1-s0', '--slots', '3'],
    });
    writeFileSync(join(dir, 'token'), `${TOKEN}\n`);
    ({ child: actuator, url: actuatorUrl } = await spawnActuatorInDir({
      dir,
      redisUrl: redis.url,
      tokenFile: join(dir, 'token'),
      args: [
        '--subtree-size',
        '1',
        '--scale-out-cooldown',
        '1s',
        '--scale-in-stabilisation',
        '10m',
        '--ready-timeout',
        '60s',
        '--lock-ttl',
        '10s',
        '--reconcile-interval',
        '1s',
      ],
    }));
  }, 90_000);

  afterAll(async () => {
    await viewer?.close().catch(() => {});
    releaseWebRtc();
    await actuator?.stop(15_000);
    for (const pid of subtreePids(stateDir())) killGroup(pid, 'SIGKILL');
    await Promise.all([relay, inj].filter(Boolean).map((n) => n.child.stop()));
    client?.disconnect();
    await redis?.stop();
    rmSync(dir, { recursive: true, force: true });
  }, 60_000);

  let egress: string[] = [];
  let egressUrl = '';
  let before = '';

  it('a scaled-out tree serves a viewer', async () => {
    expect((await json(`${inj.url}/sessions`, { method: 'POST', body: JSON.stringify(SESSION) })).status).toBe(201);
    expect((await alert(new Date().toISOString(), 1)).status).toBe(202);
    await waitUntil('one subtree', async () => Object.keys(await subtrees()).length === 1, { timeoutMs: 60_000 });
    egress = Object.values(await subtrees())[0]!.nodes;
    const port = (await client.hget(keys.node(egress[0]!), 'httpPort'))!;
    egressUrl = `http://127.0.0.1:${port}`;
    await waitUntil(
      'the session mounted on the egress node',
      async () => (await json(`${egressUrl}/sessions`)).body.sessions.length === 1,
      { timeoutMs: 20_000 },
    );
    viewer = await watch(`${egressUrl}/whep/${SESSION.sessionId}`, { timeoutMs: 10_000 });
    const viewerId = viewer.location.split('/').pop()!;
    expect(await destinations()).toEqual(egress);
    // Long enough for every node's periodic check to have seen itself attached.
    await new Promise((r) => setTimeout(r, 7_000));
    before = await owned(egress, egress[0]!);
    expect(before).toContain(`viewers: ${viewerId}`);
  }, 120_000);

  /** Loses the data one way, then: everything back, nothing deleted, the relay never stopped sending. */
  async function survives(lose: () => Promise<void>, losses: number): Promise<void> {
    const pids = subtreePids(stateDir());
    expect(pids).toHaveLength(1);
    let dropped = false;
    let polling = true;
    // The relay's destinations, watched throughout: the egress node must never lose its stream.
    const watch = (async () => {
      while (polling) {
        const d = await destinations().catch(() => null);
        if (d && d.join() !== egress.join()) dropped = true;
        await new Promise((r) => setTimeout(r, 200));
      }
    })();
    await lose();
    try {
      await waitUntil(
        'every record, link, slot, session, viewer and subtree record back',
        async () => {
          return (await owned(egress, egress[0]!)) === before;
        },
        { timeoutMs: 45_000, intervalMs: 500 },
      ).catch(async (err) => {
        expect(await owned(egress, egress[0]!)).toBe(before);
        throw err;
      });
      // A few reconcile rounds more: still nothing deleted.
      await new Promise((r) => setTimeout(r, 3_000));
    } finally {
      polling = false;
      await watch;
    }
    expect(dropped).toBe(false);
    expect(pids.every(processAlive)).toBe(true);
    expect(await owned(egress, egress[0]!)).toBe(before);
    expect((await journal()).filter((a) => /deleted/.test(a.why))).toEqual([]);
    // Every node counted its re-registration; the actuator its rebuilt record.
    for (const url of [inj.url, relay.url, egressUrl]) {
      const text = await (await fetch(`${url}/metrics`)).text();
      expect(sample(text, REREGISTRATIONS_METRIC, {}), url).toBe(losses);
    }
    const am = await (await fetch(`${actuatorUrl}/metrics`)).text();
    expect(sample(am, actuatorFamilies.subtreesRebuilt.name, { tree_id: TREE })).toBe(losses);
    // The viewer is still served: its PeerConnection lives and video keeps arriving.
    const mps = (await json(`${egressUrl}/sessions`)).body.sessions as Array<{ sessionId: string; viewers: number }>;
    expect(mps.map((m) => [m.sessionId, m.viewers])).toEqual([[SESSION.sessionId, 1]]);
    const seen = viewer!.counts().video.packets;
    await waitUntil('video still reaching the viewer', async () => viewer!.counts().video.packets > seen + 30, {
      timeoutMs: 5_000,
    });
  }

  it('FLUSHALL (connections stay, nobody is told): every node writes its part again, no subtree deleted', async () => {
    await survives(async () => {
      await client.flushall();
    }, 1);
  }, 90_000);

  it('Redis restarted without its data (connections drop): the same', async () => {
    await survives(async () => {
      const port = redis.port;
      await redis.stop();
      redis = await startRedis(port);
    }, 2);
  }, 120_000);

  it('a following scale-out adds a subtree under a new name on a free slot', async () => {
    const [first] = Object.keys(await subtrees());
    // As a relay could after a loss: the first subtree's slot offered as free. It must not be handed out twice.
    await client.sadd(keys.availableSlots(TREE), Object.values(await subtrees())[0]!.slot);
    expect((await alert(new Date().toISOString(), 2)).status).toBe(202);
    await waitUntil('two subtrees', async () => Object.keys(await subtrees()).length === 2, { timeoutMs: 60_000 });
    const all = await subtrees();
    const second = Object.keys(all).find((s) => s !== first)!;
    expect(second).toBe(`${TREE}-st-2`);
    expect(all[second]!.slot).not.toBe(all[first!]!.slot);
    const free = await client.smembers(keys.availableSlots(TREE));
    expect(free).not.toContain(all[first!]!.slot);
    expect(free).not.toContain(all[second]!.slot);
    expect(subtreePids(stateDir()).every(processAlive)).toBe(true);
    await waitUntil('the relay sends to both subtrees', async () => (await destinations()).length === 2, {
      timeoutMs: 20_000,
    });
  }, 90_000);
});
