import type { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { waitUntil } from '../process/wait.ts';
import { pushAlerts, type RunningAlertmanager } from '../servers/alertmanager.ts';
import { type ActuatorRig, startActuatorRig, subtreePids } from '../test/actuator-in-dir.ts';
import { notification, scaleOut } from '../test/fixtures/notifications.ts';
import { actuatorKeys } from '../topology/index.ts';

const TOKEN = 'actuator-level-token-0123456789';
const TREE = 'tree-1';

// Real Redis, an HA pair of real Alertmanager 0.25 both delivering and
// repeating every second, retries posted straight to the webhook, and the real
// `canopy actuator` (level scaling, 2 subtrees per step at most) starting real
// egress processes: a tree short by three subtrees ends with exactly three.
describe('level scaling: a storm of repeats and duplicates while a tree is short by three', () => {
  let rig: ActuatorRig;
  let client: Redis;
  let actuatorUrl: string;
  let ams: RunningAlertmanager[] = [];
  const subtrees = async () => Object.keys(await client.hgetall(actuatorKeys.subtrees(TREE)));
  const pids = () => subtreePids(rig.stateDir);

  beforeAll(async () => {
    rig = await startActuatorRig({
      name: 'level',
      tree: TREE,
      token: TOKEN,
      // Five free slots: room for more than the three asked for.
      relay: 'relay-1',
      slots: ['relay-1-s0', 'relay-1-s1', 'relay-1-s2', 'relay-1-s3', 'relay-1-s4'],
      args: [
        '--scaling',
        'level',
        '--max-step-subtrees',
        '2',
        '--max-subtrees',
        '5',
        '--subtree-size',
        '1',
        '--scale-out-cooldown',
        '1s',
        '--scale-in-stabilisation',
        '1s',
        '--ready-timeout',
        '60s',
        '--lock-ttl',
        '10s',
      ],
      timings: { groupWait: '1s', groupInterval: '1s', repeatInterval: '1s' },
    });
    ({ client, actuatorUrl, ams } = rig);
  }, 60_000);

  afterAll(async () => {
    await rig?.stop();
  }, 60_000);

  it('converges in steps of at most two to exactly three subtrees, never four', async () => {
    const alert = {
      labels: scaleOut(TREE),
      annotations: { summary: 'A media tree needs more egress capacity.', desired_subtrees: '3' },
      startsAt: new Date(Date.now() - 60_000).toISOString(),
    };
    // A retry of one notification, as Alertmanager re-posts after a failed delivery.
    const retry = JSON.stringify(
      notification([{ labels: scaleOut(TREE), annotations: { desired_subtrees: '3' }, startsAt: alert.startsAt }]),
    );
    const post = () =>
      fetch(`${actuatorUrl}/alerts`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${TOKEN}` },
        body: retry,
        signal: AbortSignal.timeout(5_000),
      }).then(
        (r) => r.status,
        () => 0,
      );
    let most = 0;
    let storming = true;
    // Prometheus re-sends a firing alert to both Alertmanagers; retries come in between.
    const storm = (async () => {
      while (storming) {
        for (const am of ams) await pushAlerts(am.url, [alert]);
        await Promise.all([post(), post(), post()]);
        most = Math.max(most, (await subtrees()).length);
        await new Promise((r) => setTimeout(r, 200));
      }
    })();
    try {
      await waitUntil('three subtrees', async () => (await subtrees()).length >= 3, {
        timeoutMs: 90_000,
        intervalMs: 50,
      });
      // The storm goes on well past several cooldowns and repeats: nothing more.
      await new Promise((r) => setTimeout(r, 10_000));
    } finally {
      storming = false;
      await storm;
    }
    expect(most).toBe(3);
    expect(await subtrees()).toHaveLength(3);
    expect(pids()).toHaveLength(3);
    const { actions } = (await (await fetch(`${actuatorUrl}/actions?limit=1000`)).json()) as {
      actions: Array<{ kind: string; result: string; why: string }>;
    };
    const done = actions.filter((a) => a.kind === 'scale-out' && a.result === 'done').reverse();
    expect(done).toHaveLength(3);
    // Two at once (the per-step limit), then the third after the cooldown.
    expect(done.map((a) => a.why)).toEqual([
      expect.stringMatching(/3 subtrees asked for, 0 running, 2 this step \(1 of 2\)/),
      expect.stringMatching(/3 subtrees asked for, 0 running, 2 this step \(2 of 2\)/),
      expect.stringMatching(/3 subtrees asked for, 2 running$/),
    ]);
    const metrics = await (await fetch(`${actuatorUrl}/metrics`)).text();
    expect(Number(/canopy_actuator_duplicates_suppressed_total (\d+)/.exec(metrics)?.[1])).toBeGreaterThan(10);
    expect(await client.hget(actuatorKeys.tree(TREE), 'desired')).toBe('3');
  }, 150_000);
});
