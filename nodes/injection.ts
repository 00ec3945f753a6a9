import { randomInt } from 'node:crypto';
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
import { PublisherHealth } from './publisher-health.ts';
import { RtpIngestSource } from './rtp-ingest-source.ts';
import { SyntheticSource } from './synthetic-source.ts';
import { tokenDigest, whipRoutes } from './whip-routes.ts';
import { WhipSource } from './whip-source.ts';

/**
 * The injection node: takes broadcast sessions over HTTP, generates their RTP
 * with the built-in source (encoded VP8 + Opus, or synthetic at exact rates)
 * or takes it from a publisher (WHIP, whip-routes.ts; plain RTP on ingest
 * ports, rtp-ingest-source.ts), sends it to its children (relays attached to its
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
  /** Publishers' bearer token; WHIP is off without one. */
  whipToken?: string;
  /** How long a WHIP session waits for a publisher that dropped (or, after a restart, for one to come back). */
  whipGraceMs: number;
  /** The address RTP ingest ports and publishers' PeerConnections bind (and WHIP answers advertise). */
  ingestBind: string;
  /** Encoded source only: time between periodic keyframes. */
  keyframeIntervalMs: number;
  /** At most one keyframe request per session per this long reaches its source; null: none. */
  keyframeRequestIntervalMs: KeyframeRequestInterval;
  /** Ask every session's source for a keyframe this often, whatever viewers ask; null: never. */
  keyframeRequestEveryMs: number | null;
}

const ssrc = z.number().int().min(0).max(0xffff_ffff);
/** 0 or absent: a free port picked and returned. */
const ingestPort = z.number().int().min(0).max(65535).optional();
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
    /** Plain RTP ingest instead of the built-in source. */
    ingest: z.object({ audioPort: ingestPort, videoPort: ingestPort }).strict().optional(),
  })
  .strict()
  .refine((b) => b.audioSsrc !== b.videoSsrc, { message: 'audioSsrc and videoSsrc must differ' })
  .refine((b) => !(b.ingest && b.generator), { message: 'generator applies to the built-in source, not to ingest' })
  .refine((b) => !b.ingest?.audioPort || b.ingest.audioPort !== b.ingest.videoPort, {
    message: 'ingest.audioPort and ingest.videoPort must differ',
  });

