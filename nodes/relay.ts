import { createRelayMetrics, createReregistrations } from '../exporters/index.ts';
import type { Destination, ListedDestination } from '../forwarder/client.ts';
import { slotIdsOf, type TopologyEvent } from '../topology/index.ts';
import { baseApp, type CommonConfig, Queue, redisAnswers } from './common.ts';
import { nodeBase, type RunningNode, runUntilTerminated, startNodeApp } from './lifecycle.ts';
import { forwarderAnswers, nodeForwarder, type ForwarderConfig } from './node-forwarder.ts';
import { Presence } from './presence.ts';
import { forwarderCollector } from './relay-forwarder.ts';

/**
 * The relay node: a fan-out forwarder, N slots egress subtrees attach to, and
 * destinations that follow `children:{slot}` (events for speed, a periodic
 * reconcile against Redis for truth). A restarted relay, or a restarted
 * forwarder, rebuilds its destinations from Redis.
 */

export interface RelayConfig extends CommonConfig, ForwarderConfig {
  slots: number;
  /** The slot (of an injection node, usually) this relay receives from. */
  parentSlot?: string;
}

const same = (a: ListedDestination, b: Destination) =>
  a.host === b.host && a.audioPort === b.audioPort && a.videoPort === b.videoPort;

export async function runRelay(c: RelayConfig): Promise<RunningNode> {
  const b = nodeBase('relay', c);
  const { log, redis, topo } = b;
  const metrics = createRelayMetrics();
  const slots = slotIdsOf(c.nodeId, c.slots);
  const queue = new Queue();
  let booted = false;
  /** Set once the first reconcile is done: /readyz then means "serving what Redis says". */
  let serving = false;

  const presence = new Presence(b, createReregistrations(metrics.node), c.parentSlot);
  /** Slots not free at the last reconcile (the actuator took them): after a loss they are not advertised again. */
  const taken = new Set<string>();
  async function register(parentSlot: string | null, restoring: boolean): Promise<string[]> {
    const fresh = restoring
      ? [
          ...(await topo.registerSlots(
            c.nodeId,
            slots.filter((s) => !taken.has(s)),
            true,
          )),
          ...(await topo.registerSlots(
            c.nodeId,
            slots.filter((s) => taken.has(s)),
            false,
          )),
        ]
      : await topo.registerSlots(c.nodeId, slots, true);
    await topo.registerNode({
      id: c.nodeId,
      type: 'relay',
      host: c.advertiseHost,
      httpPort: c.port,
      audioPort: c.forwarderAudioPort,
      videoPort: c.forwarderVideoPort,
      parentSlot: parentSlot ?? undefined,
    });
    return fresh;
  }

  // Every re-read first checks that Redis still has our data.
  const reconcileSoon = (why: string) =>
    void queue
      .run(async () => {
        if (booted && (await presence.check((parent) => register(parent, true).then(() => {}))))
          log.info({ why, taken: [...taken] }, 'record and slots written again');
        await reconcile(why);
      })
      .catch((err) => log.warn({ err: err.message, why }, 'reconcile failed'));
  const fwd = nodeForwarder(c, 'fanout', log, () => reconcileSoon('forwarder reconnected'));
  metrics.node.collectors.push(forwarderCollector(metrics, fwd.client));

  /** Where a child receives RTP, from its node record; null when it has none. */
  async function destinationOf(child: string): Promise<Destination | null> {
    const n = await topo.getNode(child);
    if (!n?.audioPort || !n.videoPort) {
      log.warn({ child }, 'child has no registered forwarder address; skipped');
      return null;
    }
    return { id: child, host: n.host, audioPort: n.audioPort, videoPort: n.videoPort };
  }

  async function put(d: Destination, current: Map<string, ListedDestination>): Promise<void> {
    const have = current.get(d.id);
    if (have && same(have, d)) return;
    if (have) await fwd.client.remove(d.id);
    await fwd.client.add(d);
    log.info({ child: d.id, host: d.host, audioPort: d.audioPort, videoPort: d.videoPort }, 'destination added');
  }

  /** Makes the forwarder's destinations equal to the children of our slots in Redis. */
  async function reconcile(why: string): Promise<void> {
    if (!booted) return;
    const want = new Map<string, Destination>();
    if (!presence.recentlyLost()) {
      const free = new Set(await topo.availableSlots());
      taken.clear();
      for (const s of slots) if (!free.has(s)) taken.add(s);
    }
    for (const slot of slots) {
      for (const child of await topo.children(slot)) {
        const d = await destinationOf(child);
        if (d) want.set(child, d);
      }
    }
    const current = new Map((await fwd.client.list()).map((d) => [d.id, d]));
    for (const d of want.values()) await put(d, current);
    // Shortly after Redis lost its data, a child missing there may only be not registered again yet: keep sending.
    if (presence.recentlyLost()) return;
    for (const id of current.keys()) {
      if (!want.has(id)) {
        await fwd.client.remove(id);
        log.info({ child: id, why }, 'destination removed');
      }
    }
  }

  /** The seed's step 4a: children-added -> ADD, children-removed -> REMOVE, checked against Redis. */
  async function onEvent(slot: string, e: TopologyEvent): Promise<void> {
    if (!booted) return;
    const members = new Set(await topo.children(slot));
    const current = new Map((await fwd.client.list()).map((d) => [d.id, d]));
    for (const child of e.childIds) {
      if (e.type === 'children-added') {
        if (!members.has(child)) {
          log.warn({ slot, child }, 'children-added for a node not in children:{slot}; ignored');
          continue;
        }
        const d = await destinationOf(child);
        if (d) await put(d, current);
      } else if (current.has(child)) {
        if (members.has(child)) {
          log.warn({ slot, child }, 'children-removed for a node still in children:{slot}; kept');
          continue;
        }
        await fwd.client.remove(child);
        log.info({ slot, child }, 'destination removed');
      }
    }
  }

  const app = baseApp(metrics.node, async () => {
    if (!serving) return 'starting';
    if (!(await redisAnswers(redis))) return 'redis does not answer';
    if (!(await forwarderAnswers(fwd.client))) return 'forwarder does not answer';
    return null;
  });
  app.get('/destinations', async (_req, res) => {
    res.json({ slots, destinations: await fwd.client.list() });
  });
  const sub = b.subscriber({
    onTopology: (slot, e) =>
      void queue
        .run(() => onEvent(slot, e))
        .catch((err) => log.warn({ err: err.message, slot }, 'topology event failed')),
    onSubscribed: () => reconcileSoon('resubscribed'),
  });

  return startNodeApp(b, {
    app,
    sub,
    fwd,
    startUp: async () => {
      await fwd.client.ping();
      await presence.begin();
      const fresh = await register(c.parentSlot ?? null, false);
      await sub.watchSlots(slots);
      booted = true;
      await queue.run(() => reconcile('start'));
      serving = true;
      log.info({ slots, newSlots: fresh }, 'ready');
    },
    resync: { everyMs: 5_000, run: () => reconcileSoon('periodic') },
    // No `leave`: a stopped relay keeps its place in the topology; restarted, it serves the same children.
  });
}

export function mainRelay(c: RelayConfig): Promise<void> {
  return runUntilTerminated('relay', c, runRelay);
}
