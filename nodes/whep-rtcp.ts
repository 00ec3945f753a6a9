import type { KeyframeReason } from '../topology/index.ts';

/**
 * The RTCP an egress node speaks with its viewers (RFC 3550, RFC 4585): it
 * sends sender reports, so a viewer's receiver reports carry LSR/DLSR and the
 * round trip can be measured, and reads the receiver reports, NACKs and
 * keyframe requests (PLI, RFC 4585 6.3.1; FIR, RFC 5104 4.3.1) that come back.
 * Only what the quality metrics and the keyframe requests need.
 */

/** One report block of a receiver (or sender) report about a stream we send. */
export interface ReportBlock {
  ssrc: number;
  /** 0..1, the share of packets lost since the viewer's previous report. */
  fractionLost: number;
  /** Interarrival jitter in RTP timestamp units. */
  jitter: number;
  /** Middle 32 bits of the NTP time of the last SR the viewer had, 0 if none. */
  lsr: number;
  /** Delay since that SR, in 1/65536 s. */
  dlsr: number;
}

/** A viewer asking the sender of `ssrc` for a keyframe. */
export interface KeyframeAsk {
  reason: KeyframeReason;
  ssrc: number;
}

export interface IncomingRtcp {
  reports: ReportBlock[];
  /** Packets asked for again by generic NACKs (RFC 4585 6.2.1). */
  nacked: number;
  /** PLIs (the media source SSRC) and FIR entries (each FCI's SSRC), in order. */
  keyframes: KeyframeAsk[];
}

/** Payload-specific feedback (RFC 4585 6.1) and its FMTs for keyframe requests. */
const PSFB = 206;
const FMT_PLI = 1;
const FMT_FIR = 4;

/** True for an RTCP packet in an rtcp-mux stream (RFC 5761: PT 192..223 are RTCP). */
export function isRtcp(b: Buffer): boolean {
  return b.length >= 8 && b[0]! >> 6 === 2 && b[1]! >= 192 && b[1]! <= 223;
}

/** Receiver-report blocks, NACKed packets and keyframe requests in a compound RTCP packet; malformed parts end the walk. */
export function parseRtcp(b: Buffer): IncomingRtcp {
  const out: IncomingRtcp = { reports: [], nacked: 0, keyframes: [] };
  for (let off = 0; off + 4 <= b.length; ) {
    if (b[off]! >> 6 !== 2) break;
    const count = b[off]! & 0x1f;
    const pt = b[off + 1]!;
    const len = (b.readUInt16BE(off + 2) + 1) * 4;
    if (off + len > b.length) break;
    // RR: 8 bytes of header and sender, SR: 28; then 24 bytes a block.
    const first = pt === 201 ? off + 8 : pt === 200 ? off + 28 : -1;
    if (first >= 0)
      for (let i = 0; i < count && first + (i + 1) * 24 <= off + len; i++) {
        const p = first + i * 24;
        out.reports.push({
          ssrc: b.readUInt32BE(p),
          fractionLost: b[p + 4]! / 256,
          jitter: b.readUInt32BE(p + 12),
          lsr: b.readUInt32BE(p + 16),
          dlsr: b.readUInt32BE(p + 20),
        });
      }
    // Generic NACK: FMT 1 of RTPFB; each FCI is a PID and a bitmask of the 16 after it.
    if (pt === 205 && count === 1)
      for (let p = off + 12; p + 4 <= off + len; p += 4) {
        let mask = b.readUInt16BE(p + 2);
        let n = 1;
        for (; mask; mask >>= 1) n += mask & 1;
        out.nacked += n;
      }
    // PLI: header, sender SSRC, media source SSRC, no FCI (length 2).
    if (pt === PSFB && count === FMT_PLI && len >= 12)
      out.keyframes.push({ reason: 'pli', ssrc: b.readUInt32BE(off + 8) });
    // FIR: the media source field is unused; each 8-byte FCI names an SSRC (then a sequence number, reserved).
    if (pt === PSFB && count === FMT_FIR)
      for (let p = off + 12; p + 8 <= off + len; p += 8) out.keyframes.push({ reason: 'fir', ssrc: b.readUInt32BE(p) });
    off += len;
  }
  return out;
}

/** NTP time (RFC 5905) as its 64-bit parts, from the wall clock. */
export function ntpNow(nowMs = Date.now()): { msw: number; lsw: number; mid: number } {
  const secs = nowMs / 1000 + 2_208_988_800;
  const msw = Math.floor(secs) >>> 0;
  const lsw = Math.floor((secs - Math.floor(secs)) * 2 ** 32) >>> 0;
  return { msw, lsw, mid: (((msw & 0xffff) << 16) | (lsw >>> 16)) >>> 0 };
}

/** A sender report (no report blocks) for one stream we send. */
export function senderReport(ssrc: number, rtpTs: number, packets: number, octets: number, nowMs = Date.now()): Buffer {
  const b = Buffer.alloc(28);
  b[0] = 0x80;
  b[1] = 200;
  b.writeUInt16BE(6, 2);
  b.writeUInt32BE(ssrc >>> 0, 4);
  const t = ntpNow(nowMs);
  b.writeUInt32BE(t.msw, 8);
  b.writeUInt32BE(t.lsw, 12);
  b.writeUInt32BE(rtpTs >>> 0, 16);
  b.writeUInt32BE(packets >>> 0, 20);
  b.writeUInt32BE(octets >>> 0, 24);
  return b;
}

/** Round trip from a report block (RFC 3550 6.4.1), in seconds; null without an SR to refer to. */
export function roundTripS(r: ReportBlock, nowMs = Date.now()): number | null {
  if (r.lsr === 0) return null;
  const rtt = (ntpNow(nowMs).mid - r.lsr - r.dlsr) >>> 0;
  // A wrapped (negative) value or one over a minute is a report we cannot place.
  return rtt > 60 * 65536 ? null : rtt / 65536;
}
