/**
 * A publisher's RTP made the session's: the session's SSRC and payload type
 * written in, and sequence numbers and timestamps offset so that they run on
 * across publishers. When a new publisher (or a new SSRC from the same one)
 * takes over, its first packet follows the last one sent: the next sequence
 * number, and a timestamp advanced by the wall-clock time in between. Viewers'
 * jitter buffers and the forwarders' loss counts then see one stream, not a
 * restart. Everything else in the packet (marker, CSRCs, extensions, payload)
 * is kept.
 */

interface LastOut {
  seq: number;
  ts: number;
  atMs: number;
}

export class RtpRewriter {
  private seqOffset = 0;
  private tsOffset = 0;
  private inSsrc: number | null = null;
  private rebasing = true;
  private last: LastOut | null = null;

  constructor(
    private readonly ssrc: number,
    private readonly payloadType: number,
    private readonly clockRate: number,
  ) {}

  /** The next packet starts a new publisher's stream. */
  rebase(): void {
    this.rebasing = true;
  }

  /** A rewritten copy of `rtp` (at least 12 bytes, RTP version 2: the caller checked). */
  rewrite(rtp: Buffer, nowMs = performance.now()): Buffer {
    const seq = rtp.readUInt16BE(2);
    const ts = rtp.readUInt32BE(4);
    const ssrc = rtp.readUInt32BE(8);
    if (this.rebasing || ssrc !== this.inSsrc) {
      this.rebasing = false;
      this.inSsrc = ssrc;
      if (this.last) {
        const elapsed = Math.max(1, Math.round(((nowMs - this.last.atMs) / 1000) * this.clockRate));
        this.seqOffset = (this.last.seq + 1 - seq) & 0xffff;
        this.tsOffset = (this.last.ts + elapsed - ts) >>> 0;
      }
    }
    const out = Buffer.from(rtp);
    out[1] = (rtp[1]! & 0x80) | this.payloadType;
    const outSeq = (seq + this.seqOffset) & 0xffff;
    const outTs = (ts + this.tsOffset) >>> 0;
    out.writeUInt16BE(outSeq, 2);
    out.writeUInt32BE(outTs, 4);
    out.writeUInt32BE(this.ssrc >>> 0, 8);
    // The highest sequence number sent so far (a reordered packet does not move it back).
    if (!this.last || ((outSeq - this.last.seq) & 0xffff) < 0x8000) this.last = { seq: outSeq, ts: outTs, atMs: nowMs };
    return out;
  }
}
