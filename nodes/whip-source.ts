import type { StreamType } from '../exporters/index.ts';
import { IngestPath } from './ingest-path.ts';
import type { PublisherHealth } from './publisher-health.ts';
import type { RtpSource, RtpSourceOptions } from './rtp-source.ts';
import { WhipPublisher } from './whip-publisher.ts';
import type { ParsedOffer } from './whep-sdp.ts';

/**
 * A WHIP session's source: at most one publisher at a time, whose RTP becomes
 * the session's (ingest-path.ts). A publisher that goes away without a DELETE
 * (its connection failed or closed, it never connected) leaves the session
 * waiting `graceMs` for a new one, which continues the numbering; after that
 * the session is ended (`onAbandoned`). A session resumed after the injection
 * restarted waits the same way for its publisher to come back.
 */

export interface WhipSourceOptions extends RtpSourceOptions {
  health: PublisherHealth;
  graceMs: number;
  /** No publisher for graceMs: the session should end. */
  onAbandoned: () => void;
  /** A publisher came or went (logs). */
  onPublisher?: (event: 'connected' | 'gone', id: string) => void;
}

export class WhipSource implements RtpSource {
  private readonly path: IngestPath;
  private publisher: WhipPublisher | null = null;
  private graceTimer: NodeJS.Timeout | undefined;
  private stopped = false;

  constructor(private readonly o: WhipSourceOptions) {
    this.path = new IngestPath(o, o.health);
  }

  start(): void {
    this.o.health.state('none');
    this.waitForPublisher();
  }

  generated(): Record<StreamType, number> {
    return this.path.generated();
  }

  /** The current publisher's resource id, if any (connecting or connected). */
  get publisherId(): string | null {
    return this.publisher?.id ?? null;
  }

  /**
   * Answers a publisher's offer; the caller checked that none is attached.
   * Resolves with the answer, the publisher attached (connecting).
   */
  async attach(id: string, offerSdp: string, offer: ParsedOffer, bind: string, advertise: string): Promise<string> {
    if (this.publisher || this.stopped) throw new Error('the session has a publisher');
    clearTimeout(this.graceTimer);
    this.path.newPublisher();
    this.o.health.state('connecting');
    let mine: WhipPublisher | null = null;
    const { publisher, answer } = await WhipPublisher.answer({
      id,
      offerSdp,
      offer,
      bind,
      advertise,
      onRtp: (t, rtp) => {
        if (this.publisher === mine) this.path.push(t, rtp);
      },
      onState: (s) => {
        if (mine && this.publisher !== mine) return; // replaced or detached
        if (s === 'connected') {
          this.o.health.state('connected');
          this.o.onPublisher?.('connected', id);
        } else this.lost(id);
      },
    }).catch((err) => {
      this.o.health.state('none');
      this.waitForPublisher();
      throw err;
    });
    mine = publisher;
    if (this.stopped) {
      publisher.close();
      throw new Error('the session ended');
    }
    this.publisher = publisher;
    return answer;
  }

  /** The publisher's DELETE: closes it without waiting for another (the caller ends the session). */
  detach(id: string): boolean {
    const p = this.publisher;
    if (!p || p.id !== id) return false;
    this.publisher = null;
    p.close();
    this.o.health.state('none');
    return true;
  }

  /** RTCP PLI to the publisher; false when there is none connected. */
  requestKeyframe(): boolean {
    return this.publisher?.requestKeyframe() ?? false;
  }

  private lost(id: string): void {
    if (this.publisher?.id === id) this.publisher = null;
    if (this.stopped) return;
    this.o.health.state('none');
    this.o.onPublisher?.('gone', id);
    this.waitForPublisher();
  }

  private waitForPublisher(): void {
    clearTimeout(this.graceTimer);
    this.graceTimer = setTimeout(() => {
      if (!this.publisher && !this.stopped) this.o.onAbandoned();
    }, this.o.graceMs);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.graceTimer);
    const p = this.publisher;
    this.publisher = null;
    p?.close();
    this.path.close();
  }
}
