import type { Redis } from 'ioredis';
import { z } from 'zod';
import { actuatorKeys } from './actuator-keys.ts';
import { evalFenced, type Fence } from './fence.ts';
import { ID_PATTERN } from './ids.ts';

/** One value of `actuator:subtrees:{tree}`: a subtree whose topology the actuator wrote. */
export const subtreeRecordSchema = z.object({
  slot: z.string().regex(ID_PATTERN),
  createdAt: z.number().int().nonnegative(),
  nodes: z.array(z.string().regex(ID_PATTERN)),
});
export type SubtreeRecord = z.infer<typeof subtreeRecordSchema>;

/** The actuator's subtrees of a tree, validated; a malformed record is reported and skipped. */
export async function readSubtrees(
  redis: Redis,
  tree: string,
  warn: (msg: string, detail?: Record<string, unknown>) => void = () => {},
): Promise<Map<string, SubtreeRecord>> {
  const out = new Map<string, SubtreeRecord>();
  for (const [id, json] of Object.entries(await redis.hgetall(actuatorKeys.subtrees(tree)))) {
    const r = subtreeRecordSchema.safeParse(parseJson(json));
    if (ID_PATTERN.test(id) && r.success) out.set(id, r.data);
    else warn('ignoring a malformed subtree record', { tree, subtree: id.slice(0, 80) });
  }
  return out;
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

/** The actuator's step 3a's name: the tree's next subtree number, counted behind the fence. */
export async function nextSubtreeNumber(redis: Redis, fence: Fence): Promise<number> {
  return Number(
    await evalFenced(redis, `return redis.call('INCR', KEYS[2])`, fence, [actuatorKeys.subtreeSeq(fence.tree)], []),
  );
}

/**
 * After Redis lost its data: the subtree counter back to at least `atLeast`
 * (the highest number among running subtrees), so no new subtree takes a running one's name.
 */
export async function raiseSubtreeNumber(redis: Redis, fence: Fence, atLeast: number): Promise<void> {
  await evalFenced(
    redis,
    `if (tonumber(redis.call('GET', KEYS[2])) or 0) < tonumber(ARGV[2]) then redis.call('SET', KEYS[2], ARGV[2]) end return 1`,
    fence,
    [actuatorKeys.subtreeSeq(fence.tree)],
    [String(atLeast)],
  );
}
