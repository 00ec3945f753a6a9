import { z } from 'zod';
import { createInjectionMetrics, createReregistrations, forgetInjectionSession } from '../exporters/index.ts';
import { ID_PATTERN, type SessionInfo, slotIdsOf } from '../topology/index.ts';
import { badInput, baseApp, type CommonConfig, HttpError, Queue, redisAnswers } from './common.ts';
import { entryRoutes } from './entry-routes.ts';
import { nodeBase, type RunningNode, runUntilTerminated, startNodeApp } from './lifecycle.ts';
import { EncodedSource, encoderMissing } from './encoded-source.ts';
import { InjectionKeyframeRequests, type KeyframeRequestInterval } from './keyframe-requests.ts';
import type { RtpSource, RtpSourceOptions, RtpTarget, SourceKind } from './rtp-source.ts';
import { Presence } from './presence.ts';
import { SyntheticSource } from './synthetic-source.ts';

/**
 * The injection node: takes broadcast sessions over HTTP, generates their RTP
 * with the built-in source (encoded VP8 + Opus, or synthetic at exact rates),
 * sends it to its children (relays attached to its
 * slot), and records sessions in Redis so egress nodes can find them. It
 * asks a session's source for a keyframe when its viewers do
 * (keyframe-requests.ts), and is the tree's entry point for viewers
 * (entry-routes.ts).
 */

export interface InjectionConfig extends CommonConfig {
  /** How many slots relays can attach to (ids `{nodeId}-s{i}`; not advertised to the actuator). */
  slots: number;
  source: SourceKind;
  /** Synthetic source only. */
  audioPps: number;
  videoPps: number;
  /** Encoded source only: time between periodic keyframes. */
  keyframeIntervalMs: number;
  /** At most one keyframe request per session per this long reaches its source; null: none. */
  keyframeRequestIntervalMs: KeyframeRequestInterval;
  /** Ask every session's source for a keyframe this often, whatever viewers ask; null: never. */
  keyframeRequestEveryMs: number | null;
}

const ssrc = z.number().int().min(0).max(0xffff_ffff);
const startBody = z
  .object({
    sessionId: z.string().regex(ID_PATTERN, 'sessionId: 1..63 of a-z, 0-9, - (not starting with -)'),
    audioSsrc: ssrc,
    videoSsrc: ssrc,
    generator: z
      .object({
        delayMs: z.number().int().min(0).max(60_000).optional(),
        durationMs: z.number().int().min(1).max(86_400_000).optional(),
      })
      .strict()
      .optional(),
  })
  .strict()
  .refine((b) => b.audioSsrc !== b.videoSsrc, { message: 'audioSsrc and videoSsrc must differ' });

interface LiveSession {
  info: SessionInfo;
  source: RtpSource;
  sent: { audio: number; video: number };
}

