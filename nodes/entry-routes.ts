import type { Express } from 'express';
import { readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import type { Logger } from 'pino';
import { ID_PATTERN, type Topology } from '../topology/index.ts';
import { HttpError } from './common.ts';
import { whepCors } from './cors.ts';
import { chooseEgress, PendingRedirects } from './placement.ts';

/**
 * The tree's entry point, on the injection node: `POST /whep/<session>` answers
 * 307 to the WHEP endpoint of the egress node that should take the viewer
 * (placement.ts), read from Redis on every request; `GET /watch/<session>` is
 * the player page. The body is never read here: a 307 makes the client send
 * the same offer to the egress node.
 */

/** Seconds a viewer is told to wait when no egress node has room (or none serves the session yet). */
export const NO_ROOM_RETRY_AFTER_S = 2;

const PLAYER_HTML = readFileSync(new URL('./player/player.html', import.meta.url), 'utf8');
const PLAYER_JS = readFileSync(new URL('./player/player.js', import.meta.url), 'utf8');

export interface EntryRoutesOptions {
  topo: Topology;
  /** False until the node has booted (then 503). */
  ready: () => boolean;
  log: Logger;
}

const checkSessionId = (id: string) => {
  if (!ID_PATTERN.test(id)) throw new HttpError(400, 'bad session id: 1..63 of a-z, 0-9, - (not starting with -)');
};

/** `http://host:port/whep/<session>` of a node, IPv6 literals bracketed. */
export function whepUrlOf(host: string, httpPort: number, sessionId: string): string {
  const h = isIP(host) === 6 ? `[${host}]` : host;
  return `http://${h}:${httpPort}/whep/${sessionId}`;
}

export function entryRoutes(app: Express, o: EntryRoutesOptions): void {
  const { topo, log } = o;
  const pending = new PendingRedirects();

  app.use('/whep', whepCors);

  app.post('/whep/:sessionId', async (req, res) => {
    const sessionId = req.params.sessionId;
    checkSessionId(sessionId);
    if (!req.is('application/sdp')) throw new HttpError(415, 'expected an application/sdp offer');
    if (!o.ready()) throw new HttpError(503, 'not ready', undefined, { 'Retry-After': String(NO_ROOM_RETRY_AFTER_S) });
    if (!(await topo.getSession(sessionId))) throw new HttpError(404, `no live session ${sessionId} in this tree`);
    const choice = chooseEgress(await topo.egressCandidates(), sessionId, pending.count);
    if (!choice.node) {
      const why = {
        'no-egress': 'no egress node in this tree',
        'not-serving': `no ready, non-draining egress node serves session ${sessionId} yet`,
        full: 'every egress node serving this session is full',
      }[choice.why];
      log.info({ session: sessionId, why: choice.why }, 'viewer refused');
      throw new HttpError(503, why, undefined, { 'Retry-After': String(NO_ROOM_RETRY_AFTER_S) });
    }
    pending.add(choice.node.id);
    const to = whepUrlOf(choice.node.host, choice.node.httpPort, sessionId);
    log.debug(
      { session: sessionId, egress: choice.node.id, allocated: choice.allocated, size: choice.size },
      'viewer redirected',
    );
    // 307, not 302/303: the client repeats the POST, offer included.
    res.status(307).location(to).type('text/plain').send(`${to}\n`);
  });

  app.get('/watch/player.js', (_req, res) => {
    res.type('text/javascript').set('Cache-Control', 'no-cache').send(PLAYER_JS);
  });

  app.get('/watch/:sessionId', async (req, res) => {
    const sessionId = req.params.sessionId;
    checkSessionId(sessionId);
    if (!(await topo.getSession(sessionId))) throw new HttpError(404, `no live session ${sessionId} in this tree`);
    res.type('text/html').set('Cache-Control', 'no-cache').send(PLAYER_HTML.replaceAll('{{session}}', sessionId));
  });
}
