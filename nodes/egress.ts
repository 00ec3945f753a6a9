import { createEgressMetrics, createReregistrations } from '../exporters/index.ts';
import { baseApp, type CommonConfig, Queue, redisAnswers } from './common.ts';
import { EgressMounts } from './egress-mounts.ts';
import { egressRoutes } from './egress-routes.ts';
import { nodeBase, type RunningNode, runUntilTerminated, startNodeApp } from './lifecycle.ts';
import { BuiltinMountpoints } from './mountpoints.ts';
import { EgressKeyframeRequests, type KeyframeRequestInterval } from './keyframe-requests.ts';
import { type ForwarderConfig, forwarderAnswers, nodeForwarder } from './node-forwarder.ts';
import { LoadReporter } from './load-reporter.ts';
import { PortPool } from './port-pool.ts';
import { Presence } from './presence.ts';
import { whepRoutes } from './whep-routes.ts';
import { WhepViewers } from './whep-viewers.ts';

/**
 * The egress node: a demux forwarder fed by its parent relay, one mountpoint
 * per live session (seed step 4b, discoverExistingSessions) that hands the
 * session's RTP to its WHEP viewers, one PeerConnection each on a pool port.
 * Sessions are followed through the `session-events:{tree}` channel plus a
 * periodic re-read. The sessions are `egress-mounts.ts`'s, the viewers
 * `whep-viewers.ts`'s, the HTTP APIs `egress-routes.ts`'s and
 * `whep-routes.ts`'s, start and stop `lifecycle.ts`'s; this file wires them.
 */

export interface EgressConfig extends CommonConfig, ForwarderConfig {
  parentSlot?: string;
  portMin: number;
  portMax: number;
  /** Where the built-in mountpoints bind (the forwarder sends to them there). */
  mountpointHost: string;
  /** The address every viewer's PeerConnection binds (ICE host candidate). */
  iceBind: string;
  /** The address the answers advertise: `advertiseHost` when it is an IP literal, else `iceBind`. */
  iceAdvertise: string;
  /** An offer not connected by then is ended and its port returned. */
  viewerConnectTimeoutMs: number;
  /** Packets kept per viewer track for NACKed resends (0: NACKs are not answered). */
  nackBuffer: number;
  /** At most one keyframe request per session per this long goes to the injection; null: none. */
  keyframeRequestIntervalMs: KeyframeRequestInterval;
}

export async function runEgress(c: EgressConfig): Promise<RunningNode> {
  const b = nodeBase('egress', c);
  const { log, redis, topo, state } = b;
  const metrics = createEgressMetrics();
  const backend = new BuiltinMountpoints(c.mountpointHost, (session, stream, rtp) =>
    viewers.forward(session, stream, rtp),
  );
  // Every take and release reports the load at once (the entry point places viewers by it).
  const pool = new PortPool(c.portMin, c.portMax, () => load.poke());
  const queue = new Queue();
  let booted = false;
  /** Set once the first reconcile is done: /readyz then means "serving what Redis says". */
  let serving = false;

  const fwd = nodeForwarder(
    c,
    'demux',
    log,
    () =>
      void queue
        .run(async () => {
          if (booted) await mounts.resyncForwarder();
        })
        .catch((err) => log.warn({ err: err.message, why: 'forwarder reconnected' }, 'forwarder resync failed')),
  );
  const mounts = new EgressMounts({
    nodeId: c.nodeId,
    mountpointHost: c.mountpointHost,
    topo,
    pool,
    backend,
    client: fwd.client,
    metrics,
    log,
    onSessionClosed: (sessionId) => {
      keyframes.forget(sessionId);
      return viewers.endSession(sessionId);
    },
  });
  const keyframes = new EgressKeyframeRequests({
    nodeId: c.nodeId,
    topo,
    metrics: metrics.keyframeRequests,
    intervalMs: c.keyframeRequestIntervalMs,
    log,
  });
  const viewers = new WhepViewers({
    nodeId: c.nodeId,
    topo,
    pool,
    backend,
    metrics,
    log,
    iceBind: c.iceBind,
    advertise: c.iceAdvertise,
    connectTimeoutMs: c.viewerConnectTimeoutMs,
    nackBuffer: c.nackBuffer,
    onKeyframeRequest: (s, reason) => keyframes.ask(s, reason),
  });
  metrics.node.collectors.push(...mounts.collectors());

  const presence = new Presence(b, createReregistrations(metrics.node), c.parentSlot);
  const register = (parentSlot: string | null) =>
    topo.registerNode({
      id: c.nodeId,
      type: 'egress',
      host: c.advertiseHost,
      httpPort: c.port,
      audioPort: c.forwarderAudioPort,
      videoPort: c.forwarderVideoPort,
      parentSlot: parentSlot ?? undefined,
    });
  // Checked before every re-read: after a loss, sessions missing from Redis may only be not written again yet.
  const reconcileSoon = (why: string) =>
    void queue
      .run(async () => {
        if (!booted) return;
        if (
          await presence.check(async (parent) => {
            await register(parent);
            await viewers.recordAll();
          })
        )
          log.info({ why }, 'record, parent link and viewers written again');
        await mounts.reconcile(presence.recentlyLost());
      })
      .catch((err) => log.warn({ err: err.message, why }, 'session reconcile failed'));

  const notReady = async () => {
    if (!serving) return 'starting';
    if (state.stopping) return 'stopping';
    if (!(await redisAnswers(redis))) return 'redis does not answer';
    if (!(await forwarderAnswers(fwd.client))) return 'forwarder does not answer';
    return null;
  };
  const app = baseApp(metrics.node, notReady);
  // What the tree's entry point places viewers by: pool use and sessions, while ready.
  const load = new LoadReporter({
    topo,
    nodeId: c.nodeId,
    log,
    read: async () =>
      (await notReady()) === null
        ? { allocated: pool.allocated, size: pool.size, sessions: mounts.sessionIds() }
        : null,
  });
  egressRoutes(app, { mounts, viewers });
  whepRoutes(app, { nodeId: c.nodeId, mounts, viewers, topo, queue, state, serving: () => serving, log });

  const sub = b.subscriber({
    onSession: (e) => reconcileSoon(e.type),
    onSubscribed: () => reconcileSoon('resubscribed'),
  });

  return startNodeApp(b, {
    app,
    sub,
    fwd,
    listening: { pool: `${c.portMin}-${c.portMax}`, iceBind: c.iceBind, iceAdvertise: c.iceAdvertise },
    startUp: async () => {
      await fwd.client.ping();
      // Subscribe before reading, so a session starting in between is not missed.
      await sub.watchSessions(c.treeId);
      await presence.begin();
      await register(c.parentSlot ?? null);
      booted = true;
      // Viewers of an earlier run died with it: their records go, their ports are free here.
      await viewers.forgetDead();
      await queue.run(() => mounts.restore());
      serving = true;
      load.start();
      log.info({ sessions: mounts.size }, 'ready');
    },
    resync: { everyMs: 3_000, run: () => reconcileSoon('periodic') },
    // Take no new viewers (state.stopping), leave the topology (the relay stops sending), then go.
    leave: async () => {
      // Off the entry point's list first, then the viewers go.
      await load.stop();
      await viewers.closeAll('node stopping');
      keyframes.close();
      if (booted)
        await topo
          .deregisterNode(c.nodeId, 'egress')
          .catch((err) => log.warn({ err: err.message }, 'deregister failed'));
    },
    release: () => backend.close(),
  });
}

export function mainEgress(c: EgressConfig): Promise<void> {
  return runUntilTerminated('egress', c, runEgress);
}