type StartGenerator = z.infer<typeof startBody>['generator'];

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

  /** The session's source, not started: built-in, WHIP, or RTP ingest (ports bound: a taken one rejects). */
  async function open(info: SessionInfo, gen?: StartGenerator): Promise<LiveSession> {
    const sent = { audio: 0, video: 0 };
    return { info, sent, source: await openSource(info, sent, gen) };
  }

  function openSource(
    info: SessionInfo,
    sent: LiveSession['sent'],
    gen?: StartGenerator,
  ): RtpSource | Promise<RtpSource> {
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
    if (!info.ingest)
      return c.source === 'encoded'
        ? new EncodedSource({ ...options, keyframeIntervalMs: c.keyframeIntervalMs })
        : new SyntheticSource({ ...options, audioPps: c.audioPps, videoPps: c.videoPps });
    const health = new PublisherHealth(metrics, info.id, info.startedAt);
    if (info.ingest.kind === 'rtp')
      return RtpIngestSource.open(options, health, c.ingestBind, info.ingest).catch((err: Error) => {
        forgetInjectionSession(metrics, { sessionId: info.id, audioSsrc: info.audioSsrc, videoSsrc: info.videoSsrc });
        throw err;
      });
    return new WhipSource({
      ...options,
      health,
      graceMs: c.whipGraceMs,
      onAbandoned: () => {
        log.info({ session: info.id, graceMs: c.whipGraceMs }, 'no WHIP publisher within the grace period: ending');
        void endSession(info.id).catch((err) => log.warn({ session: info.id, err: err.message }, 'ending failed'));
      },
      onPublisher: (event, publisher) => log.info({ session: info.id, publisher }, `WHIP publisher ${event}`),
    });
  }

  function play(s: LiveSession): void {
    sessions.set(s.info.id, s);
    s.source.start();
    updateGauge();
  }

  /** Today's session end: the record removed and session-ended announced, the source stopped, its series removed. */
  async function endSession(id: string): Promise<void> {
    await topo.endSession(id);
    await silence(id);
    log.info({ session: id }, 'session stopped');
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

  /** A session for a WHIP publisher, SSRCs picked unused in the tree; null when the id is taken. */
  async function startWhipSession(id: string): Promise<WhipSource | null> {
    const taken = new Set((await topo.sessions()).flatMap((s) => [s.audioSsrc, s.videoSsrc]));
    for (const s of sessions.values()) taken.add(s.info.audioSsrc).add(s.info.videoSsrc);
    const pick = () => {
      for (;;) {
        const x = randomInt(1, 2 ** 32 - 1);
        if (taken.has(x)) continue;
        taken.add(x);
        return x;
      }
    };
    const info: SessionInfo = {
      id,
      audioSsrc: pick(),
      videoSsrc: pick(),
      injection: c.nodeId,
      startedAt: Date.now(),
      ingest: { kind: 'whip' },
    };
    if (!(await topo.startSession(info))) return null;
    const s = await open(info);
    play(s);
    log.info({ session: id, audioSsrc: info.audioSsrc, videoSsrc: info.videoSsrc }, 'WHIP session started');
    return s.source as WhipSource;
  }

  const app = baseApp(metrics.node, async () => {
    if (!booted) return 'starting';
    if (!(await redisAnswers(redis))) return 'redis does not answer';
    return null;
  });

  app.get('/sessions', (_req, res) => {
    res.json({
      sessions: [...sessions.values()].map((s) => ({
        ...s.info,
        sent: s.sent,
        generated: s.source.generated(),
        ...(s.source instanceof WhipSource && { publisher: s.source.publisherId }),
      })),
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
    if (sessions.has(b.sessionId)) throw new HttpError(409, `session ${b.sessionId} already exists on this node`);
    const info: SessionInfo = {
      id: b.sessionId,
      audioSsrc: b.audioSsrc,
      videoSsrc: b.videoSsrc,
      injection: c.nodeId,
      startedAt: Date.now(),
    };
    // Ingest ports are bound before the session is recorded: the record names the ones picked.
    let opened: LiveSession | undefined;
    if (b.ingest) {
      const want = { kind: 'rtp', audioPort: b.ingest.audioPort ?? 0, videoPort: b.ingest.videoPort ?? 0 } as const;
      opened = await open({ ...info, ingest: want }).catch((err: Error) => {
        throw new HttpError(409, `ingest ports ${want.audioPort}/${want.videoPort} on ${c.ingestBind}: ${err.message}`);
      });
      info.ingest = { kind: 'rtp', ...(opened.source as RtpIngestSource).ports() };
      opened.info = info;
    }
    if (!(await topo.startSession(info))) {
      await opened?.source.stop();
      if (opened)
        forgetInjectionSession(metrics, { sessionId: info.id, audioSsrc: info.audioSsrc, videoSsrc: info.videoSsrc });
      throw new HttpError(409, `session ${b.sessionId} already exists in tree ${c.treeId}`);
    }
    play(opened ?? (await open(info, b.generator)));
    log.info(
      { session: b.sessionId, audioSsrc: b.audioSsrc, videoSsrc: b.videoSsrc, ingest: info.ingest },
      'session started',
    );
    res
      .status(201)
      .location(`/sessions/${b.sessionId}`)
      .json({
        sessionId: b.sessionId,
        audioSsrc: b.audioSsrc,
        videoSsrc: b.videoSsrc,
        ...(info.ingest && { ingest: info.ingest }),
      });
  });

  app.delete('/sessions/:id', async (req, res) => {
    const id = req.params.id;
    if (!ID_PATTERN.test(id)) throw new HttpError(400, 'bad session id');
    if (!sessions.has(id)) throw new HttpError(404, `no session ${id} on this node`);
    await endSession(id);
    res.status(204).end();
  });
  if (c.whipToken)
    whipRoutes(app, {
      tokenDigest: tokenDigest(c.whipToken),
      ready: () => booted,
      sourceOf: (id) => {
        const s = sessions.get(id);
        if (!s) return null;
        return s.source instanceof WhipSource ? s.source : 'other';
      },
      createSession: startWhipSession,
      endSession,
      bind: c.ingestBind,
      advertise: c.ingestBind,
      log,
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
          try {
            play(await open(s));
            log.info({ session: s.id, ingest: s.ingest }, 'resumed session');
          } catch (err) {
            log.error(
              { session: s.id, err: (err as Error).message },
              'could not resume the session; it stays recorded',
            );
          }
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
