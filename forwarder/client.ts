import { lookup } from 'node:dns/promises';
import { isIP, createConnection, type Socket } from 'node:net';
import { z } from 'zod';

/**
 * Typed client of media-tree-forwarder's control socket. One connection,
 * requests pipelined and matched to replies in order (the forwarder answers
 * every line with exactly one line, in order), a timeout per request, and a
 * reconnect with backoff when the forwarder goes away.
 */

export interface Destination {
  id: string;
  /** IPv4/IPv6 literal, or a name the client resolves before sending. */
  host: string;
  audioPort: number;
  videoPort: number;
  /** Demux mode only: the destination then receives only these SSRCs. */
  audioSsrc?: number | null;
  videoSsrc?: number | null;
}

const ID_RE = /^[A-Za-z0-9._:-]{1,128}$/;
const port = z.number().int().min(1).max(65535);
const ssrc = z.number().int().min(0).max(0xffff_ffff);
const count = z.number().int().nonnegative();

/** RFC 3550 receive quality of one SSRC arriving at this forwarder (see src/rtp-quality.h). */
const streamSchema = z.object({
  ssrc,
  /** Extended highest sequence number minus the first, plus one (A.3). */
  expected: count,
  /** Distinct packets received (duplicates not counted). */
  received: count,
  /** expected - received, never decreasing. */
  lost: count,
  outOfOrder: count,
  duplicates: count,
  /** Interarrival jitter (A.8) in seconds of the stream type's clock (Opus 48 kHz, video 90 kHz). */
  jitter: z.number().nonnegative(),
});
const pipelineSchema = z.object({
  state: z.union([z.literal(0), z.literal(1), z.literal(2), z.literal(3)]),
  port,
  packetsIn: count,
  bytesIn: count,
  packetsOut: count,
  bytesOut: count,
  destinations: count,
  ssrcs: count,
  streams: z.array(streamSchema),
});
const statsSchema = z.object({ mode: z.enum(['fanout', 'demux']), audio: pipelineSchema, video: pipelineSchema });
const listSchema = z.object({
  destinations: z.array(
    z.object({
      id: z.string().regex(ID_RE),
      host: z.string().refine((h) => isIP(h) !== 0),
      audioPort: port,
      videoPort: port,
      audioSsrc: ssrc.nullable(),
      videoSsrc: ssrc.nullable(),
    }),
  ),
});

export type PipelineStats = z.infer<typeof pipelineSchema>;
export type StreamQuality = z.infer<typeof streamSchema>;
export interface ForwarderStats {
  /** False when the forwarder could not be asked: both states are then 0 (NULL). */
  reachable: boolean;
  mode: 'fanout' | 'demux' | null;
  audio: PipelineStats;
  video: PipelineStats;
}
export type ListedDestination = z.infer<typeof listSchema>['destinations'][number];

/** The forwarder answered ERR: the command was refused and changed nothing. */
export class ForwarderError extends Error {
  override name = 'ForwarderError';
}
/** No answer: not connected, connection lost, timed out, or an unreadable reply. */
export class ForwarderUnavailableError extends Error {
  override name = 'ForwarderUnavailableError';
}

export interface ForwarderClientOptions {
  socketPath: string;
  /** Per request, from the call until its reply. Default 2,000 ms. */
  requestTimeoutMs?: number;
  /** Background reconnect after a drop: first delay, doubled up to maxBackoffMs. */
  minBackoffMs?: number;
  maxBackoffMs?: number;
  /**
   * Called when a connection opens after an earlier one was lost. A restarted
   * forwarder starts with no destinations: this is where the app adds them again.
   */
  onReconnect?: () => void;
}

interface Pending {
  line: string;
  resolve: (reply: string) => void;
  reject: (err: Error) => void;
  timer: NodeJS.Timeout;
  /** Timed out while on the wire: its late reply is read and dropped to keep the order. */
  abandoned: boolean;
}

const MAX_REPLY = 4 * 1024 * 1024;

const DOWN_PIPELINE: PipelineStats = {
  state: 0,
  port: 0,
  packetsIn: 0,
  bytesIn: 0,
  packetsOut: 0,
  bytesOut: 0,
  destinations: 0,
  ssrcs: 0,
  streams: [],
};

