import { randomBytes } from 'node:crypto';
import type { Redis } from 'ioredis';
import { keys } from './keys.ts';

// The epoch if there is one, else a new one, in one step: of two callers after a loss, both read the same.
const EPOCH = `
local e = redis.call('GET', KEYS[1])
if e then return e end
redis.call('SET', KEYS[1], ARGV[1])
return ARGV[1]`;

/**
 * The id of Redis's current dataset: a random string written by whoever
 * first finds none. A FLUSHALL, or a restart without the data, loses it like
 * everything else, so the next reader writes a new one: a participant that
 * remembers another has lost what it wrote and must write it again.
 */
export async function datasetEpoch(redis: Redis): Promise<string> {
  return String(await redis.eval(EPOCH, 1, keys.datasetEpoch, randomBytes(8).toString('hex')));
}

/** Remembers the epoch its owner wrote under; `changed` says when Redis has lost that dataset since. */
export class DatasetWatch {
  private known: string | null = null;

  constructor(private readonly redis: Redis) {}

  /** Reads (or starts) the epoch: call before writing what a later loss would take. */
  async begin(): Promise<void> {
    this.known = await datasetEpoch(this.redis);
  }

  /** True once per loss: the epoch differs from the one of the last `begin` or `changed`. */
  async changed(): Promise<boolean> {
    const now = await datasetEpoch(this.redis);
    if (now === this.known) return false;
    const had = this.known;
    this.known = now;
    return had !== null;
  }
}
