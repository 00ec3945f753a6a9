import { execFileSync } from 'node:child_process';
import express from 'express';
import { Redis } from 'ioredis';
import { existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Child } from '../process/child.ts';
import { spawnActuatorInDir } from '../test/actuator-in-dir.ts';
import { startRedis, type RunningRedis } from '../servers/redis.ts';
import { waitUntil } from '../process/wait.ts';
import { serve } from '../test/http.ts';
import { actuatorKeys, keys, Topology } from '../topology/index.ts';
import { notification, scaleOut } from '../test/fixtures/notifications.ts';
import { SlackNotifier } from './slack.ts';

const TOKEN = 'failure-test-token-0123456789';
const TREE = 'tree-f';

// A provisioner failure (nodes not ready by the deadline) rolls everything
// back and is reported to Slack, whose first answer is a 500 (retried).
describe('a failing scale-out', () => {
  let dir: string;
  let redis: RunningRedis;
  let client: Redis;
  let actuator: Child;
  let url: string;
  let closeSlack: () => Promise<void>;
  const slackPosts: Array<{ status: number; text: string }> = [];

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'canopy-failure-'));
    redis = await startRedis();
    client = new Redis(redis.port, '127.0.0.1');
    await new Topology(client, TREE).registerSlots('relay-1', ['relay-1-s0'], true);
    const slack = express();
    slack.use(express.json());
    slack.post('/hook', (req, res) => {
      const status = slackPosts.length === 0 ? 500 : 200;
      slackPosts.push({ status, text: req.body.text });
      res.status(status).send(status === 200 ? 'ok' : 'oops');
    });
    const s = await serve(slack);
    closeSlack = s.close;
    writeFileSync(join(dir, 'slack-url'), `${s.url}/hook\n`);
    writeFileSync(join(dir, 'token'), `${TOKEN}\n`);
    ({ child: actuator, url } = await spawnActuatorInDir({
      dir,
      redisUrl: redis.url,
      tokenFile: join(dir, 'token'),
      args: ['--subtree-size', '2', '--ready-timeout', '1ms', '--slack-webhook-url-file', join(dir, 'slack-url')],
    }));
  });
  afterAll(async () => {
    await actuator?.stop();
    await closeSlack?.();
    client?.disconnect();
    await redis?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('rolls back: slot returned, subtree deleted, no topology, no targets; reports to Slack', async () => {
    const res = await fetch(`${url}/alerts`, {
      method: 'POST',
      headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
      body: JSON.stringify(notification([{ labels: scaleOut(TREE) }])),
    });
    expect(res.status).toBe(202);
    await waitUntil(
      'the failure in the journal',
      async () => {
        const { actions } = (await (await fetch(`${url}/actions`)).json()) as { actions: Array<{ result: string }> };
        return actions.some((a) => a.result === 'failed');
      },
      { timeoutMs: 30_000 },
    );
    const { actions } = (await (await fetch(`${url}/actions`)).json()) as {
      actions: Array<{ kind: string; result: string; reason: string; why: string }>;
    };
    expect(actions[0]).toMatchObject({ kind: 'scale-out', result: 'failed', reason: 'timeout' });
    expect(actions[0]!.why).toMatch(/not ready after 1 ms.*rolled back/);
    expect(await client.smembers(keys.availableSlots(TREE))).toEqual(['relay-1-s0']);
    expect(await client.smembers(keys.children('relay-1-s0'))).toEqual([]);
    expect(await client.hlen(actuatorKeys.subtrees(TREE))).toBe(0);
    expect(await client.exists(actuatorKeys.inflight(TREE))).toBe(0);
    expect(
      existsSync(join(dir, 'targets', 'media-tree-egress'))
        ? readdirSync(join(dir, 'targets', 'media-tree-egress'))
        : [],
    ).toEqual([]);
    expect(readdirSync(join(dir, 'subtrees')).filter((f) => f.endsWith('.json'))).toEqual([]);
    let left = '';
    try {
      left = execFileSync('pgrep', ['-f', `node egress --tree-id ${TREE} `], { encoding: 'utf8' });
    } catch {
      left = '';
    }
    expect(left.trim()).toBe('');
    // The failure reached Slack on the second try.
    await waitUntil('the Slack notification', () => slackPosts.some((p) => p.status === 200), { timeoutMs: 15_000 });
    expect(slackPosts.map((p) => p.status)).toEqual([500, 200]);
    expect(slackPosts[1]!.text).toMatch(/^❌ Scale-out of tree-f failed: .*not ready after 1 ms/);
    const metrics = await (await fetch(`${url}/metrics`)).text();
    expect(metrics).toMatch(
      /canopy_actuator_action_failures_total\{tree_id="tree-f",action="scale_out",reason="timeout"\} 1/,
    );
  }, 60_000);
});

describe('SlackNotifier', () => {
  it('never holds the caller, and gives up on a Slack that never answers', async () => {
    const hang = express();
    hang.post('/hook', () => {});
    const s = await serve(hang);
    try {
      const slack = new SlackNotifier({ url: `${s.url}/hook`, retries: 1, baseDelayMs: 10, timeoutMs: 200 });
      const started = Date.now();
      // nothing to await, and back before even one try could have timed out (200 ms)
      expect(slack.notify('one')).toBeUndefined();
      expect(slack.notify('two')).toBeUndefined();
      expect(Date.now() - started).toBeLessThan(200);
      await slack.flush();
      // Two messages, two tries each, 200 ms each: bounded.
      expect(Date.now() - started).toBeLessThan(3_000);
    } finally {
      await s.close().catch(() => {});
    }
  });

  it('refuses a URL that is not http(s)', () => {
    expect(() => new SlackNotifier({ url: 'file:///etc/passwd' })).toThrow(/http\(s\)/);
  });
});
