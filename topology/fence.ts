import type { Redis } from 'ioredis';
import { actuatorKeys } from './actuator-keys.ts';

/** The actuator's lease on a tree as the topology's writes check it: the tree and its fencing token. */
export interface Fence {
  tree: string;
  token: number;
}

/** A fenced write refused: a newer lock of the tree exists, so this holder changed nothing. */
export class StaleFenceError extends Error {
  override name = 'StaleFenceError';
  constructor(
    readonly tree: string,
    readonly token: number,
  ) {
    super(`lost the lock of tree ${tree}: fencing token ${token} superseded`);
  }
}

// Checked at the top of the script, so the check and the write are one atomic step.
// KEYS[1] the tree's fence counter ('' for an unfenced call), ARGV[1] the token.
const FENCE_CHECK = `
if KEYS[1] ~= '' and tonumber(redis.call('GET', KEYS[1])) ~= tonumber(ARGV[1]) then
  return redis.error_reply('STALE_FENCE fencing token superseded')
end
`;

/**
 * Runs `script` (its own keys and arguments from index 2) after the fence
 * check, in one EVAL. Without a fence the check is skipped (a node's own
 * writes); with one, a superseded token writes nothing and throws `StaleFenceError`.
 */
export async function evalFenced(
  redis: Redis,
  script: string,
  fence: Fence | undefined,
  keys: string[],
  argv: string[],
): Promise<unknown> {
  try {
    return await redis.eval(
      FENCE_CHECK + script,
      1 + keys.length,
      fence ? actuatorKeys.fence(fence.tree) : '',
      ...keys,
      fence ? String(fence.token) : '',
      ...argv,
    );
  } catch (err) {
    if (fence && /STALE_FENCE/.test((err as Error).message)) throw new StaleFenceError(fence.tree, fence.token);
    throw err;
  }
}
