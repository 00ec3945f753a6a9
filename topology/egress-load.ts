import type { Redis } from 'ioredis';
import { z } from 'zod';
import { assertId, ID_PATTERN, isValidId, TopologyInputError } from './ids.ts';
import { keys } from './keys.ts';
import type { NodeInfo, Topology, TopologyWarn } from './store.ts';

/**
 * What an entry point needs to place a viewer: each egress node's pool use and
 * the sessions it serves, written by the node itself while it is ready. The
 * record expires unless refreshed, so a node that died or stopped being ready
 * drops out of placement within the TTL without anyone cleaning up after it.
 */

export interface EgressLoad {
  /** Pool ports in use (mountpoints and viewers). */
  allocated: number;
  /** Pool size. */
  size: number;
  /** Live sessions this node has a mountpoint for (it can take viewers of these). */
  sessions: string[];
  /** When the node wrote it (ms since the epoch). */
  at: number;
}

const count = z.coerce.number().int().min(0).max(65535);
const loadHashSchema = z
  .object({
    allocated: count,
    size: count.refine((n) => n > 0, 'size must be positive'),
    sessions: z.string().max(64 * 1024),
    at: z.coerce.number().int().nonnegative(),
  })
  .strict();
const sessionsSchema = z.array(z.string().regex(ID_PATTERN)).max(1024);

/** True for an egress load record's key (a snapshot of Redis leaves out its ever-changing `at`). */
export function isEgressLoadKey(key: string): boolean {
  return key.startsWith(keys.egressLoad('x').slice(0, -1));
}

/** An egress node as placement sees it: its record, its draining flag, and its load (null: not ready). */
export interface EgressCandidate {
  node: NodeInfo;
  load: EgressLoad | null;
}

/** Writes a node's load with a TTL (ms): it stands for "ready" until it expires (Topology.putEgressLoad). */
export async function putEgressLoad(
  redis: Redis,
  nodeId: string,
  load: Omit<EgressLoad, 'at'>,
  ttlMs: number,
): Promise<void> {
  const id = assertId('node', nodeId);
  if (!Number.isInteger(ttlMs) || ttlMs < 100) throw new TopologyInputError(`bad load TTL ${ttlMs}`);
  const sessions = sessionsSchema.parse(load.sessions);
  const fields = loadHashSchema.parse({
    allocated: load.allocated,
    size: load.size,
    sessions: JSON.stringify(sessions),
    at: Date.now(),
  });
  // DEL first: the hash holds exactly these fields, whatever an older writer left.
  const res = await redis
    .multi()
    .del(keys.egressLoad(id))
    .hset(keys.egressLoad(id), Object.fromEntries(Object.entries(fields).map(([k, v]) => [k, String(v)])))
    .pexpire(keys.egressLoad(id), ttlMs)
    .exec();
  if (!res) throw new Error('Redis transaction aborted');
  for (const [err] of res) if (err) throw err;
}

/** Takes the load record away at once (a node stopping or draining by itself). */
export async function clearEgressLoad(redis: Redis, nodeId: string): Promise<void> {
  await redis.del(keys.egressLoad(assertId('node', nodeId)));
}

/** A node's load, or null when absent (not ready, gone) or unreadable (reported). */
export async function getEgressLoad(
  redis: Redis,
  nodeId: string,
  warn: TopologyWarn = () => {},
): Promise<EgressLoad | null> {
  const id = assertId('node', nodeId);
  const h = await redis.hgetall(keys.egressLoad(id));
  return parseLoad(h, id, warn);
}

/** Every egress node registered in the tree with its record and load (Topology.egressCandidates). */
export async function egressCandidates(
  redis: Redis,
  topo: Topology,
  warn: TopologyWarn = () => {},
): Promise<EgressCandidate[]> {
  const ids = await topo.nodeIds('egress');
  if (ids.length === 0) return [];
  const p = redis.pipeline();
  for (const id of ids) p.hgetall(keys.egressLoad(id));
  // Sent together: one round trip's wait, not one per node, for an entry point answering a surge.
  const [loads, nodes] = await Promise.all([p.exec(), Promise.all(ids.map((id) => topo.getNode(id)))]);
  const out: EgressCandidate[] = [];
  for (const [i, id] of ids.entries()) {
    const node = nodes[i];
    if (node?.type !== 'egress' || node.tree !== topo.tree) continue;
    const [err, h] = loads?.[i] ?? [new Error('no reply'), null];
    out.push({ node, load: err ? null : parseLoad(h as Record<string, string>, id, warn) });
  }
  return out;
}

function parseLoad(h: Record<string, string> | null, id: string, warn: TopologyWarn): EgressLoad | null {
  if (!h || Object.keys(h).length === 0) return null;
  const r = loadHashSchema.safeParse(h);
  let sessions: unknown;
  try {
    sessions = r.success ? JSON.parse(r.data.sessions) : undefined;
  } catch {
    sessions = undefined;
  }
  const s = sessionsSchema.safeParse(sessions);
  if (!r.success || !s.success || r.data.allocated > r.data.size) {
    warn('ignoring a malformed egress load record', { node: id });
    return null;
  }
  return { allocated: r.data.allocated, size: r.data.size, sessions: s.data.filter(isValidId), at: r.data.at };
}
