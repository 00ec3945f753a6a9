import { createSocket, type Socket } from 'node:dgram';
import type { StreamType } from '../exporters/index.ts';

/**
 * Where an egress node terminates a session's RTP for its viewers. The seed
 * uses Janus streaming mountpoints; a Janus backend comes with its own issue.
 * The interface is what both need: create on ports the app allocated from its
 * pool, destroy, viewer count, and what reached the mountpoint.
 */
export interface MountpointSpec {
  sessionId: string;
  audioSsrc: number;
  videoSsrc: number;
  /** Pool ports the mountpoint receives on; the forwarder sends the session's SSRCs here. */
  audioPort: number;
  videoPort: number;
}

export interface StreamCount {
  packets: number;
  bytes: number;
}

export interface MountpointBackend {
  readonly name: string;
  /** Opens the mountpoint; rejects (and holds nothing) when it cannot. */
  create(spec: MountpointSpec): Promise<void>;
  destroy(sessionId: string): Promise<void>;
  /** Viewers the backend serves for this session (Janus: its `info` request). */
  viewerCount(sessionId: string): number;
  viewerJoined(sessionId: string, viewerId: string): void;
  viewerLeft(sessionId: string, viewerId: string): void;
  /** RTP that reached the mountpoint, per stream, with only the session's SSRC counted. */
  received(sessionId: string): Record<StreamType, StreamCount> | null;
  close(): Promise<void>;
}

interface Builtin {
  spec: MountpointSpec;
  sockets: Socket[];
  counts: Record<StreamType, StreamCount>;
  viewers: Set<string>;
}

/**
 * The built-in backend: the mountpoint is a pair of loopback UDP sockets on
 * the allocated ports that count the RTP arriving with the session's SSRCs
 * (the demux forwarder sends one copy here) and hand each packet to the app,
 * which forwards it to the session's WHEP viewers; the backend keeps their
 * count.
 */
export class BuiltinMountpoints implements MountpointBackend {
  readonly name = 'builtin';
  private readonly mps = new Map<string, Builtin>();

  constructor(
    private readonly bindHost = '127.0.0.1',
    /** Each packet of the session's streams, as it arrives: the WHEP viewers' feed. */
    private readonly onRtp: (sessionId: string, stream: StreamType, rtp: Buffer) => void = () => {},
  ) {}

  async create(spec: MountpointSpec): Promise<void> {
    if (this.mps.has(spec.sessionId)) throw new Error(`mountpoint ${spec.sessionId} exists`);
    const counts = { audio: { packets: 0, bytes: 0 }, video: { packets: 0, bytes: 0 } };
    const sockets: Socket[] = [];
    try {
      for (const t of ['audio', 'video'] as const) {
        const s = createSocket('udp4');
        sockets.push(s);
        const want = t === 'audio' ? spec.audioSsrc : spec.videoSsrc;
        s.on('message', (m) => {
          // Count RTP v2 of this stream's SSRC only.
          if (m.length >= 12 && m[0]! >> 6 === 2 && m.readUInt32BE(8) === want) {
            counts[t].packets++;
            counts[t].bytes += m.length;
            this.onRtp(spec.sessionId, t, m);
          }
        });
        await new Promise<void>((resolve, reject) => {
          s.once('error', reject);
          s.bind(t === 'audio' ? spec.audioPort : spec.videoPort, this.bindHost, () => {
            s.off('error', reject);
            s.on('error', () => {
              /* a UDP receive error changes nothing we count */
            });
            resolve();
          });
        });
      }
    } catch (err) {
      for (const s of sockets) s.close();
      throw err;
    }
    this.mps.set(spec.sessionId, { spec, sockets, counts, viewers: new Set() });
  }

  async destroy(sessionId: string): Promise<void> {
    const mp = this.mps.get(sessionId);
    if (!mp) return;
    this.mps.delete(sessionId);
    for (const s of mp.sockets) s.close();
  }

  viewerCount(sessionId: string): number {
    return this.mps.get(sessionId)?.viewers.size ?? 0;
  }
  viewerJoined(sessionId: string, viewerId: string): void {
    this.mps.get(sessionId)?.viewers.add(viewerId);
  }
  viewerLeft(sessionId: string, viewerId: string): void {
    this.mps.get(sessionId)?.viewers.delete(viewerId);
  }
  received(sessionId: string): Record<StreamType, StreamCount> | null {
    const mp = this.mps.get(sessionId);
    return mp ? { audio: { ...mp.counts.audio }, video: { ...mp.counts.video } } : null;
  }
  async close(): Promise<void> {
    for (const id of [...this.mps.keys()]) await this.destroy(id);
  }
}