export class ForwarderClient {
  private socket: Socket | undefined;
  private connected = false;
  private connecting: Promise<void> | undefined;
  private closed = false;
  private everConnected = false;
  private backoffMs: number;
  private reconnectTimer: NodeJS.Timeout | undefined;
  private buffer = '';
  /** Written, waiting for their reply, in order. */
  private inflight: Pending[] = [];
  /** Waiting for a connection. */
  private queued: Pending[] = [];
  private readonly timeoutMs: number;
  private readonly minBackoffMs: number;
  private readonly maxBackoffMs: number;

  constructor(private readonly options: ForwarderClientOptions) {
    this.timeoutMs = options.requestTimeoutMs ?? 2_000;
    this.minBackoffMs = options.minBackoffMs ?? 100;
    this.maxBackoffMs = options.maxBackoffMs ?? 5_000;
    this.backoffMs = this.minBackoffMs;
  }

  /** Connects now; requests also connect on demand. */
  connect(): Promise<void> {
    if (this.closed) return Promise.reject(new ForwarderUnavailableError('client is closed'));
    if (this.connected) return Promise.resolve();
    if (this.connecting) return this.connecting;
    clearTimeout(this.reconnectTimer);
    this.reconnectTimer = undefined;
    this.connecting = new Promise<void>((resolve, reject) => {
      const sock = createConnection(this.options.socketPath);
      this.socket = sock;
      sock.setEncoding('utf8');
      sock.once('connect', () => {
        this.connected = true;
        this.connecting = undefined;
        this.backoffMs = this.minBackoffMs;
        for (const p of this.queued.splice(0)) this.send(p);
        resolve();
        if (this.everConnected) this.options.onReconnect?.();
        this.everConnected = true;
      });
      sock.on('data', (chunk: string) => this.onData(chunk));
      sock.on('error', () => {
        /* 'close' follows and says what to do */
      });
      sock.once('close', () => {
        const wasConnected = this.connected;
        this.connected = false;
        this.connecting = undefined;
        if (this.socket === sock) this.socket = undefined;
        this.buffer = '';
        const why = wasConnected ? 'connection to the forwarder lost' : `cannot connect to ${this.options.socketPath}`;
        this.failAll(why);
        if (!wasConnected) reject(new ForwarderUnavailableError(why));
        this.scheduleReconnect();
      });
    });
    return this.connecting;
  }

  async ping(): Promise<void> {
    expectOk(await this.request('PING'));
  }

  /**
   * Requests are written in call order. A host given as a name is looked up
   * first, so that one ADD goes out once the lookup ends; literals go out at once.
   */
  add(d: Destination): Promise<void> {
    try {
      if (!ID_RE.test(d.id)) throw new TypeError(`bad destination id ${JSON.stringify(d.id)}`);
      port.parse(d.audioPort);
      port.parse(d.videoPort);
      const hasSsrc = d.audioSsrc != null || d.videoSsrc != null;
      if (hasSsrc && (d.audioSsrc == null || d.videoSsrc == null)) throw new TypeError('give both SSRCs or neither');
      if (hasSsrc) {
        ssrc.parse(d.audioSsrc);
        ssrc.parse(d.videoSsrc);
      }
      const line = (host: string) =>
        ['ADD', d.id, host, d.audioPort, d.videoPort, ...(hasSsrc ? [d.audioSsrc, d.videoSsrc] : [])].join(' ');
      const sent = isIP(d.host) ? this.request(line(d.host)) : resolveHost(d.host).then((h) => this.request(line(h)));
      return sent.then(expectOk);
    } catch (err) {
      return Promise.reject(err);
    }
  }

  async remove(id: string): Promise<void> {
    if (!ID_RE.test(id)) throw new TypeError(`bad destination id ${JSON.stringify(id)}`);
    expectOk(await this.request(`REMOVE ${id}`));
  }

  async list(): Promise<ListedDestination[]> {
    return parseJson(await this.request('LIST'), listSchema).destinations;
  }

