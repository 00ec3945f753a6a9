import { randomBytes } from 'node:crypto';
import { z } from 'zod';

/**
 * The part of the Janus API (HTTP transport, 1.1.2) the egress bench uses:
 * one session, a handle per viewer, the streaming plugin's `create`, `watch`
 * and `start`, events by long poll. Every message Janus sends is validated
 * here; an error reply (core or plugin) becomes a JanusError.
 */

const MAX_SDP = 64_000;

const jsepSchema = z.object({ type: z.enum(['offer', 'answer']), sdp: z.string().min(1).max(MAX_SDP) });

/** One message from Janus: a reply to a request or an event of the long poll. */
export const janusMessageSchema = z.object({
  janus: z.string().min(1),
  transaction: z.string().optional(),
  session_id: z.number().int().optional(),
  sender: z.number().int().optional(),
  data: z.object({ id: z.number().int().positive() }).optional(),
  plugindata: z.object({ plugin: z.string(), data: z.record(z.string(), z.unknown()) }).optional(),
  jsep: jsepSchema.optional(),
  error: z.object({ code: z.number().int(), reason: z.string() }).optional(),
});
export type JanusMessage = z.infer<typeof janusMessageSchema>;

/** A long poll answers one message, or an array of them with `maxev`. */
const pollSchema = z.union([janusMessageSchema, z.array(janusMessageSchema)]);

/** The streaming plugin's `created`: the ports Janus took for each media (`port: 0` asks it to pick). */
export const createdSchema = z.object({
  streaming: z.literal('created'),
  stream: z.object({
    id: z.number().int(),
    ports: z.array(
      z.object({ type: z.enum(['audio', 'video']), mid: z.string(), port: z.number().int().min(1).max(65535) }),
    ),
  }),
});

/** The streaming plugin's `info`. */
export const infoSchema = z.object({
  streaming: z.literal('info'),
  info: z.object({
    viewers: z.number().int().min(0),
    media: z.array(z.object({ mid: z.string(), age_ms: z.number().optional() })),
  }),
});

export class JanusError extends Error {}

/** The error a reply carries (core `error`, or the plugin's `error_code`), or null. */
export function janusErrorOf(m: JanusMessage): string | null {
  if (m.janus === 'error') return `Janus error ${m.error?.code ?? '?'}: ${m.error?.reason ?? 'no reason'}`;
  const d = m.plugindata?.data;
  if (d && (d.error_code !== undefined || d.error !== undefined))
    return `${m.plugindata!.plugin} error ${String(d.error_code ?? '?')}: ${String(d.error ?? 'no reason')}`;
  return null;
}

/** Parses one message body; throws a JanusError naming what was wrong. */
export function parseJanus(body: unknown, schema: z.ZodType = janusMessageSchema): JanusMessage {
  const r = schema.safeParse(body);
  if (!r.success) throw new JanusError(`unexpected Janus message: ${r.error.issues[0]?.message ?? r.error.message}`);
  return r.data as JanusMessage;
}

/** The plugin data of a reply, checked against `schema`. */
export function pluginData<T>(m: JanusMessage, schema: z.ZodType<T>): T {
  const err = janusErrorOf(m);
  if (err) throw new JanusError(err);
  const r = schema.safeParse(m.plugindata?.data);
  if (!r.success)
    throw new JanusError(`unexpected plugin data: ${r.error.issues[0]?.message}: ${JSON.stringify(m.plugindata)}`);
  return r.data;
}

const transaction = () => randomBytes(8).toString('hex');
const TIMEOUT_MS = 10_000;

/** One Janus session over HTTP, with its long poll running until `close()`. */
export class JanusSession {
  /** Waiting for the event answering a transaction (an asynchronous plugin request). */
  private readonly waiting = new Map<string, { resolve: (m: JanusMessage) => void; reject: (e: Error) => void }>();
  private readonly hangups = new Map<number, () => void>();
  private readonly stopPoll = new AbortController();
  private polling: Promise<void> = Promise.resolve();

  private constructor(
    private readonly url: string,
    readonly id: number,
  ) {}

