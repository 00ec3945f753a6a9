import type { Redis } from 'ioredis';
import {
  type KeyframeRequestEvent,
  keyframeRequestEventSchema,
  parseEvent,
  sessionEventSchema,
  topologyEventSchema,
  type SessionEvent,
  type TopologyEvent,
} from './events.ts';
import { assertId } from './ids.ts';
import { keys } from './keys.ts';
import type { TopologyWarn } from './store.ts';

export interface SubscriberHandlers {
  onTopology?: (slot: string, e: TopologyEvent) => void;
  onSession?: (e: SessionEvent) => void;
  onKeyframeRequest?: (e: KeyframeRequestEvent) => void;
  /** After each (re)subscription: events may have been missed, so re-read the state. */
  onSubscribed?: () => void;
}

/**
 * Pub/sub on a connection of its own (a subscribed connection can do nothing
 * else). Payloads are validated; a bad one is reported and ignored.
 */
export class TopologySubscriber {
  private readonly channels = new Map<
    string,
    { kind: 'topology'; slot: string } | { kind: 'sessions' } | { kind: 'keyframes' }
  >();

  constructor(
    private readonly sub: Redis,
    private readonly h: SubscriberHandlers,
    private readonly warn: TopologyWarn = () => {},
  ) {
    sub.on('message', (channel: string, payload: string) => this.onMessage(channel, payload));
    // Without a listener ioredis prints every reconnect error; the main connection already reports outages.
    sub.on('error', () => {});
    // ioredis re-subscribes by itself after a reconnect; the state is re-read then.
    sub.on('ready', () => {
      if (this.channels.size > 0) this.h.onSubscribed?.();
    });
  }

  async watchSlots(slots: string[]): Promise<void> {
    const chans = slots.map((s) => {
      const c = keys.topologyChannel(assertId('slot', s));
      this.channels.set(c, { kind: 'topology', slot: s });
      return c;
    });
    if (chans.length) await this.sub.subscribe(...chans);
  }

  async watchSessions(tree: string): Promise<void> {
    const c = keys.sessionsChannel(tree);
    this.channels.set(c, { kind: 'sessions' });
    await this.sub.subscribe(c);
  }

  /** Keyframe requests for the sessions injection node `node` plays. */
  async watchKeyframeRequests(node: string): Promise<void> {
    const c = keys.keyframeRequestsChannel(node);
    this.channels.set(c, { kind: 'keyframes' });
    await this.sub.subscribe(c);
  }

  private onMessage(channel: string, payload: string): void {
    const what = this.channels.get(channel);
    if (!what) return;
    if (what.kind === 'topology') {
      const r = parseEvent(topologyEventSchema, payload);
      if (r.ok) this.h.onTopology?.(what.slot, r.event);
      else this.warn('ignoring a bad topology event', { channel, error: r.error });
    } else if (what.kind === 'keyframes') {
      const r = parseEvent(keyframeRequestEventSchema, payload);
      if (r.ok) this.h.onKeyframeRequest?.(r.event);
      else this.warn('ignoring a bad keyframe request', { channel, error: r.error });
    } else {
      const r = parseEvent(sessionEventSchema, payload);
      if (r.ok) this.h.onSession?.(r.event);
      else this.warn('ignoring a bad session event', { channel, error: r.error });
    }
  }

  async close(): Promise<void> {
    this.sub.disconnect();
  }
}
