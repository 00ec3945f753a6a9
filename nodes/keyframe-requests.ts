import type { Logger } from 'pino';
import type { KeyframeRequestMetrics } from '../exporters/index.ts';
import type { KeyframeReason, KeyframeRequestEvent, SessionInfo, Topology } from '../topology/index.ts';
import type { RtpSource } from './rtp-source.ts';

/**
 * Keyframes on demand up the tree: a viewer's PLI or FIR at an egress node
 * becomes a `keyframe-request` event for the session's injection node, which
 * asks the session's source (its encoder forces a key unit, a WHIP publisher
 * gets a PLI; plain RTP ingest cannot be asked and keeps its periodic
 * keyframes). Both nodes pass on at most one request per session per interval
 * (`--keyframe-request-interval`), so a crowd of joining viewers, or many
 * egress nodes, cost the encoder one keyframe per interval.
 */

/** The default of `--keyframe-request-interval` on egress and injection nodes. */
export const KEYFRAME_REQUEST_INTERVAL_MS = 500;

export interface KeyframeThrottleOptions<T> {
  /** At most one request per key per this long. */
  intervalMs: number;
  /** Passes a request on: at once, or at the end of the interval it was held in (the latest one held). */
  send: (key: string, what: T) => void;
  /** A request that came within the interval after the previous one passed. */
  onRateLimited: () => void;
  now?: () => number;
}

interface KeyState<T> {
  lastSentAt: number;
  held: T | null;
  timer: NodeJS.Timeout | undefined;
}

/**
 * Per-key rate limit that drops nothing a viewer needs: the first request
 * passes at once; those within the interval after it are folded into one
 * sent when the interval ends, so a viewer that joined just after a keyframe
 * still gets one, at most an interval later.
 */
export class KeyframeThrottle<T> {
  private readonly keys = new Map<string, KeyState<T>>();
  private readonly now: () => number;

  constructor(private readonly o: KeyframeThrottleOptions<T>) {
    this.now = o.now ?? (() => performance.now());
  }

  /** True when the request went on at once, false when it was held (rate-limited). */
  request(key: string, what: T): boolean {
    const t = this.now();
    const s = this.keys.get(key);
    if (!s || (!s.timer && t - s.lastSentAt >= this.o.intervalMs)) {
      this.keys.set(key, { lastSentAt: t, held: null, timer: undefined });
      this.o.send(key, what);
      return true;
    }
    this.o.onRateLimited();
    s.held = what;
    if (!s.timer) {
      s.timer = setTimeout(() => this.release(key), Math.max(0, s.lastSentAt + this.o.intervalMs - t));
      s.timer.unref();
    }
    return false;
  }

  /** A session that ended: nothing held for it is sent. */
  forget(key: string): void {
    const s = this.keys.get(key);
    if (s?.timer) clearTimeout(s.timer);
    this.keys.delete(key);
  }

  /** Keys with a request passed within the interval or held (for tests and /sessions). */
  get size(): number {
    return this.keys.size;
  }

  close(): void {
    for (const key of [...this.keys.keys()]) this.forget(key);
  }

  private release(key: string): void {
    const s = this.keys.get(key);
    if (!s) return;
    s.timer = undefined;
    if (s.held === null) return;
    const what = s.held;
    s.held = null;
    s.lastSentAt = this.now();
    this.o.send(key, what);
  }
}

/** `--keyframe-request-interval`: a duration in ms, or null for `off`. */
export type KeyframeRequestInterval = number | null;

export interface EgressKeyframeRequestsOptions {
  nodeId: string;
  topo: Topology;
  metrics: KeyframeRequestMetrics;
  /** null: viewers' requests are counted and go no further. */
  intervalMs: KeyframeRequestInterval;
  log: Logger;
}

/** The egress side: viewers' PLIs and FIRs, rate-limited per session, published for the session's injection node. */
export class EgressKeyframeRequests {
  private readonly throttle: KeyframeThrottle<{ reason: KeyframeReason; injection: string }> | null;

