import type { Redis } from 'ioredis';
import { z } from 'zod';
import { actuatorKeys } from './actuator-keys.ts';
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
