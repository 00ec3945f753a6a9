import { spawnSync } from 'node:child_process';
import { createSocket, type RemoteInfo, type Socket } from 'node:dgram';
import { existsSync } from 'node:fs';
import type { StreamType } from '../exporters/index.ts';
import { ENCODER_BIN } from '../forwarder/process.ts';
import { type Child, startChild } from '../process/child.ts';
import { fanOut, PAYLOAD_TYPE, type RtpSource, type RtpSourceOptions } from './rtp-source.ts';

/**
 * `--source encoded` (the default): media a browser decodes. A child running
 * a GStreamer pipeline (forwarder/build/media-tree-encoder, parent-death
 * SIGKILL through process/child.ts) encodes a moving test pattern as VP8 and a
 * tone as Opus, payloads them with the session's SSRCs and payload types and
 * sends the RTP to a loopback socket of ours; we fan each packet out to the
 * current targets, so children come and go without touching the encoder, and
 * every datagram is counted as the synthetic source counts it. A keyframe
 * comes every `keyframeIntervalMs` (1 s by default) and whenever a viewer asks
 * (`requestKeyframe`: a "keyframe" line on the child's stdin forces a key unit).
 */

export const ENCODING = {
  width: 640,
  height: 360,
  fps: 30,
  videoBitrate: 800_000,
  audioBitrate: 48_000,
  /** Time between periodic keyframes unless the session says otherwise (`--keyframe-interval`). */
  keyframeIntervalMs: 1_000,
  /** RTP packet size cap, room left for SRTP and tunnels on a 1,500-byte path. */
  mtu: 1200,
} as const;

/** The pipeline's VP8 encoder, the element asked for key units. */
const VIDEO_ENCODER = 'venc';
const ELEMENTS = ['videotestsrc', 'vp8enc', 'rtpvp8pay', 'audiotestsrc', 'opusenc', 'rtpopuspay', 'udpsink'];

/** Null when the encoder binary and every GStreamer element it needs are here, else what is missing. */
export function encoderMissing(): string | null {
  if (!existsSync(ENCODER_BIN)) return `${ENCODER_BIN} not built (run scripts/setup.sh or make -C forwarder)`;
  const missing = ELEMENTS.filter(
    (e) => spawnSync('gst-inspect-1.0', ['--exists', e], { timeout: 10_000 }).status !== 0,
  );
  return missing.length === 0 ? null : `GStreamer elements missing: ${missing.join(', ')}`;
}

/**
 * media-tree-encoder arguments: VP8 and Opus RTP with these SSRCs, both to
 * 127.0.0.1:`port`, a keyframe at least every `keyframeIntervalMs`.
 */
export function encoderArgs(
  s: { audioSsrc: number; videoSsrc: number },
  port: number,
  keyframeIntervalMs: number = ENCODING.keyframeIntervalMs,
): string[] {
  const e = ENCODING;
  const sink = ['udpsink', 'host=127.0.0.1', `port=${port}`, 'sync=false', 'async=false'];
  const maxDist = Math.max(1, Math.round((keyframeIntervalMs / 1000) * e.fps));
  return [
    ...['--keyframe-element', VIDEO_ENCODER],
    ...['videotestsrc', 'is-live=true', 'pattern=smpte', 'horizontal-speed=2'],
    ...['!', `video/x-raw,width=${e.width},height=${e.height},framerate=${e.fps}/1`],
    // The cheap real-time settings: about 13 % of a core at 640x360@30.
    ...[
      '!',
      'vp8enc',
      `name=${VIDEO_ENCODER}`,
      'deadline=1',
      'cpu-used=8',
      'end-usage=cbr',
      `target-bitrate=${e.videoBitrate}`,
    ],
    ...[`keyframe-max-dist=${maxDist}`, 'error-resilient=partitions'],
    ...['!', 'rtpvp8pay', `pt=${PAYLOAD_TYPE.video}`, `ssrc=${s.videoSsrc >>> 0}`, `mtu=${e.mtu}`],
    ...['picture-id-mode=15-bit', '!', ...sink],
    ...['audiotestsrc', 'is-live=true', 'wave=sine', 'freq=440', 'volume=0.3'],
    ...['!', 'audio/x-raw,rate=48000,channels=2', '!', 'opusenc', `bitrate=${e.audioBitrate}`, 'frame-size=20'],
    ...['!', 'rtpopuspay', `pt=${PAYLOAD_TYPE.audio}`, `ssrc=${s.audioSsrc >>> 0}`, `mtu=${e.mtu}`, '!', ...sink],
  ];
}

