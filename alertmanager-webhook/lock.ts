import type { Redis } from 'ioredis';
import { actuatorKeys } from '../topology/index.ts';

// Take the lock if free: a new fencing token from the tree's counter, stored with the owner.
const ACQUIRE = `
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
local token = redis.call('INCR', KEYS[2])
redis.call('SET', KEYS[1], token .. ':' .. ARGV[1], 'PX', ARGV[2])
return token`;
// Extend or release only the lock we hold (same token and owner).
const EXTEND = `
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
return redis.call('PEXPIRE', KEYS[1], ARGV[2])`;
const RELEASE = `
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
return redis.call('DEL', KEYS[1])`;

export interface Lease {
  tree: string;
  /** Increases with every acquisition: a write carrying an older token is refused. */
  token: number;
  owner: string;
}

/**
 * A lock per tree with a TTL and a fencing token, so two actuator replicas
 * act as one: a replica that stalls past its TTL loses the tree, and its
 * late writes fail the fence check (`fenced`).
 */
export class TreeLock {
  constructor(
    private readonly redis: Redis,
    private readonly owner: string,
    private readonly ttlMs: number,
  ) {}

  async acquire(tree: string): Promise<Lease | null> {
    const token = (await this.redis.eval(
      ACQUIRE,
      2,
      actuatorKeys.lock(tree),
      actuatorKeys.fence(tree),
      this.owner,
      this.ttlMs,
    )) as number;
    return token === 0 ? null : { tree, token, owner: this.owner };
  }

  async extend(lease: Lease): Promise<boolean> {
    return (
      (await this.redis.eval(EXTEND, 1, actuatorKeys.lock(lease.tree), `${lease.token}:${lease.owner}`, this.ttlMs)) ===
      1
    );
  }

  async release(lease: Lease): Promise<boolean> {
    return (await this.redis.eval(RELEASE, 1, actuatorKeys.lock(lease.tree), `${lease.token}:${lease.owner}`)) === 1;
  }
}

// Runs a list of commands atomically, only while the fencing token is the tree's latest.
const FENCED = `
if tonumber(redis.call('GET', KEYS[1])) ~= tonumber(ARGV[1]) then return 0 end
for _, c in ipairs(cjson.decode(ARGV[2])) do redis.call(unpack(c)) end
return 1`;

export type Command = [string, ...Array<string | number>];

/**
 * Writes `commands` in one atomic step, or nothing when a newer lease exists:
 * a stalled replica whose lock expired cannot overwrite the new holder's work.
 */
export async function fencedWrite(redis: Redis, lease: Lease, commands: Command[]): Promise<boolean> {
  const args = JSON.stringify(commands.map((c) => c.map(String)));
  return (await redis.eval(FENCED, 1, actuatorKeys.fence(lease.tree), lease.token, args)) === 1;
}
