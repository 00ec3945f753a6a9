import { createEgressMetrics } from '../exporters/index.ts';
import { baseApp, type CommonConfig, Queue, redisAnswers } from './common.ts';
import { EgressMounts } from './egress-mounts.ts';
import { egressRoutes } from './egress-routes.ts';
import { nodeBase, type RunningNode, runUntilTerminated, startNodeApp } from './lifecycle.ts';
import { BuiltinMountpoints } from './mountpoints.ts';
import { type ForwarderConfig, forwarderAnswers, nodeForwarder } from './node-forwarder.ts';
import { LoadReporter } from './load-reporter.ts';
import { PortPool } from './port-pool.ts';

/**
 * The egress node: a demux forwarder fed by its parent relay, one mountpoint
 * per live session (seed step 4b, discoverExistingSessions), and viewers that
 * join and leave through a WHEP-shaped API. Sessions are followed through the
 * `session-events:{tree}` channel plus a periodic re-read; viewers are recorded in
 * Redis so a restarted node serves them again. The sessions and viewers are
 * `egress-mounts.ts`'s, the HTTP API `egress-routes.ts`'s, start and stop
 * `lifecycle.ts`'s; this file wires them.
 */

export interface EgressConfig extends CommonConfig, ForwarderConfig {
  parentSlot?: string;
  portMin: number;
  portMax: number;
  /** Where the built-in mountpoints bind (the forwarder sends to them there). */
  mountpointHost: string;
}

export async function runEgress(c: EgressConfig): Promise<RunningNode> {
  const b = nodeBase('egress', c);
  const { log, redis, topo, state } = b;
  const metrics = createEgressMetrics();
  const backend = new BuiltinMountpoints(c.mountpointHost);
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
  const pool = new PortPool(c.portMin, c.portMax, () => load.poke());
  const mounts = new EgressMounts({
    nodeId: c.nodeId,
    mountpointHost: c.mountpointHost,
    topo,
    pool,
    backend,
    client: fwd.client,
    metrics,
    log,
  });
  metrics.node.collectors.push(...mounts.collectors());

  const reconcileSoon = (why: string) =>
    void queue
      .run(async () => {
        if (booted) await mounts.reconcile();
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
  egressRoutes(app, { nodeId: c.nodeId, mounts, topo, queue, state, serving: () => serving, log });

  const sub = b.subscriber({
    onSession: (e) => reconcileSoon(e.type),
    onSubscribed: () => reconcileSoon('resubscribed'),
  });

  return startNodeApp(b, {
    app,
    sub,
    fwd,
    listening: { pool: `${c.portMin}-${c.portMax}` },
    startUp: async () => {
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
      await queue.run(() => mounts.restore());
      serving = true;
      load.start();
      log.info({ sessions: mounts.size }, 'ready');
    },
    resync: { everyMs: 3_000, run: () => reconcileSoon('periodic') },
    // Take no new viewers (state.stopping), leave the topology (the relay stops sending), then go.
    leave: async () => {
      await load.stop();
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
