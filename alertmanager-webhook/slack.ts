/**
 * Slack incoming-webhook notifications of completed and failed actions. Sent
 * from a queue in the background, retried with backoff, and never awaited by
 * an action: a slow or broken Slack cannot hold a scale-out.
 */
export interface SlackOptions {
  url: string;
  retries?: number;
  baseDelayMs?: number;
  timeoutMs?: number;
  /** Oldest messages are dropped beyond this, so an unreachable Slack cannot grow memory. */
  maxQueue?: number;
  log?: (msg: string, detail?: Record<string, unknown>) => void;
}

export class SlackNotifier {
  private readonly queue: string[] = [];
  private draining: Promise<void> | null = null;

  constructor(private readonly o: SlackOptions) {
    const u = new URL(o.url);
    if (u.protocol !== 'https:' && u.protocol !== 'http:')
      throw new Error(`Slack webhook URL must be http(s), got ${u.protocol}`);
  }

  notify(text: string): void {
    this.queue.push(text);
    while (this.queue.length > (this.o.maxQueue ?? 100)) this.queue.shift();
    this.draining ??= this.drain().finally(() => {
      this.draining = null;
    });
  }

  /** Resolves once every queued message was sent or given up on. */
  async flush(): Promise<void> {
    while (this.draining) await this.draining;
  }

  private async drain(): Promise<void> {
    for (let text = this.queue.shift(); text !== undefined; text = this.queue.shift()) await this.send(text);
  }

  private async send(text: string): Promise<void> {
    const retries = this.o.retries ?? 3;
    for (let attempt = 0; ; attempt++) {
      try {
        const res = await fetch(this.o.url, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ text }),
          signal: AbortSignal.timeout(this.o.timeoutMs ?? 5_000),
        });
        await res.arrayBuffer();
        // 4xx other than 429 will not get better by retrying.
        if (res.ok || (res.status < 500 && res.status !== 429)) {
          if (!res.ok) this.o.log?.('Slack refused a notification', { status: res.status });
          return;
        }
        throw new Error(`Slack answered ${res.status}`);
      } catch (err) {
        if (attempt >= retries) {
          this.o.log?.('giving up on a Slack notification', { err: (err as Error).message });
          return;
        }
        await new Promise((r) => setTimeout(r, (this.o.baseDelayMs ?? 500) * 2 ** attempt));
      }
    }
  }
}

/** The seed's wording: "Scaled out: tree-1 → +16 egress nodes". */
export function actionMessage(e: {
  tree: string;
  kind: 'scale-out' | 'scale-in';
  result: string;
  subtree?: string;
  why: string;
  nodes?: number;
}): string | null {
  const nodes = e.nodes ?? 0;
  if (e.result === 'done') {
    return e.kind === 'scale-out'
      ? `✅ Scaled out: ${e.tree} → +${nodes} egress nodes (${e.subtree}; ${e.why})`
      : `✅ Scaled in: ${e.tree} → -${nodes} egress nodes (${e.subtree}; ${e.why})`;
  }
  if (e.result === 'failed' || e.result === 'rolled-back')
    return `❌ ${e.kind === 'scale-out' ? 'Scale-out' : 'Scale-in'} of ${e.tree} failed: ${e.why}`;
  return null;
}
