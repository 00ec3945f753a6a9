import type { Express } from 'express';
import type { Redis } from 'ioredis';
import type { Server } from 'node:http';
import type { Logger } from 'pino';
import { type SubscriberHandlers, Topology, TopologySubscriber } from '../topology/index.ts';
import {
  closeServer,
  type CommonConfig,
  connectRedis,
  createLogger,
  finishApp,
  listen,
  onTermination,
  retry,
} from './common.ts';
import type { NodeForwarder } from './node-forwarder.ts';

export interface RunningNode {
  server: Server;
  stop(): Promise<void>;
}

/** What every node app starts with: its log, Redis, its tree's topology, and whether it is stopping. */
export interface NodeBase {
  c: CommonConfig;
  log: Logger;
  redis: Redis;
  topo: Topology;
  /** Set once `stop` has begun (readiness and routes read it). */
  state: { stopping: boolean };
  /** A subscriber on its own connection (a subscribed connection takes no other commands). */
  subscriber(h: SubscriberHandlers): TopologySubscriber;
}

export function nodeBase(nodeType: string, c: CommonConfig): NodeBase {
  const log = createLogger(nodeType, c);
  const redis = connectRedis(c.redisUrl, log);
  const warn = (msg: string, d?: Record<string, unknown>) => log.warn(d ?? {}, msg);
  return {
    c,
    log,
    redis,
    topo: new Topology(redis, c.treeId, warn),
    state: { stopping: false },
    subscriber: (h) => new TopologySubscriber(redis.duplicate(), h, warn),
  };
}

/** What differs between the node apps' lifecycles; the order of the steps is `startNodeApp`'s. */
export interface NodeLifecycle {
  /** The app with its routes; the 404 and error handlers are added last, here. */
  app: Express;
  sub: TopologySubscriber;
  /** The app's own forwarder (relay, egress): started before start-up, stopped after the server. */
  fwd?: NodeForwarder;
  /** Register in Redis, subscribe, first reconcile: retried until it succeeds (Redis may come later) or the node stops. */
  startUp: () => Promise<void>;
  /** The periodic re-read against Redis: events are missed while Redis is away. */
  resync: { everyMs: number; run: () => void };
  /** First step of `stop`: leave the topology, stop sending. */
  leave?: () => Promise<void>;
  /** Last step before Redis is let go: what the app holds beyond its forwarder. */
  release?: () => Promise<void>;
  /** Extra fields of the "listening" log line. */
  listening?: Record<string, unknown>;
}

/** Serves, starts the forwarder, starts up in the background, resyncs; `stop` undoes it in reverse. */
export async function startNodeApp(b: NodeBase, n: NodeLifecycle): Promise<RunningNode> {
  const { c, log, fwd } = { ...b, ...n };
  finishApp(n.app, log);
  const server = await listen(n.app, c.listenHost, c.port);
  log.info({ host: c.listenHost, port: c.port, ...n.listening }, 'listening');
  fwd?.proc.start();
  void retry('start-up', log, n.startUp, () => b.state.stopping);
  const poll = setInterval(n.resync.run, n.resync.everyMs);
  return {
    server,
    async stop() {
      b.state.stopping = true;
      clearInterval(poll);
      await n.leave?.();
      await n.sub.close();
      await closeServer(server);
      fwd?.client.close();
      await fwd?.proc.stop();
      await n.release?.();
      b.redis.disconnect();
    },
  };
}

/** `canopy node <type>`: runs the app until SIGTERM/SIGINT (or CANOPY_EXIT_WITH_PID's process) ends it. */
export async function runUntilTerminated<C extends CommonConfig>(
  nodeType: string,
  c: C,
  run: (c: C) => Promise<RunningNode>,
): Promise<void> {
  const app = await run(c);
  onTermination(createLogger(nodeType, c), app.stop);
}
