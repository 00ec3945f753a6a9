import { randomBytes } from 'node:crypto';
import type { Server } from 'node:http';
import { isIP } from 'node:net';
import { z } from 'zod';
import { createEgressMetrics, forgetEgressSession, recordPortPool, setCounterTotal } from '../exporters/index.ts';
import { ForwarderError } from '../forwarder/client.ts';
import { ID_PATTERN, Topology, TopologySubscriber, type SessionInfo, type ViewerPlacement } from '../topology/index.ts';
import {
  baseApp,
  closeServer,
  connectRedis,
  createLogger,
  finishApp,
  HttpError,
  listen,
  onTermination,
  Queue,
  redisAnswers,
  retry,
  type CommonConfig,
} from './common.ts';
import { BuiltinMountpoints, type MountpointBackend } from './mountpoints.ts';
import { forwarderAnswers, nodeForwarder, type ForwarderConfig } from './node-forwarder.ts';
import { PortPool } from './port-pool.ts';

/** Seconds a viewer refused for a full port pool is told to wait (Retry-After) before trying again. */
export const POOL_FULL_RETRY_AFTER_S = 2;

/**
 * The egress node: a demux forwarder fed by its parent relay, one mountpoint
 * per live session (seed step 4b, discoverExistingSessions), and viewers that
 * join and leave through a WHEP-shaped API. Sessions are followed through the
 * `session-events:{tree}` channel plus a periodic re-read; viewers are recorded in
 * Redis so a restarted node serves them again.
 */

export interface EgressConfig extends CommonConfig, ForwarderConfig {
  parentSlot?: string;
  portMin: number;
  portMax: number;
  /** Where the built-in mountpoints bind (the forwarder sends to them there). */
  mountpointHost: string;
}

const portNum = z.number().int().min(1).max(65535);
const viewerBody = z
  .object({
    host: z.string().refine((h) => isIP(h) !== 0, 'host: an IPv4 or IPv6 address literal'),
    audioPort: portNum,
    videoPort: portNum,
  })
  .strict();

interface Mount {
  session: SessionInfo;
  audioPort: number;
  videoPort: number;
  viewers: Map<string, ViewerPlacement>;
}

const issues = (e: z.ZodError) => e.issues.map((i) => `${i.path.join('.') || '(body)'}: ${i.message}`).join('; ');
const mountDest = (sessionId: string) => `mp-${sessionId}`;
const viewerDest = (viewerId: string) => `viewer-${viewerId}`;

