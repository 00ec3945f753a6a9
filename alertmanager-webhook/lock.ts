import type { Redis } from 'ioredis';
import { actuatorKeys, evalFenced, StaleFenceError } from '../topology/index.ts';

// Take the lock if free: a new fencing token from the tree's counter, stored with the owner.
// ARGV[3], the highest token this replica has held, keeps tokens rising if Redis lost the counter.
const ACQUIRE = `
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
if (tonumber(redis.call('GET', KEYS[2])) or 0) < tonumber(ARGV[3]) then redis.call('SET', KEYS[2], ARGV[3]) end
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
  private readonly highest = new Map<string, number>();

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
      this.highest.get(tree) ?? 0,
    )) as number;
    if (token === 0) return null;
    this.highest.set(tree, token);
    return { tree, token, owner: this.owner };
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

// Runs a list of commands, behind the fence check of `evalFenced`.
const COMMANDS = `
for _, c in ipairs(cjson.decode(ARGV[2])) do redis.call(unpack(c)) end
return 1`;

export type Command = [string, ...Array<string | number>];

/**
 * Writes `commands` in one atomic step, or nothing when a newer lease exists:
 * a stalled replica whose lock expired cannot overwrite the new holder's work.
 */
export async function fencedWrite(redis: Redis, lease: Lease, commands: Command[]): Promise<boolean> {
  const args = JSON.stringify(commands.map((c) => c.map(String)));
  try {
    return (await evalFenced(redis, COMMANDS, lease, [], [args])) === 1;
  } catch (err) {
    if (err instanceof StaleFenceError) return false;
    throw err;
  }
}
