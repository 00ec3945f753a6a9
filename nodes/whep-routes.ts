import type { Express, Request } from 'express';
import type { Logger } from 'pino';
import { ID_PATTERN, type Topology } from '../topology/index.ts';
import { HttpError, type Queue } from './common.ts';
import { egressWhepCors } from './cors.ts';
import type { EgressMounts } from './egress-mounts.ts';
import type { NodeBase } from './lifecycle.ts';
import { MAX_OFFER_BYTES, OfferError, parseOffer } from './whep-sdp.ts';
import type { WhepViewers } from './whep-viewers.ts';

/** Retry-After (s) while the node is not ready or draining: the entry point sends the viewer elsewhere meanwhile. */
export const NOT_SERVING_RETRY_AFTER_S = 5;

export interface WhepRoutesOptions {
  nodeId: string;
  mounts: EgressMounts;
  viewers: WhepViewers;
  topo: Topology;
  /** The node's one queue: a viewer is added between reconciles, never during one. */
  queue: Queue;
  state: NodeBase['state'];
  serving: () => boolean;
  log: Logger;
}

const checkId = (what: string, id: string) => {
  if (!ID_PATTERN.test(id)) throw new HttpError(400, `bad ${what} id: 1..63 of a-z, 0-9, - (not starting with -)`);
};

/** The request body as text, refused (400) past MAX_OFFER_BYTES without reading the rest. */
export function readOffer(req: Request): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let done = false;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > MAX_OFFER_BYTES && !done) {
        done = true;
        reject(new HttpError(400, `unusable offer: offer over ${MAX_OFFER_BYTES} bytes`));
        req.resume();
      } else if (!done) chunks.push(c);
    });
    req.on('end', () => !done && resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', (err) => !done && reject(err));
  });
}

/**
 * WHEP (draft-ietf-wish-whep) on an egress node: `POST /whep/<session>` with
 * an SDP offer answers 201 with the SDP answer and the viewer's resource in
 * Location; `DELETE` on that resource ends the viewer; `OPTIONS` for CORS
 * preflights. No trickle ICE: the answer carries every candidate (PATCH 405).
 */
export function whepRoutes(app: Express, o: WhepRoutesOptions): void {
  const { mounts, viewers, queue, log } = o;

  app.use('/whep', egressWhepCors);

  app.post('/whep/:sessionId', async (req, res) => {
    const { sessionId } = req.params;
    checkId('session', sessionId);
    if (!req.is('application/sdp')) {
      req.resume();
      throw new HttpError(415, 'a WHEP offer is Content-Type: application/sdp', undefined, {
        'Accept-Post': 'application/sdp',
      });
    }
    const sdp = await readOffer(req);
    let offer: ReturnType<typeof parseOffer>;
    try {
      offer = parseOffer(sdp);
    } catch (err) {
      if (err instanceof OfferError) throw new HttpError(400, `unusable offer: ${err.message}`);
      throw err;
    }
    const notServing = (why: string) =>
      new HttpError(503, why, undefined, { 'Retry-After': String(NOT_SERVING_RETRY_AFTER_S) });
    if (!o.serving()) throw notServing('not ready');
    const v = await queue.run(async () => {
      if (o.state.stopping || (await o.topo.isDraining(o.nodeId)))
        throw notServing('this egress node is draining and takes no new viewers');
      const m = mounts.get(sessionId);
      if (!m) throw new HttpError(404, `no live session ${sessionId} on this node`);
      return viewers.add(m.session, sdp, offer);
    });
    log.info({ viewer: v.id, session: sessionId }, 'WHEP offer answered');
    res.status(201).location(`/whep/${sessionId}/viewers/${v.id}`).type('application/sdp').send(v.answer);
  });

  app.patch('/whep/:sessionId/viewers/:viewerId', (_req, res) => {
    res.status(405).set('Allow', 'DELETE, OPTIONS').json({ error: 'no trickle ICE: the answer has every candidate' });
  });

  app.delete('/whep/:sessionId/viewers/:viewerId', async (req, res) => {
    const { sessionId, viewerId } = req.params;
    checkId('session', sessionId);
    checkId('viewer', viewerId);
    if (!viewers.has(sessionId, viewerId))
      throw new HttpError(404, `no viewer ${viewerId} of session ${sessionId} on this node`);
    await viewers.drop(viewerId, 'DELETE');
    res.status(200).end();
  });
}