  /** Never throws for an absent forwarder: it reports both pipelines in state 0 instead. */
  async stats(): Promise<ForwarderStats> {
    try {
      return { reachable: true, ...parseJson(await this.request('STATS'), statsSchema) };
    } catch (err) {
      if (!(err instanceof ForwarderUnavailableError)) throw err;
      return { reachable: false, mode: null, audio: { ...DOWN_PIPELINE }, video: { ...DOWN_PIPELINE } };
    }
  }

  /** Fails what is pending and stops reconnecting. */
  close(): void {
    this.closed = true;
    clearTimeout(this.reconnectTimer);
    this.failAll('client closed');
    this.socket?.destroy();
  }

  /** Sends one raw line (validated: one line of printable text) and returns the reply line. */
  request(line: string): Promise<string> {
    if (!/^[\x20-\x7e]{1,1024}$/.test(line))
      return Promise.reject(new TypeError('a command is one line of printable ASCII, at most 1,024 bytes'));
    if (this.closed) return Promise.reject(new ForwarderUnavailableError('client is closed'));
    return new Promise<string>((resolve, reject) => {
      const p: Pending = {
        line,
        resolve,
        reject,
        abandoned: false,
        timer: setTimeout(() => {
          const q = this.queued.indexOf(p);
          if (q >= 0) this.queued.splice(q, 1);
          else p.abandoned = true;
          reject(new ForwarderUnavailableError(`no reply to ${line.split(' ')[0]} within ${this.timeoutMs} ms`));
        }, this.timeoutMs),
      };
      if (this.connected) {
        this.send(p);
      } else {
        this.queued.push(p);
        this.connect().catch(() => {
          /* queued requests were failed with the reason */
        });
      }
    });
  }

  private send(p: Pending): void {
    this.inflight.push(p);
    this.socket!.write(`${p.line}\n`);
  }

  private onData(chunk: string): void {
    this.buffer += chunk;
    for (let nl = this.buffer.indexOf('\n'); nl >= 0; nl = this.buffer.indexOf('\n')) {
      const line = this.buffer.slice(0, nl);
      this.buffer = this.buffer.slice(nl + 1);
      const p = this.inflight.shift();
      if (!p) {
        // A reply nobody asked for: the stream can no longer be trusted.
        this.socket?.destroy();
        return;
      }
      clearTimeout(p.timer);
      if (!p.abandoned) p.resolve(line);
    }
    if (this.buffer.length > MAX_REPLY) this.socket?.destroy();
  }

  private failAll(why: string): void {
    for (const p of [...this.inflight.splice(0), ...this.queued.splice(0)]) {
      clearTimeout(p.timer);
      if (!p.abandoned) p.reject(new ForwarderUnavailableError(why));
    }
  }

  private scheduleReconnect(): void {
    if (this.closed || this.reconnectTimer) return;
    const delay = this.backoffMs;
    this.backoffMs = Math.min(this.backoffMs * 2, this.maxBackoffMs);
    this.reconnectTimer = setTimeout(() => {
      this.reconnectTimer = undefined;
      this.connect().catch(() => {
        /* the next close schedules the next try */
      });
    }, delay);
    this.reconnectTimer.unref();
  }
}

function expectOk(reply: string): void {
  if (reply === 'OK' || reply.startsWith('OK ')) return;
  if (reply.startsWith('ERR ')) throw new ForwarderError(reply.slice(4));
  throw new ForwarderUnavailableError(`unexpected reply ${JSON.stringify(reply.slice(0, 200))}`);
}

function parseJson<T>(reply: string, schema: z.ZodType<T>): T {
  if (reply.startsWith('ERR ')) throw new ForwarderError(reply.slice(4));
  let value: unknown;
  try {
    value = JSON.parse(reply);
  } catch {
    throw new ForwarderUnavailableError(`unreadable reply ${JSON.stringify(reply.slice(0, 200))}`);
  }
  const r = schema.safeParse(value);
  if (!r.success) throw new ForwarderUnavailableError(`reply does not match the protocol: ${r.error.message}`);
  return r.data;
}

/** The forwarder takes address literals only, so names are resolved here. */
async function resolveHost(host: string): Promise<string> {
  if (isIP(host)) return host;
  if (
    !/^(?=.{1,253}$)[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$/.test(
      host,
    )
  ) {
    throw new TypeError(`bad host ${JSON.stringify(host)}`);
  }
  return (await lookup(host)).address;
}
