import type { Express } from 'express';
import { isIP } from 'node:net';
import type { Logger } from 'pino';
import { z } from 'zod';
import { ID_PATTERN, type Topology } from '../topology/index.ts';
import { badInput, HttpError, type Queue } from './common.ts';
import type { EgressMounts } from './egress-mounts.ts';
import type { NodeBase } from './lifecycle.ts';

const portNum = z.number().int().min(1).max(65535);
const viewerBody = z
  .object({
    host: z.string().refine((h) => isIP(h) !== 0, 'host: an IPv4 or IPv6 address literal'),
    audioPort: portNum,
    videoPort: portNum,
  })
  .strict();

export interface EgressRoutesOptions {
  nodeId: string;
  mounts: EgressMounts;
  topo: Topology;
  /** The node's one queue: viewer changes never interleave with a reconcile. */
  queue: Queue;
  state: NodeBase['state'];
  /** True once the first reconcile is done. */
  serving: () => boolean;
  log: Logger;
}

const checkSessionId = (id: string) => {
  if (!ID_PATTERN.test(id)) throw new HttpError(400, 'bad session id: 1..63 of a-z, 0-9, - (not starting with -)');
};

/** `GET /sessions` and the WHEP-shaped viewer API. */
export function egressRoutes(app: Express, o: EgressRoutesOptions): void {
  const { mounts, queue, log } = o;

  app.get('/sessions', (_req, res) => {
    res.json(mounts.describe());
  });

  // WHEP-shaped: POST to the session's endpoint creates a viewer (201 + Location), DELETE on that ends it.
  app.post('/whep/:sessionId', async (req, res) => {
    const sessionId = req.params.sessionId;
    checkSessionId(sessionId);
    const r = viewerBody.safeParse(req.body);
    if (!r.success) throw badInput('viewer', r.error);
    if (!o.serving()) throw new HttpError(503, 'not ready');
    const v = await queue.run(async () => {
      if (o.state.stopping || (await o.topo.isDraining(o.nodeId)))
        throw new HttpError(503, 'this egress node is draining and takes no new viewers');
      const m = mounts.get(sessionId);
      if (!m) throw new HttpError(404, `no live session ${sessionId} on this node`);
      return mounts.addViewer(m, r.data);
    });
    log.info(
      { viewer: v.id, session: sessionId, host: v.host, audioPort: v.audioPort, videoPort: v.videoPort },
      'viewer joined',
    );
    res
      .status(201)
      .location(`/whep/${sessionId}/viewers/${v.id}`)
      .json({ viewerId: v.id, sessionId, poolPort: v.poolPort });
  });

  app.delete('/whep/:sessionId/viewers/:viewerId', async (req, res) => {
    const { sessionId, viewerId } = req.params;
    checkSessionId(sessionId);
    if (!ID_PATTERN.test(viewerId)) throw new HttpError(400, 'bad viewer id');
    await queue.run(async () => {
      const m = mounts.get(sessionId);
      const v = m?.viewers.get(viewerId);
      if (!m || !v) throw new HttpError(404, `no viewer ${viewerId} of session ${sessionId} on this node`);
      await mounts.dropViewer(m, v, true);
    });
    log.info({ viewer: viewerId, session: sessionId }, 'viewer left');
    res.status(204).end();
  });
}
