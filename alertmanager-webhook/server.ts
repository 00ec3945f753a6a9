import express, { type NextFunction, type Request, type Response } from 'express';
import { authorized } from './auth.ts';
import type { Inbox } from './inbox.ts';
import { parseNotification, PayloadError, scalingRequests } from './payload.ts';

export interface WebhookOptions {
  token: string;
  inbox: Inbox;
  /** Larger bodies get 413 before they are read whole. */
  bodyLimitBytes: number;
  /** Called once per answered notification, for metrics and logs. */
  onResult?: (result: WebhookResult, detail: Record<string, unknown>) => void;
}

export type WebhookResult = 'recorded' | 'ignored' | 'unauthorized' | 'invalid' | 'too_large' | 'unavailable';

/**
 * POST /alerts: Alertmanager's webhook. 202 once the scaling requests are in
 * the Redis inbox; 200 when nothing in it asks for scaling; 4xx for input
 * Alertmanager should not retry as is; 503 only when the inbox could not take
 * it, so Alertmanager retries until Redis is back.
 */
export function webhookRouter(o: WebhookOptions): express.Router {
  const router = express.Router();
  const answer = (res: Response, status: number, result: WebhookResult, body: Record<string, unknown>) => {
    o.onResult?.(result, body);
    res.status(status).json(body);
  };

  router.post(
    '/alerts',
    (req: Request, res: Response, next: NextFunction) => {
      if (!authorized(req.get('authorization'), o.token)) {
        res.set('WWW-Authenticate', 'Bearer');
        return answer(res, 401, 'unauthorized', { error: 'missing or wrong bearer token' });
      }
      next();
    },
    express.raw({ type: () => true, limit: o.bodyLimitBytes }),
    async (req: Request, res: Response) => {
      let parsed: ReturnType<typeof scalingRequests> & { groupKey: string };
      try {
        const n = parseNotification(Buffer.isBuffer(req.body) ? req.body : Buffer.alloc(0));
        parsed = { ...scalingRequests(n), groupKey: n.groupKey };
      } catch (err) {
        if (err instanceof PayloadError) return answer(res, 400, 'invalid', { error: err.message });
        throw err;
      }
      const { requests, ignored, groupKey } = parsed;
      if (requests.length === 0) return answer(res, 200, 'ignored', { recorded: 0, ignored });
      try {
        const id = await o.inbox.record({ receivedAt: new Date().toISOString(), groupKey, requests });
        return answer(res, 202, 'recorded', { recorded: requests.length, ignored, id });
      } catch (err) {
        return answer(res, 503, 'unavailable', { error: `cannot record the notification: ${(err as Error).message}` });
      }
    },
  );

  // Body-parser errors (oversized, aborted) as JSON, never an HTML page.
  router.use(
    (err: { status?: number; type?: string; message?: string }, _req: Request, res: Response, _next: NextFunction) => {
      if (err.type === 'entity.too.large')
        return answer(res, 413, 'too_large', { error: `body larger than ${o.bodyLimitBytes} bytes` });
      return answer(res, err.status && err.status < 500 ? err.status : 400, 'invalid', {
        error: err.message ?? 'bad request',
      });
    },
  );
  return router;
}
