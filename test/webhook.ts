import express from 'express';
import { Redis } from 'ioredis';
import { Inbox } from '../alertmanager-webhook/inbox.ts';
import { type WebhookResult, webhookRouter } from '../alertmanager-webhook/server.ts';
import { serve } from './http.ts';

/** A Redis client that fails fast when Redis is gone, as the actuator's does: the webhook must answer 503, not hang. */
export async function failFastRedis(port: number): Promise<Redis> {
  const client = new Redis(port, '127.0.0.1', {
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    commandTimeout: 1_000,
    lazyConnect: false,
  });
  client.on('error', () => {});
  if (client.status !== 'ready') await new Promise((r) => client.once('ready', r));
  return client;
}

/** The webhook router alone on a loopback port, recording into `client`'s inbox; every result pushed to `results`. */
export function serveWebhook(
  client: Redis,
  o: { token: string; bodyLimitBytes: number; results: WebhookResult[] },
): Promise<{ url: string; close(): Promise<void> }> {
  const app = express();
  app.use(
    webhookRouter({
      token: o.token,
      inbox: new Inbox(client),
      bodyLimitBytes: o.bodyLimitBytes,
      onResult: (r) => o.results.push(r),
    }),
  );
  return serve(app);
}
