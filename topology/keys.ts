import { assertId, assertNodeType, type NodeType } from './ids.ts';

/**
 * Every Redis key and channel name of Canopy, and nowhere else. The first five
 * are the seed's (docs/architecture.md); the rest are ours. Each builder validates its ids.
 */
export const keys = {
  /** set of node ids of one type in a tree (seed) */
  nodes: (tree: string, type: NodeType) => `nodes:${assertId('tree', tree)}:${assertNodeType(type)}`,
  /** set of relay slot ids free for a new subtree (seed) */
  availableSlots: (tree: string) => `relay-slots:${assertId('tree', tree)}:available`,
  /** string: the slot a node is attached to (seed) */
  parent: (node: string) => `parent:${assertId('node', node)}`,
  /** set of node ids attached to a slot (seed) */
  children: (slot: string) => `children:${assertId('slot', slot)}`,
  /** channel of children-added / children-removed events for a slot (seed) */
  topologyChannel: (slot: string) => `topology:${assertId('slot', slot)}`,

  /** hash: a node's tree, type, host, forwarder ports, HTTP port, draining flag */
  node: (node: string) => `node:${assertId('node', node)}`,
  /** set of every slot id a node has ever owned, so a restart does not free a taken slot */
  ownedSlots: (node: string) => `slots:${assertId('node', node)}`,
  /** hash: a slot's tree and owner node */
  slot: (slot: string) => `slot:${assertId('slot', slot)}`,
  /** set of live session ids of a tree */
  sessions: (tree: string) => `sessions:${assertId('tree', tree)}`,
  /** hash: one session's SSRCs, injection node, start time and, when a publisher feeds it, its ingest (WHIP, or RTP ports) */
  session: (tree: string, session: string) => `session:${assertId('tree', tree)}:${assertId('session', session)}`,
  /** channel of session-started / session-ended events for a tree */
  sessionsChannel: (tree: string) => `session-events:${assertId('tree', tree)}`,
  /** channel of keyframe-request events for the sessions an injection node plays */
  keyframeRequestsChannel: (injection: string) => `keyframe-requests:${assertId('node', injection)}`,
  /** string: a random id of Redis's current dataset; a new one after Redis lost its data (FLUSHALL, restart without it) */
  datasetEpoch: 'canopy:dataset-epoch',
  /** hash: viewer id -> JSON placement (session, address, pool port) on one egress node */
  viewers: (node: string) => `viewers:${assertId('node', node)}`,
  /** hash with a TTL: a ready egress node's pool use and served sessions, refreshed while it is ready (its heartbeat) */
  egressLoad: (node: string) => `egress-load:${assertId('node', node)}`,
} as const;