export async function runInjection(c: InjectionConfig): Promise<RunningNode> {
  if (c.source === 'encoded') {
    const missing = encoderMissing();
    if (missing)
      throw new Error(
        `--source encoded needs GStreamer 1.x plugins-base and -good (${missing}); or use --source synthetic`,
      );
  }
  const b = nodeBase('injection', c);
  const { log, redis, topo } = b;
  const metrics = createInjectionMetrics();
  const sessions = new Map<string, LiveSession>();
  const mySlots = slotIdsOf(c.nodeId, c.slots);
  let children: RtpTarget[] = [];
  let booted = false;
  const queue = new Queue();
  const keyframes = new InjectionKeyframeRequests({
    metrics: metrics.keyframeRequests,
    intervalMs: c.keyframeRequestIntervalMs,
    everyMs: c.keyframeRequestEveryMs,
    sourceOf: (id) => sessions.get(id)?.source,
    sessionIds: () => sessions.keys(),
    log,
  });

  const presence = new Presence(b, createReregistrations(metrics.node));
  const register = async () => {
    await topo.registerSlots(c.nodeId, mySlots, false);
    await topo.registerNode({ id: c.nodeId, type: 'injection', host: c.advertiseHost, httpPort: c.port });
  };
  /** After Redis lost its data: our record and slots, and every session we play (announced, so egress nodes keep them). */
  const restore = async () => {
    await register();
    for (const s of sessions.values()) await topo.startSession(s.info);
  };

  const refreshChildren = () =>
    queue.run(async () => {
      if (booted && (await presence.check(restore)))
        log.info({ sessions: [...sessions.keys()] }, 'record, slots and sessions written again');
      const next: RtpTarget[] = [];
      for (const slot of mySlots) {
        for (const id of await topo.children(slot)) {
          const n = await topo.getNode(id);
          if (n?.audioPort && n.videoPort)
            next.push({ id, host: n.host, audioPort: n.audioPort, videoPort: n.videoPort });
          else log.warn({ child: id }, 'child has no forwarder address; not sending to it');
        }
      }
      // Shortly after Redis lost its data, a child missing there may only be not registered again yet: keep sending.
      if (presence.recentlyLost()) for (const t of children) if (!next.some((n) => n.id === t.id)) next.push(t);
      if (
        next.map((t) => `${t.id}@${t.host}:${t.audioPort}/${t.videoPort}`).join() !==
        children.map((t) => `${t.id}@${t.host}:${t.audioPort}/${t.videoPort}`).join()
      ) {
        log.info({ children: next.map((t) => t.id) }, 'children changed');
      }
      children = next;
      metrics.childrenCount.set(children.length);
    });

  const updateGauge = () => metrics.activeSessions.set({ room_id: 'all' }, sessions.size);
  updateGauge();
  metrics.childrenCount.set(0);

  function play(info: SessionInfo, gen?: { delayMs?: number; durationMs?: number }): void {
    const sent = { audio: 0, video: 0 };
    const labels = {
      audio: { stream_type: 'audio', session_id: info.id, ssrc: String(info.audioSsrc) },
      video: { stream_type: 'video', session_id: info.id, ssrc: String(info.videoSsrc) },
    } as const;
    for (const t of ['audio', 'video'] as const) {
      metrics.rtpPacketsSent.inc(labels[t], 0);
      metrics.rtpBytesSent.inc({ stream_type: t, session_id: info.id }, 0);
    }
    const options: RtpSourceOptions = {
      audioSsrc: info.audioSsrc,
      videoSsrc: info.videoSsrc,
      delayMs: gen?.delayMs,
      durationMs: gen?.durationMs,
      targets: () => children,
      onSent: (t, bytes) => {
        sent[t]++;
        metrics.rtpPacketsSent.inc(labels[t]);
        metrics.rtpBytesSent.inc({ stream_type: t, session_id: info.id }, bytes);
      },
      onError: (err) => log.warn({ session: info.id, err: err.message }, 'RTP source'),
    };
    const source =
      c.source === 'encoded'
        ? new EncodedSource({ ...options, keyframeIntervalMs: c.keyframeIntervalMs })
        : new SyntheticSource({ ...options, audioPps: c.audioPps, videoPps: c.videoPps });
    sessions.set(info.id, { info, source, sent });
    source.start();
    updateGauge();
  }

  async function silence(id: string): Promise<void> {
    const s = sessions.get(id);
    if (!s) return;
    sessions.delete(id);
    keyframes.forget(id);
    await s.source.stop();
    forgetInjectionSession(metrics, { sessionId: id, audioSsrc: s.info.audioSsrc, videoSsrc: s.info.videoSsrc });
    updateGauge();
  }

  const app = baseApp(metrics.node, async () => {
    if (!booted) return 'starting';
    if (!(await redisAnswers(redis))) return 'redis does not answer';
    return null;
  });

  app.get('/sessions', (_req, res) => {
    res.json({
      sessions: [...sessions.values()].map((s) => ({ ...s.info, sent: s.sent, generated: s.source.generated() })),
      children: children.map((t) => t.id),
      source: c.source,
    });
  });

  app.post('/sessions', async (req, res) => {
    if (!booted) throw new HttpError(503, 'not ready');
    const r = startBody.safeParse(req.body);
    if (!r.success) throw badInput('session', r.error);
    const b = r.data;
    for (const s of sessions.values()) {
      for (const x of [b.audioSsrc, b.videoSsrc]) {
        if (x === s.info.audioSsrc || x === s.info.videoSsrc)
          throw new HttpError(409, `SSRC ${x} is used by session ${s.info.id}`);
      }
    }
    const info = { id: b.sessionId, audioSsrc: b.audioSsrc, videoSsrc: b.videoSsrc, injection: c.nodeId };
    if (!(await topo.startSession(info)))
      throw new HttpError(409, `session ${b.sessionId} already exists in tree ${c.treeId}`);
    play({ ...info, startedAt: Date.now() }, b.generator);
    log.info({ session: b.sessionId, audioSsrc: b.audioSsrc, videoSsrc: b.videoSsrc }, 'session started');
    res
      .status(201)
      .location(`/sessions/${b.sessionId}`)
      .json({ sessionId: b.sessionId, audioSsrc: b.audioSsrc, videoSsrc: b.videoSsrc });
  });

  app.delete('/sessions/:id', async (req, res) => {
    const id = req.params.id;
    if (!ID_PATTERN.test(id)) throw new HttpError(400, 'bad session id');
    if (!sessions.has(id)) throw new HttpError(404, `no session ${id} on this node`);
    await topo.endSession(id);
    await silence(id);
    log.info({ session: id }, 'session stopped');
    res.status(204).end();
  });
  // The tree's entry point: viewers' WHEP offers are redirected to an egress node; the player page.
  entryRoutes(app, { topo, ready: () => booted, log });

  const sub = b.subscriber({
    onTopology: () => void refreshChildren().catch((err) => log.warn({ err: err.message }, 'children refresh failed')),
    onSubscribed: () => void refreshChildren().catch(() => {}),
    onKeyframeRequest: (e) => keyframes.onEvent(e),
  });

  return startNodeApp(b, {
    app,
    sub,
    // Redis may not be up yet: keep trying; /readyz says when we are there.
    startUp: async () => {
      await presence.begin();
      await register();
      await sub.watchSlots(mySlots);
      await sub.watchKeyframeRequests(c.nodeId);
      await refreshChildren();
      // Sessions this node was running before a restart keep going.
      for (const s of await topo.sessions()) {
        if (s.injection === c.nodeId && !sessions.has(s.id)) {
          play(s);
          log.info({ session: s.id }, 'resumed session');
        }
      }
      booted = true;
      log.info('ready');
    },
    // Events can be missed while Redis is away: re-read the children now and then.
    resync: { everyMs: 5_000, run: () => void refreshChildren().catch(() => {}) },
    leave: async () => {
      keyframes.close();
      await Promise.all([...sessions.values()].map((s) => s.source.stop()));
    },
  });
}

export function mainInjection(c: InjectionConfig): Promise<void> {
  return runUntilTerminated('injection', c, runInjection);
}
