import type { Redis } from 'ioredis';
import { z } from 'zod';
import { actuatorKeys, assertId, ID_PATTERN, keys, readSubtrees, type SubtreeRecord } from '../topology/index.ts';
import type { TreeState } from './decide.ts';
import type { Command } from './lock.ts';

export type { SubtreeRecord };

const inflightRecord = z.object({
  kind: z.enum(['scale-out', 'scale-in']),
  subtree: z.string().regex(ID_PATTERN),
  slot: z.string().regex(ID_PATTERN).optional(),
  step: z.string(),
  episode: z.string().optional(),
  startedAt: z.coerce.number(),
});
export type Inflight = z.infer<typeof inflightRecord>;

// A count written by the actuator; anything else reads as absent.
const count = z.string().regex(/^\d+$/).transform(Number).optional().catch(undefined);
/** `actuator:tree:{tree}`: the tree's desired subtree count and when it last changed (ms). */
const treeRecord = z.object({ desired: count, lastScaleOutAt: count, lastScaleInAt: count });
type TreeFields = { [K in keyof z.infer<typeof treeRecord>]-?: number };

export const FAILURE_REASONS = ['provision', 'timeout', 'topology', 'drain', 'other'] as const;
export type FailureReason = (typeof FAILURE_REASONS)[number];

export interface JournalEntry {
  at: string;
  tree: string;
  kind: 'scale-out' | 'scale-in' | 'reconcile';
  result: 'done' | 'failed' | 'skipped' | 'dry-run' | 'rolled-back';
  /** For failures: provision | timeout | topology | drain | other. */
  reason?: FailureReason;
  subtree?: string;
  /** Egress nodes added or removed. */
  nodes?: number;
  why: string;
  durationMs?: number;
}

/** Reads of the actuator's own state (the writes go through fenced commands). */
export class ActuatorStore {
  constructor(
    private readonly redis: Redis,
    private readonly warn: (msg: string, detail?: Record<string, unknown>) => void = () => {},
  ) {}

  subtrees(tree: string): Promise<Map<string, SubtreeRecord>> {
    return readSubtrees(this.redis, tree, this.warn);
  }

  async treeState(tree: string, viewersOf: (nodes: string[]) => Promise<number>): Promise<TreeState> {
    const [h, episodes, subtrees] = await Promise.all([
      this.redis.hgetall(actuatorKeys.tree(tree)),
      this.redis.smembers(actuatorKeys.episodes(tree)),
      this.subtrees(tree),
    ]);
    const t = treeRecord.parse(h);
    return {
      desired: t.desired ?? subtrees.size,
      lastScaleOutAt: t.lastScaleOutAt ?? null,
      lastScaleInAt: t.lastScaleInAt ?? null,
      episodesActedOn: new Set(episodes),
      subtrees: await Promise.all(
        [...subtrees].map(async ([subtree, r]) => ({
          subtree,
          createdAt: r.createdAt,
          viewers: await viewersOf(r.nodes),
        })),
      ),
    };
  }

  async totalDesired(): Promise<number> {
    let total = 0;
    for (const tree of await this.trees())
      total += treeRecord.parse(await this.redis.hgetall(actuatorKeys.tree(tree))).desired ?? 0;
    return total;
  }

  async trees(): Promise<string[]> {
    return (await this.redis.smembers(actuatorKeys.trees)).filter((t) => ID_PATTERN.test(t));
  }

  async inflight(tree: string): Promise<Inflight | null> {
    const h = await this.redis.hgetall(actuatorKeys.inflight(assertId('tree', tree)));
    if (Object.keys(h).length === 0) return null;
    const r = inflightRecord.safeParse(h);
    if (!r.success) {
      this.warn('ignoring a malformed in-flight record', { tree });
      return null;
    }
    return r.data;
  }

  async journal(e: JournalEntry): Promise<void> {
    await this.redis.xadd(actuatorKeys.journal, 'MAXLEN', '~', '10000', '*', 'entry', JSON.stringify(e));
  }

  /** The audit trail, newest first. */
  async actions(limit: number): Promise<JournalEntry[]> {
    const rows = await this.redis.xrevrange(actuatorKeys.journal, '+', '-', 'COUNT', limit);
    return rows.map(([, fields]) => safeJson(fields[1] ?? '') as JournalEntry).filter(Boolean);
  }

  async paused(): Promise<boolean> {
    return (await this.redis.get(actuatorKeys.paused)) === '1';
  }
}

/**
 * The actuator's writes, as commands for `fencedWrite`: the hash fields its
 * reads above parse are spelled here and nowhere else.
 */
export const writes = {
  /** Records the tree's action in flight before its first step, for recovery after a crash. */
  beginAction: (tree: string, f: Inflight): Command => hset(actuatorKeys.inflight(tree), f),
  actionStep: (tree: string, step: Inflight['step']): Command => hset(actuatorKeys.inflight(tree), { step }),
  endAction: (tree: string): Command => ['DEL', actuatorKeys.inflight(tree)],
  treeFields: (tree: string, f: Partial<TreeFields>): Command => hset(actuatorKeys.tree(tree), f),
  recordSubtree: (tree: string, subtree: string, r: SubtreeRecord): Command => [
    'HSET',
    actuatorKeys.subtrees(tree),
    subtree,
    JSON.stringify(r),
  ],
  dropSubtree: (tree: string, subtree: string): Command => ['HDEL', actuatorKeys.subtrees(tree), subtree],
  episodeActedOn: (tree: string, episode: string): Command => ['SADD', actuatorKeys.episodes(tree), episode],
  knownTree: (tree: string): Command => ['SADD', actuatorKeys.trees, tree],
  returnSlot: (tree: string, slot: string): Command => ['SADD', keys.availableSlots(tree), slot],
  /** A slot a recorded subtree uses, out of the free ones (after Redis lost its data, its relay advertises it again). */
  withdrawSlot: (tree: string, slot: string): Command => ['SREM', keys.availableSlots(tree), slot],
};

function hset(key: string, fields: Record<string, string | number | undefined>): Command {
  return ['HSET', key, ...Object.entries(fields).flatMap(([k, v]) => (v === undefined ? [] : [k, v]))];
}

function safeJson(s: string): unknown {
  try {
    return JSON.parse(s);
  } catch {
    return null;
  }
}
