import { exitWithPid, whenGone } from '../process/exit-with.ts';
import express, { type ErrorRequestHandler, type Express, type Request, type Response } from 'express';
import type { Server } from 'node:http';
import { Redis } from 'ioredis';
import { pino, type Logger } from 'pino';
import type { z } from 'zod';
import { metricsRouter, type NodeRegistry } from '../exporters/index.ts';
import { TopologyInputError } from '../topology/index.ts';

/** Settings every node app shares (cli/node.ts fills them from flags and env). */
export interface CommonConfig {
  treeId: string;
  nodeId: string;
  redisUrl: string;
  listenHost: string;
  port: number;
  /** The address other nodes use to reach this one (RTP and HTTP). */
  advertiseHost: string;
  logLevel: string;
}

export function createLogger(nodeType: string, c: Pick<CommonConfig, 'nodeId' | 'treeId' | 'logLevel'>): Logger {
  // Structured logs go to stderr: stdout stays free for whatever a wrapper wants to print.
  return pino(
    { level: c.logLevel, base: { node_type: nodeType, node_id: c.nodeId, tree_id: c.treeId } },
    pino.destination(2),
  );
}

export function connectRedis(url: string, log: Logger): Redis {
  const r = new Redis(url, {
    // A command waits for a reconnect rather than failing at once, but not forever.
    maxRetriesPerRequest: 3,
    retryStrategy: (n) => Math.min(n * 200, 2_000),
    lazyConnect: false,
  });
  let down = false;
  r.on('error', (err) => {
    if (!down) log.warn({ err: err.message }, 'redis connection error');
    down = true;
  });
  r.on('ready', () => {
    if (down) log.info('redis connection back');
    down = false;
  });
  return r;
}

/** A clear 4xx (or 5xx) with a JSON body. */
export class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly detail?: Record<string, unknown>,
    /** Response headers, such as a 503's Retry-After. */
    readonly headers?: Record<string, string>,
  ) {
    super(message);
  }
}

/** A 400 naming every field zod refused (`bad <what>: path: message; ...`). */
export function badInput(what: string, e: z.ZodError): HttpError {
  const issues = e.issues.map((i) => `${i.path.join('.') || '(body)'}: ${i.message}`);
  return new HttpError(400, `bad ${what}: ${issues.join('; ')}`, { issues });
}

export function sendError(res: Response, status: number, message: string, detail?: Record<string, unknown>): void {
  res.status(status).json({ error: message, ...detail });
}

/** Express with /metrics, /healthz, /readyz and JSON bodies of at most 16 KiB (WHEP's and WHIP's SDP bodies are their own). */
export function baseApp(node: NodeRegistry, ready: () => Promise<string | null>): Express {
  const app = express();
  app.disable('x-powered-by');
  app.use(metricsRouter(node));
  app.get('/readyz', async (_req, res) => {
    let why: string | null;
    try {
      why = await ready();
    } catch (err) {
      why = (err as Error).message;
    }
    if (why === null) res.status(200).type('text/plain').send('ready\n');
    else res.status(503).type('text/plain').send(`not ready: ${why}\n`);
  });
  app.use(express.json({ limit: '16kb', strict: true, type: (req) => !/^\/wh[ei]p\//.test(req.url ?? '') }));
  return app;
}

/** Last handlers: unknown routes and errors become JSON, never an HTML page or a stack. */
export function finishApp(app: Express, log: Logger): void {
  app.use((req: Request, res: Response) => sendError(res, 404, `no route ${req.method} ${req.path}`));
  const onError: ErrorRequestHandler = (err, _req, res, _next) => {
    if (err instanceof HttpError) {
      if (err.headers) res.set(err.headers);
      return sendError(res, err.status, err.message, err.detail);
    }
    if (err instanceof TopologyInputError) return sendError(res, 400, err.message);
    const e = err as { type?: string; status?: number; message?: string };
    if (e.type === 'entity.parse.failed') return sendError(res, 400, 'body is not valid JSON');
    if (e.type === 'entity.too.large') return sendError(res, 413, 'body over 16 KiB');
    if (typeof e.status === 'number' && e.status >= 400 && e.status < 500)
      return sendError(res, e.status, e.message ?? 'bad request');
    log.error({ err: e.message }, 'request failed');
    sendError(res, 500, 'internal error');
  };
  app.use(onError);
}

export function listen(app: Express, host: string, port: number): Promise<Server> {
  return new Promise((resolve, reject) => {
    const s = app.listen(port, host, () => resolve(s));
    s.once('error', reject);
  });
}

export function closeServer(s: Server): Promise<void> {
  s.closeAllConnections();
  return new Promise((resolve) => s.close(() => resolve()));
}

/** Runs `fn` until it succeeds (Redis not up yet, say), logging each failure. */
export async function retry(what: string, log: Logger, fn: () => Promise<void>, stopped: () => boolean): Promise<void> {
  for (let delay = 250; !stopped(); delay = Math.min(delay * 2, 5_000)) {
    try {
      await fn();
      return;
    } catch (err) {
      log.warn({ err: (err as Error).message, retryInMs: delay }, `${what} failed`);
      await new Promise((r) => setTimeout(r, delay));
    }
  }
}

/** Ping with a deadline: readiness must answer quickly even when Redis hangs. */
export async function redisAnswers(r: Redis): Promise<boolean> {
  if (r.status !== 'ready') return false;
  const t = new Promise<'timeout'>((res) => setTimeout(() => res('timeout'), 1_000).unref());
  return (await Promise.race([r.ping(), t])) === 'PONG';
}

/** Serialises async jobs: reconciles and event handlers never interleave. */
export class Queue {
  private tail: Promise<void> = Promise.resolve();
  run<T>(job: () => Promise<T>): Promise<T> {
    const p = this.tail.then(job, job);
    this.tail = p.then(
      () => undefined,
      () => undefined,
    );
    return p;
  }
}

/** SIGTERM/SIGINT run `stop` once; the process then exits with its code. */
export function onTermination(log: Logger, stop: () => Promise<void>): void {
  let stopping = false;
  const handler = (sig: string) => {
    if (stopping) return;
    stopping = true;
    log.info({ signal: sig }, 'stopping');
    const hard = setTimeout(() => process.exit(1), 10_000);
    hard.unref();
    stop().then(
      () => {
        log.info('stopped');
        process.exit(0);
      },
      (err) => {
        log.error({ err: (err as Error).message }, 'stop failed');
        process.exit(1);
      },
    );
  };
  process.once('SIGTERM', () => handler('SIGTERM'));
  process.once('SIGINT', () => handler('SIGINT'));
  const pid = exitWithPid(process.env.CANOPY_EXIT_WITH_PID);
  if (pid !== null) whenGone(pid, () => handler(`process ${pid} (CANOPY_EXIT_WITH_PID) gone`));
}
