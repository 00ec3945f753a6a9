import type { Redis } from 'ioredis';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  alertmanagerConfig,
  pushAlerts,
  startAlertmanager,
  type RunningAlertmanager,
} from '../servers/alertmanager.ts';
import { startRedis, type RunningRedis } from '../servers/redis.ts';
import { waitUntil } from '../process/wait.ts';
import { failFastRedis, serveWebhook } from '../test/webhook.ts';
import { actuatorKeys } from '../topology/index.ts';
import { scaleOut } from '../test/fixtures/notifications.ts';
import type { WebhookResult } from './server.ts';

const TOKEN = 'am-test-token-0123456789';

// The real Alertmanager 0.25, routed by deploy/alertmanager.yml, delivering to
// the webhook: proves the strict v4 schema takes what Alertmanager really sends.
describe('real Alertmanager 0.25 -> POST /alerts', () => {
  let dir: string;
  let redis: RunningRedis;
  let client: Redis;
  let am: RunningAlertmanager;
  let close: () => Promise<void>;
  const results: WebhookResult[] = [];

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'canopy-am-'));
    redis = await startRedis();
    client = await failFastRedis(redis.port);
    const srv = await serveWebhook(client, { token: TOKEN, bodyLimitBytes: 1 << 20, results });
    close = srv.close;
    am = await startAlertmanager(
      dir,
      alertmanagerConfig(dir, { actuatorUrl: `${srv.url}/alerts`, token: TOKEN, groupWait: '1s', groupInterval: '2s' }),
    );
  });
  afterAll(async () => {
    await am?.child.stop();
    await close?.();
    client?.disconnect();
    await redis?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('delivers a firing scale-out, with its bearer token, and it is recorded', async () => {
    await pushAlerts(am.url, [
      { labels: scaleOut('tree-7'), annotations: { summary: 'A media tree needs more egress capacity.' } },
    ]);
    await waitUntil('the notification in the inbox', async () => (await client.xlen(actuatorKeys.inbox)) >= 1, {
      timeoutMs: 20_000,
    });
    const [entry] = await client.xrange(actuatorKeys.inbox, '-', '+');
    const recorded = JSON.parse(entry![1][1]!);
    expect(recorded.requests).toEqual([
      expect.objectContaining({
        kind: 'scale-out',
        tree: 'tree-7',
        status: 'firing',
        urgency: 'critical',
        reason: 'port_pool',
      }),
    ]);
    expect(recorded.requests[0].fingerprint).toMatch(/^[0-9a-f]{16}$/);
    expect(results).not.toContain('invalid');
  });

  it('a non-scaling alert goes to Slack, never to the actuator', async () => {
    const before = results.length;
    await pushAlerts(am.url, [
      { labels: { alertname: 'PacketLoss', component: 'network', tree_id: 'tree-7', severity: 'warning' } },
    ]);
    await new Promise((r) => setTimeout(r, 4_000));
    expect(results.slice(before)).not.toContain('ignored');
  });
});
