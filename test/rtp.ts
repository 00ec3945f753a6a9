import { createSocket, type Socket as UdpSocket } from 'node:dgram';
import { createConnection, type Socket } from 'node:net';

/** A valid RTP packet: 12-byte header (version 2), then `size - 12` bytes of payload. */
export function rtpPacket(ssrc: number, seq: number, size: number, payloadType = 96): Buffer {
  const b = Buffer.alloc(size, 0xab);
  b[0] = 0x80;
  b[1] = payloadType;
  b.writeUInt16BE(seq & 0xffff, 2);
  b.writeUInt32BE((seq * 3000) >>> 0, 4);
  b.writeUInt32BE(ssrc >>> 0, 8);
  return b;
}

export interface Received {
  ssrc: number;
  seq: number;
  size: number;
  ts: number;
  pt: number;
  /** performance.now() at arrival. */
  atMs: number;
}

/** A loopback UDP port that records the RTP packets it receives. */
export class Receiver {
  readonly packets: Received[] = [];
  private constructor(
    private readonly sock: UdpSocket,
    readonly port: number,
  ) {
    sock.on('message', (m) =>
      this.packets.push({
        ssrc: m.readUInt32BE(8),
        seq: m.readUInt16BE(2),
        size: m.length,
        ts: m.readUInt32BE(4),
        pt: m[1]! & 0x7f,
        atMs: performance.now(),
      }),
    );
  }
  static async open(): Promise<Receiver> {
    const sock = createSocket('udp4');
    await new Promise<void>((resolve) => sock.bind(0, '127.0.0.1', resolve));
    return new Receiver(sock, sock.address().port);
  }
  count(ssrc?: number): number {
    return ssrc === undefined ? this.packets.length : this.packets.filter((p) => p.ssrc === ssrc).length;
  }
  close(): void {
    this.sock.close();
  }
}

/** Sends RTP to the forwarder's port from one socket. */
export class Sender {
  private readonly sock = createSocket('udp4');
  constructor(private readonly port: number) {}
  send(packet: Buffer): Promise<void> {
    return new Promise((resolve, reject) =>
      this.sock.send(packet, this.port, '127.0.0.1', (err) => (err ? reject(err) : resolve())),
    );
  }
  close(): void {
    this.sock.close();
  }
}

/** A raw control connection: write lines (or bytes), read reply lines in order. */
export class LineSession {
  private buffer = '';
  private readonly lines: string[] = [];
  private waiters: Array<(line: string) => void> = [];
  private constructor(readonly socket: Socket) {
    socket.setEncoding('utf8');
    socket.on('data', (c: string) => {
      this.buffer += c;
      for (let nl = this.buffer.indexOf('\n'); nl >= 0; nl = this.buffer.indexOf('\n')) {
        const line = this.buffer.slice(0, nl);
        this.buffer = this.buffer.slice(nl + 1);
        const w = this.waiters.shift();
        if (w) w(line);
        else this.lines.push(line);
      }
    });
  }
  static open(path: string): Promise<LineSession> {
    return new Promise((resolve, reject) => {
      const s = createConnection(path);
      s.once('connect', () => resolve(new LineSession(s)));
      s.once('error', reject);
    });
  }
  /** The next reply line, or a rejection after `timeoutMs`. */
  next(timeoutMs = 5_000): Promise<string> {
    const l = this.lines.shift();
    if (l !== undefined) return Promise.resolve(l);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('no reply line in time')), timeoutMs);
      this.waiters.push((line) => {
        clearTimeout(timer);
        resolve(line);
      });
    });
  }
  write(data: string | Buffer): void {
    this.socket.write(data);
  }
  async cmd(line: string | Buffer): Promise<string> {
    this.write(Buffer.concat([Buffer.from(line), Buffer.from('\n')]));
    return this.next();
  }
  close(): void {
    this.socket.destroy();
  }
}
