import type { Redis } from 'ioredis';
import { setTimeout as sleep } from 'node:timers/promises';
import { actuatorKeys } from '../topology/index.ts';
import type { Log } from './context.ts';
import type { ScalingRequest } from './payload.ts';

export interface InboxEntry {
  receivedAt: string;
  groupKey: string;
  requests: ScalingRequest[];
}

/**
 * The durable record of accepted notifications: a Redis stream the worker
 * reads through a consumer group, so an entry survives an actuator restart
 * until it has been acted on.
 */
export class Inbox {
  constructor(private readonly redis: Redis) {}

  /** Appends one notification's requests; resolves with the stream id. */
  async record(entry: InboxEntry): Promise<string> {
    const id = await this.redis.xadd(actuatorKeys.inbox, '*', 'entry', JSON.stringify(entry));
    if (!id) throw new Error('XADD returned no id');
    return id;
  }
}

export interface ConsumerOptions {
  redis: Redis;
  /** This consumer's name in the group. */
  owner: string;
  /** Entries another consumer left pending this long are taken over (a lock TTL: it can no longer be acting). */
  claimIdleMs: number;
  stopped: () => boolean;
  /** Runs once the group exists, before the first read, and again after a Redis that lost the group. */
  setUp: () => Promise<void>;
  /** Runs before every read. */
  beforeRead: () => Promise<void>;
  /** Acts on one readable entry (an unreadable one is dropped); the entry is acknowledged once this resolves. */
  handle: (entry: InboxEntry) => Promise<void>;
  log: Log;
}

/** Reads the inbox until stopped: first what this consumer had not finished, then new entries. */
export async function consumeInbox(o: ConsumerOptions): Promise<void> {
  const reader = o.redis.duplicate();
  reader.on('error', () => {});
  let ready = false;
  try {
    while (!o.stopped()) {
      try {
        // Redis may come later than the actuator: set up, recover, then read.
        if (!ready) {
          await o.redis
            .xgroup('CREATE', actuatorKeys.inbox, actuatorKeys.inboxGroup, '0', 'MKSTREAM')
            .catch((err: Error) => {
              if (!/BUSYGROUP/.test(err.message)) throw err;
            });
          await o.setUp();
          ready = true;
        }
        await o.beforeRead();
        await claimAbandoned(o);
        const pending = await read(reader, o.owner, '0', 0);
        const fresh = pending.length ? [] : await read(reader, o.owner, '>', 1_000);
        for (const [id, entry] of [...pending, ...fresh]) {
          if (o.stopped()) break;
          // A failure leaves the entry pending for a retry.
          if (entry) await o.handle(entry);
          else o.log('warn', 'dropping an unreadable inbox entry', { id });
          await o.redis.xack(actuatorKeys.inbox, actuatorKeys.inboxGroup, id);
          await o.redis.xdel(actuatorKeys.inbox, id);
        }
      } catch (err) {
        // A Redis that came back empty has lost the consumer group: set up again.
        if (/NOGROUP/.test((err as Error).message)) ready = false;
        o.log('warn', 'worker step failed; retrying', { err: (err as Error).message });
        await sleep(1_000);
      }
    }
  } finally {
    reader.disconnect();
  }
}

/**
 * Entries another actuator took and did not finish (it crashed): taken over
 * once idle longer than a lock TTL, when that actuator can no longer be acting.
 */
async function claimAbandoned(o: ConsumerOptions): Promise<void> {
  await o.redis.call(
    'XAUTOCLAIM',
    actuatorKeys.inbox,
    actuatorKeys.inboxGroup,
    o.owner,
    o.claimIdleMs,
    '0-0',
    'COUNT',
    100,
  );
}

async function read(
  reader: Redis,
  owner: string,
  from: '0' | '>',
  blockMs: number,
): Promise<Array<[string, InboxEntry | null]>> {
  const args: Array<string | number> = ['GROUP', actuatorKeys.inboxGroup, owner, 'COUNT', 10];
  if (blockMs > 0) args.push('BLOCK', blockMs);
  const res = (await reader.call('XREADGROUP', ...args, 'STREAMS', actuatorKeys.inbox, from)) as Array<
    [string, Array<[string, string[]]>]
  > | null;
  const rows = res?.[0]?.[1] ?? [];
  return rows.map(([id, fields]) => [id, parseEntry(fields[1])]);
}

function parseEntry(raw: string | undefined): InboxEntry | null {
  try {
    const v = JSON.parse(raw ?? '') as InboxEntry;
    return Array.isArray(v?.requests) ? v : null;
  } catch {
    return null;
  }
}
