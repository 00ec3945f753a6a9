import type { Express, Request } from 'express';
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type { Logger } from 'pino';
import { ID_PATTERN } from '../topology/index.ts';
import { HttpError, Queue } from './common.ts';
import { whipCors } from './cors.ts';
import { readOffer } from './whep-routes.ts';
import { OfferError, type ParsedOffer, parseOffer } from './whep-sdp.ts';
import type { WhipSource } from './whip-source.ts';

/**
 * WHIP (RFC 9725) at the injection: `POST /whip/<session>` with a
 * publisher's `application/sdp` offer and its bearer token answers 201 with
 * the SDP answer and the publisher's resource in Location, creating the
 * session (its SSRCs picked by the injection) or taking over one whose
 * publisher dropped; `DELETE` on the resource ends the session. One publisher
 * per session (409 for a second). No trickle ICE (PATCH 405).
 */

export interface WhipRoutesOptions {
  /** SHA-256 of the bearer token publishers must send. */
  tokenDigest: Buffer;
  ready: () => boolean;
  /** A session on this node: its WHIP source, 'other' when it is fed otherwise, null when it is not here. */
  sourceOf: (sessionId: string) => WhipSource | 'other' | null;
  /** Starts a WHIP session; null when the id is taken in the tree. */
  createSession: (sessionId: string) => Promise<WhipSource | null>;
  endSession: (sessionId: string) => Promise<void>;
  /** The address publishers' PeerConnections bind, and the one answers advertise. */
  bind: string;
  advertise: string;
  log: Logger;
}

/** The digest a bearer token is compared by: equal lengths for timingSafeEqual whatever was sent. */
export function tokenDigest(token: string): Buffer {
  return createHash('sha256').update(token, 'utf8').digest();
}

const checkId = (what: string, id: string) => {
  if (!ID_PATTERN.test(id)) throw new HttpError(400, `bad ${what} id: 1..63 of a-z, 0-9, - (not starting with -)`);
};

export function whipRoutes(app: Express, o: WhipRoutesOptions): void {
  const { log } = o;
  // A session's publisher is attached or refused one request at a time.
  const queue = new Queue();

  const authorize = (req: Request) => {
    const m = /^Bearer ([\x21-\x7e]{1,1024})$/.exec(req.get('authorization') ?? '');
    if (!m || !timingSafeEqual(tokenDigest(m[1]!), o.tokenDigest)) {
      req.resume();
      throw new HttpError(
        401,
        'a WHIP publisher sends Authorization: Bearer <token>, the one in --whip-token-file',
        undefined,
        {
          'WWW-Authenticate': 'Bearer',
        },
      );
    }
  };

  app.use('/whip', whipCors);

  app.post('/whip/:sessionId', async (req, res) => {
    const { sessionId } = req.params;
    checkId('session', sessionId);
    authorize(req);
    if (!req.is('application/sdp')) {
      req.resume();
      throw new HttpError(415, 'a WHIP offer is Content-Type: application/sdp', undefined, {
        'Accept-Post': 'application/sdp',
      });
    }
    const sdp = await readOffer(req);
    let offer: ParsedOffer;
    try {
      offer = parseOffer(sdp, 'publisher');
    } catch (err) {
      if (err instanceof OfferError) throw new HttpError(err.unsupported ? 406 : 400, `unusable offer: ${err.message}`);
      throw err;
    }
    if (!o.ready()) throw new HttpError(503, 'not ready', undefined, { 'Retry-After': '2' });
    const { id, answer } = await queue.run(async () => {
      let source = o.sourceOf(sessionId);
      if (source === 'other')
        throw new HttpError(409, `session ${sessionId} is fed by the built-in source or RTP ingest, not WHIP`);
      if (source?.publisherId) throw new HttpError(409, `session ${sessionId} already has a publisher`);
      const created = !source;
      source ??= await o.createSession(sessionId);
      if (!source) throw new HttpError(409, `session ${sessionId} already exists in this tree (another injection's)`);
      const id = `p-${randomBytes(8).toString('hex')}`;
      try {
        return { id, answer: await source.attach(id, sdp, offer, o.bind, o.advertise) };
      } catch (err) {
        if (created) await o.endSession(sessionId);
        throw err;
      }
    });
    log.info({ session: sessionId, publisher: id }, 'WHIP offer answered');
    res.status(201).location(`/whip/${sessionId}/${id}`).type('application/sdp').send(answer);
  });

  app.patch('/whip/:sessionId/:publisherId', (_req, res) => {
    res.status(405).set('Allow', 'DELETE, OPTIONS').json({ error: 'no trickle ICE: the answer has every candidate' });
  });

  app.delete('/whip/:sessionId/:publisherId', async (req, res) => {
    const { sessionId, publisherId } = req.params;
    checkId('session', sessionId);
    checkId('publisher', publisherId);
    authorize(req);
    await queue.run(async () => {
      const source = o.sourceOf(sessionId);
      if (!source || source === 'other' || source.publisherId !== publisherId)
        throw new HttpError(404, `no publisher ${publisherId} of session ${sessionId} on this node`);
      source.detach(publisherId);
      await o.endSession(sessionId);
    });
    log.info({ session: sessionId, publisher: publisherId }, 'WHIP publisher deleted its resource: session ended');
    res.status(200).end();
  });
}
