import { Router } from 'express';
import { EXPOSITION_CONTENT_TYPE, renderExposition, type ExpositionOptions } from './exposition.ts';
import type { NodeRegistry } from './registry.ts';

/** `GET /metrics` and `GET /healthz` for one node's registry. */
export function metricsRouter(node: NodeRegistry, options: ExpositionOptions = {}): Router {
  const router = Router();
  router.get('/metrics', async (_req, res) => {
    const body = await renderExposition(node, options);
    res.status(200).type(EXPOSITION_CONTENT_TYPE).send(body);
  });
  router.get('/healthz', (_req, res) => {
    res.status(200).type('text/plain').send('ok\n');
  });
  return router;
}
