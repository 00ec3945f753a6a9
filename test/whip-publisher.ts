import { randomInt } from 'node:crypto';
import { createSocket } from 'node:dgram';
import ndc from 'node-datachannel';
import { ENCODER_BIN } from '../forwarder/process.ts';
import { encoderArgs } from '../nodes/encoded-source.ts';
import { isRtcp } from '../nodes/whep-rtcp.ts';
import { type Child, startChild } from '../process/child.ts';

/**
 * A WHIP publisher for tests: a node-datachannel PeerConnection on 127.0.0.1
 * sending VP8 and Opus from a real GStreamer encoder (the injection's
 * own pipeline, encoded-source.ts), under SSRCs and payload types of its own
 * (not the session's, so the injection's rewriting shows). It counts the
 * PLIs it is sent. `close()` DELETEs its resource; `vanish()` closes the
 * connection without a DELETE (a publisher whose network or process died).
 */

/** Payload types the publisher offers: other than the tree's 96/111 on purpose. */
export const PUBLISHER_PT = { audio: 109, video: 100 } as const;

export interface SentPacket {
  seq: number;
  ts: number;
}

export interface Publisher {
  readonly location: string;
  readonly ssrc: { audio: number; video: number };
  /** RTP packets handed to each track so far. */
  readonly sent: { audio: SentPacket[]; video: SentPacket[] };
  plis(): number;
  close(): Promise<void>;
  vanish(): Promise<void>;
}

export class WhipRefused extends Error {
  constructor(
    readonly status: number,
    readonly body: string,
  ) {
    super(`WHIP ${status}: ${body}`);
  }
}

/** An offer to send VP8 + Opus, with the PeerConnection that made it (close it when done). */
export async function publisherOffer(
  ssrc = { audio: randomInt(1, 2 ** 31), video: randomInt(1, 2 ** 31) },
): Promise<{ sdp: string; pc: ndc.PeerConnection; tracks: { audio: ndc.Track; video: ndc.Track } }> {
  const pc = new ndc.PeerConnection(`publisher-${randomInt(1 << 30)}`, { iceServers: [], bindAddress: '127.0.0.1' });
  const v = new ndc.Video('0', 'SendOnly');
  v.addVP8Codec(PUBLISHER_PT.video);
  v.addSSRC(ssrc.video, 'pub', 'pub', 'video');
  const a = new ndc.Audio('1', 'SendOnly');
  a.addOpusCodec(PUBLISHER_PT.audio);
  a.addSSRC(ssrc.audio, 'pub', 'pub', 'audio');
  const tracks = { video: pc.addTrack(v), audio: pc.addTrack(a) };
  const done = new Promise<void>((res) => pc.onGatheringStateChange((s) => s === 'complete' && res()));
  pc.setLocalDescription();
  if (pc.gatheringState() !== 'complete') await done;
  return { sdp: pc.localDescription()!.sdp, pc, tracks };
}

/** Publishes to `url` (`.../whip/<session>`) with `token`; resolves once connected and the encoder runs. */
export async function publish(url: string, token: string, timeoutMs = 10_000): Promise<Publisher> {
  const ssrc = { audio: randomInt(1, 2 ** 31), video: randomInt(1, 2 ** 31) };
  const { sdp, pc, tracks } = await publisherOffer(ssrc);
  const sent = { audio: [] as SentPacket[], video: [] as SentPacket[] };
  let plis = 0;
  tracks.video.onMessage((m) => {
    // PLI: RTCP payload-specific feedback (206), FMT 1 (RFC 4585 6.3.1), possibly in a compound packet.
    if (!isRtcp(m)) return;
    for (let off = 0; off + 4 <= m.length; off += (m.readUInt16BE(off + 2) + 1) * 4)
      if (m[off + 1] === 206 && (m[off]! & 0x1f) === 1) plis++;
  });
  const connected = new Promise<void>((resolve, reject) => {
    pc.onStateChange((s) => {
      if (s === 'connected') resolve();
      if (s === 'failed' || s === 'closed') reject(new Error(`publisher PeerConnection ${s}`));
    });
  });
  connected.catch(() => {});
  const res = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/sdp', authorization: `Bearer ${token}` },
    body: sdp,
    signal: AbortSignal.timeout(timeoutMs),
  });
  const body = await res.text();
  if (res.status !== 201) {
    pc.close();
    throw new WhipRefused(res.status, body);
  }
  const location = new URL(res.headers.get('location')!, url).toString();
  pc.setRemoteDescription(body, 'answer');
  let t: NodeJS.Timeout | undefined;
  await Promise.race([
    connected,
    new Promise((_, reject) => {
      t = setTimeout(() => reject(new Error('publisher did not connect')), timeoutMs);
    }),
  ]).finally(() => clearTimeout(t));

  // The encoder sends to a loopback socket of ours; each packet goes out on its track.
  const sock = createSocket('udp4');
  await new Promise<void>((r) => sock.bind(0, '127.0.0.1', r));
  sock.on('message', (m) => {
    if (m.length < 12) return;
    const which = m.readUInt32BE(8) === ssrc.video ? 'video' : m.readUInt32BE(8) === ssrc.audio ? 'audio' : null;
    if (!which || !tracks[which].isOpen()) return;
    m[1] = (m[1]! & 0x80) | PUBLISHER_PT[which];
    try {
      if (tracks[which].sendMessageBinary(m)) sent[which].push({ seq: m.readUInt16BE(2), ts: m.readUInt32BE(4) });
    } catch {
      /* closing */
    }
  });
  const gst: Child = await startChild('publisher-encoder', ENCODER_BIN, {
    // Its stdin open: the encoder stops at end of input.
    stdin: true,
    args: encoderArgs({ audioSsrc: ssrc.audio, videoSsrc: ssrc.video }, sock.address().port),
  });
  const shut = async () => {
    await gst.stop(2_000);
    sock.close();
    try {
      pc.close();
    } catch {
      /* already */
    }
  };
  return {
    location,
    ssrc,
    sent,
    plis: () => plis,
    close: async () => {
      const r = await fetch(location, {
        method: 'DELETE',
        headers: { authorization: `Bearer ${token}` },
        signal: AbortSignal.timeout(5_000),
      }).catch(() => null);
      await r?.arrayBuffer().catch(() => {});
      await shut();
    },
    vanish: shut,
  };
}
