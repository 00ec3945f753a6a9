/**
 * What a viewer knows about one stream it receives (RFC 3550 A.1, A.3, A.8):
 * packets, the extended highest sequence number, loss from the sequence
 * numbers, interarrival jitter, and the receiver report block that says so.
 */
/** How far back a packet is still told from a duplicate (a resend comes within a second or so). */
const RESEND_WINDOW = 4096;

export class StreamStats {
  ssrc: number | null = null;
  packets = 0;
  bytes = 0;
  /** Packets seen more than once (a NACKed resend of one that was not lost, say). */
  duplicates = 0;
  private baseSeq = 0;
  private maxExt = -1;
  /** The last RESEND_WINDOW extended sequence numbers seen, by number modulo the window. */
  private readonly seen = new Float64Array(RESEND_WINDOW).fill(-1);
  private jitter = 0;
  private lastTransit: number | null = null;
  private priorExpected = 0;
  private priorReceived = 0;
  /** The last sender report: its NTP middle bits and when it came. */
  private lastSr: { mid: number; atMs: number } | null = null;

  constructor(private readonly clockRate: number) {}

  /** One RTP packet (header parsed here; the payload is not looked at); returns the sequence numbers it shows missing. */
  onRtp(b: Buffer, nowMs = performance.now()): number[] {
    if (b.length < 12) return [];
    const seq = b.readUInt16BE(2);
    const ts = b.readUInt32BE(4);
    const ssrc = b.readUInt32BE(8);
    if (this.ssrc === null) {
      this.ssrc = ssrc;
      this.baseSeq = seq;
      this.maxExt = seq;
    } else if (ssrc !== this.ssrc) return [];
    // Extend the 16-bit number to the one nearest the highest so far.
    const cycle = this.maxExt - (this.maxExt & 0xffff);
    let ext = cycle + seq;
    if (ext < this.maxExt - 0x8000) ext += 0x10000;
    else if (ext > this.maxExt + 0x8000) ext -= 0x10000;
    if (this.seen[ext % RESEND_WINDOW] === ext) {
      this.duplicates++;
      return [];
    }
    this.seen[ext % RESEND_WINDOW] = ext;
    this.packets++;
    this.bytes += b.length;
    const missing: number[] = [];
    // A gap: the packets in between (at most a NACK's worth) are missing so far.
    for (let m = Math.max(this.maxExt + 1, ext - 64); m < ext; m++) missing.push(m & 0xffff);
    if (ext > this.maxExt) this.maxExt = ext;
    const transit = (nowMs / 1000) * this.clockRate - ts;
    if (this.lastTransit !== null) {
      const d = Math.abs(transit - this.lastTransit);
      this.jitter += (d - this.jitter) / 16;
    }
    this.lastTransit = transit;
    return missing;
  }

  /** A sender report for this stream: kept so the next report block measures the round trip. */
  onSenderReport(ntpMid: number, nowMs = performance.now()): void {
    this.lastSr = { mid: ntpMid, atMs: nowMs };
  }

  get expected(): number {
    return this.ssrc === null ? 0 : this.maxExt - this.baseSeq + 1;
  }

  /** Packets never received (a resend that came in time is not lost). */
  get lost(): number {
    return Math.max(0, this.expected - this.packets);
  }

  get jitterS(): number {
    return this.jitter / this.clockRate;
  }

  /** A receiver report block (24 bytes) about this stream, and the interval it closes. */
  reportBlock(nowMs = performance.now()): Buffer | null {
    if (this.ssrc === null) return null;
    const expected = this.expected;
    const intervalExpected = expected - this.priorExpected;
    const intervalLost = intervalExpected - (this.packets - this.priorReceived);
    this.priorExpected = expected;
    this.priorReceived = this.packets;
    const fraction =
      intervalExpected <= 0 || intervalLost <= 0 ? 0 : Math.floor((intervalLost << 8) / intervalExpected);
    const b = Buffer.alloc(24);
    b.writeUInt32BE(this.ssrc >>> 0, 0);
    b[4] = Math.min(255, fraction);
    const cum = Math.min(this.lost, 0x7fffff);
    b.writeUIntBE(cum, 5, 3);
    b.writeUInt32BE(this.maxExt >>> 0, 8);
    b.writeUInt32BE(Math.min(Math.round(this.jitter), 0xffffffff) >>> 0, 12);
    if (this.lastSr) {
      b.writeUInt32BE(this.lastSr.mid >>> 0, 16);
      b.writeUInt32BE(Math.round(((nowMs - this.lastSr.atMs) / 1000) * 65536) >>> 0, 20);
    }
    return b;
  }
}

/** An RTCP receiver report (RFC 3550 6.4.2) with one block, from `senderSsrc`. */
export function receiverReport(senderSsrc: number, block: Buffer): Buffer {
  const head = Buffer.alloc(8);
  head[0] = 0x81;
  head[1] = 201;
  head.writeUInt16BE(7, 2);
  head.writeUInt32BE(senderSsrc >>> 0, 4);
  return Buffer.concat([head, block]);
}

/**
 * An RTCP feedback message (RFC 4585 6.1): V=2, `fmt`, `pt` (205 transport,
 * 206 payload-specific), the length, both SSRCs, then `fciBytes` of FCI for
 * the caller to fill in.
 */
function feedback(pt: 205 | 206, fmt: number, senderSsrc: number, mediaSsrc: number, fciBytes: number): Buffer {
  const b = Buffer.alloc(12 + fciBytes);
  b[0] = 0x80 | fmt;
  b[1] = pt;
  b.writeUInt16BE(b.length / 4 - 1, 2);
  b.writeUInt32BE(senderSsrc >>> 0, 4);
  b.writeUInt32BE(mediaSsrc >>> 0, 8);
  return b;
}

/** A generic NACK (RFC 4585 6.2.1) asking for `seqs` of `mediaSsrc` again. */
export function genericNack(senderSsrc: number, mediaSsrc: number, seqs: number[]): Buffer {
  const fci: Array<[number, number]> = [];
  for (const s of [...seqs].sort((a, b) => a - b)) {
    const last = fci.at(-1);
    const d = last ? (s - last[0]) & 0xffff : 0;
    if (last && d >= 1 && d <= 16) last[1] |= 1 << (d - 1);
    else fci.push([s & 0xffff, 0]);
  }
  const b = feedback(205, 1, senderSsrc, mediaSsrc, fci.length * 4);
  fci.forEach(([pid, blp], i) => {
    b.writeUInt16BE(pid, 12 + i * 4);
    b.writeUInt16BE(blp, 14 + i * 4);
  });
  return b;
}

/** A Picture Loss Indication (RFC 4585 6.3.1) about `mediaSsrc`: the viewer cannot decode until a keyframe. */
export function pictureLossIndication(senderSsrc: number, mediaSsrc: number): Buffer {
  return feedback(206, 1, senderSsrc, mediaSsrc, 0);
}

/** A Full Intra Request (RFC 5104 4.3.1) for `mediaSsrc`, command sequence number `seq`. */
export function fullIntraRequest(senderSsrc: number, mediaSsrc: number, seq: number): Buffer {
  // The media source SSRC stays 0; the FCI names the stream.
  const b = feedback(206, 4, senderSsrc, 0, 8);
  b.writeUInt32BE(mediaSsrc >>> 0, 12);
  b[16] = seq & 0xff;
  return b;
}