export async function runEgress(c: EgressConfig): Promise<{ server: Server; stop(): Promise<void> }> {
  const log = createLogger('egress', c);
  const metrics = createEgressMetrics();
  const redis = connectRedis(c.redisUrl, log);
  const topo = new Topology(redis, c.treeId, (msg, d) => log.warn(d ?? {}, msg));
  const pool = new PortPool(c.portMin, c.portMax);
  const backend: MountpointBackend = new BuiltinMountpoints(c.mountpointHost);
  const mounts = new Map<string, Mount>();
  const queue = new Queue();
  let booted = false;
  /** Set once the first reconcile is done: /readyz then means "serving what Redis says". */
  let serving = false;
  let stopping = false;

  const resync = (why: string) =>
    void queue
      .run(() => resyncForwarder())
      .catch((err) => log.warn({ err: err.message, why }, 'forwarder resync failed'));
  const fwd = nodeForwarder(c, 'demux', log, () => resync('forwarder reconnected'));

  metrics.node.collectors.push({
    name: 'egress_state',
    collect() {
      metrics.activeMountpoints.set(mounts.size);
      recordPortPool(metrics, pool.allocated, pool.available);
      for (const m of mounts.values()) {
        metrics.activeViewers.set({ session_id: m.session.id }, backend.viewerCount(m.session.id));
        const got = backend.received(m.session.id);
        if (!got) continue;
        for (const t of ['audio', 'video'] as const) {
          const labels = { stream_type: t, ssrc: String(t === 'audio' ? m.session.audioSsrc : m.session.videoSsrc) };
          setCounterTotal(metrics.rtpPacketsReceived, labels, got[t].packets);
          setCounterTotal(metrics.rtpBytesReceived, labels, got[t].bytes);
        }
      }
    },
  });

  // RTP quality where the session's streams enter this node: the forwarder's per-SSRC counts.
  // An unreachable forwarder leaves the last values (a drop to 0 would read as a counter reset).
  metrics.node.collectors.push({
    name: 'forwarder_stream_quality',
    async collect() {
      const st = await fwd.client.stats();
      if (!st.reachable) return;
      // Only the streams of open mountpoints: the forwarder keeps a stream in STATS for a while after its
      // session ends, and an ended session's series must stay gone (forgetEgressSession).
      const live = new Set<number>();
      for (const m of mounts.values()) live.add(m.session.audioSsrc).add(m.session.videoSsrc);
      for (const t of ['audio', 'video'] as const) {
        metrics.streamQuality.record(
          t,
          st[t].streams.filter((q) => live.has(q.ssrc)),
        );
      }
    },
  });

  async function addDest(
    id: string,
    host: string,
    audioPort: number,
    videoPort: number,
    s: SessionInfo,
  ): Promise<void> {
    try {
      await fwd.client.add({ id, host, audioPort, videoPort, audioSsrc: s.audioSsrc, videoSsrc: s.videoSsrc });
    } catch (err) {
      // Already there (an earlier attempt, or a resync racing us): same mapping, nothing to do.
      if (!(err instanceof ForwarderError && /duplicate/.test(err.message))) throw err;
    }
  }

  /** Seed step 4b for one session: ports from the pool, a mountpoint, the SSRC -> mountpoint mapping. */
  async function open(s: SessionInfo): Promise<void> {
    const ports = pool.take(2);
    if (!ports) {
      log.error(
        { session: s.id, allocated: pool.allocated, size: pool.size },
        'port pool exhausted: no mountpoint for this session',
      );
      return;
    }
    const [audioPort, videoPort] = ports as [number, number];
    try {
      await backend.create({ sessionId: s.id, audioSsrc: s.audioSsrc, videoSsrc: s.videoSsrc, audioPort, videoPort });
    } catch (err) {
      pool.release(audioPort, videoPort);
      throw err;
    }
    try {
      await addDest(mountDest(s.id), c.mountpointHost, audioPort, videoPort, s);
    } catch (err) {
      await backend.destroy(s.id);
      pool.release(audioPort, videoPort);
      throw err;
    }
    mounts.set(s.id, { session: s, audioPort, videoPort, viewers: new Map() });
    log.info(
      { session: s.id, audioPort, videoPort, audioSsrc: s.audioSsrc, videoSsrc: s.videoSsrc },
      'mountpoint opened',
    );
  }

  async function dropViewer(m: Mount, v: ViewerPlacement, forgetInRedis: boolean): Promise<void> {
    await fwd.client
      .remove(viewerDest(v.id))
      .catch((err) => log.warn({ viewer: v.id, err: err.message }, 'viewer REMOVE failed'));
    if (forgetInRedis) await topo.removeViewer(c.nodeId, v.id);
    backend.viewerLeft(m.session.id, v.id);
    m.viewers.delete(v.id);
    pool.release(v.poolPort);
  }

  async function close(m: Mount): Promise<void> {
    for (const v of [...m.viewers.values()]) await dropViewer(m, v, true);
    await fwd.client
      .remove(mountDest(m.session.id))
      .catch((err) => log.warn({ session: m.session.id, err: err.message }, 'mountpoint REMOVE failed'));
    await backend.destroy(m.session.id);
    pool.release(m.audioPort, m.videoPort);
    mounts.delete(m.session.id);
    forgetEgressSession(metrics, {
      sessionId: m.session.id,
      audioSsrc: m.session.audioSsrc,
      videoSsrc: m.session.videoSsrc,
    });
    log.info({ session: m.session.id }, 'mountpoint closed');
  }

  /** discoverExistingSessions() and its converse: mountpoints follow the live sessions in Redis. */
  async function reconcileSessions(): Promise<void> {
    const live = await topo.sessions();
    const liveIds = new Set(live.map((s) => s.id));
    for (const m of [...mounts.values()]) if (!liveIds.has(m.session.id)) await close(m);
    for (const s of live) {
      const m = mounts.get(s.id);
      if (m && (m.session.audioSsrc !== s.audioSsrc || m.session.videoSsrc !== s.videoSsrc)) await close(m);
      if (!mounts.has(s.id)) {
        await open(s).catch((err) =>
          log.error({ session: s.id, err: (err as Error).message }, 'cannot open mountpoint'),
        );
      }
    }
  }

  /**
   * Viewers recorded in Redis (before a restart) are served again on the pool
   * ports they held: those ports are reserved before any mountpoint takes ports.
   */
  async function reserveViewerPorts(): Promise<{ viewers: ViewerPlacement[]; reserved: Set<string> }> {
    const viewers = await topo.viewers(c.nodeId);
    const reserved = new Set<string>();
    for (const v of viewers) if (pool.takeExact(v.poolPort)) reserved.add(v.id);
    return { viewers, reserved };
  }

  async function restoreViewers({
    viewers,
    reserved,
  }: {
    viewers: ViewerPlacement[];
    reserved: Set<string>;
  }): Promise<void> {
    for (const v of viewers) {
      const m = mounts.get(v.sessionId);
      if (!m || !reserved.has(v.id)) {
        if (reserved.has(v.id)) pool.release(v.poolPort);
        await topo.removeViewer(c.nodeId, v.id);
        log.info(
          { viewer: v.id, session: v.sessionId },
          m ? 'recorded pool port not free; viewer dropped' : 'dropped the record of a viewer whose session ended',
        );
        continue;
      }
      await addDest(viewerDest(v.id), v.host, v.audioPort, v.videoPort, m.session);
      m.viewers.set(v.id, v);
      backend.viewerJoined(m.session.id, v.id);
      log.info({ viewer: v.id, session: v.sessionId }, 'viewer restored');
    }
  }

  /** After a forwarder restart: every mountpoint and viewer mapping again. */
  async function resyncForwarder(): Promise<void> {
    if (!booted) return;
    const have = new Set((await fwd.client.list()).map((d) => d.id));
    for (const m of mounts.values()) {
      if (!have.has(mountDest(m.session.id)))
        await addDest(mountDest(m.session.id), c.mountpointHost, m.audioPort, m.videoPort, m.session);
      for (const v of m.viewers.values()) {
        if (!have.has(viewerDest(v.id))) await addDest(viewerDest(v.id), v.host, v.audioPort, v.videoPort, m.session);
      }
    }
  }

  const reconcileSoon = (why: string) =>
    void queue
      .run(async () => {
        if (booted) await reconcileSessions();
      })
      .catch((err) => log.warn({ err: err.message, why }, 'session reconcile failed'));

  const app = baseApp(metrics.node, async () => {
    if (!serving) return 'starting';
    if (stopping) return 'stopping';
    if (!(await redisAnswers(redis))) return 'redis does not answer';
    if (!(await forwarderAnswers(fwd.client))) return 'forwarder does not answer';
    return null;
  });

  app.get('/sessions', (_req, res) => {
    res.json({
      sessions: [...mounts.values()].map((m) => ({
        sessionId: m.session.id,
        audioSsrc: m.session.audioSsrc,
        videoSsrc: m.session.videoSsrc,
        ports: { audio: m.audioPort, video: m.videoPort },
        viewers: backend.viewerCount(m.session.id),
        received: backend.received(m.session.id),
      })),
      pool: { min: pool.min, max: pool.max, allocated: pool.allocated, available: pool.available },
    });
  });

  const checkSessionId = (id: string) => {
    if (!ID_PATTERN.test(id)) throw new HttpError(400, 'bad session id: 1..63 of a-z, 0-9, - (not starting with -)');
  };

  // WHEP-shaped: POST to the session's endpoint creates a viewer (201 + Location), DELETE on that ends it.
  app.post('/whep/:sessionId', async (req, res) => {
    const sessionId = req.params.sessionId;
    checkSessionId(sessionId);
    const r = viewerBody.safeParse(req.body);
    if (!r.success)
      throw new HttpError(400, `bad viewer: ${issues(r.error)}`, {
        issues: r.error.issues.map((i) => `${i.path.join('.') || '(body)'}: ${i.message}`),
      });
    if (!serving) throw new HttpError(503, 'not ready');
    const v = await queue.run(async () => {
      if (stopping || (await topo.isDraining(c.nodeId)))
        throw new HttpError(503, 'this egress node is draining and takes no new viewers');
      const m = mounts.get(sessionId);
      if (!m) throw new HttpError(404, `no live session ${sessionId} on this node`);
      const port = pool.take(1);
      if (!port) {
        // A WHEP client tries again then: room comes with a scale-out, or as viewers leave.
        res.set('Retry-After', String(POOL_FULL_RETRY_AFTER_S));
        throw new HttpError(503, 'port pool exhausted: no port left for a new viewer', {
          allocated: pool.allocated,
          size: pool.size,
        });
      }
      const placement: ViewerPlacement = {
        id: `v-${randomBytes(8).toString('hex')}`,
        sessionId,
        ...r.data,
        poolPort: port[0]!,
      };
      try {
        await addDest(viewerDest(placement.id), placement.host, placement.audioPort, placement.videoPort, m.session);
        await topo.putViewer(c.nodeId, placement);
      } catch (err) {
        pool.release(placement.poolPort);
        await fwd.client.remove(viewerDest(placement.id)).catch(() => {});
        throw new HttpError(503, `cannot add the viewer: ${(err as Error).message}`);
      }
      m.viewers.set(placement.id, placement);
      backend.viewerJoined(sessionId, placement.id);
      return placement;
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
      await dropViewer(m, v, true);
    });
    log.info({ viewer: viewerId, session: sessionId }, 'viewer left');
    res.status(204).end();
  });
  finishApp(app, log);

  const server = await listen(app, c.listenHost, c.port);
  log.info({ host: c.listenHost, port: c.port, pool: `${c.portMin}-${c.portMax}` }, 'listening');

  fwd.proc.start();
  const sub = new TopologySubscriber(
    redis.duplicate(),
    {
      onSession: (e) => reconcileSoon(e.type),
      onSubscribed: () => reconcileSoon('resubscribed'),
    },
    (msg, d) => log.warn(d ?? {}, msg),
  );

  void retry(
    'start-up',
    log,
    async () => {
      await fwd.client.ping();
      // Subscribe before reading, so a session starting in between is not missed.
      await sub.watchSessions(c.treeId);
      await topo.registerNode({
        id: c.nodeId,
        type: 'egress',
        host: c.advertiseHost,
        httpPort: c.port,
        audioPort: c.forwarderAudioPort,
        videoPort: c.forwarderVideoPort,
        parentSlot: c.parentSlot,
      });
      booted = true;
      await queue.run(async () => {
        const recorded = await reserveViewerPorts();
        await reconcileSessions();
        await restoreViewers(recorded);
      });
      serving = true;
      log.info({ sessions: mounts.size }, 'ready');
    },
    () => stopping,
  );

  const poll = setInterval(() => reconcileSoon('periodic'), 3_000);

  return {
    server,
    async stop() {
      // Take no new viewers, leave the topology (the relay stops sending), then go.
      stopping = true;
      clearInterval(poll);
      if (booted)
        await topo
          .deregisterNode(c.nodeId, 'egress')
          .catch((err) => log.warn({ err: err.message }, 'deregister failed'));
      await sub.close();
      await closeServer(server);
      fwd.client.close();
      await fwd.proc.stop();
      await backend.close();
      redis.disconnect();
    },
  };
}

export async function mainEgress(c: EgressConfig): Promise<void> {
  const app = await runEgress(c);
  onTermination(createLogger('egress', c), app.stop);
}