  /** `create` on `url` (the API root, e.g. http://host:8088/janus); the long poll starts. */
  static async create(url: string): Promise<JanusSession> {
    const m = await post(url, { janus: 'create' });
    if (m.janus !== 'success' || !m.data) throw new JanusError(`create: ${JSON.stringify(m)}`);
    const s = new JanusSession(url, m.data.id);
    s.polling = s.poll();
    return s;
  }

  /** A handle on the streaming plugin. */
  async attach(): Promise<number> {
    const m = await post(`${this.url}/${this.id}`, { janus: 'attach', plugin: 'janus.plugin.streaming' });
    if (m.janus !== 'success' || !m.data) throw new JanusError(`attach: ${janusErrorOf(m) ?? JSON.stringify(m)}`);
    return m.data.id;
  }

  /** A synchronous plugin request (`create`, `info`, `destroy`): its reply. */
  request(handle: number, body: Record<string, unknown>): Promise<JanusMessage> {
    return post(`${this.url}/${this.id}/${handle}`, { janus: 'message', body });
  }

  /** An asynchronous plugin request (`watch`, `start`): acked, then answered by an event with its transaction. */
  async ask(handle: number, body: Record<string, unknown>, jsep?: Record<string, unknown>): Promise<JanusMessage> {
    const tx = transaction();
    const event = new Promise<JanusMessage>((resolve, reject) => this.waiting.set(tx, { resolve, reject }));
    event.catch(() => {});
    let timer: NodeJS.Timeout | undefined;
    try {
      const ack = await post(`${this.url}/${this.id}/${handle}`, { janus: 'message', body, jsep }, tx);
      const err = janusErrorOf(ack);
      if (err) throw new JanusError(err);
      if (ack.janus !== 'ack') return ack; // answered at once
      const timeout = new Promise<never>((_, reject) => {
        timer = setTimeout(
          () => reject(new JanusError(`no event for ${String(body.request)} in ${TIMEOUT_MS} ms`)),
          TIMEOUT_MS,
        );
      });
      const m = await Promise.race([event, timeout]);
      const perr = janusErrorOf(m);
      if (perr) throw new JanusError(perr);
      return m;
    } finally {
      clearTimeout(timer);
      this.waiting.delete(tx);
    }
  }

  /** Called when Janus hangs up `handle`'s PeerConnection. */
  onHangup(handle: number, run: () => void): void {
    this.hangups.set(handle, run);
  }

  async detach(handle: number): Promise<void> {
    this.hangups.delete(handle);
    await post(`${this.url}/${this.id}/${handle}`, { janus: 'detach' }).catch(() => {});
  }

  /** Ends the long poll and destroys the session. */
  async close(): Promise<void> {
    this.stopPoll.abort();
    await this.polling;
    await post(`${this.url}/${this.id}`, { janus: 'destroy' }).catch(() => {});
    for (const w of this.waiting.values()) w.reject(new JanusError('session closed'));
  }

  private async poll(): Promise<void> {
    while (!this.stopPoll.signal.aborted) {
      try {
        const res = await fetch(`${this.url}/${this.id}?maxev=100`, { signal: this.stopPoll.signal });
        const r = pollSchema.safeParse(await res.json());
        if (!r.success) continue;
        for (const m of Array.isArray(r.data) ? r.data : [r.data]) this.dispatch(m);
      } catch {
        if (this.stopPoll.signal.aborted) return;
        await new Promise((r) => setTimeout(r, 200));
      }
    }
  }

  private dispatch(m: JanusMessage): void {
    if (m.transaction && this.waiting.has(m.transaction) && m.janus === 'event') {
      this.waiting.get(m.transaction)!.resolve(m);
      return;
    }
    if (m.janus === 'hangup' && m.sender !== undefined) this.hangups.get(m.sender)?.();
  }
}

async function post(url: string, body: Record<string, unknown>, tx = transaction()): Promise<JanusMessage> {
  const res = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ ...body, transaction: tx }),
    signal: AbortSignal.timeout(TIMEOUT_MS),
  });
  const text = await res.text();
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    throw new JanusError(`Janus answered ${res.status} with no JSON: ${text.slice(0, 200)}`);
  }
  return parseJanus(json);
}
