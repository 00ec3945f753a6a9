import type { Redis } from 'ioredis';
import { readdirSync, readFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pushAlerts, type RunningAlertmanager } from '../servers/alertmanager.ts';
import { type ActuatorRig, startActuatorRig, subtreePids } from '../test/actuator-in-dir.ts';
import { startRedis } from '../servers/redis.ts';
import { waitUntil } from '../process/wait.ts';
import { actuatorKeys, keys, Topology } from '../topology/index.ts';
import { scaleIn, scaleOut } from '../test/fixtures/notifications.ts';
import { processAlive } from '../process/signals.ts';

const TOKEN = 'actuator-e2e-token-0123456789';
const TREE = 'tree-1';

// Real Redis, real Alertmanager 0.25 (two of them, as an HA pair that both
// deliver), the real `canopy actuator` with the local provisioner starting
// real `canopy node egress` processes.
describe('actuator: Alertmanager -> subtree, exactly once', () => {
  let rig: ActuatorRig;
  let client: Redis;
  let actuatorUrl: string;
  let ams: RunningAlertmanager[] = [];
  const stateDir = () => rig.stateDir;
  const targetsDir = () => rig.targetsDir;

  const subtrees = async () => Object.keys(await client.hgetall(actuatorKeys.subtrees(TREE)));
  const journal = async () =>
    (
      (await (await fetch(`${actuatorUrl}/actions?limit=100`)).json()) as {
        actions: Array<{ kind: string; result: string; subtree?: string; why: string }>;
      }
    ).actions;
  const pids = () => subtreePids(stateDir());

  beforeAll(async () => {
    rig = await startActuatorRig({
      name: 'actuator',
      tree: TREE,
      token: TOKEN,
      relay: 'relay-1',
      slots: ['relay-1-s0', 'relay-1-s1'],
      args: [
        '--subtree-size',
        '2',
        '--scale-out-cooldown',
        '1s',
        '--scale-in-stabilisation',
        '3s',
        '--protect-new-subtree',
        '1s',
        '--drain-timeout',
        '5s',
        '--ready-timeout',
        '60s',
        '--lock-ttl',
        '10s',
      ],
      timings: { groupWait: '1s', groupInterval: '2s', repeatInterval: '3s' },
    });
    ({ client, actuatorUrl, ams } = rig);
  }, 60_000);

  afterAll(async () => {
    await rig?.stop();
  }, 60_000);

  const startsAt = new Date(Date.now() - 60_000).toISOString();

  it('one firing scale-out, sent by both Alertmanagers and repeated: exactly one subtree', async () => {
    for (const am of ams) await pushAlerts(am.url, [{ labels: scaleOut(TREE), startsAt }]);
    // A target in the file whose node does not answer /readyz yet was
    // announced before that node was ready.
    let announcedWhileStarting = false;
    await waitUntil(
      'one subtree',
      async () => {
        const dir = join(targetsDir(), 'media-tree-egress');
        for (const f of existsSync(dir) && !announcedWhileStarting ? readdirSync(dir) : []) {
          const groups = JSON.parse(readFileSync(join(dir, f), 'utf8')) as Array<{ targets: string[] }>;
          const ready = await Promise.all(
            groups
              .flatMap((g) => g.targets)
              .map((t) =>
                fetch(`http://${t}/readyz`, { signal: AbortSignal.timeout(1_000) }).then(
                  (r) => r.ok,
                  () => false,
                ),
              ),
          );
          if (ready.some((r) => !r)) announcedWhileStarting = true;
        }
        return (await subtrees()).length === 1;
      },
      { timeoutMs: 60_000, intervalMs: 25 },
    );
    // Prometheus's discovery delay overlaps provisioning.
    expect(announcedWhileStarting).toBe(true);
    const [subtree] = await subtrees();
    const record = JSON.parse((await client.hget(actuatorKeys.subtrees(TREE), subtree!))!) as {
      slot: string;
      nodes: string[];
    };
    expect(record.nodes).toHaveLength(2);
    // The topology: parent links, the slot's children, the slot taken.
    expect((await client.smembers(keys.children(record.slot))).sort()).toEqual([...record.nodes].sort());
    for (const n of record.nodes) expect(await client.get(keys.parent(n))).toBe(record.slot);
    expect(await client.smembers(keys.availableSlots(TREE))).not.toContain(record.slot);
    // Prometheus will scrape them: one file_sd file with both nodes.
    const targets = JSON.parse(
      readFileSync(join(targetsDir(), 'media-tree-egress', `${subtree}.json`), 'utf8'),
    ) as Array<{ labels: { node_id: string; tree_id: string } }>;
    expect(targets.map((t) => t.labels.node_id).sort()).toEqual([...record.nodes].sort());
    expect(targets.every((t) => t.labels.tree_id === TREE)).toBe(true);
    // Repeats from both Alertmanagers keep arriving (repeat_interval 3s): nothing more happens.
    await new Promise((r) => setTimeout(r, 8_000));
    expect(await subtrees()).toEqual([subtree]);
    expect(pids()).toHaveLength(2);
    expect((await journal()).filter((a) => a.kind === 'scale-out' && a.result === 'done')).toHaveLength(1);
    const metrics = await (await fetch(`${actuatorUrl}/metrics`)).text();
    expect(Number(/canopy_actuator_duplicates_suppressed_total (\d+)/.exec(metrics)?.[1])).toBeGreaterThan(0);
  }, 90_000);

  it('the scale-out resolving removes nothing', async () => {
    for (const am of ams)
      await pushAlerts(am.url, [{ labels: scaleOut(TREE), startsAt, endsAt: new Date().toISOString() }]);
    await new Promise((r) => setTimeout(r, 5_000));
    expect(await subtrees()).toHaveLength(1);
    expect(pids().every(processAlive)).toBe(true);
  }, 30_000);

  it('a firing scale-in drains the subtree, then removes it: processes, topology, targets, slot', async () => {
    const [subtree] = await subtrees();
    const record = JSON.parse((await client.hget(actuatorKeys.subtrees(TREE), subtree!))!) as {
      slot: string;
      nodes: string[];
    };
    const before = pids();
    for (const am of ams) await pushAlerts(am.url, [{ labels: scaleIn(TREE), startsAt: new Date().toISOString() }]);
    await waitUntil('the subtree removed', async () => (await subtrees()).length === 0, {
      timeoutMs: 60_000,
      intervalMs: 250,
    });
    expect(await client.smembers(keys.children(record.slot))).toEqual([]);
    for (const n of record.nodes) expect(await client.get(keys.parent(n))).toBeNull();
    expect(await client.smembers(keys.availableSlots(TREE))).toContain(record.slot);
    expect(existsSync(join(targetsDir(), 'media-tree-egress', `${subtree}.json`))).toBe(false);
    await waitUntil('egress processes gone', () => before.every((p) => !processAlive(p)), { timeoutMs: 15_000 });
    const actions = await journal();
    expect(actions.filter((a) => a.kind === 'scale-in' && a.result === 'done').map((a) => a.subtree)).toEqual([
      subtree,
    ]);
  }, 90_000);

  it('Redis down: the webhook answers 503, Alertmanager retries, and the scale-out happens once Redis is back', async () => {
    const port = rig.redis.port;
    await rig.redis.stop();
    const startsAt2 = new Date().toISOString();
    for (const am of ams) await pushAlerts(am.url, [{ labels: scaleOut(TREE), startsAt: startsAt2 }]);
    // Deliveries fail meanwhile (503 or connection refused inside the actuator).
    await new Promise((r) => setTimeout(r, 4_000));
    rig.redis = await startRedis(port);
    // This Redis keeps nothing on disk: the relay's slots are offered again, as a restarted relay does.
    await new Topology(client, TREE).registerSlots('relay-1', ['relay-1-s0', 'relay-1-s1'], true);
    await waitUntil('the retried scale-out', async () => (await subtrees()).length === 1, {
      timeoutMs: 60_000,
      intervalMs: 500,
    });
    const metrics = await (await fetch(`${actuatorUrl}/metrics`)).text();
    expect(
      Number(/canopy_actuator_notifications_total\{outcome="unavailable"\} (\d+)/.exec(metrics)?.[1]),
    ).toBeGreaterThan(0);
    // Leave nothing running: remove it again through a scale-in.
    for (const am of ams) await pushAlerts(am.url, [{ labels: scaleIn(TREE), startsAt: new Date().toISOString() }]);
    await waitUntil('the subtree removed', async () => (await subtrees()).length === 0, {
      timeoutMs: 60_000,
      intervalMs: 500,
    });
    await waitUntil('egress processes gone', () => pids().every((p) => !processAlive(p)), { timeoutMs: 15_000 });
  }, 120_000);
});
