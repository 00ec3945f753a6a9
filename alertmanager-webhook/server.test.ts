import type { Redis } from 'ioredis';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { startRedis, type RunningRedis } from '../servers/redis.ts';
import { actuatorKeys } from '../topology/index.ts';
import { failFastRedis, serveWebhook } from '../test/webhook.ts';
import { notification, scaleIn, scaleOut } from '../test/fixtures/notifications.ts';
import type { WebhookResult } from './server.ts';

const TOKEN = 'test-token-0123456789abcdef';

describe('POST /alerts against a real Redis', () => {
  let redis: RunningRedis;
  let client: Redis;
  let url: string;
  let close: () => Promise<void>;
  const results: WebhookResult[] = [];

  beforeAll(async () => {
    redis = await startRedis();
    client = await failFastRedis(redis.port);
    ({ url, close } = await serveWebhook(client, { token: TOKEN, bodyLimitBytes: 64 * 1024, results }));
  });
  afterAll(async () => {
    await close?.();
    client?.disconnect();
    await redis?.stop();
  });
  beforeEach(async () => {
    if (client.status === 'ready') await client.flushall();
    results.length = 0;
  });

  const post = (body: string | object, token: string | null = TOKEN, headers: Record<string, string> = {}) =>
    fetch(`${url}/alerts`, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        ...(token ? { authorization: `Bearer ${token}` } : {}),
        ...headers,
      },
      body: typeof body === 'string' ? body : JSON.stringify(body),
      signal: AbortSignal.timeout(5_000),
    });
  const inboxLength = () => client.xlen(actuatorKeys.inbox);

  it('records a scaling notification and answers 202', async () => {
    const res = await post(notification([{ labels: scaleOut('tree-1') }, { labels: scaleIn('tree-2') }]));
    expect(res.status).toBe(202);
    expect(await res.json()).toMatchObject({ recorded: 2, ignored: 0 });
    const entries = await client.xrange(actuatorKeys.inbox, '-', '+');
    expect(entries).toHaveLength(1);
    const entry = JSON.parse(entries[0]![1][1]!);
    expect(entry.requests.map((r: { tree: string; kind: string }) => `${r.kind}:${r.tree}`)).toEqual([
      'scale-out:tree-1',
      'scale-in:tree-2',
    ]);
  });

  it('answers 200 and records nothing when no alert asks for scaling', async () => {
    const res = await post(notification([{ labels: { alertname: 'PacketLoss', component: 'network' } }]));
    expect(res.status).toBe(200);
    expect(await inboxLength()).toBe(0);
  });

  it.each([
    ['no token', null, 401],
    ['a wrong token', 'test-token-0123456789abcdeX', 401],
    ['a prefix of the token', TOKEN.slice(0, 10), 401],
  ])('refuses %s and records nothing', async (_what, token, status) => {
    const res = await post(notification([{ labels: scaleOut() }]), token);
    expect(res.status).toBe(status);
    expect(res.headers.get('www-authenticate')).toBe('Bearer');
    expect(await inboxLength()).toBe(0);
  });

  it.each([
    ['malformed JSON', '{"version":"4",', 400, /not JSON/],
    ['a wrong version', { ...notification([{ labels: scaleOut() }]), version: '3' }, 400, /version/],
    [
      'missing labels',
      notification([{ labels: { alertname: 'MediaTreeScaleOut' } }]),
      400,
      /component|tree_id|urgency/,
    ],
    ['a tree_id with CR/LF', notification([{ labels: scaleOut('tree-1\r\nFLUSHALL') }]), 400, /bad tree_id/],
    ['a tree_id with shell characters', notification([{ labels: scaleOut('$(reboot)') }]), 400, /bad tree_id/],
    [
      'an oversized body',
      { ...notification([{ labels: scaleOut() }]), groupKey: 'x'.repeat(70 * 1024) },
      413,
      /larger than/,
    ],
  ])('refuses %s with a clear error and records nothing', async (_what, body, status, message) => {
    const res = await post(body as object);
    expect(res.status).toBe(status);
    expect((await res.json()).error).toMatch(message);
    expect(await inboxLength()).toBe(0);
  });

  it('answers 503 while Redis is down, so Alertmanager retries', async () => {
    const port = redis.port;
    await redis.stop();
    try {
      const res = await post(notification([{ labels: scaleOut() }]));
      expect(res.status).toBe(503);
      expect((await res.json()).error).toMatch(/cannot record/);
      expect(results).toEqual(['unavailable']);
    } finally {
      redis = await startRedis(port);
    }
    // Back: the same notification is taken.
    await new Promise((r) => setTimeout(r, 1_500));
    const again = await post(notification([{ labels: scaleOut() }]));
    expect(again.status).toBe(202);
  }, 30_000);
});
