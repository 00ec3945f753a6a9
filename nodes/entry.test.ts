import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { waitUntil } from '../process/wait.ts';
import { startRedis, type RunningRedis } from '../servers/redis.ts';
import { json, startNode, type RunningNode } from '../test/nodes.ts';
import { Topology } from '../topology/index.ts';
import { NO_ROOM_RETRY_AFTER_S } from './entry-routes.ts';

/**
 * The tree's entry point with real processes: Redis, `canopy node injection`
 * and three `canopy node egress` apps whose pools differ, so their real pool
 * use (a mountpoint takes 2 ports) orders them: a 2 of 4, b 2 of 10, c 2 of 2 (full).
 */

let redis: RunningRedis;
let r: Redis;
let topo: Topology;
let inj: RunningNode;
const egress: Record<'a' | 'b' | 'c', RunningNode> = {} as never;
const base = 22_000 + Math.floor(Math.random() * 80) * 100;
const SESSION = 'entry-s1';
const OFFER = 'v=0\r\no=- 0 0 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n';

const post = (path: string, init: RequestInit = {}) =>
  fetch(`${inj.url}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/sdp' },
    body: OFFER,
    redirect: 'manual',
    signal: AbortSignal.timeout(5_000),
    ...init,
  });
const whepOf = (n: RunningNode) => `http://127.0.0.1:${n.port}/whep/${SESSION}`;

/** Every running egress node has written a load record with the session. */
async function allServing(ids: string[]): Promise<void> {
  await waitUntil(
    `${ids.join(', ')} serve ${SESSION}`,
    async () => {
      const c = await topo.egressCandidates();
      return ids.every((id) => c.find((x) => x.node.id === id)?.load?.sessions.includes(SESSION));
    },
    { timeoutMs: 20_000, intervalMs: 100 },
  );
}

beforeAll(async () => {
  redis = await startRedis();
  r = new Redis(redis.url);
  topo = new Topology(r, 'tree-1');
  inj = await startNode({
    type: 'injection',
    id: 'injection-1',
    redisUrl: redis.url,
    extra: ['--source', 'synthetic'],
    readyTimeoutMs: 60_000,
  });
  const sizes = { a: 4, b: 10, c: 2 };
  let from = base;
  // One at a time: node apps start slowly on a busy machine.
  for (const k of ['a', 'b', 'c'] as const) {
    egress[k] = await startNode({
      type: 'egress',
      id: `egress-${k}`,
      redisUrl: redis.url,
      extra: ['--port-range', `${from}-${from + sizes[k] - 1}`],
      readyTimeoutMs: 60_000,
    });
    from += sizes[k];
  }
  const s = await json(`${inj.url}/sessions`, {
    method: 'POST',
    body: JSON.stringify({ sessionId: SESSION, audioSsrc: 5001, videoSsrc: 5002 }),
  });
  expect(s.status).toBe(201);
  await allServing(['egress-a', 'egress-b', 'egress-c']);
}, 240_000);

afterAll(async () => {
  await Promise.all([...Object.values(egress), inj].filter(Boolean).map((n) => n.child.stop()));
  r?.disconnect();
  await redis?.stop();
});

describe('the entry point', () => {
  it('redirects (307) to the least-used ready egress node serving the session, with CORS', async () => {
    const res = await post(`/whep/${SESSION}`);
    expect(res.status).toBe(307);
    expect(res.headers.get('location')).toBe(whepOf(egress.b));
    expect(res.headers.get('access-control-allow-origin')).toBe('*');
    expect(res.headers.get('access-control-expose-headers')).toMatch(/Location/);
    // A browser's preflight of the offer.
    const pre = await fetch(`${inj.url}/whep/${SESSION}`, {
      method: 'OPTIONS',
      headers: { origin: 'http://example.test', 'access-control-request-method': 'POST' },
    });
    expect(pre.status).toBe(204);
    expect(pre.headers.get('access-control-allow-methods')).toMatch(/POST/);
    expect(pre.headers.get('access-control-allow-headers')).toMatch(/Content-Type/i);
  });

  it('keeps viewers off a draining node, and answers 503 with Retry-After when no node has room', async () => {
    await topo.setDraining('egress-b', true);
    try {
      const res = await post(`/whep/${SESSION}`);
      expect(res.status).toBe(307);
      expect(res.headers.get('location')).toBe(whepOf(egress.a));
      await topo.setDraining('egress-a', true);
      // Left: egress-c, whose pool its mountpoint fills.
      const full = await post(`/whep/${SESSION}`);
      expect(full.status).toBe(503);
      expect(full.headers.get('retry-after')).toBe(String(NO_ROOM_RETRY_AFTER_S));
      expect(((await full.json()) as { error: string }).error).toMatch(/full/);
    } finally {
      await topo.setDraining('egress-a', false);
      await topo.setDraining('egress-b', false);
    }
    expect((await post(`/whep/${SESSION}`)).headers.get('location')).toBe(whepOf(egress.b));
  });

  it('drops a node that stops (its load record goes with it)', async () => {
    await egress.b.child.stop();
    expect(await topo.getEgressLoad('egress-b')).toBeNull();
    const res = await post(`/whep/${SESSION}`);
    expect(res.status).toBe(307);
    expect(res.headers.get('location')).toBe(whepOf(egress.a));
  });

  it('refuses bad input clearly: 400 bad session id, 415 not SDP, 404 no such session', async () => {
    for (const bad of ['Bad', '-x', 'a.b', 'x'.repeat(64)]) {
      const res = await post(`/whep/${bad}`);
      expect(res.status, bad).toBe(400);
      expect(((await res.json()) as { error: string }).error).toMatch(/bad session id/);
    }
    const notSdp = await post(`/whep/${SESSION}`, { headers: { 'content-type': 'application/json' }, body: '{}' });
    expect(notSdp.status).toBe(415);
    const none = await post('/whep/no-such-session');
    expect(none.status).toBe(404);
  });

  it('serves the player page of a live session, and its script', async () => {
    const page = await fetch(`${inj.url}/watch/${SESSION}`);
    expect(page.status).toBe(200);
    expect(page.headers.get('content-type')).toMatch(/text\/html/);
    const html = await page.text();
    expect(html).toContain(`data-session="${SESSION}"`);
    expect(html).toContain('<script src="/watch/player.js">');
    const js = await fetch(`${inj.url}/watch/player.js`);
    expect(js.headers.get('content-type')).toMatch(/javascript/);
    expect(await js.text()).toMatch(/application\/sdp/);
    expect((await fetch(`${inj.url}/watch/no-such-session`)).status).toBe(404);
    expect((await fetch(`${inj.url}/watch/Bad`)).status).toBe(400);
  });
});