  constructor(private readonly o: EgressKeyframeRequestsOptions) {
    this.throttle =
      o.intervalMs === null
        ? null
        : new KeyframeThrottle({
            intervalMs: o.intervalMs,
            send: (sessionId, { reason, injection }) => this.publish(sessionId, injection, reason),
            onRateLimited: () => o.metrics.keyframeRequestsRateLimited.inc(),
          });
  }

  /** A viewer of `s` sent a PLI or FIR about its video. */
  ask(s: SessionInfo, reason: KeyframeReason): void {
    this.o.metrics.keyframeRequestsReceived.inc({ reason });
    this.throttle?.request(s.id, { reason, injection: s.injection });
  }

  forget(sessionId: string): void {
    this.throttle?.forget(sessionId);
  }

  close(): void {
    this.throttle?.close();
  }

  private publish(sessionId: string, injection: string, reason: KeyframeReason): void {
    this.o.metrics.keyframeRequestsForwarded.inc();
    this.o.topo
      .requestKeyframe(injection, { sessionId, nodeId: this.o.nodeId, reason, at: Date.now() })
      .catch((err) => this.o.log.warn({ session: sessionId, err: err.message }, 'cannot publish a keyframe request'));
  }
}

export interface InjectionKeyframeRequestsOptions {
  metrics: KeyframeRequestMetrics;
  /** null: events are counted and go no further. */
  intervalMs: KeyframeRequestInterval;
  /** Also ask every session's source this often, whatever viewers ask (`--keyframe-request-every`); null: never. */
  everyMs: number | null;
  /** The source of a session this node plays. */
  sourceOf: (sessionId: string) => RtpSource | undefined;
  /** The sessions this node plays. */
  sessionIds: () => Iterable<string>;
  log: Logger;
}

/** The injection side: `keyframe-request` events, rate-limited per session, to the session's source. */
export class InjectionKeyframeRequests {
  private readonly throttle: KeyframeThrottle<KeyframeReason> | null;
  /** Sessions whose source was asked and cannot make keyframes on request (said once each). */
  private readonly unanswerable = new Set<string>();
  private readonly periodic: NodeJS.Timeout | undefined;

  constructor(private readonly o: InjectionKeyframeRequestsOptions) {
    this.throttle =
      o.intervalMs === null
        ? null
        : new KeyframeThrottle({
            intervalMs: o.intervalMs,
            send: (sessionId) => this.toSource(sessionId) && o.metrics.keyframeRequestsForwarded.inc(),
            onRateLimited: () => o.metrics.keyframeRequestsRateLimited.inc(),
          });
    // What an SFU that does not forward PLIs does instead (and the first-frame bench's baseline); not counted as requests.
    if (o.everyMs !== null) {
      this.periodic = setInterval(() => {
        for (const id of o.sessionIds()) this.toSource(id);
      }, o.everyMs);
      this.periodic.unref();
    }
  }

  onEvent(e: KeyframeRequestEvent): void {
    if (!this.o.sourceOf(e.sessionId)) {
      this.o.log.debug({ session: e.sessionId, from: e.nodeId }, 'keyframe request for a session not played here');
      return;
    }
    this.o.metrics.keyframeRequestsReceived.inc({ reason: e.reason });
    this.throttle?.request(e.sessionId, e.reason);
  }

  forget(sessionId: string): void {
    this.throttle?.forget(sessionId);
    this.unanswerable.delete(sessionId);
  }

  close(): void {
    if (this.periodic) clearInterval(this.periodic);
    this.throttle?.close();
  }

  /** True when the session's source was asked. */
  private toSource(sessionId: string): boolean {
    const source = this.o.sourceOf(sessionId);
    if (!source) return false;
    if (!source.requestKeyframe) {
      if (!this.unanswerable.has(sessionId))
        this.o.log.info({ session: sessionId }, 'keyframes asked for; this source sends periodic ones only');
      this.unanswerable.add(sessionId);
      return false;
    }
    source.requestKeyframe();
    return true;
  }
}
