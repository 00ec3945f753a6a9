import type { Redis } from 'ioredis';
import { z } from 'zod';
import { actuatorKeys, assertId, ID_PATTERN, readSubtrees, type SubtreeRecord } from '../topology/index.ts';
import type { TreeState } from './decide.ts';

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
    const num = (v: string | undefined) => (v === undefined || !/^\d+$/.test(v) ? null : Number(v));
    return {
      desired: num(h.desired) ?? subtrees.size,
      lastScaleOutAt: num(h.lastScaleOutAt),
      lastScaleInAt: num(h.lastScaleInAt),
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
      total += Number((await this.redis.hget(actuatorKeys.tree(tree), 'desired')) ?? 0);
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

function safeJson(s: string): unknown {
  try {
    return JSON.parse(s);
  } catch {
    return null;
  }
}
