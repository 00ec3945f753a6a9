import type { Redis } from 'ioredis';
import { actuatorKeys } from '../topology/index.ts';
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
