import express from 'express';
import { Redis } from 'ioredis';
import type { Server } from 'node:http';
import pino from 'pino';
import { createActuatorMetrics, metricsRouter } from '../exporters/index.ts';
import { Inbox } from './inbox.ts';
import { webhookRouter } from './server.ts';
import { actionMessage, SlackNotifier } from './slack.ts';
import { ActuatorStore, FAILURE_REASONS } from './store.ts';
import { TargetFiles } from './targets.ts';
import { Worker, type WorkerOptions } from './worker.ts';

/** The worker's own settings, passed through as they are. */
type WorkerSettings = Pick<
  WorkerOptions,
  | 'provisioner'
  | 'policy'
  | 'subtreeSize'
  | 'dryRun'
  | 'owner'
  | 'lockTtlMs'
  | 'readyTimeoutMs'
  | 'drainTimeoutMs'
  | 'reconcileIntervalMs'
>;

export interface ActuatorConfig extends WorkerSettings {
  listenHost: string;
  port: number;
  redisUrl: string;
  token: string;
  bodyLimitBytes: number;
  targetsDir: string;
  logLevel: string;
  /** Slack incoming-webhook URL for completed and failed actions; none: no notifications. */
  slackUrl?: string;
}

export interface RunningActuator {
  url: string;
  stop(): Promise<void>;
}

/** The actuator service: the webhook, the worker, /actions, /metrics, /healthz, /readyz. */
export async function startActuatorInProcess(c: ActuatorConfig): Promise<RunningActuator> {
  const log = pino({ level: c.logLevel, base: { component: 'actuator', owner: c.owner } }, pino.destination(2));
  // Fail fast while Redis is away, so the webhook answers 503 and Alertmanager retries.
  const redis = new Redis(c.redisUrl, {
    enableOfflineQueue: false,
    maxRetriesPerRequest: 1,
    commandTimeout: 2_000,
    retryStrategy: (n) => Math.min(n * 200, 2_000),
  });
  redis.on('error', (err) => log.debug({ err: err.message }, 'redis'));
  const metrics = createActuatorMetrics();
  // Present from the start at 0, so increase() sees the first rejection or outage.
  for (const outcome of ['accepted', 'rejected', 'unavailable']) metrics.notifications.inc({ outcome }, 0);
  const store = new ActuatorStore(redis, (m, d) => log.warn(d ?? {}, m));
  const slack = c.slackUrl ? new SlackNotifier({ url: c.slackUrl, log: (m, d) => log.warn(d ?? {}, m) }) : null;

  const worker = new Worker({
    redis,
    provisioner: c.provisioner,
    policy: c.policy,
    subtreeSize: c.subtreeSize,
    dryRun: c.dryRun,
    owner: c.owner,
    lockTtlMs: c.lockTtlMs,
    readyTimeoutMs: c.readyTimeoutMs,
    drainTimeoutMs: c.drainTimeoutMs,
    reconcileIntervalMs: c.reconcileIntervalMs,
    targets: new TargetFiles(c.targetsDir, 'media-tree-egress'),
    log: (level, msg, detail) => log[level](detail ?? {}, msg),
    onAction: (e) => {
      const action = e.kind === 'scale-out' ? 'scale_out' : 'scale_in';
      const outcome =
        e.result === 'done' ? 'succeeded' : e.result === 'failed' || e.result === 'rolled-back' ? 'failed' : 'skipped';
      metrics.actions.inc({ tree_id: e.tree, action, outcome });
      if (outcome === 'failed') metrics.failures.inc({ tree_id: e.tree, action, reason: e.reason ?? 'other' });
      if (e.durationMs !== undefined) metrics.actionDuration.observe({ action, outcome }, e.durationMs / 1000);
      const text = slack && actionMessage(e);
      if (text) slack.notify(text);
    },
    onDuplicate: () => metrics.duplicates.inc(),
    onLockContention: () => metrics.lockContention.inc(),
    onRebuilt: (tree, n) => metrics.subtreesRebuilt.inc({ tree_id: tree }, n),
  });
  metrics.node.collectors.push({
    name: 'subtrees',
    collect: async () => {
      metrics.subtrees.reset();
      metrics.inFlight.reset();
      for (const tree of await store.trees()) {
        // Every series a known tree can reach, present at 0: increase() then
        // sees the first action or failure (a counter born at 1 shows none).
        for (const action of ['scale_out', 'scale_in']) {
          for (const outcome of ['succeeded', 'failed', 'skipped'])
            metrics.actions.inc({ tree_id: tree, action, outcome }, 0);
          for (const reason of FAILURE_REASONS) metrics.failures.inc({ tree_id: tree, action, reason }, 0);
        }
        metrics.subtrees.set({ tree_id: tree }, (await store.subtrees(tree)).size);
        metrics.inFlight.set({ tree_id: tree }, (await store.inflight(tree)) ? 1 : 0);
      }
    },
  });

  const app = express();
  app.disable('x-powered-by');
  app.use(
    webhookRouter({
      token: c.token,
      inbox: new Inbox(redis),
      bodyLimitBytes: c.bodyLimitBytes,
      onResult: (result, detail) => {
        const outcome =
          result === 'recorded' || result === 'ignored'
            ? 'accepted'
            : result === 'unavailable'
              ? 'unavailable'
              : 'rejected';
        metrics.notifications.inc({ outcome });
        if (result !== 'recorded' && result !== 'ignored') log.warn({ result, ...detail }, 'notification refused');
      },
    }),
  );
  app.use(metricsRouter(metrics.node));
  app.get('/readyz', async (_req, res) => {
    const ok = await redis.ping().then(
      () => true,
      () => false,
    );
    res.status(ok ? 200 : 503).json({ ready: ok, ...(ok ? {} : { reason: 'Redis does not answer' }) });
  });
  app.get('/actions', async (req, res) => {
    const raw = String(req.query.limit ?? '100');
    if (!/^\d{1,4}$/.test(raw) || Number(raw) < 1) {
      res.status(400).json({ error: 'limit: a whole number 1..9999' });
      return;
    }
    try {
      res.json({ actions: await store.actions(Number(raw)) });
    } catch (err) {
      res.status(503).json({ error: `cannot read the journal: ${(err as Error).message}` });
    }
  });

  const server: Server = await new Promise((resolve, reject) => {
    const s = app.listen(c.port, c.listenHost, () => resolve(s));
    s.once('error', reject);
  });
  const running = worker.run().catch((err) => log.error({ err: (err as Error).message }, 'worker stopped'));
  const addr = server.address();
  const port = typeof addr === 'object' && addr ? addr.port : c.port;
  log.info({ port, provisioner: c.provisioner.name, dryRun: c.dryRun }, 'actuator listening');
  return {
    url: `http://${c.listenHost}:${port}`,
    async stop() {
      worker.stop();
      await new Promise<void>((r) => server.close(() => r()));
      await running;
      await slack?.flush();
      redis.disconnect();
    },
  };
}