export interface EncodedSourceOptions extends RtpSourceOptions {
  /** Time between periodic keyframes (default ENCODING.keyframeIntervalMs). */
  keyframeIntervalMs?: number;
}

export class EncodedSource implements RtpSource {
  private readonly sock: Socket;
  /**
   * Sends to the children. Not `sock`: bound to 127.0.0.1 (only our encoder
   * may reach it), it cannot send to a child at another address (a node in a
   * network namespace of its own); like the synthetic source's, the kernel
   * picks its address by route.
   */
  private readonly out: Socket;
  private gst: Child | undefined;
  private timers: NodeJS.Timeout[] = [];
  private stopping = false;
  private encoding = false;
  private backoffMs = 500;
  private readonly sent = { audio: 0, video: 0 };

  constructor(private readonly o: EncodedSourceOptions) {
    this.sock = createSocket('udp4');
    this.sock.on('error', (err) => o.onError?.(err));
    this.sock.on('message', (m, from) => this.forward(m, from));
    this.out = createSocket('udp4');
    this.out.on('error', (err) => o.onError?.(err));
  }

  start(): void {
    this.later(() => {
      this.sock.bind(0, '127.0.0.1', () => {
        if (this.stopping) return;
        this.encoding = true;
        void this.spawn();
        if (this.o.durationMs !== undefined) this.later(() => void this.endEncoding(), this.o.durationMs);
      });
    }, this.o.delayMs ?? 0);
  }

  generated(): Record<StreamType, number> {
    return { ...this.sent };
  }

  /** The next video frame is a keyframe; a no-op while no encoder runs (it starts with one). */
  requestKeyframe(): void {
    const stdin = this.gst?.process.stdin;
    if (stdin?.writable) stdin.write('keyframe\n');
  }

  /** Only our encoder's packets: loopback, RTP version 2, the session's SSRC with its payload type. */
  private forward(m: Buffer, from: RemoteInfo): void {
    if (!this.encoding || from.address !== '127.0.0.1' || m.length < 12 || m.readUInt8(0) >> 6 !== 2) return;
    const ssrc = m.readUInt32BE(8);
    const pt = m.readUInt8(1) & 0x7f;
    const t: StreamType | null =
      ssrc === this.o.videoSsrc && pt === PAYLOAD_TYPE.video
        ? 'video'
        : ssrc === this.o.audioSsrc && pt === PAYLOAD_TYPE.audio
          ? 'audio'
          : null;
    if (!t) return;
    this.sent[t]++;
    fanOut(this.out, t, m, this.o);
  }

  private async spawn(): Promise<void> {
    const started = Date.now();
    const port = this.sock.address().port;
    let gst: Child;
    try {
      gst = await startChild('media-tree-encoder', ENCODER_BIN, {
        args: encoderArgs(this.o, port, this.o.keyframeIntervalMs),
        stdin: true,
      });
    } catch (err) {
      this.o.onError?.(err as Error);
      return;
    }
    if (this.stopping || !this.encoding) {
      await gst.stop(2_000); // stopped while it was being spawned
      return;
    }
    this.gst = gst;
    // A write racing the child's exit fails with EPIPE; the exit handler below restarts it.
    gst.process.stdin?.on('error', () => {});
    let ended = false;
    const restart = (why: string) => {
      if (ended) return; // 'error' and 'exit' may both come
      ended = true;
      if (this.gst === gst) this.gst = undefined;
      if (this.stopping || !this.encoding) return;
      // An encoder that ran a while comes back after 0.5 s; one failing at start backs off.
      this.backoffMs = Date.now() - started > 10_000 ? 500 : Math.min(this.backoffMs * 2, 10_000);
      const tail = gst.output().trim().split('\n').slice(-3).join(' | ');
      this.o.onError?.(new Error(`encoder ${why}${tail ? `: ${tail}` : ''}; restarting in ${this.backoffMs} ms`));
      this.later(() => void this.spawn(), this.backoffMs);
    };
    gst.process.once('error', (err) => restart(`did not start (${err.message})`));
    gst.process.once('exit', (code, signal) => restart(`exited with ${code ?? signal}`));
  }

  private async endEncoding(): Promise<void> {
    this.encoding = false;
    await this.gst?.stop(2_000);
  }

  private later(run: () => void, ms: number): void {
    this.timers.push(setTimeout(run, ms));
  }

  async stop(): Promise<void> {
    this.stopping = true;
    for (const t of this.timers) clearTimeout(t);
    await this.endEncoding();
    this.sock.close();
    this.out.close();
  }
}
