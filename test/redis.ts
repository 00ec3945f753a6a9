import type { Redis } from 'ioredis';
import { isEgressLoadKey } from '../topology/index.ts';

/** Every key with its type and value, sorted: compare before and after to prove nothing changed (heartbeat times left out). */
export async function redisSnapshot(r: Redis): Promise<string> {
  const out: string[] = [];
  for (const k of (await r.keys('*')).sort()) {
    const t = await r.type(k);
    let v: unknown;
    if (t === 'string') v = await r.get(k);
    else if (t === 'set') v = (await r.smembers(k)).sort();
    else if (t === 'hash')
      v = Object.entries(await r.hgetall(k))
        // A ready egress node rewrites its load record every second: only what it says counts, not when.
        .filter(([f]) => !(isEgressLoadKey(k) && f === 'at'))
        .sort();
    else v = t;
    out.push(`${k} ${t} ${JSON.stringify(v)}`);
  }
  return out.join('\n');
}
